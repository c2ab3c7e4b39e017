"""The audit: from validated inputs to one :class:`Audit` result."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import __version__
from ._errors import bad
from ._gaps import family_gaps, gap_metric, gap_names
from ._groups import build_groups
from ._metrics import METRIC_NAMES, SPECS
from ._stats import group_point_metrics, sort_rows
from ._validation import as_groups, as_labels, as_scores, as_weights, check_finite

__all__ = ["audit", "Audit", "prepare"]

SCHEMA_VERSION = 1
#: Binned replicates shifted by more than this (in replicate standard deviations) to match the
#: exact values of the data get a warning: what the shift leaves may then matter.
BINNING_WARN_SD = 1.0
OVERALL = "overall"


class Exportable:
    """JSON, HTML and notebook renderings shared by :class:`Audit` and ``Comparison``."""

    def to_json(self, path=None, *, indent: int = 2) -> str:
        """report.json as a string; written to ``path`` too when given."""
        return dump_json(self.to_dict(), path, indent)

    def to_html(self, path=None, *, figures=True) -> str:
        """The self-contained HTML report; written to ``path`` too when given."""
        from ._html import render_html

        text = render_html(self, figures=figures)
        if path is not None:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        return text

    def _repr_html_(self) -> str:
        from ._html import audit_repr_html

        return audit_repr_html(self)


@dataclass(frozen=True)
class Audit(Exportable):
    """The result of an audit: per-group metrics, gaps, intervals, tests and provenance.

    Attributes
    ----------
    config : dict
        How every number was made (threshold, score rule, bootstrap scheme, seed, ...).
    groups_long : DataFrame
        Tidy table, one row per (family, group, metric): ``value``, ``lo``, ``hi``.
        The whole set is family ``overall``, group ``overall``.
    counts : DataFrame
        One row per (family, group): ``n``, ``n_pos``, ``n_neg`` (rows, unweighted).
    gaps : DataFrame
        One row per (family, gap name): ``value``, ``lo``, ``hi``, ``p_value``, ``skipped``
        (groups left out because the metric is undefined for them).
    undefined : DataFrame
        Every undefined (NaN) per-group metric with its reason.
    warnings : tuple of str
        Small groups, dropped rows, undefined metrics, in words.
    reference : DataFrame or None
        Differences and ratios of each group to the reference group of its family.
    compat : dict or None
        The research code's quantities (``compat="pg-fdd"``).
    """

    config: dict
    groups_long: pd.DataFrame
    counts: pd.DataFrame
    gaps: pd.DataFrame
    undefined: pd.DataFrame
    warnings: tuple = ()
    reference: pd.DataFrame | None = None
    compat: dict | None = None
    group_warnings: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict, repr=False)

    # ----------------------------------------------------------------- tidy views
    @property
    def families(self) -> list:
        return [f for f in dict.fromkeys(self.counts["family"]) if f != OVERALL]

    @property
    def groups(self) -> pd.DataFrame:
        """Wide table: one row per (family, group), columns n, n_pos, n_neg and the metrics."""
        wide = self.groups_long.pivot(index=["family", "group"], columns="metric", values="value")
        wide = wide.reindex(columns=[m for m in METRIC_NAMES if m in wide.columns])
        counts = self.counts.set_index(["family", "group"])
        out = counts.join(wide)
        return out.reindex(counts.index)

    @property
    def overall(self) -> pd.Series:
        return self.groups.loc[(OVERALL, OVERALL)]

    def intervals(self, metric: str) -> pd.DataFrame:
        """Value, lo and hi of one metric for every group."""
        t = self.groups_long[self.groups_long["metric"] == metric]
        return t.set_index(["family", "group"])[["value", "lo", "hi"]]

    def gap(self, family: str, name: str) -> pd.Series:
        t = self.gaps[(self.gaps["family"] == family) & (self.gaps["name"] == name)]
        if t.empty:
            raise KeyError(f"no gap {name!r} in family {family!r}")
        return t.iloc[0]

    # ----------------------------------------------------------------- export
    def to_dict(self) -> dict:
        """The report.json document (see the README for the schema)."""
        long = self.groups_long
        groups = []
        for row in self.counts.itertuples(index=False):
            if row.family == OVERALL:
                continue
            sel = long[(long["family"] == row.family) & (long["group"] == row.group)]
            groups.append(
                {
                    "family": row.family,
                    "group": row.group,
                    "n": int(row.n),
                    "n_pos": int(row.n_pos),
                    "n_neg": int(row.n_neg),
                    "metrics": {
                        r.metric: {"value": _num(r.value), "lo": _num(r.lo), "hi": _num(r.hi)}
                        for r in sel.itertuples(index=False)
                    },
                    "undefined": {
                        r.metric: r.reason
                        for r in self.undefined[
                            (self.undefined["family"] == row.family)
                            & (self.undefined["group"] == row.group)
                        ].itertuples(index=False)
                    },
                    "warnings": list(self.group_warnings.get((row.family, row.group), [])),
                }
            )
        ov = self.counts[self.counts["family"] == OVERALL].iloc[0]
        ovm = long[long["family"] == OVERALL]
        overall = {"n": int(ov.n), "n_pos": int(ov.n_pos), "n_neg": int(ov.n_neg)}
        overall.update(
            {
                r.metric: {"value": _num(r.value), "lo": _num(r.lo), "hi": _num(r.hi)}
                for r in ovm.itertuples(index=False)
            }
        )
        gaps = [
            {
                "family": r.family,
                "name": r.name,
                "value": _num(r.value),
                "lo": _num(r.lo),
                "hi": _num(r.hi),
                "p_value": _num(r.p_value),
                "skipped": list(r.skipped),
            }
            for r in self.gaps.itertuples(index=False)
        ]
        doc = {
            "version": SCHEMA_VERSION,
            "config": _jsonable(self.config),
            "overall": overall,
            "groups": groups,
            "gaps": gaps,
            "warnings": list(self.warnings),
        }
        if self.reference is not None:
            doc["reference"] = [
                {
                    k: (_num(v) if isinstance(v, (float, np.floating)) else v)
                    for k, v in r._asdict().items()
                }
                for r in self.reference.itertuples(index=False)
            ]
        if self.compat is not None:
            doc["compat"] = _jsonable(self.compat)
        return doc

    def groups_flat(self) -> pd.DataFrame:
        """groups.csv: one row per group, ``<metric>``, ``<metric>_lo``, ``<metric>_hi``."""
        long = self.groups_long
        cols = {}
        for part, suffix in (("value", ""), ("lo", "_lo"), ("hi", "_hi")):
            w = long.pivot(index=["family", "group"], columns="metric", values=part)
            for m in METRIC_NAMES:
                if m in w.columns:
                    cols[m + suffix] = w[m]
        wide = pd.DataFrame(cols)
        order = [c for m in METRIC_NAMES for c in (m, m + "_lo", m + "_hi") if c in wide.columns]
        counts = self.counts.set_index(["family", "group"])
        return counts.join(wide[order]).reindex(counts.index).reset_index()

    def gaps_flat(self) -> pd.DataFrame:
        g = self.gaps.copy()
        g["skipped"] = [";".join(s) for s in g["skipped"]]
        return g

    def __repr__(self) -> str:
        c = self.config
        return (
            f"<Audit n={int(self.counts.iloc[-1]['n']) if len(self.counts) else 0} "
            f"families={self.families} score_rule={c.get('score_rule')} "
            f"threshold={c.get('threshold')} n_boot={c.get('n_boot')}>"
        )


def dump_json(doc: dict, path=None, indent: int = 2) -> str:
    """Strict JSON (NaN is never written: undefined numbers are null); optionally to a file."""
    text = json.dumps(doc, indent=indent, allow_nan=False)
    if path is not None:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return text


def _num(v):
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) or math.isinf(f) else f


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _num(obj)
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    return obj


# ---------------------------------------------------------------------------- the computation
@dataclass(frozen=True)
class Prepared:
    """Validated, sorted inputs and the group structure (shared by audit and compare)."""

    data: object  # SortedData
    structure: object  # GroupStructure
    rule: object  # ScoreRule
    n_dropped: int
    clusters: np.ndarray | None  # cluster code per sorted row
    weighted: bool
    attrs: pd.DataFrame  # attribute columns, input order (after dropped rows)


def prepare(
    y_true,
    y_score,
    groups,
    *,
    scores="auto",
    threshold=0.5,
    pos_label=None,
    sample_weight=None,
    clusters=None,
    drop_nan=False,
    max_order=None,
    score_argument="scores",
) -> Prepared:
    """Validate once and sort once."""
    ranking, rule = as_scores(y_score, scores, threshold, argument=score_argument)
    n = ranking.shape[0]
    y = as_labels(y_true, n, pos_label=pos_label)
    w = as_weights(sample_weight, n)
    attrs = as_groups(groups, n)
    keep = check_finite(ranking, drop_nan=drop_nan, argument=score_argument)
    n_dropped = int((~keep).sum())
    cl = None
    if clusters is not None:
        cl_arr = np.asarray(clusters)
        if cl_arr.ndim != 1 or cl_arr.shape[0] != n:
            raise bad("clusters", f"one cluster id per row ({n})", f"shape {cl_arr.shape}")
        if pd.isna(cl_arr).any():
            raise bad(
                "clusters", "a cluster id on every row", f"{int(pd.isna(cl_arr).sum())} missing ids"
            )
        cl = pd.factorize(cl_arr)[0]
    if n_dropped:
        ranking, y, w, attrs = ranking[keep], y[keep], w[keep], attrs[keep].reset_index(drop=True)
        cl = None if cl is None else pd.factorize(cl[keep])[0]
        if ranking.size == 0:
            raise bad(score_argument, "at least one finite score", "none after --drop-nan")
    structure = build_groups(attrs, max_order=max_order)
    data = sort_rows(ranking, y, w, structure.atom)
    cl_sorted = None if cl is None else cl[data.order]
    return Prepared(
        data, structure, rule, n_dropped, cl_sorted, weighted=sample_weight is not None, attrs=attrs
    )


def _undefined_reason(metric, n, n_pos, n_neg, w_pred_pos):
    if n == 0:
        return "empty group"
    need = SPECS[metric].denominator
    if need is None:
        return None
    if "n_pos" in need and n_pos == 0:
        return "no positives (fakes) in the group"
    if "n_neg" in need and n_neg == 0:
        return "no negatives (reals) in the group"
    if need == "n_pred_pos" and w_pred_pos == 0:
        return "nothing predicted fake at the threshold"
    return "zero total sample weight"


def _small_warnings(name, n, n_pos, n_neg, min_count):
    out = []
    if n == 0:
        return [f"{name}: empty group (n = 0)"]
    for count, what, metrics in (
        (n_neg, "negatives (reals)", "fpr, tnr, auc, eer"),
        (n_pos, "positives (fakes)", "tpr, fnr, auc, eer, average_precision"),
    ):
        if 0 < count < min_count:
            out.append(f"{name}: only {count} {what} (< {min_count}); {metrics} are unreliable")
    return out


def audit(
    y_true,
    y_score,
    groups,
    *,
    scores="auto",
    threshold=0.5,
    pos_label=None,
    sample_weight=None,
    reference=None,
    n_boot=0,
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
    chunk_size=None,
    metrics=None,
    progress=False,
    compat=None,
    dataset=None,
    provenance=None,
) -> Audit:
    """Audit a binary classifier's scores across groups.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Labels, 1 = fake (positive), 0 = real; booleans accepted; other values need
        ``pos_label``.
    y_score : array-like of shape (n,) or (n, 2)
        Probabilities, logits or 2-column logits (see ``scores``).
    groups : DataFrame, dict of columns, Series or 1-D array
        Attribute columns (e.g. ``gender``, ``race``); families are each attribute and their
        intersections (``gender+race``).
    scores : {"auto", "prob", "logit", "logits2"}, keyword-only
        Score rule; ``auto`` takes logits2 for two columns, prob when every value is in
        [0, 1], logit otherwise. The rule used is recorded in ``config["score_rule"]``.
    threshold : float
        Decision threshold on the probability p(fake) (default 0.5).
    sample_weight : array-like, optional
        Row weights for every metric (counts n, n_pos, n_neg stay row counts).
    reference : str, optional
        A group name (``white``, ``male+asian``); adds differences and ratios of every group
        of its family to it.
    n_boot : int
        Bootstrap replicates (0: point estimates only).
    ci : float
        Confidence level of the intervals.
    seed : int
        Seed of the bootstrap and permutation draws; results do not depend on ``chunk_size``.
    bootstrap : {"iid", "stratified", "cluster"}
        Resampling scheme: rows, rows within fixed-size groups, or whole clusters.
    clusters : array-like, optional
        Cluster id per row (e.g. video id); required by ``bootstrap="cluster"`` and used by
        the permutation test.
    ci_method : {"percentile", "bca"}
    n_perm : int, optional
        Permutations of the test of "no disparity" (default: ``n_boot``; 0 turns it off).
    drop_nan : bool
        Drop rows with NaN/inf scores (counted in the warnings) instead of failing.
    min_count : int
        Groups with fewer positives or negatives than this get a warning (default 30).
    max_bins : int
        Score bins per group of the bootstrap (and bins of the permutation test) when there
        are more distinct scores (replicates are exact below it; point estimates always are).
    max_order : int, optional
        Largest intersection order: 1 audits each attribute alone, 2 adds pairs, ...
        (default: every combination of the attributes).
    memory_budget : float
        Megabytes the resampling may hold at once (default 1024); replicates and groups are
        processed in chunks that fit. Results do not depend on it.
    skip_small_groups : bool
        Leave groups with fewer than ``min_count`` fakes or reals out of resampling: they keep
        their point estimates, get NaN intervals (with the reason in ``warnings``) and are left
        out of the gaps (listed in ``skipped``). Recorded in ``config``.
    metrics : list of str, optional
        Compute only these metrics (default: all of :data:`fairaudit.METRIC_NAMES`).
    compat : {"pg-fdd"}, optional
        Add the research code's quantities (``Audit.compat``).

    Returns
    -------
    Audit
    """
    from ._bootstrap import check_engine_options

    check_engine_options(memory_budget, max_order, skip_small_groups)
    prep = prepare(
        y_true,
        y_score,
        groups,
        scores=scores,
        threshold=threshold,
        pos_label=pos_label,
        sample_weight=sample_weight,
        clusters=clusters,
        drop_nan=drop_nan,
        max_order=max_order,
    )
    options = dict(
        n_boot=n_boot,
        ci=ci,
        seed=seed,
        bootstrap=bootstrap,
        ci_method=ci_method,
        n_perm=n_perm,
        max_bins=max_bins,
        chunk_size=chunk_size,
        progress=progress,
        metrics=_check_metrics(metrics),
        memory_budget=memory_budget,
        skip_small_groups=skip_small_groups,
    )
    _check_uncertainty_options(options, prep)
    result = _audit_prepared(prep, reference=reference, min_count=min_count, **options)
    config = dict(result.config)
    config.update({"dataset": dataset, "provenance": provenance or {}})
    comp = None
    if compat is not None:
        from ._compat_bridge import compat_from_arrays

        comp = compat_from_arrays(
            y_true,
            y_score,
            groups,
            rule=prep.rule.name,
            mode=compat,
            dataset=dataset,
            drop_nan=drop_nan,
            pos_label=pos_label,
        )
    return Audit(
        config,
        result.groups_long,
        result.counts,
        result.gaps,
        result.undefined,
        result.warnings,
        result.reference,
        comp,
        result.group_warnings,
        result.extras,
    )


def _check_metrics(metrics):
    if metrics is None:
        return METRIC_NAMES
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",")]
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown or not metrics:
        raise bad(
            "metrics",
            "names from " + ", ".join(METRIC_NAMES),
            ", ".join(map(str, unknown)) or "an empty list",
        )
    return tuple(m for m in METRIC_NAMES if m in metrics)


def _check_uncertainty_options(o, prep):
    if not isinstance(o["n_boot"], (int, np.integer)) or o["n_boot"] < 0:
        raise bad("--n-boot", "a non-negative integer", repr(o["n_boot"]))
    if not (isinstance(o["ci"], float) and 0.0 < o["ci"] < 1.0):
        raise bad("--ci", "a confidence level strictly between 0 and 1", repr(o["ci"]))
    if o["bootstrap"] not in ("iid", "stratified", "cluster"):
        raise bad("--bootstrap", "one of iid, stratified, cluster", repr(o["bootstrap"]))
    if o["bootstrap"] == "cluster" and prep.clusters is None:
        raise bad("--bootstrap cluster", "a cluster column (--cluster COLUMN)", "none")
    if o["ci_method"] not in ("percentile", "bca"):
        raise bad("--ci-method", "percentile or bca", repr(o["ci_method"]))
    if o["n_perm"] is not None and (
        not isinstance(o["n_perm"], (int, np.integer)) or o["n_perm"] < 0
    ):
        raise bad("--n-perm", "a non-negative integer", repr(o["n_perm"]))
    if not isinstance(o["max_bins"], (int, np.integer)) or o["max_bins"] < 16:
        raise bad("max_bins", "an integer of at least 16", repr(o["max_bins"]))


def _audit_prepared(
    prep: Prepared,
    *,
    reference,
    min_count,
    n_boot,
    ci,
    seed,
    bootstrap,
    ci_method,
    n_perm,
    max_bins,
    chunk_size,
    progress,
    metrics,
    memory_budget=1024,
    skip_small_groups=False,
) -> Audit:
    s = prep.structure
    data = prep.data
    point = group_point_metrics(
        data, s, prep.rule.threshold, prep.rule.to_probability, which=metrics
    )

    # Unweighted counts per group (and overall, last).
    atom_pos = np.bincount(data.atom, weights=data.y, minlength=s.n_atoms)
    atom_all = np.bincount(data.atom, minlength=s.n_atoms).astype(float)
    memb = np.vstack([s.membership, np.ones((1, s.n_atoms), dtype=bool)]).astype(float)
    n_pos = memb @ atom_pos
    n_all = memb @ atom_all
    n_neg = n_all - n_pos
    fams = s.group_family + [OVERALL]
    names = s.group_name + [OVERALL]
    resampled = resampled_groups(n_pos[:-1], n_neg[:-1], min_count, skip_small_groups)

    counts = pd.DataFrame(
        {
            "family": fams,
            "group": names,
            "n": n_all.astype(int),
            "n_pos": n_pos.astype(int),
            "n_neg": n_neg.astype(int),
        }
    )

    # Uncertainty (bootstrap replicates and permutations) from the shared-bin tables.
    reps = perm = None
    extras = {}
    n_perm_eff = n_boot if n_perm is None else n_perm
    if n_boot > 0 or n_perm_eff > 0:
        from ._bootstrap import Resampler

        res = Resampler(
            prep,
            max_bins=max_bins,
            chunk_size=chunk_size,
            seed=seed,
            progress=progress,
            metrics=metrics,
            memory_budget=memory_budget,
            resampled=resampled,
        )
        if n_boot > 0:
            extras["bins_exact"] = res.bins_exact
            extras["n_bins"] = res.n_bins
            reps = res.bootstrap(n_boot, bootstrap, point)
            extras["binning"] = res.binning_shift(reps)
            if ci_method == "bca":
                extras["jackknife"] = res.jackknife(bootstrap)
        if n_perm_eff > 0:
            perm = res.permutation_gaps(n_perm_eff, s)
    from ._bootstrap import interval

    # Per-group table.
    long_rows, undefined_rows, group_warn = [], [], {}
    for m in metrics:
        vals = point[m]
        if reps is not None:
            lo, hi = interval(vals, reps[m], ci, ci_method, extras.get("jackknife", {}).get(m))
        else:
            lo = hi = np.full(vals.shape, np.nan)
        for i in range(len(names)):
            long_rows.append((fams[i], names[i], m, vals[i], lo[i], hi[i]))
            if np.isnan(vals[i]):
                reason = _undefined_reason(
                    m, n_all[i], n_pos[i], n_neg[i], point["tp"][i] + point["fp"][i]
                )
                undefined_rows.append((fams[i], names[i], m, reason))
    groups_long = pd.DataFrame(
        long_rows, columns=["family", "group", "metric", "value", "lo", "hi"]
    )
    undefined = pd.DataFrame(undefined_rows, columns=["family", "group", "metric", "reason"])

    warnings_out = []
    if prep.n_dropped:
        warnings_out.append(f"dropped {prep.n_dropped} rows with NaN/inf scores (--drop-nan)")
    for i in range(len(names)):
        ws = _small_warnings(
            names[i] if fams[i] == OVERALL else f"{fams[i]}={names[i]}",
            int(n_all[i]),
            int(n_pos[i]),
            int(n_neg[i]),
            min_count,
        )
        if ws:
            group_warn[(fams[i], names[i])] = ws
            warnings_out.extend(ws)
    for fam, grp in undefined.groupby(["family", "group"], sort=False):
        if int(counts[(counts.family == fam[0]) & (counts.group == fam[1])]["n"].iloc[0]) == 0:
            continue
        listed = ", ".join(grp["metric"])
        reasons = "; ".join(dict.fromkeys(grp["reason"]))
        warnings_out.append(f"{fam[0]}={fam[1]}: undefined {listed} ({reasons})")

    not_resampled = np.flatnonzero(~resampled) if resampled is not None else []
    for i in not_resampled:
        note = (
            f"{fams[i]}={names[i]}: not resampled (--skip-small-groups: fewer than {min_count} "
            "fakes or reals); no intervals, left out of the gaps"
        )
        group_warn.setdefault((fams[i], names[i]), []).append(note)
    if len(not_resampled):
        warnings_out.append(
            f"{len(not_resampled)} groups with fewer than {min_count} fakes or reals were not "
            "resampled (--skip-small-groups): their intervals are NaN and gaps leave them out"
        )
    worst = extras.get("binning", {}).get("shift_sd", {})
    coarse = [f"{m} by {v:.2g} sd" for m, v in worst.items() if v > BINNING_WARN_SD]
    if coarse:
        warnings_out.append(
            f"score bins move the bootstrap replicates far ({', '.join(coarse)} of a "
            f"replicate, corrected on the data's own value): raise --max-bins (now {max_bins})"
        )
    # gaps leave them out (point, interval and test alike) and list them in 'skipped'
    gap_point = point
    if len(not_resampled):
        gap_point = {m: np.where(np.r_[resampled, True], v, np.nan) for m, v in point.items()}

    # Gaps per family.
    gap_rows = []
    all_gap_names = gap_names(metrics)
    for fam in s.families:
        idx = s.family_slice(fam)
        gv = {m: gap_point[m][idx] for m in metrics}
        ov = {m: gap_point[m][-1] for m in metrics}
        gp = family_gaps(gv, ov, metrics)
        if reps is not None:
            gr = family_gaps(
                {m: reps[m][:, idx] for m in metrics}, {m: reps[m][:, -1] for m in metrics}, metrics
            )
            jk = extras.get("jackknife")
            gj = (
                family_gaps(
                    {m: jk[m][:, idx] for m in metrics}, {m: jk[m][:, -1] for m in metrics}, metrics
                )
                if jk
                else None
            )
        for g in all_gap_names:
            skipped = sorted(
                {names[idx[j]] for mm in gap_metric(g) for j in np.flatnonzero(np.isnan(gv[mm]))}
            )
            skipped = [x for x in s.group_name if x in skipped and x in [names[k] for k in idx]]
            lo = hi = np.nan
            if reps is not None:
                lo_a, hi_a = interval(
                    np.array([gp[g]]),
                    gr[g][:, None],
                    ci,
                    ci_method,
                    None if gj is None else gj[g][:, None],
                )
                lo, hi = lo_a[0], hi_a[0]
            p = perm.p_value(fam, g, gp[g]) if perm is not None else np.nan
            gap_rows.append((fam, g, float(gp[g]), lo, hi, p, skipped))
    gaps = pd.DataFrame(
        gap_rows, columns=["family", "name", "value", "lo", "hi", "p_value", "skipped"]
    )

    ref_table = None
    if reference is not None:
        ref_table = _reference_table(reference, s, point, reps, ci, metrics)

    config = {
        "threshold": prep.rule.threshold_probability,
        "score_rule": prep.rule.name,
        "score_rule_text": prep.rule.description,
        "n_boot": int(n_boot),
        "n_perm": int(n_perm_eff) if (n_boot or n_perm) else 0,
        "ci": ci,
        "ci_method": ci_method if n_boot else None,
        "bootstrap": bootstrap if n_boot else None,
        "seed": seed,
        "weighted": prep.weighted,
        "clusters": prep.clusters is not None,
        "n_rows": int(n_all[-1]),
        "n_dropped": prep.n_dropped,
        "min_count": min_count,
        "max_order": max_order_of(s),
        "skip_small_groups": bool(skip_small_groups),
        "eer_definition": "interpolated crossing of FPR and FNR on the ROC curve",
        "reference": reference,
        "attributes": list(s.attributes),
        "families": list(s.families),
        "metrics": list(metrics),
        "fairaudit_version": __version__,
    }
    if extras.get("n_bins") is not None:
        config["bootstrap_bins"] = {"n_bins": extras["n_bins"], "exact": extras["bins_exact"]}
        config["bootstrap_bins"].update(extras.pop("binning", {}))
    if perm is not None:
        config["permutation"] = "group labels permuted within each class" + (
            " (whole clusters)" if prep.clusters is not None else ""
        )
    if len(not_resampled):
        config["not_resampled"] = [f"{fams[i]}={names[i]}" for i in not_resampled]
    extras.pop("jackknife", None)
    inverse = np.empty_like(data.order)
    inverse[data.order] = np.arange(data.order.size)
    extras["data"] = {
        "y": data.y[inverse].astype(np.int8),
        "p": prep.rule.to_probability(data.score[inverse]),
        "groups": prep.attrs,
    }
    return Audit(
        config,
        groups_long,
        counts,
        gaps,
        undefined,
        tuple(warnings_out),
        ref_table,
        None,
        group_warn,
        extras,
    )


def resampled_groups(n_pos, n_neg, min_count, skip):
    """Which groups the resampling covers: all, or (``skip``) those with enough of each class.

    >>> resampled_groups(np.array([5, 40]), np.array([50, 60]), 30, True).tolist()
    [False, True]
    """
    if not skip:
        return None
    return (np.asarray(n_pos) >= min_count) & (np.asarray(n_neg) >= min_count)


def max_order_of(structure) -> int:
    """The largest intersection order: families are all combinations of up to that many.

    >>> import pandas as pd
    >>> from fairaudit._groups import build_groups
    >>> cols = pd.DataFrame({"x": list("ab") * 2, "y": list("cd") * 2, "z": list("ef") * 2})
    >>> max_order_of(build_groups(cols)), max_order_of(build_groups(cols, max_order=2))
    (3, 2)
    """
    k, n_fam, order, total = len(structure.attributes), len(structure.families), 0, 0
    while total < n_fam and order < k:
        order += 1
        total += math.comb(k, order)
    return order


def _reference_table(reference, s, point, reps, ci, metrics):
    from ._bootstrap import interval

    hits = [i for i, g in enumerate(s.group_name) if g == str(reference)]
    if not hits:
        raise bad(
            "--reference",
            "the name of a group (" + ", ".join(dict.fromkeys(s.group_name)) + ")",
            repr(reference),
        )
    rows = []
    for r in hits:
        fam = s.group_family[r]
        for i in s.family_slice(fam):
            for m in metrics:
                diff = point[m][i] - point[m][r]
                ratio = point[m][i] / point[m][r] if point[m][r] not in (0.0,) else np.nan
                lo = hi = np.nan
                if reps is not None:
                    lo_a, hi_a = interval(
                        np.array([diff]), (reps[m][:, i] - reps[m][:, r])[:, None], ci, "percentile"
                    )
                    lo, hi = lo_a[0], hi_a[0]
                rows.append(
                    (fam, s.group_name[i], str(reference), m, float(diff), float(ratio), lo, hi)
                )
    return pd.DataFrame(
        rows,
        columns=["family", "group", "reference", "metric", "diff", "ratio", "diff_lo", "diff_hi"],
    )
