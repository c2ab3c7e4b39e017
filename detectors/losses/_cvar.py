"""Conditional value at risk (CVaR) losses, by sorting on the device or by the research search.

For losses ``l_1..l_n`` and ``0 < alpha <= 1`` the CVaR (Rockafellar and Uryasev) is::

    CVaR_alpha(l) = min_lambda F(lambda),
    F(lambda) = lambda + 1 / (alpha n) * sum_i [l_i - lambda]_+

i.e. the mean of the worst ``alpha`` fraction of the losses. With the losses
sorted in decreasing order and ``k = alpha n``, ``m = floor(k)``, the minimum is::

    CVaR_alpha(l) = ( l_(1) + ... + l_(m) + (k - m) l_(m+1) ) / k,

reached at ``lambda* = l_(m+1)``. As in the research code the minimiser is a
constant: the gradient flows through the losses only.

Two solvers find ``lambda*`` (argument ``solver``):

``"exact"``
    sorting (and, for the smoothed outer level, a bracketing root search of
    its derivative), on the tensor's device without host synchronisation. The
    gradient gives weight ``1/k`` to the worst ``m`` losses and ``(k - m)/k`` to
    the next one: the weights sum to 1.
``"fminbound"``
    the research code's procedure: :func:`scipy.optimize.fminbound` (bounded
    Brent search, ``xtol`` 1e-5, at most 500 evaluations) of ``F`` evaluated on
    the detached float32 losses, on ``[min l - 1000, max l]``. ``F`` is
    piecewise linear with its minimum at a kink, and the search stops within
    its tolerance on either side of it: a loss just below ``lambda`` then
    counts with weight ``1/(alpha n)`` or not at all, so the weights of a group
    sum to ``1/alpha`` times the fraction above ``lambda`` (10/9 = 1.11 for
    ``alpha`` 0.9 when every loss counts) instead of 1. The value of the loss
    is within 1e-5 of the exact one; its gradient is not. One host round trip
    per group and step.
"""

from __future__ import annotations

import math

import numpy as np
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
    "SOLVERS",
]

#: exp(u) overflows float32 for u above log(float32 max) = 88.7228...
FLOAT32_EXP_OVERFLOW = math.log(torch.finfo(torch.float32).max)

#: how the CVaR minimiser is found (module docstring)
SOLVERS = ("exact", "fminbound")


def _check_solver(solver: str) -> None:
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, found {solver!r}")


def _bounded_search(objective, values: Tensor) -> float:
    """The research code's ``fminbound(objective, min - 1000, max)`` (scipy defaults).

    The bounds are Python floats, as NumPy 1.x (which the research code pins)
    made of ``float32 - 1000.0``.
    """
    from scipy.optimize import fminbound

    return float(fminbound(objective, float(values.min()) - 1000.0, float(values.max())))


def _searched_cvar(losses: Tensor, alpha: float) -> Tensor:
    """``F(lambda*)`` with ``lambda*`` from :func:`_bounded_search` on the detached losses."""
    detached = losses.detach().cpu()

    def objective(lam: float) -> float:
        return lam + (1.0 / alpha) * (detached - lam).clamp_min(0).mean().item()

    lam = _bounded_search(objective, detached)
    return lam + (1.0 / alpha) * (losses - lam).clamp_min(0).mean()


def grouped_cvar(
    losses: Tensor, groups: Tensor, num_groups: int, alpha: float, *, solver: str = "exact"
) -> tuple[Tensor, Tensor]:
    """CVaR_alpha of the losses of each group, vectorised over groups.

    Parameters
    ----------
    losses : Tensor (n,)
        Per-sample losses (gradients flow through them).
    groups : Tensor (n,) of int64
        Group id of each sample, in ``0..num_groups-1``.
    num_groups : int
    alpha : float
        Fraction of each group's worst losses averaged, ``0 < alpha <= 1``.
    solver : {"exact", "fminbound"}
        How each group's minimiser is found (module docstring).

    Returns
    -------
    values : Tensor (num_groups,)
        CVaR per group (0 for absent groups).
    present : Tensor (num_groups,) of bool
        Whether the group has at least one sample.

    Examples
    --------
    >>> losses, groups = torch.tensor([1.0, 3.0, 2.0]), torch.tensor([0, 0, 1])
    >>> values, present = grouped_cvar(losses, groups, 3, 0.5)
    >>> values.tolist(), present.tolist()
    ([3.0, 2.0, 0.0], [True, True, False])
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must lie in (0, 1], found {alpha}")
    _check_solver(solver)
    counts = torch.bincount(groups, minlength=num_groups)
    if solver == "fminbound":
        ids = torch.unique(groups).tolist()  # ascending, as the research code loops
        found = torch.stack([_searched_cvar(losses[groups == g], alpha) for g in ids])
        index = torch.tensor(ids, device=losses.device)
        values = torch.zeros(num_groups, dtype=found.dtype, device=losses.device)
        return values.index_put((index,), found), counts > 0
    by_loss = torch.argsort(losses.detach(), descending=True, stable=True)
    # grouped, each group by decreasing loss
    order = by_loss[torch.argsort(groups[by_loss], stable=True)]
    sorted_groups = groups[order]
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(losses.numel(), device=losses.device) - starts[sorted_groups]
    k = alpha * counts[sorted_groups].to(losses.dtype)
    weights = (k - rank.to(losses.dtype)).clamp(0.0, 1.0) / k
    values = torch.zeros(num_groups, dtype=losses.dtype, device=losses.device)
    values = values.index_add(0, sorted_groups, weights * losses[order])
    return values, counts > 0


def cvar(losses: Tensor, alpha: float, *, solver: str = "exact") -> Tensor:
    """CVaR_alpha of a 1-D tensor of losses: the mean of its worst ``alpha`` fraction.

    Examples
    --------
    >>> cvar(torch.tensor([0.1, 0.9, 0.5, 0.7]), 0.5)
    tensor(0.8000)

    The research search stops below the smallest loss here, so all four losses get weight
    ``1 / (0.9 * 4)`` (the exact weights are 1/3.6, 1/3.6, 1/3.6, 0.6/3.6):

    >>> losses = torch.tensor([0.85, 3.15, 0.35, 0.31], requires_grad=True)
    >>> cvar(losses, 0.9, solver="fminbound").backward()
    >>> round(losses.grad.sum().item(), 4)
    1.1111
    """
    zeros = torch.zeros_like(losses, dtype=torch.long)
    return grouped_cvar(losses, zeros, 1, alpha, solver=solver)[0][0]


def _smoothed_cvar_slope(
    lam: Tensor, values: Tensor, present: Tensor, alpha: float, tau1: float, tau2: float
) -> Tensor:
    """dH/dlambda for a batch of candidate lambdas ``lam`` (K,) -> (K,)."""
    sig = torch.sigmoid((values[None, :] - lam[:, None]) / tau1) * present[None, :]
    return 1.0 + (tau2 / alpha) * lam - sig.sum(1) / (alpha * present.sum())


def _exact_smoothed_minimiser(
    v: Tensor, present: Tensor, alpha: float, tau1: float, tau2: float, grid: int, rounds: int
) -> Tensor:
    """Root of ``H'`` by ``rounds`` refinements of a ``grid``-point bracket in
    ``[min v - 1000, max v]`` (``H`` is convex, so ``H'`` increases)."""
    lo = torch.where(present > 0, v, torch.full_like(v, float("inf"))).min() - 1000.0
    hi = torch.where(present > 0, v, torch.full_like(v, float("-inf"))).max()
    steps = torch.linspace(0.0, 1.0, grid, device=v.device, dtype=v.dtype)
    for _ in range(rounds):
        lam = lo + (hi - lo) * steps
        negative = _smoothed_cvar_slope(lam, v, present, alpha, tau1, tau2) < 0
        last_neg = (negative.to(torch.long).sum() - 1).clamp(0, grid - 2)
        lo, hi = lam[last_neg], lam[last_neg + 1]
    return (lo + hi) / 2


def _searched_smoothed_minimiser(
    v: Tensor, alpha: float, tau1: float, tau2: float, overflow_guard: bool
) -> float:
    """The research code's bounded search of ``H`` on the detached float32 values; with
    ``overflow_guard`` its objective is the largest float wherever ``exp((v - lambda)/tau1)``
    overflows, as in the research code."""
    v = v.detach().cpu()

    def objective(lam: float) -> float:
        u = (v - lam) / tau1
        if overflow_guard:
            e = torch.exp(u)
            if torch.isinf(e).any():
                return float(np.finfo(float).max)
            soft = tau1 * torch.log(1 + e)
        else:
            soft = tau1 * F.softplus(u)
        return lam + (tau2 / (2 * alpha)) * lam**2 + (1.0 / alpha) * soft.clamp_min(0).mean().item()

    return _bounded_search(objective, v)


def smoothed_cvar(
    values: Tensor,
    present: Tensor,
    alpha: float = 0.5,
    tau1: float = 1e-3,
    tau2: float = 1e-4,
    *,
    overflow_guard: bool = False,
    solver: str = "exact",
    grid: int = 128,
    rounds: int = 4,
) -> Tensor:
    """Smoothed CVaR over the present entries of ``values`` (the outer level of PG-FDD's loss).

    ::

        H(lambda) = lambda + tau2 / (2 alpha) lambda^2
                    + 1 / (alpha |G|) * sum_{g in G} softplus_tau1(v_g - lambda),
        softplus_tau1(u) = tau1 log(1 + exp(u / tau1)),

    returned at its minimiser ``lambda*`` (a constant; gradient through ``v``).
    ``H`` is convex; ``solver="exact"`` finds the root of ``H'`` on the device
    by ``rounds`` refinements of a ``grid``-point bracket in
    ``[min v - 1000, max v]`` (the research code's search interval);
    ``solver="fminbound"`` runs the research code's bounded search.

    Parameters
    ----------
    overflow_guard : bool
        Reproduce the research code (spec 2.6): its search function returns the
        largest float when ``exp((v_g - lambda)/tau1)`` overflows float32, which
        confines ``lambda* >= max v - 88.72 tau1``. With ``solver="fminbound"``
        the guard sits in the searched function itself; with ``"exact"`` the
        minimiser is clamped to that bound.

    Examples
    --------
    >>> v = torch.tensor([0.2, 0.4, 0.6, 0.8])
    >>> round(smoothed_cvar(v, torch.ones(4, dtype=torch.bool)).item(), 4)  # ~ mean of worst half
    0.7
    """
    _check_solver(solver)
    if solver == "fminbound":
        kept = values[present.bool()]
        lam = _searched_smoothed_minimiser(kept.detach(), alpha, tau1, tau2, overflow_guard)
        u = (kept - lam) / tau1
        # the research code's naive form, whose float32 gradient near the guard differs from
        # the sigmoid's in the fourth digit
        soft = (
            torch.relu(tau1 * torch.log(1 + torch.exp(u)))
            if overflow_guard
            else tau1 * F.softplus(u)
        )
        return lam + (tau2 / (2 * alpha)) * lam**2 + (1.0 / alpha) * soft.mean()
    v = values.detach()
    present = present.to(v.dtype)
    lam_star = _exact_smoothed_minimiser(v, present, alpha, tau1, tau2, grid, rounds)
    if overflow_guard:
        vmax = torch.where(present > 0, v, torch.full_like(v, float("-inf"))).max()
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
    solver: str = "exact",
) -> Tensor:
    """PG-FDD's fairness loss: smoothed CVaR over groups of the per-group CVaR (spec 2.6).

    ``L_g = CVaR_{alpha_inner}(losses of group g)`` for each group present in the
    batch, then ``smoothed_cvar(L, alpha_outer, tau1, tau2)``. ``solver`` picks
    how both levels find their minimiser: ``"fminbound"`` reproduces the
    research code's gradient (its weights are off the exact ones, module
    docstring), ``"exact"`` computes the loss as defined.

    Examples
    --------
    >>> losses = torch.tensor([0.3, 0.9, 0.5, 0.7, 0.2, 0.4])
    >>> groups = torch.tensor([0, 0, 0, 1, 1, 1])
    >>> round(bilevel_cvar_loss(losses, groups, 2).item(), 3)  # ~ the worse group's CVaR
    0.596
    >>> round(bilevel_cvar_loss(losses, groups, 2, solver="fminbound").item(), 3)
    0.596
    """
    values, present = grouped_cvar(losses, groups, num_groups, alpha_inner, solver=solver)
    return smoothed_cvar(
        values, present, alpha_outer, tau1, tau2, overflow_guard=overflow_guard, solver=solver
    )


def dag_fdd_loss(losses: Tensor, alpha: float = 0.5, *, solver: str = "exact") -> Tensor:
    """DAG-FDD (demographic-agnostic): ``CVaR_alpha`` over every sample of the batch (spec 10).

    ``solver="fminbound"`` reproduces the research code's bounded search.

    Examples
    --------
    >>> dag_fdd_loss(torch.tensor([0.1, 0.9, 0.5, 0.7]))
    tensor(0.8000)
    """
    return cvar(losses, alpha, solver=solver)


def daw_fdd_loss(
    losses: Tensor,
    groups: Tensor,
    num_groups: int,
    *,
    alpha_inner: float = 0.9,
    alpha_outer: float = 0.5,
    solver: str = "exact",
) -> Tensor:
    """DAW-FDD (demographic-aware): plain CVaR over groups of the per-group CVaR (spec 10).

    ``CVaR_{alpha_outer}`` of the present groups' ``CVaR_{alpha_inner}``; ``solver="fminbound"``
    reproduces the research code's bounded searches at both levels.

    Examples
    --------
    >>> losses = torch.tensor([0.3, 0.9, 0.5, 0.7, 0.2, 0.4])
    >>> daw_fdd_loss(losses, torch.tensor([0, 0, 0, 1, 1, 1]), 4)
    tensor(0.5963)
    """
    values, present = grouped_cvar(losses, groups, num_groups, alpha_inner, solver=solver)
    if solver == "fminbound":
        return cvar(values[present], alpha_outer, solver=solver)
    ids = (~present).long()  # the present values form group 0: no host synchronisation
    return grouped_cvar(values, ids, 2, alpha_outer)[0][0]
