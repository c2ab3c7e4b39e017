"""Conditional value at risk (CVaR) losses, computed by sorting on the tensor's device.

For losses ``l_1..l_n`` and ``0 < alpha <= 1`` the CVaR (Rockafellar and Uryasev) is::

    CVaR_alpha(l) = min_lambda  lambda + 1 / (alpha n) * sum_i [l_i - lambda]_+

i.e. the mean of the worst ``alpha`` fraction of the losses. With the losses
sorted in decreasing order and ``k = alpha n``, ``m = floor(k)``, the minimum is::

    CVaR_alpha(l) = ( l_(1) + ... + l_(m) + (k - m) l_(m+1) ) / k,

reached at ``lambda* = l_(m+1)``. The research code finds ``lambda*`` with a
scipy bounded scalar search per group per step on the CPU; sorting gives the
same minimum exactly, without leaving the device. As in the research code the
minimiser is a constant: the gradient flows through the losses only, weight
``1/k`` for the worst ``m`` losses and ``(k - m)/k`` for the next one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "cvar",
    "grouped_cvar",
    "smoothed_cvar",
    "bilevel_cvar_loss",
    "dag_fdd_loss",
    "daw_fdd_loss",
    "FLOAT32_EXP_OVERFLOW",
]

#: exp(u) overflows float32 for u above log(float32 max) = 88.7228...
FLOAT32_EXP_OVERFLOW = math.log(torch.finfo(torch.float32).max)


def grouped_cvar(
    losses: Tensor, groups: Tensor, num_groups: int, alpha: float
) -> tuple[Tensor, Tensor]:
    """CVaR_alpha of the losses of each group, vectorised over groups (no host synchronisation).

    Parameters
    ----------
    losses : Tensor (n,)
        Per-sample losses (gradients flow through them).
    groups : Tensor (n,) of int64
        Group id of each sample, in ``0..num_groups-1``.
    num_groups : int
    alpha : float
        Fraction of each group's worst losses averaged, ``0 < alpha <= 1``.

    Returns
    -------
    values : Tensor (num_groups,)
        CVaR per group (0 for absent groups).
    present : Tensor (num_groups,) of bool
        Whether the group has at least one sample.
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must lie in (0, 1], found {alpha}")
    by_loss = torch.argsort(losses.detach(), descending=True, stable=True)
    order = by_loss[
        torch.argsort(groups[by_loss], stable=True)
    ]  # grouped, each group by decreasing loss
    sorted_groups = groups[order]
    counts = torch.bincount(groups, minlength=num_groups)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(losses.numel(), device=losses.device) - starts[sorted_groups]
    k = alpha * counts[sorted_groups].to(losses.dtype)
    weights = (k - rank.to(losses.dtype)).clamp(0.0, 1.0) / k
    values = torch.zeros(num_groups, dtype=losses.dtype, device=losses.device)
    values = values.index_add(0, sorted_groups, weights * losses[order])
    return values, counts > 0


def cvar(losses: Tensor, alpha: float) -> Tensor:
    """CVaR_alpha of a 1-D tensor of losses: the mean of its worst ``alpha`` fraction (module
    docstring)."""
    zeros = torch.zeros_like(losses, dtype=torch.long)
    return grouped_cvar(losses, zeros, 1, alpha)[0][0]


def _masked_cvar(values: Tensor, present: Tensor, alpha: float) -> Tensor:
    ids = (~present).long()  # present values form group 0
    return grouped_cvar(values, ids, 2, alpha)[0][0]


def _smoothed_cvar_slope(
    lam: Tensor, values: Tensor, present: Tensor, alpha: float, tau1: float, tau2: float
) -> Tensor:
    """dH/dlambda for a batch of candidate lambdas ``lam`` (K,) -> (K,)."""
    sig = torch.sigmoid((values[None, :] - lam[:, None]) / tau1) * present[None, :]
    return 1.0 + (tau2 / alpha) * lam - sig.sum(1) / (alpha * present.sum())


def smoothed_cvar(
    values: Tensor,
    present: Tensor,
    alpha: float = 0.5,
    tau1: float = 1e-3,
    tau2: float = 1e-4,
    *,
    overflow_guard: bool = False,
    grid: int = 128,
    rounds: int = 4,
) -> Tensor:
    """Smoothed CVaR over the present entries of ``values`` (the outer level of PG-FDD's loss).

    ::

        H(lambda) = lambda + tau2 / (2 alpha) lambda^2
                    + 1 / (alpha |G|) * sum_{g in G} softplus_tau1(v_g - lambda),
        softplus_tau1(u) = tau1 log(1 + exp(u / tau1)),

    returned at its minimiser ``lambda*`` (a constant; gradient through ``v``).
    ``H`` is convex, so ``lambda*`` is the root of ``H'``, found on the device by
    ``rounds`` refinements of a ``grid``-point bracket in ``[min v - 1000, max v]``
    (the research code's search interval).

    Parameters
    ----------
    overflow_guard : bool
        Reproduce the research code (spec 2.6): its search function returns the
        largest float when ``exp((v_g - lambda)/tau1)`` overflows float32, which
        confines ``lambda* >= max v - 88.72 tau1``.
    """
    v = values.detach()
    present = present.to(v.dtype)
    lo = torch.where(present > 0, v, torch.full_like(v, float("inf"))).min() - 1000.0
    hi = torch.where(present > 0, v, torch.full_like(v, float("-inf"))).max()
    vmax = hi
    steps = torch.linspace(0.0, 1.0, grid, device=v.device, dtype=v.dtype)
    for _ in range(rounds):
        lam = lo + (hi - lo) * steps
        negative = _smoothed_cvar_slope(lam, v, present, alpha, tau1, tau2) < 0
        last_neg = (negative.to(torch.long).sum() - 1).clamp(
            0, grid - 2
        )  # slope increases with lambda
        lo, hi = lam[last_neg], lam[last_neg + 1]
    lam_star = (lo + hi) / 2
    if overflow_guard:
        lam_star = torch.maximum(lam_star, vmax - FLOAT32_EXP_OVERFLOW * tau1)
    soft = tau1 * F.softplus((values - lam_star) / tau1)
    mean_soft = (soft * present).sum() / present.sum()
    return lam_star + tau2 / (2 * alpha) * lam_star**2 + mean_soft / alpha


def bilevel_cvar_loss(
    losses: Tensor,
    groups: Tensor,
    num_groups: int,
    *,
    alpha_inner: float = 0.9,
    alpha_outer: float = 0.5,
    tau1: float = 1e-3,
    tau2: float = 1e-4,
    overflow_guard: bool = False,
) -> Tensor:
    """PG-FDD's fairness loss: smoothed CVaR over groups of the per-group CVaR (spec 2.6).

    ``L_g = CVaR_{alpha_inner}(losses of group g)`` for each group present in the
    batch, then ``smoothed_cvar(L, alpha_outer, tau1, tau2)``.
    """
    values, present = grouped_cvar(losses, groups, num_groups, alpha_inner)
    return smoothed_cvar(values, present, alpha_outer, tau1, tau2, overflow_guard=overflow_guard)


def dag_fdd_loss(losses: Tensor, alpha: float = 0.5) -> Tensor:
    """DAG-FDD (demographic-agnostic): ``CVaR_alpha`` over every sample of the batch (spec 10)."""
    return cvar(losses, alpha)


def daw_fdd_loss(
    losses: Tensor,
    groups: Tensor,
    num_groups: int,
    *,
    alpha_inner: float = 0.9,
    alpha_outer: float = 0.5,
) -> Tensor:
    """DAW-FDD (demographic-aware): plain ``CVaR_alpha_outer`` over groups of ``CVaR_alpha_inner``
    per group (spec 10)."""
    values, present = grouped_cvar(losses, groups, num_groups, alpha_inner)
    return _masked_cvar(values, present, alpha_outer)
