"""L1 reconstruction loss of PG-FDD (spec 2.3)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["reconstruction_l1"]


def reconstruction_l1(
    real: Tensor,
    fake: Tensor,
    self_real: Tensor,
    self_fake: Tensor,
    cross_to_real: Tensor,
    cross_to_fake: Tensor,
) -> Tensor:
    """The sum of four L1 terms of the self and cross reconstructions.

    ``L1(fake, self_fake) + L1(real, self_real) + L1(fake, cross_to_fake)
    + L1(real, cross_to_real)``.

    Each L1 is the mean absolute error over all elements; images in the model's input scale.

    Examples
    --------
    >>> import torch
    >>> zero, one = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    >>> reconstruction_l1(zero, zero, zero, one, one, zero)  # three perfect, one off by 1
    tensor(1.)
    """
    return (
        F.l1_loss(self_fake, fake)
        + F.l1_loss(self_real, real)
        + F.l1_loss(cross_to_fake, fake)
        + F.l1_loss(cross_to_real, real)
    )
