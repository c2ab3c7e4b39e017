"""Comparing two detectors on the same rows: a paired bootstrap of B - A.

Each detector's scores are binned as in its own audit's bootstrap (ranking scores, so logits
are ranked as logits; the threshold on the ranking scale; every group on its own bins), and
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
    resampled_groups,
)
from ._bootstrap import (
    MB,
    Resampler,
    _n_threads,
    _unit_draws,
    _units_by_atom,
    check_engine_options,
    interval,
    replicates_per_chunk,
    rng_for,
    run_chunks,
    working_bytes,
)
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

    Examples
    --------
    >>> from fairaudit._example import _demo
    >>> cmp = _demo("compare")
    >>> row = cmp.gap_differences("race").set_index("name").loc["fpr_range"]
    >>> bool(row["lo"] <= row["diff"] <= row["hi"]), cmp.config["names"]
    (True, ['A', 'B'])
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
    max_order=None,
    memory_budget=1024,
    skip_small_groups=False,
    metrics=None,
    chunk_size=None,
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
    check_engine_options(memory_budget, max_order, skip_small_groups)
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
        max_order=max_order,
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
        memory_budget=memory_budget,
        skip_small_groups=skip_small_groups,
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
        c = audit_a.counts.iloc[:-1]
        resampled = resampled_groups(c["n_pos"], c["n_neg"], min_count, skip_small_groups)
        engine = _PairedEngine(
            (prep_a, prep_b),
            cl,
            seed=seed,
            memory_budget=memory_budget,
            chunk_size=chunk_size,
            progress=progress,
            max_bins=max_bins,
            metrics=metrics,
            resampled=resampled,
        )
        extras["bins_exact"] = engine.exact
        reps = engine.metrics(n_boot, bootstrap)  # metric -> (B, 2, G + 1)
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
    """Row (or cluster) multiplicities shared by both detectors, each on its own cells.

    Each detector's rows are binned exactly as in its audit's bootstrap (ranking scores:
    logits are ranked as logits, the threshold lies on the ranking scale, calibration uses
    probabilities; every group on its own bins). A replicate draws one set of multiplicities
    and re-weights both detectors' cells with it.
    """

    def __init__(self, preps, clusters, *, seed, memory_budget, chunk_size, progress, **kw):
        self.res = [Resampler(p, seed=seed, **kw) for p in preps]
        self.budget = memory_budget * MB
        n = preps[0].data.row_entry.size
        self.row_cell = []
        for r in self.res:
            entry = r.prep.data.row_entry  # entry of each input row
            self.row_cell.append(r._entry_cell()[entry])
            w = r.prep.data.w[entry]
        self.w = w
        self.units = {"n": n, "atom": preps[0].structure.atom, "unit": None}
        self.clusters = None
        if clusters is not None:
            codes = pd.factorize(np.asarray(clusters))[0]
            self.clusters = {"n": int(codes.max()) + 1, "unit": codes}
        self.seed = seed
        self.chunk_size = chunk_size
        self.progress = progress

    @property
    def exact(self):
        return all(r.bins_exact for r in self.res)

    def _counts(self, b, scheme):
        """Cell counts of replicate ``b`` for A and for B (same multiplicities)."""
        rng = rng_for(self.seed, BOOT, b)
        u = self.clusters if scheme == "cluster" else self.units
        draws = _unit_draws(rng, u, scheme)
        mult = self.w * (draws if u["unit"] is None else draws[u["unit"]])
        return [
            np.bincount(cell, weights=mult, minlength=2 * r.cells.n_cells).reshape(2, -1)
            for cell, r in zip(self.row_cell, self.res)
        ]

    def metrics(self, n_boot, scheme):
        """Paired replicates of both detectors: metric -> (n_boot, 2, n_groups + 1), A first."""
        res = self.res
        width = res[0].n_columns
        out = {m: np.empty((n_boot, 2, width)) for m in res[0].metrics}
        if scheme == "stratified":
            _units_by_atom(self.units)
        for r in res:
            r.binning_offsets()
        per_rep = sum(r._cell_bytes() for r in res) + 3 * 8 * 2 * width * len(out)
        reserved = sum(v.nbytes for v in out.values()) + 3 * 8 * self.w.size * _n_threads()
        B = replicates_per_chunk(
            working_bytes(self.budget, reserved), per_rep, n_boot, self.chunk_size
        )

        def work(rg):
            counts = [np.empty((r.cells.n_cells, 2, len(rg)), r.count_dtype) for r in res]
            for i, b in enumerate(rg):
                for side, c in zip(counts, self._counts(b, scheme)):
                    side[:, :, i] = c.T
            for k, (r, c) in enumerate(zip(res, counts)):
                values = r._shift(r._metrics_by_cell(c))
                for m, v in values.items():
                    out[m][rg.start : rg.stop, k] = v

        run_chunks(n_boot, B, work, self.progress, "paired bootstrap")
        return out
