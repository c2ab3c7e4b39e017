"""Inference above the gaps: gap intervals that hold at equality, p-value adjustment, verdicts.

Why not the percentile bootstrap of a gap
-----------------------------------------
A gap is a maximum (or minimum) over groups: ``fpr_range`` = max over ordered pairs (g, h) of
``fpr_g - fpr_h``; ``fpr_ratio`` = min over pairs of ``fpr_g / fpr_h``; ``fpr_max_to_overall`` =
max over groups and signs of ``s (fpr_g - fpr_all)``. Maxima are not smooth where candidates tie,
so the bootstrap distribution of a gap is biased upward near equality: with equal groups the
percentile interval of a range gap does not contain 0 at all.

The default method (``gap_ci="max-t"``)
---------------------------------------
Each candidate ``mu_j`` (a pair difference, a ratio, a signed distance to overall) is a smooth
function of the group metrics, so its bootstrap is valid. For a gap ``D = max_j mu_j``:

1. *Selection.* Only candidates that can still be the maximum are kept. A studentised
   simultaneous band for the group values (or the distances to overall) bounds every candidate
   in a box and drops those whose box lies below another's; a studentised simultaneous band
   over the remaining candidates themselves then keeps ``S = {j : hi_j >= max_i lo_i}``. Each
   band holds at level ``1 - SELECTION_ALPHA / 2``, so ``S`` contains the true maximiser with
   probability at least ``1 - SELECTION_ALPHA``. With far-apart groups one pair is left; with
   equal groups every pair stays.
2. *Simultaneous max-t limits over S.* With ``se_j`` the bootstrap scale of ``mu_j`` and
   ``t*_j = (mu*_j - mu_j_hat) / se_j``, ``c_up`` is the ``1 - alpha/2`` quantile of
   ``max_S t*_j`` and ``c_lo`` that of ``max_S (-t*_j)``; the interval is
   ``[max_S (mu_j_hat - c_lo se_j), max_S (mu_j_hat + c_up se_j)]``.

With one candidate left this is the percentile interval of that candidate; near equality it
becomes a simultaneous statement over all tied candidates, so the lower limit of a range is 0
whenever the groups are compatible with equality (and a ratio's upper limit is 1). The point
estimate always lies inside (critical values are clipped at 0). A minimum (ratios) is the
negated maximum of the negated candidates. ``sum_to_overall`` is the maximum over sign vectors
of ``sum_g s_g (m_g - m_all)``; signs are enumerated only for the groups whose distance to
overall is compatible with 0. ``equalized_odds`` takes the union of the TPR and FPR candidates,
``equalized_odds_mean`` their pairwise sums. When too many candidates remain (equality in very
large families; :data:`MAX_CANDIDATE_VALUES`), the interval is the projection of a
``1 - alpha`` simultaneous band onto the gap, which is valid and wider.

The README states the coverage measured by simulation.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from ._errors import bad

__all__ = [
    "GAP_CI_METHODS",
    "P_ADJUST_METHODS",
    "SELECTION_ALPHA",
    "MAX_CANDIDATE_VALUES",
    "quantile",
    "upper_tail",
    "bootstrap_scale",
    "simultaneous_band",
    "family_gap_intervals",
    "adjust_p",
    "stepdown_maxt",
    "bootstrap_maxt",
    "verdict",
    "inversion_p_value",
]

GAP_CI_METHODS = ("max-t", "percentile", "bca")
P_ADJUST_METHODS = ("maxt", "holm", "bh", "none")
#: Error level of the band that selects the candidates of a gap (fixed, so that intervals of
#: different levels are nested and p-values from inverting them are exact).
SELECTION_ALPHA = 0.02
#: Above this many candidate-replicate values a gap's interval is the band's projection (a
#: bound on time and memory: 1 M values, 8 MB per array; the audit of 1,200 groups stays
#: within its 1 GB default budget).
MAX_CANDIDATE_VALUES = 2**20
#: Above this many candidate-pair replicate values (computed in chunks of
#: :data:`MAX_CANDIDATE_VALUES`), the change of a gap between two detectors combines both
#: detectors' intervals instead (a bound on time: 16 M values take about a second).
MAX_CHANGE_VALUES = 2**24


def _quiet(fn):
    """Infinite and undefined replicate values are expected here (a ratio whose denominator
    drew 0); their arithmetic must not print numpy warnings."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return fn(*args, **kwargs)

    return wrapped


# ---------------------------------------------------------------------------- primitives
def quantile(x, level, axis=0):
    """Order-statistic quantile: the ``ceil(level * n)``-th smallest value (NaN ignored).

    No interpolation, so infinite values are allowed and the result is always a replicate.

    >>> quantile(np.array([3.0, 1.0, 2.0, np.nan]), 0.5)
    2.0
    """
    x = np.asarray(x, dtype=float)
    if not np.isnan(x).any():  # selection in O(n), no full sort
        if x.shape[axis] == 0:
            return _plain(np.full(np.delete(x.shape, axis), np.nan))
        return _plain(np.quantile(x, level, axis=axis, method="inverted_cdf"))
    x = np.sort(x, axis=axis)  # NaN sorts last
    n = np.sum(~np.isnan(x), axis=axis)
    k = np.clip(np.ceil(level * n).astype(int) - 1, 0, None)
    out = np.take_along_axis(x, np.expand_dims(np.minimum(k, x.shape[axis] - 1), axis), axis)
    out = np.squeeze(out, axis)
    return _plain(np.where(n > 0, out, np.nan))


def upper_tail(x, tail, axis=0):
    """The ``ceil(tail * n)``-th largest value: ``quantile`` mirrored, so that an interval
    ``[quantile(r, a/2), upper_tail(r, a/2)]`` treats both ends alike.

    >>> upper_tail(np.arange(1.0, 101.0), 0.025)
    98.0
    """
    out = quantile(-np.asarray(x, dtype=float), tail, axis=axis)
    return -out


def _plain(a):
    """A 0-d result as a Python float, arrays unchanged."""
    return float(a) if np.ndim(a) == 0 else a


def bootstrap_scale(reps):
    """Robust bootstrap standard error per column: half the central 68.3% range.

    Falls back to the standard deviation of the finite replicates when that range is 0 (discrete
    metrics), and is 0 only when every replicate is equal. Infinite replicates (a ratio whose
    denominator was 0) do not make it infinite unless they are more than 15% of them.

    >>> r = np.random.default_rng(0).normal(0.5, 0.1, size=(4000, 1))
    >>> bool(abs(bootstrap_scale(r)[0] - 0.1) < 0.01)
    True
    """
    reps = np.asarray(reps, dtype=float)
    B = reps.shape[0]
    if B and not np.isnan(reps).any():  # one selection pass for both order statistics
        k = [max(int(np.ceil(q * B)) - 1, 0) for q in (0.1587, 0.8413)]
        part = np.partition(np.ascontiguousarray(reps.T), k, axis=1)
        half = 0.5 * (part[:, k[1]] - part[:, k[0]])
    else:
        half = 0.5 * (quantile(reps, 0.8413) - quantile(reps, 0.1587))
    half = np.atleast_1d(half)
    fix = ~(np.isfinite(half) & (half > 0))
    if fix.any():
        sub = reps[:, fix]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            sd = np.nanstd(np.where(np.isfinite(sub), sub, np.nan), axis=0)
        half[fix] = np.where(np.isfinite(sd), sd, 0.0)
    return half


def _tstats(est, reps, se):
    """(reps - est) / se, 0 where se == 0 (a candidate that never moves)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (reps - est) / se
    t[:, se == 0] = 0.0
    return np.where(np.isnan(t), 0.0, t)


@_quiet
def simultaneous_band(est, reps, alpha):
    """Studentised max-|t| band: ``est +- c se`` holding for every column at once.

    Returns ``(lo, hi, se, c)``.

    >>> rng = np.random.default_rng(1)
    >>> lo, hi, se, c = simultaneous_band(np.zeros(3), rng.normal(size=(2000, 3)), 0.05)
    >>> bool(2.2 < c < 2.6)
    True
    """
    est = np.asarray(est, dtype=float)
    se = bootstrap_scale(reps)
    t = np.abs(_tstats(est, reps, se))
    c = float(max(upper_tail(t.max(axis=1), alpha), 0.0)) if est.size else 0.0
    return est - _times(c, se), est + _times(c, se), se, c


def _max_limits(est, reps, alpha):
    """Simultaneous max-t limits of ``max_j mu_j`` over the given candidates."""
    se = bootstrap_scale(reps)
    t = _tstats(est, reps, se)
    c_up = max(float(upper_tail(t.max(axis=1), alpha / 2)), 0.0)
    c_lo = max(float(upper_tail((-t).max(axis=1), alpha / 2)), 0.0)
    return np.max(est - _times(c_lo, se)), np.max(est + _times(c_up, se))


def _times(c, se):
    """c * se, where 0 * inf counts as 0: no widening from a critical value of 0, or for a
    candidate that never moves (an infinite critical value, from infinite replicates)."""
    with np.errstate(invalid="ignore"):
        prod = c * np.asarray(se, dtype=float)
    return np.where(np.isnan(prod), 0.0, prod)


# ---------------------------------------------------------------------------- candidates
class _Candidates:
    """Candidates mu_j of a max-type gap: point values, replicates (lazy) and selection boxes."""

    def __init__(self, est, box_lo, box_hi, reps_of, n_reps):
        self.n_reps = int(n_reps)
        self.est = np.asarray(est, dtype=float)
        self.box_lo = np.asarray(box_lo, dtype=float)
        self.box_hi = np.asarray(box_hi, dtype=float)
        self.reps_of = reps_of  # index array -> (B, len(index)) replicate values

    def select(self, beta=None):
        """Candidates that can still be the maximum, and their replicates.

        First the boxes (projections of the group band) drop candidates cheaply; then a
        studentised band over the remaining candidates themselves (level ``1 - beta``) keeps
        those whose upper limit reaches the highest lower limit. Returns ``(index, reps)``;
        ``reps`` is None when too many candidates remain (the caller falls back).
        """
        finite = np.isfinite(self.est)
        if not finite.any():
            return np.zeros(0, dtype=int), np.zeros((self.n_reps, 0))
        # an undefined box bound (an infinite band) bounds nothing
        box_lo = np.where(np.isnan(self.box_lo), -np.inf, self.box_lo)
        box_hi = np.where(np.isnan(self.box_hi), np.inf, self.box_hi)
        floor = np.max(np.where(finite, box_lo, -np.inf))
        P = np.flatnonzero(finite & (box_hi >= floor))
        if P.size > _max_candidates(self):
            return P, None
        reps = self.reps_of(P)
        beta = SELECTION_ALPHA / 2 if beta is None else beta
        lo, hi, _, _ = simultaneous_band(self.est[P], reps, beta)
        lo = np.where(np.isnan(lo), -np.inf, lo)
        keep = np.where(np.isnan(hi), True, hi >= np.max(lo))
        return P[keep], reps[:, keep]


def _pairs(K):
    g, h = np.nonzero(~np.eye(K, dtype=bool))
    return g, h


def _range_candidates(theta, reps, band):
    """Pairs ``theta_g - theta_h`` where g can still be the largest group and h the smallest
    (their band reaches the highest lower limit, resp. the lowest upper limit)."""
    lo = np.where(np.isnan(band[0]), -np.inf, band[0])
    hi = np.where(np.isnan(band[1]), np.inf, band[1])
    g, h = _pairs(theta.size)
    can = (hi[g] >= np.max(lo)) & (lo[h] <= np.min(hi))
    g, h = g[can], h[can]
    return _Candidates(
        theta[g] - theta[h],
        lo[g] - hi[h],
        hi[g] - lo[h],
        lambda i: reps[:, g[i]] - reps[:, h[i]],
        reps.shape[0],
    )


def _neg_ratio_candidates(theta, reps, band):
    """Candidates ``-theta_g / theta_h`` (a ratio gap is minus their maximum)."""
    lo, hi = np.maximum(band[0], 0.0), band[1]
    g, h = _pairs(theta.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        est = theta[g] / theta[h]
        r_lo = np.where(hi[h] > 0, lo[g] / hi[h], np.inf)
        r_hi = np.where(lo[h] > 0, hi[g] / lo[h], np.inf)

    def reps_of(i):
        with np.errstate(divide="ignore", invalid="ignore"):
            r = reps[:, g[i]] / reps[:, h[i]]
        return -np.where(np.isnan(r), np.inf, r)  # 0/0 never decides a minimum

    return _Candidates(-est, -r_hi, -r_lo, reps_of, reps.shape[0])


def _concat(parts):
    sizes = np.cumsum([0] + [p.est.size for p in parts])

    def reps_of(i):
        cols = []
        for k, p in enumerate(parts):
            sel = i[(i >= sizes[k]) & (i < sizes[k + 1])] - sizes[k]
            if sel.size:
                cols.append(p.reps_of(sel))
        return np.concatenate(cols, axis=1)

    return _Candidates(
        np.concatenate([p.est for p in parts]),
        np.concatenate([p.box_lo for p in parts]),
        np.concatenate([p.box_hi for p in parts]),
        reps_of,
        parts[0].n_reps,
    )


def _max_candidates(cands):
    return max(64, MAX_CANDIDATE_VALUES // max(cands.n_reps, 1))


def _band(theta, reps, alpha):
    lo, hi, _, _ = simultaneous_band(theta, reps, alpha)
    return lo, hi


# ---------------------------------------------------------------------------- gaps
class _Gap:
    """One gap from selected candidates ``est`` (with replicates ``reps``), or a conservative
    ``fallback(alpha) -> (lo, hi)`` in the gap's own units.

    ``kind`` says how the gap follows from the maximum ``M`` of the candidates:
    ``"max"``: the gap is ``M``; ``"min"``: ``-M`` (candidates stored negated);
    ``"ratio"``: ``exp(-M)`` (candidates are log-ratio differences: a ratio gap is
    ``exp(-range(log m))``). Limits are clipped to ``clip``.
    """

    def __init__(self, kind, est, reps, fallback, clip):
        self.kind, self.est, self.reps, self.fallback, self.clip = kind, est, reps, fallback, clip

    @classmethod
    def of(cls, cands, kind, fallback, clip):
        S, reps = cands.select()
        if reps is None:
            return cls(kind, None, None, fallback, clip)
        if S.size == 0:
            return None
        return cls(kind, cands.est[S], reps, fallback, clip)

    def _out(self, lo, hi):
        if self.kind == "min":
            lo, hi = -hi, -lo
        elif self.kind == "ratio":
            lo, hi = np.exp(-hi), np.exp(-lo)
        return float(np.clip(lo, *self.clip)), float(np.clip(hi, *self.clip))

    def limits(self, alpha):
        if self.est is None:
            lo, hi = self.fallback(alpha)
            return float(np.clip(lo, *self.clip)), float(np.clip(hi, *self.clip))
        lo, hi = _max_limits(self.est, self.reps, alpha)
        point = np.max(self.est)
        return self._out(min(lo, point), max(hi, point))

    def linear(self):
        """The same candidates as a max or a min on the gap's own scale (for changes)."""
        if self.kind != "ratio" or self.est is None:
            return self
        with np.errstate(over="ignore"):
            return _Gap("min", -np.exp(-self.est), -np.exp(-self.reps), self.fallback, self.clip)


RANGE_CLIP, RATIO_CLIP = (0.0, np.inf), (0.0, 1.0)


def _range_gap(theta, reps, band_sel):
    def fallback(alpha):
        lo, hi = _band(theta, reps, alpha)
        return max(np.max(lo) - np.min(hi), 0.0), np.max(hi) - np.min(lo)

    return _Gap.of(_range_candidates(theta, reps, band_sel), "max", fallback, RANGE_CLIP)


def _log(x):
    with np.errstate(divide="ignore"):
        return np.log(np.maximum(x, 0.0))


def _ratio_gap(theta, reps, band_sel, log_band_sel=None):
    """min / max over groups. When every group value is positive the candidates are selected
    as a range of log values (symmetric uncertainty) and their limits taken on the ratios
    themselves; else the ratios are used throughout (the ratio is then 0 at the point)."""
    if not np.max(theta) > 0:
        return None

    def fallback(alpha):
        lo, hi = _band(theta, reps, alpha)
        lo = np.maximum(lo, 0.0)
        up = 1.0 if np.max(lo) <= np.min(hi) else np.min(hi) / np.max(lo)
        low = np.min(lo) / np.max(hi) if np.max(hi) > 0 else 0.0
        return low, up

    if log_band_sel is not None:
        cands = _range_candidates(_log(theta), _log(reps), log_band_sel)
        # selected on the log scale (where a ratio's uncertainty is symmetric), limits on the
        # ratio's own scale (measured narrower, with the same coverage)
        gap = _Gap.of(cands, "ratio", fallback, RATIO_CLIP)
        return None if gap is None else gap.linear()
    return _Gap.of(_neg_ratio_candidates(theta, reps, band_sel), "min", fallback, RATIO_CLIP)


def _signed_candidates(d, reps_d, band):
    lo, hi = band
    K = d.size
    sign = np.r_[np.ones(K), -np.ones(K)]
    idx = np.r_[np.arange(K), np.arange(K)]
    b_lo = np.where(sign > 0, lo[idx], -hi[idx])
    b_hi = np.where(sign > 0, hi[idx], -lo[idx])
    return _Candidates(
        sign * d[idx], b_lo, b_hi, lambda i: sign[i] * reps_d[:, idx[i]], reps_d.shape[0]
    )


def _distance_projection(d, reps_d, alpha):
    """Per-group |distance to overall| limits from a simultaneous band: (lower, upper)."""
    lo, hi = _band(d, reps_d, alpha)
    near = np.where((lo <= 0) & (hi >= 0), 0.0, np.minimum(np.abs(lo), np.abs(hi)))
    return near, np.maximum(np.abs(lo), np.abs(hi))


def _max_to_overall_gap(d, reps_d, band_sel):
    def fallback(alpha):
        near, far = _distance_projection(d, reps_d, alpha)
        return np.max(near), np.max(far)

    return _Gap.of(_signed_candidates(d, reps_d, band_sel), "max", fallback, RANGE_CLIP)


def _sum_to_overall_gap(d, reps_d, band_sel, max_free=10):
    lo_b, hi_b = band_sel

    def fallback(alpha):
        near, far = _distance_projection(d, reps_d, alpha)
        return float(np.sum(near)), float(np.sum(far))

    free = np.flatnonzero((lo_b <= 0) & (hi_b >= 0))
    if free.size > max_free:
        return _Gap("max", None, None, fallback, RANGE_CLIP)
    fixed = np.sign(d)
    fixed[fixed == 0] = 1.0
    # every sign pattern of the free terms: 2 ** len(free) columns
    grid = 1.0 - 2.0 * ((np.arange(2**free.size)[None, :] >> np.arange(free.size)[:, None]) & 1)
    signs = np.repeat(fixed[:, None], grid.shape[1], axis=1)
    signs[free] = grid
    term_lo = np.where(signs > 0, lo_b[:, None], -hi_b[:, None])
    term_hi = np.where(signs > 0, hi_b[:, None], -lo_b[:, None])
    cands = _Candidates(
        d @ signs,
        term_lo.sum(axis=0),
        term_hi.sum(axis=0),
        lambda i: reps_d @ signs[:, i],
        reps_d.shape[0],
    )
    return _Gap.of(cands, "max", fallback, RANGE_CLIP)


def _equalized_odds_gaps(theta, reps, bands, log_bands):
    """equalized_odds (union of candidates), its mean (pairwise sums) and its ratio."""
    rng = [_range_candidates(t, r, b) for t, r, b in zip(theta, reps, bands)]

    def parts(alpha, make):
        return [make(t, r, b).limits(alpha / 2) for t, r, b in zip(theta, reps, bands)]

    def eo_fallback(alpha):
        (a0, a1), (b0, b1) = parts(alpha, _range_gap)
        return max(a0, b0), max(a1, b1)

    def mean_fallback(alpha):
        (a0, a1), (b0, b1) = parts(alpha, _range_gap)
        return 0.5 * (a0 + b0), 0.5 * (a1 + b1)

    out = {"equalized_odds": _Gap.of(_concat(rng), "max", eo_fallback, RANGE_CLIP)}
    (S0, r0), (S1, r1) = [c.select() for c in rng]
    if r0 is None or r1 is None or S0.size * S1.size > _max_candidates(rng[0]):
        out["equalized_odds_mean"] = _Gap("max", None, None, mean_fallback, RANGE_CLIP)
    elif S0.size and S1.size:
        est = 0.5 * (rng[0].est[S0][:, None] + rng[1].est[S1][None, :]).ravel()
        both = 0.5 * (r0[:, :, None] + r1[:, None, :]).reshape(r0.shape[0], -1)
        out["equalized_odds_mean"] = _Gap("max", est, both, mean_fallback, RANGE_CLIP)
    else:
        out["equalized_odds_mean"] = None
    if min(np.max(t) for t in theta) > 0:

        def ratio_fallback(alpha):
            (a0, a1), (b0, b1) = parts(alpha, _ratio_gap)
            return min(a0, b0), min(a1, b1)

        if log_bands is not None:
            ratios = [
                _range_candidates(_log(t), _log(r), b) for t, r, b in zip(theta, reps, log_bands)
            ]
            kind = "ratio"
        else:
            ratios = [_neg_ratio_candidates(t, r, b) for t, r, b in zip(theta, reps, bands)]
            kind = "min"
        gap = _Gap.of(_concat(ratios), kind, ratio_fallback, RATIO_CLIP)
        out["equalized_odds_ratio"] = None if gap is None else gap.linear()
    else:
        out["equalized_odds_ratio"] = None
    return out


# ---------------------------------------------------------------------------- per family
def usable_replicates(group_point, overall_point, group_reps, overall_reps, metrics):
    """Replicates where every group that a point estimate uses (defined there) is defined too,
    per metric: dict metric -> (B,) bool.

    A gap's replicate must use the same groups as its point estimate; replicates in which one
    of them is undefined (a small group drew no fakes) are left out and counted.
    """
    out = {}
    for m in metrics:
        used = ~np.isnan(np.asarray(group_point[m], dtype=float))
        ok = ~np.isnan(group_reps[m][:, used]).any(axis=1)
        if not np.isnan(overall_point[m]):
            ok &= ~np.isnan(overall_reps[m])
        out[m] = ok
    return out


@_quiet
def family_gap_specs(group_point, overall_point, group_reps, overall_reps, metrics, rows=None):
    """Every gap of one family as a :class:`_Gap` (None: undefined), with its usable rows.

    ``rows``: metric -> usable replicate mask (default: :func:`usable_replicates`).
    Returns dict gap name -> (gap or None, usable mask).
    """
    if rows is None:
        rows = usable_replicates(group_point, overall_point, group_reps, overall_reps, metrics)
    sel = SELECTION_ALPHA / 2  # the boxes' band; the candidates' own band takes the other half
    B = next(iter(group_reps.values())).shape[0]

    def prepared(ms):
        ok = np.logical_and.reduce([rows[m] for m in ms])
        pts = [np.asarray(group_point[m], dtype=float) for m in ms]
        keep = [~np.isnan(p) for p in pts]
        theta = [p[k] for p, k in zip(pts, keep)]
        reps = [group_reps[m][ok][:, k] for m, k in zip(ms, keep)]
        d = [t - overall_point[m] for t, m in zip(theta, ms)]
        reps_d = [r - overall_reps[m][ok][:, None] for r, m in zip(reps, ms)]
        cuts = np.cumsum([0] + [t.size for t in theta])
        enough = ok.sum() >= max(2, B // 2) and all(t.size >= 2 for t in theta)
        if not enough:
            return ok, None
        # one simultaneous selection band over every coordinate the gaps involve
        lo, hi, _, _ = simultaneous_band(np.concatenate(theta), np.concatenate(reps, 1), sel)
        bands = [(lo[a:b], hi[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
        dlo, dhi, _, _ = simultaneous_band(np.concatenate(d), np.concatenate(reps_d, 1), sel)
        dbands = [(dlo[a:b], dhi[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
        lbands = None  # ratios are ranges of log values when every group value is positive
        if all(np.min(t) > 0 for t in theta):
            llo, lhi, _, _ = simultaneous_band(
                _log(np.concatenate(theta)), _log(np.concatenate(reps, 1)), sel
            )
            lbands = [(llo[a:b], lhi[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
        return ok, (theta, reps, d, reps_d, bands, dbands, lbands)

    out = {}
    for m in metrics:
        ok, p = prepared([m])
        kinds = ("range", "ratio", "max_to_overall", "sum_to_overall")
        if p is None:
            out.update({f"{m}_{k}": (None, ok) for k in kinds})
            continue
        (t,), (r,), (d,), (rd,), (b,), (db,), lb = p
        out[f"{m}_range"] = (_range_gap(t, r, b), ok)
        out[f"{m}_ratio"] = (_ratio_gap(t, r, b, None if lb is None else lb[0]), ok)
        out[f"{m}_max_to_overall"] = (_max_to_overall_gap(d, rd, db), ok)
        out[f"{m}_sum_to_overall"] = (_sum_to_overall_gap(d, rd, db), ok)
    if "tpr" in metrics and "fpr" in metrics:
        ok, p = prepared(["tpr", "fpr"])
        names = ("equalized_odds", "equalized_odds_mean", "equalized_odds_ratio")
        if p is None:
            out.update({n: (None, ok) for n in names})
        else:
            theta, reps, _, _, bands, _, lbands = p
            eo = _equalized_odds_gaps(theta, reps, bands, lbands)
            out.update({n: (g, ok) for n, g in eo.items()})
    if "selection_rate" in metrics:
        out["demographic_parity"] = out["selection_rate_range"]
        out["demographic_parity_ratio"] = out["selection_rate_ratio"]
    return out


@_quiet
def family_gap_intervals(group_point, overall_point, group_reps, overall_reps, metrics, alpha):
    """Max-t intervals of every gap of one family.

    Parameters
    ----------
    group_point : dict
        metric -> (G,) point values of the family's groups (NaN: undefined, left out).
    overall_point : dict
        metric -> float, the whole set.
    group_reps, overall_reps : dict
        metric -> (B, G) and (B,) bootstrap replicates.
    metrics : sequence of str
    alpha : float
        1 - confidence level.

    Returns
    -------
    dict
        gap name -> (lo, hi, n_unusable): limits and the number of replicates left out because
        a group that the point estimate uses was undefined in them.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> reps = {"fpr": 0.2 + 0.02 * rng.normal(size=(1000, 3))}
    >>> out = family_gap_intervals({"fpr": np.full(3, 0.2)}, {"fpr": 0.2}, reps,
    ...                            {"fpr": reps["fpr"].mean(axis=1)}, ["fpr"], 0.05)
    >>> lo, hi, n_bad = out["fpr_range"]
    >>> float(lo), bool(0.05 < hi < 0.2), n_bad
    (0.0, True, 0)
    """
    specs = family_gap_specs(group_point, overall_point, group_reps, overall_reps, metrics)
    out = {}
    for name, (gap, ok) in specs.items():
        lo, hi = (np.nan, np.nan) if gap is None else gap.limits(alpha)
        out[name] = (lo, hi, int((~ok).sum()))
    return out


@_quiet
def gap_change(gap_a, gap_b, alpha):
    """Interval and p-value of the change ``gap_b - gap_a`` from paired replicates.

    With ``mu_ij = mu^B_i - mu^A_j`` over the selected candidates of both detectors (paired
    replicates), ``D_B - D_A = max_i min_j mu_ij``; a studentised simultaneous statement over
    all ``(i, j)`` gives ``[max_i min_j (mu_ij - c_lo se_ij), max_i min_j (mu_ij + c_up se_ij)]``.
    Minima (ratios) are handled as minus the maxima of negated candidates. The p-value of
    "no change" inverts the interval exactly: ``p < 1 - ci`` when it excludes 0. Returns
    ``(lo, hi, p)``; when either gap had to fall back to a band projection, or the pairs
    times the replicates exceed :data:`MAX_CHANGE_VALUES`, the limits combine both detectors'
    ``alpha / 2`` intervals (Bonferroni) and ``p`` is NaN. The pairs' replicates are formed in
    chunks of :data:`MAX_CANDIDATE_VALUES` values (memory stays bounded, numbers do not change).
    """
    if gap_a is None or gap_b is None:
        return np.nan, np.nan, np.nan
    gap_a, gap_b = gap_a.linear(), gap_b.linear()
    if (
        gap_a.est is None
        or gap_b.est is None
        or gap_a.kind != gap_b.kind
        or gap_a.est.size * gap_b.est.size * gap_a.reps.shape[0] > MAX_CHANGE_VALUES
    ):
        la, ha = gap_a.limits(alpha / 2)
        lb, hb = gap_b.limits(alpha / 2)
        return lb - ha, hb - la, np.nan
    est = gap_b.est[:, None] - gap_a.est[None, :]  # (I, J)
    B = gap_a.reps.shape[0]
    # rows of B's candidates in chunks of at most MAX_CANDIDATE_VALUES replicate values:
    # memory stays bounded, the numbers are those of the whole array at once
    se = np.empty(est.shape)
    m_up, m_lo = np.full(B, -np.inf), np.full(B, -np.inf)
    step = max(1, MAX_CANDIDATE_VALUES // max(est.shape[1] * B, 1))
    for i0 in range(0, est.shape[0], step):
        rows = slice(i0, i0 + step)
        reps = (gap_b.reps[:, rows, None] - gap_a.reps[:, None, :]).reshape(B, -1)
        flat = est[rows].ravel()
        se_c = bootstrap_scale(reps)
        t = _tstats(flat, reps, se_c)
        m_up = np.maximum(m_up, t.max(axis=1))
        m_lo = np.maximum(m_lo, (-t).max(axis=1))
        se[rows] = se_c.reshape(-1, est.shape[1])

    def limit(c):  # max_i min_j (mu_ij + c se_ij); c < 0 lowers
        with np.errstate(invalid="ignore"):
            return float(np.max(np.min(est + _times(c, se), axis=1)))

    point = limit(0.0)
    c_up = max(float(upper_tail(m_up, alpha / 2)), 0.0)
    c_lo = max(float(upper_tail(m_lo, alpha / 2)), 0.0)
    lo, hi = min(limit(-c_lo), point), max(limit(c_up), point)
    p = _change_p_value(point, limit, m_lo, m_up)
    if gap_a.kind == "min":
        lo, hi = -hi, -lo
    return lo, hi, p


def _change_p_value(point, limit, m_lo, m_up):
    """Exact inversion: the smallest level at which the interval leaves out 0."""
    if point == 0 or np.isnan(point):
        return 1.0 if point == 0 else np.nan
    sign = 1.0 if point > 0 else -1.0
    m = m_lo if point > 0 else m_up
    # c* = where the limit on the side of 0 reaches 0 (the limit is monotone in c)
    lo_c, hi_c = 0.0, 1.0
    while sign * limit(-sign * hi_c) > 0 and hi_c < 1e6:
        hi_c *= 2
    if sign * limit(-sign * hi_c) > 0:
        return 1.0 / m.size
    for _ in range(60):
        mid = 0.5 * (lo_c + hi_c)
        if sign * limit(-sign * mid) > 0:
            lo_c = mid
        else:
            hi_c = mid
    k = int(np.sum(m >= hi_c))
    return float(min(1.0, max(2 * k, 1) / m.size))


# ---------------------------------------------------------------------------- p-values
def inversion_p_value(point, reps):
    """Two-sided p-value of H0 "value = 0" by inverting the order-statistic percentile interval.

    ``p = 2 min(#{r* <= 0}, #{r* >= 0}) / B`` (at least ``1 / B``, at most 1), so that
    ``p < a`` exactly when the interval ``[quantile(r*, a/2), upper_tail(r*, a/2)]`` excludes
    0, for any level ``a = 1 - ci`` above ``1 / B``.

    >>> inversion_p_value(0.3, np.linspace(0.01, 1, 100))
    0.01
    >>> inversion_p_value(0.0, np.linspace(-1, 1, 101))
    1.0
    """
    r = np.asarray(reps, dtype=float)
    r = r[~np.isnan(r)]
    if np.isnan(point) or r.size < 2:
        return np.nan
    k = min(np.sum(r <= 0), np.sum(r >= 0))
    return float(min(1.0, max(2 * k, 1) / r.size))


def adjust_p(p, method="holm"):
    """Holm (step-down FWER) or Benjamini-Hochberg (FDR) adjusted p-values; NaN kept out.

    >>> adjust_p([0.01, 0.04, 0.03], "holm").round(3).tolist()
    [0.03, 0.06, 0.06]
    >>> adjust_p([0.01, 0.04, 0.03], "bh").round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if method == "none" or ok.size == 0:
        out[ok] = p[ok]
        return out
    q = p[ok]
    m = q.size
    if method == "holm":
        order = np.argsort(q, kind="stable")
        adj = np.maximum.accumulate((m - np.arange(m)) * q[order])
    elif method == "bh":
        order = np.argsort(q, kind="stable")[::-1]
        adj = np.minimum.accumulate(m / (m - np.arange(m)) * q[order])
    else:
        raise bad("p_adjust", "one of " + ", ".join(P_ADJUST_METHODS), repr(method))
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def stepdown_maxt(observed, null):
    """Westfall-Young step-down max-T adjusted p-values (strong family-wise error control).

    ``observed`` (J,) statistics where larger is more extreme; ``null`` (R, J) their values
    under the null from the same resamples (permutations). Each statistic is standardised by
    its null mean and spread, so statistics on different scales compete fairly; the adjusted
    p-value of the k-th most extreme statistic is the share of resamples whose maximum over the
    statistics not yet rejected reaches it, counted as (1 + hits) / (1 + R), made monotone.
    Unlike Holm's bound it uses the dependence between the statistics (e.g. ``fpr_range``
    and ``fpr_ratio``), so its resolution is not divided by the number of tests.

    >>> rng = np.random.default_rng(0)
    >>> null = rng.normal(size=(999, 3))
    >>> stepdown_maxt(np.array([10.0, 0.0, -1.0]), null).round(3).tolist()
    [0.001, 0.769, 0.818]
    """
    obs = np.asarray(observed, dtype=float)
    null = np.asarray(null, dtype=float)
    out = np.full(obs.shape, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        finite = np.where(np.isfinite(null), null, np.nan)
        mu = np.nanmean(finite, axis=0)
        sd = np.nanstd(finite, axis=0)
    use = np.flatnonzero(np.isfinite(obs) & np.isfinite(mu) & (sd > 0))
    if use.size == 0:
        return out
    z_obs = (obs[use] - mu[use]) / sd[use]
    z_null = (null[:, use] - mu[use]) / sd[use]
    z_null = np.where(np.isnan(z_null), -np.inf, z_null)
    order = np.argsort(-z_obs, kind="stable")
    # successive maxima over the statistics from the k-th most extreme to the least extreme
    tail_max = np.maximum.accumulate(z_null[:, order[::-1]], axis=1)[:, ::-1]
    tol = 1e-12 * np.maximum(1.0, np.abs(z_obs[order]))
    hits = np.sum(tail_max >= (z_obs[order] - tol)[None, :], axis=0)
    adj = np.maximum.accumulate((1.0 + hits) / (1.0 + null.shape[0]))
    res = np.empty(use.size)
    res[order] = np.minimum(adj, 1.0)
    out[use] = res
    # statistics that never vary under the null cannot be significant
    out[np.isfinite(obs) & ~np.isin(np.arange(obs.size), use)] = 1.0
    return out


def bootstrap_maxt(point, reps, raw=None):
    """Romano-Wolf step-down max-|t| adjusted p-values of "value = 0" from joint bootstrap
    replicates: ``|point| / se`` against the replicates' ``|reps - point| / se`` (the bootstrap
    stands in for the null distribution of every row at once), each never below its row's own
    p-value ``raw`` (default: the inversion p-value, :func:`inversion_p_value`).

    >>> rng = np.random.default_rng(0)
    >>> reps = rng.normal(size=(999, 3)) * 0.1 + np.array([1.0, 0.05, 0.0])
    >>> bootstrap_maxt(np.array([1.0, 0.05, 0.0]), reps).round(3).tolist()
    [0.001, 0.855, 1.0]
    """
    point = np.asarray(point, dtype=float)
    reps = np.asarray(reps, dtype=float)
    out = np.full(point.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(point))
    if ok.size == 0:
        return out
    r = reps[:, ok]
    se = bootstrap_scale(np.where(np.isfinite(r), r, np.nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        obs = np.where(se > 0, np.abs(point[ok]) / se, np.where(point[ok] == 0, 0.0, np.inf))
        null = np.abs(r - point[ok]) / np.where(se > 0, se, np.inf)
    null = np.where(np.isnan(null), 0.0, null)
    adj = stepdown_maxt(np.where(np.isinf(obs), 1e300, obs), null)
    if raw is None:
        own = np.array([inversion_p_value(point[j], reps[:, j]) for j in ok])
    else:
        own = np.asarray(raw, dtype=float)[ok]
    out[ok] = np.fmax(adj, own)
    return out


# ---------------------------------------------------------------------------- verdicts
def verdict(lo, hi, tolerance, higher_is_worse=True):
    """``within`` (the whole interval inside the tolerance), ``exceeds`` (wholly beyond it) or
    ``inconclusive``; ``None`` without a tolerance or an interval.

    >>> verdict(0.01, 0.04, 0.05), verdict(0.06, 0.2, 0.05), verdict(0.01, 0.2, 0.05)
    ('within', 'exceeds', 'inconclusive')
    >>> verdict(0.85, 0.95, 0.8, higher_is_worse=False)
    'within'
    """
    if tolerance is None or lo is None or hi is None or np.isnan(lo) or np.isnan(hi):
        return None
    if higher_is_worse:
        return "within" if hi <= tolerance else "exceeds" if lo > tolerance else "inconclusive"
    return "within" if lo >= tolerance else "exceeds" if hi < tolerance else "inconclusive"
