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

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._audit import (
    OVERALL,
    Audit,
    Exportable,
    _audit_prepared,
    _check_metrics,
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
from ._errors import bad
from ._gaps import family_gaps, gap_names
from ._validation import as_scores

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

    def groups_flat(self) -> pd.DataFrame:
        a = self.a.groups_flat().assign(detector=self.config["names"][0])
        b = self.b.groups_flat().assign(detector=self.config["names"][1])
        return pd.concat([a, b], ignore_index=True)

    def gaps_flat(self) -> pd.DataFrame:
        return self.differences.copy()

    def __repr__(self):
        return (
            f"<Comparison {self.config['names'][1]} - {self.config['names'][0]}, "
            f"n={self.config['n_rows']}, n_boot={self.config['n_boot']}>"
        )


def compare(
    y_true,
    score_a,
    score_b,
    groups,
    *,
    scores="auto",
    threshold=0.5,
    pos_label=None,
    sample_weight=None,
    n_boot=1000,
    ci=0.95,
    seed=0,
    bootstrap="iid",
    clusters=None,
    ci_method="percentile",
    n_perm=None,
    drop_nan=False,
    min_count=30,
    max_bins=1024,
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
) -> Comparison:
    """Paired comparison of two detectors' fairness and accuracy (B - A).

    Parameters are those of :func:`fairaudit.audit`, with the scores of detector A and of
    detector B (each may use its own score form; ``scores`` applies to both). Rows with a
    NaN/inf score in either detector are dropped from both when ``drop_nan``.

    Returns
    -------
    Comparison
    """
    metrics = _check_metrics(metrics)
    check_engine_options(memory_budget, max_order, skip_small_groups)
    ra, rule_a = as_scores(score_a, scores, threshold, argument="scores A")
    rb, rule_b = as_scores(score_b, scores, threshold, argument="scores B")
    if ra.shape[0] != rb.shape[0]:
        raise bad("scores B", f"{ra.shape[0]} rows like scores A", f"{rb.shape[0]} rows")
    keep = np.isfinite(ra) & np.isfinite(rb)
    if not keep.all() and not drop_nan:
        first = np.flatnonzero(~keep)[:5].tolist()
        raise bad(
            "scores",
            "finite values in both detectors (or --drop-nan)",
            f"{int((~keep).sum())} rows with NaN/inf, first {first}",
        )

    def take(x):
        if x is None:
            return None
        if isinstance(x, (pd.DataFrame, pd.Series)):
            return x.reset_index(drop=True)[keep].reset_index(drop=True)
        if isinstance(x, dict):
            return {k: np.asarray(v)[keep] for k, v in x.items()}
        return np.asarray(x)[keep]

    sa, sb, y, g, w, cl = (
        take(score_a),
        take(score_b),
        take(y_true),
        take(groups),
        take(sample_weight),
        take(clusters),
    )
    common = dict(
        scores=scores,
        threshold=threshold,
        pos_label=pos_label,
        sample_weight=w,
        clusters=cl,
        max_order=max_order,
    )
    prep_a = prepare(y, sa, g, score_argument="scores A", **common)
    prep_b = prepare(y, sb, g, score_argument="scores B", **common)
    _check_uncertainty_options(
        dict(
            n_boot=n_boot,
            ci=ci,
            bootstrap=bootstrap,
            ci_method=ci_method,
            n_perm=n_perm,
            max_bins=max_bins,
        ),
        prep_a,
    )
    point_opts = dict(
        reference=reference,
        min_count=min_count,
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
        memory_budget=memory_budget,
        skip_small_groups=skip_small_groups,
    )
    audit_a = _audit_prepared(prep_a, **point_opts)
    audit_b = _audit_prepared(prep_b, **point_opts)

    s = prep_a.structure
    fams = {f: s.family_slice(f) for f in s.families}
    gnames = gap_names(metrics)

    def summarise(met):
        """Per-group metrics -> flat vector: gaps of every family, overall and group metrics."""
        ov = {m: met[m][:, -1] for m in metrics}
        cols = []
        for f, idx in fams.items():
            gp = family_gaps({m: met[m][:, idx] for m in metrics}, ov, metrics)
            cols += [gp[name] for name in gnames]
        cols += [met[m][:, -1] for m in metrics]
        cols += [met[m][:, i] for i in range(len(s.group_name)) for m in metrics]
        return np.stack(cols, axis=1)

    labels = (
        [("gap", f, "", name) for f in fams for name in gnames]
        + [("overall", OVERALL, OVERALL, m) for m in metrics]
        + [
            ("group", s.group_family[i], s.group_name[i], m)
            for i in range(len(s.group_name))
            for m in metrics
        ]
    )

    # Point values straight from the exact audits.
    def point_vector(res):
        vals = []
        gaps = res.gaps.set_index(["family", "name"])["value"]
        long = res.groups_long.set_index(["family", "group", "metric"])["value"]
        for kind, f, grp, name in labels:
            vals.append(gaps[(f, name)] if kind == "gap" else long[(f, grp, name)])
        return np.array(vals, dtype=float)

    pa, pb = point_vector(audit_a), point_vector(audit_b)
    diff = pb - pa

    lo = hi = pvals = np.full(diff.shape, np.nan)
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
        reps = engine.differences(n_boot, bootstrap, summarise, len(labels))
        lo, hi = interval(diff, reps, ci, "percentile")
        pvals = _bootstrap_p(diff, reps)
    diffs = pd.DataFrame(labels, columns=["kind", "family", "group", "name"])
    diffs = diffs.assign(a=pa, b=pb, diff=diff, lo=lo, hi=hi, p_value=pvals)
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
            "bootstrap": bootstrap if n_boot else None,
            "paired": "same resampled rows (or clusters) for both detectors; two-sided p-values "
            "for B - A = 0 by inverting the paired percentile interval",
            "dataset": dataset,
            "provenance": provenance or {},
        }
    )
    if ci_method == "bca" and n_boot:
        config["note"] = "paired differences use percentile intervals"
    warnings_out = tuple(dict.fromkeys(audit_a.warnings + audit_b.warnings))
    return Comparison(config, audit_a, audit_b, diffs, warnings_out, extras)


def _bootstrap_p(observed, reps):
    """Two-sided p-value of H0 "difference = 0" from the paired replicates (test inversion)."""
    out = np.full(observed.shape, np.nan)
    for j in range(observed.size):
        col = reps[:, j]
        col = col[~np.isnan(col)]
        if np.isnan(observed[j]) or col.size < 2:
            continue
        below = (np.sum(col <= 0) + 1) / (col.size + 1)
        above = (np.sum(col >= 0) + 1) / (col.size + 1)
        out[j] = min(1.0, 2 * min(below, above))
    return out


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
        n = preps[0].data.score.size
        self.row_cell = []
        for r in self.res:
            position = np.empty(n, np.intp)
            position[r.prep.data.order] = np.arange(n)  # sorted position of each input row
            self.row_cell.append(r._row_cell()[position])
            w = r.prep.data.w[position]
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

    def differences(self, n_boot, scheme, summarise, width):
        """(n_boot, width) paired replicates of summarise(B) - summarise(A)."""
        out = np.empty((n_boot, width))
        if scheme == "stratified":
            _units_by_atom(self.units)
        for r in self.res:
            r.binning_offsets()
        per_rep = sum(r._cell_bytes() for r in self.res) + 3 * 8 * width
        reserved = out.nbytes + 3 * 8 * self.w.size * _n_threads()
        B = replicates_per_chunk(
            working_bytes(self.budget, reserved), per_rep, n_boot, self.chunk_size
        )

        def work(rg):
            counts = [np.empty((r.cells.n_cells, 2, len(rg)), r.count_dtype) for r in self.res]
            for i, b in enumerate(rg):
                for side, c in zip(counts, self._counts(b, scheme)):
                    side[:, :, i] = c.T
            va, vb = (summarise(r._shift(r._metrics_by_cell(c))) for r, c in zip(self.res, counts))
            out[rg.start : rg.stop] = vb - va

        run_chunks(n_boot, B, work, self.progress, "paired bootstrap")
        return out
