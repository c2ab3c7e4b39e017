"""Comparing two detectors on the same rows: a paired bootstrap of B - A.

Both detectors' scores are binned on one shared grid (quantiles of their pooled probabilities,
plus the threshold and the calibration edges; the distinct values when there are few), and
every replicate draws one set of row (or cluster) multiplicities that is applied to both. The
difference B - A of every gap, of every overall metric and of every per-group metric gets a
percentile interval from these paired replicates, and a two-sided p-value for H0 "B - A = 0"
by inverting that interval: p = min(1, 2 min(#{d* <= 0} + 1, #{d* >= 0} + 1) / (B + 1)), so
that p < 1 - ci exactly when the interval excludes 0. (A sign-flip permutation test would test
"A and B are exchangeable", which any difference in accuracy or calibration rejects, not
"the gap did not change".) Point estimates are exact (the same code as ``audit``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._audit import (
    OVERALL,
    Audit,
    Exportable,
    _audit_prepared,
    _check_metrics,
    _class_names,
    _check_uncertainty_options,
    _jsonable,
    _num,
    prepare,
)
from ._bootstrap import interval, rng_for, run_chunks, table_metrics
from ._errors import bad, opt
from ._gaps import family_gaps, gap_metric, gap_names
from ._inference import (
    adjust_p,
    bootstrap_maxt,
    family_gap_specs,
    gap_change,
    inversion_p_value,
    quantile,
    upper_tail,
    usable_replicates,
)
from ._options import DEFAULTS, check_options, resolve_bootstrap
from ._metrics import ECE_BINS
from ._validation import as_groups, as_scores, table_arguments

__all__ = ["compare", "Comparison"]

BOOT = 10


@dataclass(frozen=True)
class Comparison(Exportable):
    """Paired comparison of detectors A and B on the same rows.

    Attributes
    ----------
    config : dict
        How every number was made.
    a, b : Audit
        Point-estimate audits of each detector.
    differences : DataFrame
        One row per compared quantity: ``kind`` (gap, overall, group), ``family``, ``group``,
        ``name`` (gap or metric name), ``a``, ``b``, ``diff`` (= b - a), ``lo``, ``hi``,
        ``p_value``.
    """

    config: dict
    a: Audit
    b: Audit
    differences: pd.DataFrame
    warnings: tuple = ()
    extras: dict = field(default_factory=dict, repr=False)

    def gap_differences(self, family=None) -> pd.DataFrame:
        d = self.differences[self.differences["kind"] == "gap"]
        return d if family is None else d[d["family"] == family]

    def to_dict(self) -> dict:
        rows = []
        for r in self.differences.itertuples(index=False):
            rows.append(
                {
                    "kind": r.kind,
                    "family": r.family,
                    "group": r.group,
                    "name": r.name,
                    "a": _num(r.a),
                    "b": _num(r.b),
                    "diff": _num(r.diff),
                    "lo": _num(r.lo),
                    "hi": _num(r.hi),
                    "p_value": _num(r.p_value),
                    "p_adjusted": _num(r.p_adjusted),
                    "n_unusable": int(r.n_unusable),
                }
            )
        return {
            "version": 1,
            "kind": "comparison",
            "config": _jsonable(self.config),
            "differences": rows,
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "warnings": list(self.warnings),
        }

    def groups_table(self) -> pd.DataFrame:
        """groups.csv: both detectors' groups with paired-bootstrap intervals (``detector``)."""
        a = self.a.groups_table().assign(detector=self.config["names"][0])
        b = self.b.groups_table().assign(detector=self.config["names"][1])
        return pd.concat([a, b], ignore_index=True)

    def gaps_table(self) -> pd.DataFrame:
        """gaps.csv: every difference B - A with its interval and p-values."""
        return self.differences.copy()

    def __repr__(self):
        return (
            f"<Comparison {self.config['names'][1]} - {self.config['names'][0]}, "
            f"n={self.config['n_rows']}, n_boot={self.config['n_boot']}>"
        )


def _shared_edges(prob_a, prob_b, threshold, max_bins):
    pooled = np.concatenate([prob_a, prob_b])
    uniq = np.unique(pooled)
    if uniq.size <= max_bins:
        return uniq, True
    q = np.quantile(pooled, np.linspace(0, 1, max_bins + 1)[:-1], method="inverted_cdf")
    return np.unique(np.r_[q, threshold, np.linspace(0, 1, ECE_BINS + 1)[1:-1]]), False


def compare(
    data=None,
    score_a=None,
    score_b=None,
    groups=None,
    *,
    y_true=None,
    scores=DEFAULTS["scores"],
    threshold=DEFAULTS["threshold"],
    pos_label=None,
    sample_weight=None,
    n_boot=DEFAULTS["n_boot"],
    ci=DEFAULTS["ci"],
    seed=DEFAULTS["seed"],
    bootstrap=DEFAULTS["bootstrap"],
    clusters=None,
    ci_method=DEFAULTS["ci_method"],
    n_perm=DEFAULTS["n_perm"],
    drop_nan=DEFAULTS["drop_nan"],
    missing_groups=DEFAULTS["missing_groups"],
    allow_perfect_scores=DEFAULTS["allow_perfect_scores"],
    min_count=DEFAULTS["min_count"],
    max_bins=DEFAULTS["max_bins"],
    metrics=None,
    chunk_size=32,
    progress=False,
    reference=None,
    dataset=None,
    provenance=None,
    names=("A", "B"),
    gap_ci="max-t",
    p_adjust="maxt",
    class_names=None,
) -> Comparison:
    """Paired comparison of two detectors' fairness and accuracy (B - A).

    Parameters and defaults are those of :func:`fairaudit.audit`, with the scores of
    detector A and of detector B (each may use its own score form; ``scores`` applies to
    both): ``compare(y_true, score_a, score_b, groups)`` with arrays, or
    ``compare(df, y_true="label", score_a="p_a", score_b="p_b", groups=["race"])``. Rows with
    a NaN/inf score in either detector are dropped from both when ``drop_nan``, rows without
    an attribute value from both when ``missing_groups="drop"``.

    Returns
    -------
    Comparison

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 200)
    >>> a, b = rng.random(200) * 0.5 + 0.5 * y, rng.random(200)
    >>> cmp = compare(y, a, b, {"race": rng.choice(["x", "y"], 200)}, n_boot=20)
    >>> cmp.config["bootstrap"], cmp.config["n_boot"]
    ('iid', 20)
    """
    given = table_arguments(
        data,
        y_true=y_true,
        score_a=score_a,
        score_b=score_b,
        groups=groups,
        clusters=clusters,
        sample_weight=sample_weight,
    )
    opts = check_options(
        scores=scores,
        threshold=threshold,
        n_boot=n_boot,
        ci=ci,
        seed=seed,
        bootstrap=bootstrap,
        ci_method=ci_method,
        n_perm=n_perm,
        drop_nan=drop_nan,
        missing_groups=missing_groups,
        allow_perfect_scores=allow_perfect_scores,
        min_count=min_count,
        max_bins=max_bins,
        chunk_size=chunk_size,
    )
    metrics = _check_metrics(metrics)
    n_boot, ci, seed, max_bins, threshold = (
        opts[k] for k in ("n_boot", "ci", "seed", "max_bins", "threshold")
    )
    bootstrap, bootstrap_reason = resolve_bootstrap(
        opts["bootstrap"], given["clusters"] is not None
    )
    ra, rule_a = as_scores(given["score_a"], opts["scores"], threshold, argument="score_a")
    rb, rule_b = as_scores(given["score_b"], opts["scores"], threshold, argument="score_b")
    if ra.shape[0] != rb.shape[0]:
        raise bad("score_b", f"{ra.shape[0]} rows like score_a", f"{rb.shape[0]} rows")
    attrs = as_groups(given["groups"], ra.shape[0], missing=opts["missing_groups"])
    keep = np.isfinite(ra) & np.isfinite(rb)
    if not keep.all() and not opts["drop_nan"]:
        first = np.flatnonzero(~keep)[:5].tolist()
        raise bad(
            "score_a" if not np.isfinite(ra).all() else "score_b",
            f"finite values in both detectors (or {opt('drop_nan', True)})",
            f"{int((~keep).sum())} rows with NaN/inf, first {first}",
        )
    n_dropped_nan = int((~keep).sum())
    n_dropped_missing = int((attrs.isna().any(axis=1).to_numpy() & keep).sum())
    keep &= ~attrs.isna().any(axis=1).to_numpy()

    def take(x):
        if x is None:
            return None
        if isinstance(x, (pd.DataFrame, pd.Series)):
            return x.reset_index(drop=True)[keep].reset_index(drop=True)
        return np.asarray(x)[keep]

    sa, sb, y, g, w, cl = (
        take(given["score_a"]),
        take(given["score_b"]),
        take(given["y_true"]),
        take(attrs),
        take(given["sample_weight"]),
        take(given["clusters"]),
    )
    common = dict(
        scores=opts["scores"],
        threshold=threshold,
        pos_label=pos_label,
        sample_weight=w,
        clusters=cl,
        allow_perfect_scores=opts["allow_perfect_scores"],
    )
    prep_a = prepare(y, sa, g, score_argument="score_a", **common)
    prep_b = prepare(y, sb, g, score_argument="score_b", **common)
    _check_uncertainty_options(
        dict(
            n_boot=n_boot,
            ci=ci,
            bootstrap=bootstrap,
            ci_method=opts["ci_method"],
            n_perm=opts["n_perm"],
            max_bins=max_bins,
        ),
        prep_a,
    )
    ci_method = opts["ci_method"]
    point_opts = dict(
        reference=reference,
        min_count=opts["min_count"],
        n_boot=0,
        ci=ci,
        seed=seed,
        bootstrap=bootstrap,
        ci_method=ci_method,
        n_perm=0,
        max_bins=max_bins,
        chunk_size=chunk_size,
        progress=False,
        metrics=metrics,
        gap_ci=gap_ci,
        p_adjust=p_adjust,
        class_names=_class_names(class_names, pos_label),
    )
    audit_a = _audit_prepared(prep_a, **point_opts)
    audit_b = _audit_prepared(prep_b, **point_opts)

    s = prep_a.structure
    gnames = gap_names(metrics)
    labels = (
        [("gap", f, "", name) for f in s.families for name in gnames]
        + [("overall", OVERALL, OVERALL, m) for m in metrics]
        + [
            ("group", s.group_family[i], s.group_name[i], m)
            for i in range(len(s.group_name))
            for m in metrics
        ]
    )
    pa, pb = _point_vector(audit_a, labels), _point_vector(audit_b, labels)
    diff = pb - pa

    nan = np.full(diff.shape, np.nan)
    lo, hi, pvals, n_bad = nan.copy(), nan.copy(), nan.copy(), np.zeros(diff.shape, dtype=int)
    extras = {}
    if n_boot > 0:
        engine = _PairedEngine(
            prep_a,
            rule_a,
            rule_b,
            ra[keep],
            rb[keep],
            y,
            w,
            cl,
            s,
            threshold,
            max_bins,
            metrics,
            seed,
        )
        extras["bins_exact"] = engine.exact
        chunks = run_chunks(
            n_boot,
            chunk_size,
            lambda rg: [engine.boot_metrics(b, bootstrap) for b in rg],
            progress,
            "paired bootstrap",
        )
        reps = {m: np.stack([r[m] for ch in chunks for r in ch]) for m in metrics}  # (B, 2, G+1)
        lo, hi, pvals, n_bad, rep_diff = _paired_limits(
            labels,
            s,
            metrics,
            _points(audit_a, s, metrics),
            _points(audit_b, s, metrics),
            reps,
            1.0 - ci,
            gap_ci,
        )
        audit_a = _with_intervals(audit_a, s, metrics, reps, 0, ci)
        audit_b = _with_intervals(audit_b, s, metrics, reps, 1, ci)
    diffs = pd.DataFrame(labels, columns=["kind", "family", "group", "name"])
    diffs = diffs.assign(a=pa, b=pb, diff=diff, lo=lo, hi=hi, p_value=pvals)
    if p_adjust == "maxt" and n_boot > 0:
        diffs["p_adjusted"] = bootstrap_maxt(diff, rep_diff, raw=pvals)
    else:
        diffs["p_adjusted"] = adjust_p(pvals, "holm" if p_adjust == "maxt" else p_adjust)
    diffs["n_unusable"] = n_bad
    config = dict(audit_a.config)
    config.update(
        {
            "names": list(names),
            "score_rule_a": rule_a.name,
            "score_rule_b": rule_b.name,
            "score_rule_text": f"A: {rule_a.description}; B: {rule_b.description}",
            "n_boot": int(n_boot),
            "n_perm": 0,
            "ci_method": "percentile" if n_boot else None,
            "gap_ci": gap_ci if n_boot else None,
            "p_adjust": p_adjust,
            "bootstrap": bootstrap if n_boot else None,
            "paired": "same resampled rows (or clusters) for both detectors; two-sided p-values "
            "for B - A = 0 by inverting the paired interval (p < 1 - ci exactly when the "
            "interval excludes 0)",
            "dataset": dataset,
            "provenance": provenance or {},
            "bootstrap_reason": bootstrap_reason,
            "n_dropped": n_dropped_nan,
            "missing_groups": opts["missing_groups"],
            "n_dropped_missing_groups": n_dropped_missing,
        }
    )
    if ci_method == "bca" and n_boot:
        config["note"] = "paired differences use percentile intervals"
    dropped = [
        f"dropped {n} rows {why}"
        for n, why in (
            (n_dropped_nan, "with NaN/inf scores in either detector (drop_nan)"),
            (n_dropped_missing, "without an attribute value (missing_groups drop)"),
        )
        if n
    ]
    warnings_out = tuple(dict.fromkeys(audit_a.warnings + audit_b.warnings + tuple(dropped)))
    return Comparison(config, audit_a, audit_b, diffs, warnings_out, extras)


def _point_vector(res, labels):
    gaps = res.gaps.set_index(["family", "name"])["value"]
    long = res.groups_long.set_index(["family", "group", "metric"])["value"]
    vals = [
        gaps[(f, name)] if kind == "gap" else long[(f, grp, name)] for kind, f, grp, name in labels
    ]
    return np.array(vals, dtype=float)


def _points(res, s, metrics):
    """metric -> (G + 1,) point values in structure order (whole set last)."""
    long = res.groups_long.set_index(["family", "group", "metric"])["value"]
    keys = list(zip(s.group_family, s.group_name)) + [(OVERALL, OVERALL)]
    return {m: np.array([long[(f, g, m)] for f, g in keys], dtype=float) for m in metrics}


def _paired_limits(labels, s, metrics, pt_a, pt_b, reps, alpha, gap_ci):
    """Intervals, p-values and unusable replicate counts of every B - A difference."""
    n = len(labels)
    lo, hi, p = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    n_bad = np.zeros(n, dtype=int)
    row = {(k, f, g, name): i for i, (k, f, g, name) in enumerate(labels)}
    B = next(iter(reps.values())).shape[0]
    rep_diff = np.full((B, n), np.nan)  # replicate B - A of every row (multiplicity)
    ra = {m: reps[m][:, 0] for m in metrics}
    rb = {m: reps[m][:, 1] for m in metrics}
    for fam in s.families:
        idx = s.family_slice(fam)
        args = []
        for pt, r in ((pt_a, ra), (pt_b, rb)):
            args.append(
                (
                    {m: pt[m][idx] for m in metrics},
                    {m: pt[m][-1] for m in metrics},
                    {m: r[m][:, idx] for m in metrics},
                    {m: r[m][:, -1] for m in metrics},
                )
            )
        usable = [usable_replicates(*a, metrics) for a in args]
        rows = {m: usable[0][m] & usable[1][m] for m in metrics}
        reps_gaps = []
        for gv, ov, grep, orep in args:
            masked = {m: np.where(np.isnan(gv[m])[None, :], np.nan, grep[m]) for m in metrics}
            reps_gaps.append(family_gaps(masked, orep, metrics))
        for name in gap_names(metrics):
            i = row[("gap", fam, "", name)]
            ok = np.logical_and.reduce([rows[m] for m in gap_metric(name)])
            rep_diff[ok, i] = (reps_gaps[1][name] - reps_gaps[0][name])[ok]
            n_bad[i] = int((~ok).sum())
            if gap_ci != "max-t":
                lo[i], hi[i], p[i] = _ordered_limits(rep_diff[ok, i], alpha)
        if gap_ci == "max-t":
            specs = [family_gap_specs(*a, metrics, rows=rows) for a in args]
            for name, (gap_a, _) in specs[0].items():
                i = row[("gap", fam, "", name)]
                lo[i], hi[i], p[i] = gap_change(gap_a, specs[1][name][0], alpha)
    keys = list(zip(s.group_family, s.group_name)) + [(OVERALL, OVERALL)]
    for j, (f, g) in enumerate(keys):
        for m in metrics:
            i = row[("overall", f, g, m) if f == OVERALL else ("group", f, g, m)]
            d = rb[m][:, j] - ra[m][:, j]
            rep_diff[:, i] = d
            n_bad[i] = int(np.isnan(d).sum())
            lo[i], hi[i], p[i] = _ordered_limits(d[~np.isnan(d)], alpha)
    return lo, hi, p, n_bad, rep_diff


def _ordered_limits(d, alpha):
    """Order-statistic percentile interval and its exact inversion p-value."""
    if d.size < 2:
        return np.nan, np.nan, np.nan
    return quantile(d, alpha / 2), upper_tail(d, alpha / 2), inversion_p_value(0.0, d)


def _with_intervals(res, s, metrics, reps, k, ci):
    """Detector k's audit with percentile intervals from the paired replicates."""
    keys = list(zip(s.group_family, s.group_name)) + [(OVERALL, OVERALL)]
    long = res.groups_long.copy()
    pos = {(f, g, m): i for i, (f, g, m) in enumerate(zip(long.family, long.group, long.metric))}
    lo_col, hi_col = long["lo"].to_numpy(copy=True), long["hi"].to_numpy(copy=True)
    for m in metrics:
        lo, hi = interval(
            long["value"].to_numpy()[[pos[(f, g, m)] for f, g in keys]],
            reps[m][:, k],
            ci,
            "percentile",
        )
        for j, (f, g) in enumerate(keys):
            lo_col[pos[(f, g, m)]], hi_col[pos[(f, g, m)]] = lo[j], hi[j]
    long["lo"], long["hi"] = lo_col, hi_col
    return dataclasses.replace(res, groups_long=long)


class _PairedEngine:
    """Row (or cluster) multiplicities shared by both detectors, on one bin grid."""

    def __init__(
        self,
        prep,
        rule_a,
        rule_b,
        ra,
        rb,
        y,
        w,
        clusters,
        structure,
        threshold,
        max_bins,
        metrics,
        seed,
    ):
        pa, pb = rule_a.to_probability(ra), rule_b.to_probability(rb)
        edges, self.exact = _shared_edges(pa, pb, threshold, max_bins)
        K = edges.size
        bin_a = np.maximum(np.searchsorted(edges, pa, side="right") - 1, 0)
        bin_b = np.maximum(np.searchsorted(edges, pb, side="right") - 1, 0)
        self.thr_index = int(np.searchsorted(edges, threshold, side="left"))
        self.bin_value = edges.copy()
        counts = np.bincount(np.r_[bin_a, bin_b], minlength=K)
        sums = np.bincount(np.r_[bin_a, bin_b], weights=np.r_[pa, pb], minlength=K)
        self.bin_value = np.where(counts > 0, sums / np.maximum(counts, 1), edges)
        atom = structure.atom
        yi = np.asarray(prep.data.y[np.argsort(prep.data.order)], dtype=np.int64)
        self.cell_a = (atom * 2 + yi) * K + bin_a
        self.cell_b = (atom * 2 + yi) * K + bin_b
        self.w = np.ones(yi.size) if w is None else np.asarray(w, dtype=float)
        self.atom = atom
        self.rows = np.arange(yi.size)
        self.clusters = None if clusters is None else pd.factorize(np.asarray(clusters))[0]
        self.shape = (structure.n_atoms, 2, K)
        self.size = int(np.prod(self.shape))
        self.memb = np.vstack([structure.membership, np.ones((1, structure.n_atoms), bool)]).astype(
            float
        )
        self.metrics = metrics
        self.seed = seed

    def _tables(self, weight_a, weight_b, cell_a, cell_b):
        ta = np.bincount(cell_a, weights=weight_a, minlength=self.size).reshape(self.shape)
        tb = np.bincount(cell_b, weights=weight_b, minlength=self.size).reshape(self.shape)
        return np.stack([ta, tb])

    def boot_metrics(self, b, scheme):
        """Replicate b's metrics of both detectors: metric -> (2, G + 1) (A first).

        One draw of row (or cluster) multiplicities, applied to both detectors.
        """
        rng = rng_for(self.seed, BOOT, b)
        unit = self.clusters if scheme == "cluster" else self.rows
        n_units = int(unit.max()) + 1
        if scheme == "stratified":
            draws = np.zeros(n_units)
            for a in np.unique(self.atom):
                members = np.flatnonzero(self.atom == a)
                draws += np.bincount(
                    members[rng.integers(0, members.size, members.size)], minlength=n_units
                )
        else:
            draws = np.bincount(rng.integers(0, n_units, n_units), minlength=n_units)
        wr = draws[unit] * self.w
        tables = self._tables(wr, wr, self.cell_a, self.cell_b)
        return table_metrics(tables, self.memb, self.thr_index, self.bin_value, self.metrics)
