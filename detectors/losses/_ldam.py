"""Label-distribution-aware margin loss (Cao et al., NeurIPS 2019) for the demographic head."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ldam_margins", "LDAMLoss"]


def ldam_margins(counts: Sequence[int], max_margin: float = 0.5) -> Tensor:
    """Per-class margins ``m_j = max_margin * (min_k n_k / n_j) ** (1/4)``.

    That is, proportional to ``n_j^(-1/4)``.

    The rarest class gets ``max_margin``. A class with no samples (it cannot
    appear as a target) gets ``max_margin`` too and does not enter the minimum.

    Examples
    --------
    >>> ldam_margins([10000, 160, 10]).round(decimals=4)  # 0.5 * (10 / n) ** (1/4)
    tensor([0.0889, 0.2500, 0.5000])
    """
    n = torch.as_tensor(list(counts), dtype=torch.float64)
    if n.numel() == 0 or (n < 0).any():
        raise ValueError(f"counts must be non-negative, found {list(counts)}")
    if not (n > 0).any():
        return torch.full(n.shape, float(max_margin), dtype=torch.float32)
    n_min = n[n > 0].min()
    margins = torch.where(
        n > 0, max_margin * (n_min / n.clamp(min=1)) ** 0.25, torch.full_like(n, max_margin)
    )
    return margins.float()


class LDAMLoss(nn.Module):
    """LDAM loss: ``mean_i CE(s * z'_i, y_i)``.

    ``z'_i`` is ``z_i`` with the target logit lowered by ``m_{y_i}``.

    Parameters
    ----------
    counts : sequence of int
        Training samples per class (here: per intersectional group, from the training CSVs).
    max_margin : float
        Margin of the rarest class (0.5 in the research code).
    scale : float
        Logit scale ``s`` (30 in the research code).

    Examples
    --------
    >>> loss = LDAMLoss([100, 10], max_margin=0.5, scale=30)
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    >>> round(loss(logits, torch.tensor([0, 1])).item(), 4)  # margins lower the target logits
    0.0
    """

    def __init__(self, counts: Sequence[int], max_margin: float = 0.5, scale: float = 30.0) -> None:
        super().__init__()
        self.register_buffer("margins", ldam_margins(counts, max_margin))
        self.scale = float(scale)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        is_target = F.one_hot(target, logits.shape[1]).bool()
        shifted = torch.where(
            is_target, logits - self.margins.to(logits.dtype)[target][:, None], logits
        )
        return F.cross_entropy(self.scale * shifted, target)
