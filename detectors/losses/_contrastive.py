"""Domain-aware contrastive regularisation on pooled shared and specific features (spec 2.4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["contrastive_regularization"]


def _permute_within(labels: Tensor, generator: torch.Generator | None) -> Tensor:
    """For each row, the index of a random row with the same label (a permutation per label)."""
    noise = torch.rand(
        labels.numel(),
        generator=generator,
        device=labels.device if generator is None else generator.device,
    )
    noise = noise.to(labels.device)
    by_label = torch.argsort(labels, stable=True)
    shuffled = torch.argsort(
        labels.to(noise.dtype) * 2 + noise
    )  # same label blocks, random order inside
    source = torch.empty_like(by_label)
    source[by_label] = shuffled
    return source


def _randperm(n: int, like: Tensor, generator: torch.Generator | None) -> Tensor:
    device = like.device if generator is None else generator.device
    return torch.randperm(n, generator=generator, device=device).to(like.device)


def contrastive_regularization(
    shared: Tensor,
    specific: Tensor,
    label_specific: Tensor,
    margin: float = 3.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sum of four triplet terms on a ``[reals; fakes]`` batch.

    ``T(a, p, q) = mean_i max(0, ||a_i - p_i|| - ||a_i - q_i|| + margin)`` (distances with eps
    1e-6).
    With ``P_r``, ``P_f`` random permutations of the real and fake rows of
    ``shared``, and ``S`` the ``specific`` rows each replaced by a random row of
    the same manipulation id (halves ``S_r``, ``S_f``)::

        L = T(shared_r, P_r, P_f) + T(shared_f, P_f, P_r)
          + T(spec_r, S_r, S_f) + T(spec_f, S_f, S_r)

    Randomness comes from ``generator`` (or the global torch generator, seeded by the trainer).

    Examples
    --------
    >>> shared, specific = torch.zeros(4, 8), torch.zeros(4, 8)
    >>> label_specific = torch.tensor([0, 0, 1, 2])
    >>> round(contrastive_regularization(shared, specific, label_specific).item(), 4)  # 4 x margin
    12.0
    """
    n = shared.shape[0] // 2
    shared_r, shared_f = shared[:n], shared[n:]
    perm_r = shared_r[_randperm(n, shared, generator)]
    perm_f = shared_f[_randperm(n, shared, generator)]
    same = specific[_permute_within(label_specific, generator)]
    spec_r, spec_f = specific[:n], specific[n:]
    same_r, same_f = same[:n], same[n:]

    def triplet(a: Tensor, p: Tensor, q: Tensor) -> Tensor:
        return F.triplet_margin_loss(a, p, q, margin=margin, p=2, eps=1e-6)

    return (
        triplet(shared_r, perm_r, perm_f)
        + triplet(shared_f, perm_f, perm_r)
        + triplet(spec_r, same_r, same_f)
        + triplet(spec_f, same_f, same_r)
    )
