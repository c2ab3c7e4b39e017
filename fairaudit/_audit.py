"""The audit: from validated inputs to one :class:`Audit` result."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import __version__
from ._errors import bad, opt
from ._groups import build_groups
from ._metrics import METRIC_NAMES, SPECS
from ._stats import canonical_ids, group_point_metrics, sort_rows
from ._options import DEFAULTS, check_options, resolve_bootstrap
from ._validation import (
    as_groups,
    as_labels,
    as_scores,
    as_weights,
    check_finite,
    check_scores_not_labels,
    table_arguments,
)

__all__ = ["audit", "Audit", "prepare"]

SCHEMA_VERSION = 1
#: Binned replicates shifted by more than this (in replicate standard deviations) to match the
#: exact values of the data get a warning: what the shift leaves may then matter.
BINNING_WARN_SD = 1.0
OVERALL = "overall"
#: Confusion counts at the threshold, per group (weighted with sample weights).
CONFUSION = ("tp", "fp", "tn", "fn")


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

    Views (every table is a pandas DataFrame; the whole set is family and group ``overall``):

    * ``groups``: one row per (family, group); counts, confusion counts and metric values.
    * ``groups_long``: tidy, one row per (family, group, metric): ``value``, ``lo``, ``hi``.
    * ``intervals(metric)``: value, lo, hi of one metric for every group.
    * ``groups_table()``: one row per group with ``<metric>``, ``<metric>_lo``, ``<metric>_hi``
      columns (``groups.csv``).
    * ``gaps``: one row per (family, gap); ``gap(family, name)`` one of them;
      ``gaps_table()`` the same for ``gaps.csv``.
    * ``reference``: differences and ratios to the reference groups (or None).

    Attributes
    ----------
    config : dict
        How every number was made (threshold, score rule, bootstrap scheme, seed, ...).
    groups_long : DataFrame
        Tidy table, one row per (family, group, metric): ``value``, ``lo``, ``hi``.
    counts : DataFrame
        One row per (family, group): ``n``, ``n_pos``, ``n_neg`` (rows, unweighted) and the
        confusion counts ``tp``, ``fp``, ``tn``, ``fn`` at the threshold (weighted when sample
        weights are given).
    gaps : DataFrame
        One row per (family, gap name): ``value``, ``lo``, ``hi``, ``p_value``, ``p_adjusted``,
        ``tolerance``, ``verdict``, ``n_unusable`` (replicates left out because a group the gap
        uses was undefined in them) and ``skipped`` (groups left out because the metric is
        undefined for them).
    undefined : DataFrame
        Every undefined (NaN) per-group metric with its reason.
    warnings : tuple of str
        Small groups, dropped rows, undefined metrics, in words.
    reference : DataFrame or None
        Differences and ratios of each group to the reference group of its family.
    compat : dict or None
        The research code's quantities (``compat="pg-fdd"``).

    Examples
    --------
    >>> import numpy as np, fairaudit
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400)
    >>> gender = rng.choice(["male", "female"], 400)
    >>> result = fairaudit.audit(y, rng.random(400), {"gender": gender}, n_boot=0)
    >>> result.groups.loc[("gender", "male"), ["n", "tp", "fp"]].index.tolist()
    ['n', 'tp', 'fp']
    >>> bool(result.gap("gender", "fpr_range")["value"] >= 0)
    True
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
        """Value, lo and hi of one metric for every group (index family, group)."""
        t = self.groups_long[self.groups_long["metric"] == metric]
        return t.set_index(["family", "group"])[["value", "lo", "hi"]]

    def gap(self, family: str, name: str) -> pd.Series:
        """One gap's row of :attr:`gaps` (value, interval, p-values, verdict)."""
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
                    **{k: _num(getattr(row, k)) for k in CONFUSION},
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
        overall.update({k: _num(ov[k]) for k in CONFUSION})
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
                "p_adjusted": _num(r.p_adjusted),
                "n_unusable": int(r.n_unusable),
                **(
                    {"tolerance": _num(r.tolerance), "verdict": r.verdict}
                    if isinstance(r.verdict, str)
                    else {}
                ),
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

    def groups_table(self) -> pd.DataFrame:
        """groups.csv: one row per group; counts, confusion counts, then ``<metric>``,
        ``<metric>_lo``, ``<metric>_hi`` for every metric."""
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

    def gaps_table(self) -> pd.DataFrame:
        """gaps.csv: :attr:`gaps` with the skipped groups as one ``;``-separated string."""
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
    """Validated, sorted entries and the group structure (shared by audit, compare and
    :meth:`fairaudit.AuditState.audit`).

    ``data`` holds the rows as entries (:class:`~fairaudit._stats.SortedData`); the engine
    reads atoms from there. ``structure.atom`` is the atom of each input row for arrays, of
    each atom for a state; ``attrs`` is None for a state (no rows).
    """

    data: object  # SortedData
    structure: object  # GroupStructure
    rule: object  # ScoreRule
    n_dropped: int  # rows with NaN/inf scores (drop_nan)
    clusters: np.ndarray | None  # cluster code per entry (codes in sorted id order)
    weighted: bool
    attrs: pd.DataFrame | None  # attribute columns, input order (after dropped rows)
    n_dropped_missing_groups: int = 0  # rows without an attribute value (missing_groups="drop")


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
    score_argument="y_score",
    missing_groups="error",
    allow_perfect_scores=False,
) -> Prepared:
    """Validate once and sort once.

    >>> prep = prepare([0, 1, 1, 0], [0.2, 0.7, 0.4, 0.6], {"race": ["a", None, "b", "b"]},
    ...                missing_groups="drop")
    >>> prep.n_dropped_missing_groups, prep.attrs["race"].tolist()
    (1, ['a', 'b', 'b'])
    """
    ranking, rule = as_scores(y_score, scores, threshold, argument=score_argument)
    n = ranking.shape[0]
    y = as_labels(y_true, n, pos_label=pos_label)
    w = as_weights(sample_weight, n)
    attrs = as_groups(groups, n, missing=missing_groups)
    keep = check_finite(ranking, drop_nan=drop_nan, argument=score_argument)
    n_dropped = int((~keep).sum())
    absent = attrs.isna().any(axis=1).to_numpy()  # only with missing_groups="drop"
    n_missing = int((absent & keep).sum())
    keep &= ~absent
    cl = None
    if clusters is not None:
        cl_arr = np.asarray(clusters)
        if cl_arr.ndim != 1 or cl_arr.shape[0] != n:
            raise bad("clusters", f"one cluster id per row ({n})", f"shape {cl_arr.shape}")
        if pd.isna(cl_arr).any():
            raise bad(
                "clusters", "a cluster id on every row", f"{int(pd.isna(cl_arr).sum())} missing ids"
            )
        cl = cl_arr
    if not keep.all():
        ranking, y, w, attrs = ranking[keep], y[keep], w[keep], attrs[keep].reset_index(drop=True)
        cl = None if cl is None else cl[keep]
        if ranking.size == 0:
            raise bad(score_argument, "at least one row left", "none after dropping rows")
    check_scores_not_labels(ranking, y, argument=score_argument, allow=allow_perfect_scores)
    structure = build_groups(attrs, max_order=max_order)
    # clusters numbered in sorted order of their ids, as a state numbers them
    codes = None if cl is None else canonical_ids(cl)[0]
    data = sort_rows(ranking, y, w, structure.atom, codes)
    return Prepared(
        data,
        structure,
        rule,
        n_dropped,
        data.cluster,
        weighted=sample_weight is not None,
        attrs=attrs,
        n_dropped_missing_groups=n_missing,
    )


def _undefined_reason(metric, n, n_pos, n_neg, w_pred_pos, w_pred_neg, names):
    pos, neg = names
    if n == 0:
        return "empty group"
    need = SPECS[metric].denominator
    if need is None:
        return None
    if "n_pos" in need and n_pos == 0:
        return f"no {pos} rows in the group"
    if "n_neg" in need and n_neg == 0:
        return f"no {neg} rows in the group"
    if need == "n_pred_pos" and w_pred_pos == 0:
        return f"nothing predicted {pos} at the threshold"
    if need == "n_pred_neg" and w_pred_neg == 0:
        return f"nothing predicted {neg} at the threshold"
    return "zero total sample weight"


def _small_warnings(name, n, n_pos, n_neg, min_count, names):
    out = []
    if n == 0:
        return [f"{name}: empty group (n = 0)"]
    for count, what, metrics in (
        (n_neg, f"{names[1]} rows", "fpr, tnr, auc, eer"),
        (n_pos, f"{names[0]} rows", "tpr, fnr, auc, eer, average_precision"),
    ):
        if 0 < count < min_count:
            out.append(f"{name}: only {count} {what} (< {min_count}); {metrics} are unreliable")
    return out


def audit(
    data=None,
    y_score=None,
    groups=None,
    *,
    y_true=None,
    scores=DEFAULTS["scores"],
    threshold=DEFAULTS["threshold"],
    pos_label=None,
    sample_weight=None,
    reference=None,
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
    chunk_size=None,
    metrics=None,
    progress=False,
    compat=None,
    dataset=None,
    provenance=None,
    gap_ci="max-t",
    p_adjust="maxt",
    tolerance=None,
    class_names=None,
) -> Audit:
    """Audit a binary classifier's scores across groups.

    Called as ``audit(y_true, y_score, groups, ...)`` with arrays, or as
    ``audit(df, y_true="label", y_score="prob", groups=["gender", "race"],
    clusters="video_id")`` with a DataFrame and column names. The defaults are the command
    line's (:data:`fairaudit._options.DEFAULTS`), so the same options give the same numbers.

    Parameters
    ----------
    data : DataFrame or array-like, optional
        A table whose columns the other arguments name; or, when ``y_true`` is not given, the
        labels themselves (``audit(y_true, y_score, groups)``).
    y_score : array-like of shape (n,) or (n, 2), or column name(s)
        Probabilities, percentages, logits or 2-column logits (see ``scores``).
    groups : DataFrame, dict of columns, list of named Series, Series, 1-D array, or column names
        Attribute columns (e.g. ``gender``, ``race``); families are each attribute and their
        intersections (``gender+race``). Names and values may contain ``+`` only where the
        intersection names stay unambiguous.
    y_true : array-like of shape (n,) or column name, keyword-only
        Labels, 1 = fake (positive), 0 = real; booleans accepted; other values need
        ``pos_label``.
    scores : {"auto", "prob", "percent", "logit", "logits2"}
        Score rule; ``auto`` takes logits2 for two columns, prob when every value is in
        [0, 1], logit when the values look like logits (both signs, a roughly symmetric
        range) and refuses anything else (percentages, one-sided decision values). The rule
        used is recorded in ``config["score_rule"]``.
    threshold : float
        Decision threshold on the probability p(fake) (default 0.5).
    pos_label : optional
        The label value meaning fake when labels are not 0/1 (text, numbers, booleans); the
        labels must then hold exactly two values.
    sample_weight : array-like or column name, optional
        Row weights for every metric (counts n, n_pos, n_neg stay row counts).
    reference : str or list of str, optional
        Reference groups: ``"white"`` (every family holding that group), ``"race=white"``,
        ``"race=white,gender=male"`` or a list of those; adds, for every other group of each
        reference's family, the difference and ratio to the reference with intervals, p-values
        and adjusted p-values (:attr:`Audit.reference`).
    n_boot : int
        Bootstrap replicates (default 1000; 0: point estimates only).
    ci : float
        Confidence level of the intervals.
    seed : int
        Seed (non-negative) of the bootstrap and permutation draws; results do not depend on
        ``chunk_size``.
    bootstrap : {"iid", "stratified", "cluster"}, optional
        Resampling scheme: rows, rows within fixed-size groups, or whole clusters. Default:
        ``cluster`` when ``clusters`` are given, else ``iid``; why is recorded in
        ``config["bootstrap_reason"]``.
    clusters : array-like or column name, optional
        Cluster id per row (e.g. video id); implies ``bootstrap="cluster"`` and makes the
        permutation test move whole clusters.
    ci_method : {"percentile", "bca"}
    n_perm : int, optional
        Permutations of the test of "no disparity" (default: ``n_boot``; 0 turns it off).
    drop_nan : bool
        Drop rows with NaN/inf scores (counted in the warnings) instead of failing.
    missing_groups : {"error", "drop", "keep"}
        Rows without an attribute value: refused (default), dropped (counted in the
        warnings) or audited as a group ``unknown``.
    allow_perfect_scores : bool
        Accept scores that reproduce the labels exactly (refused by default: almost always
        the labels given as scores).
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
    gap_ci : {"max-t", "percentile", "bca"}
        Interval method of the gaps. ``max-t`` (default) keeps its coverage where groups are
        equal or close (see :mod:`fairaudit._inference` and the README); ``percentile`` and
        ``bca`` bootstrap the gap directly and are biased near equality.
    p_adjust : {"maxt", "holm", "bh", "none"}
        Multiplicity adjustment of the p-values (``p_adjusted``): ``maxt`` (default) is the
        Westfall-Young step-down max-T over all gaps of the audit from the same permutations
        (family-wise error control that uses their dependence); ``holm`` (family-wise) and
        ``bh`` (false discovery rate) adjust each table's p-values.
    tolerance : str or dict, optional
        Tolerances per gap (``"fpr_range=0.05,demographic_parity_ratio=0.8"``, a dict, or the
        preset ``"four-fifths"``: 0.8 for every ratio gap). Each such gap gets a ``verdict``:
        ``within`` (its whole interval inside), ``exceeds`` (wholly beyond) or
        ``inconclusive``. Needs ``n_boot > 0``.
    class_names : (str, str), optional
        Names of the positive and negative class in the outputs (e.g. ``("fake", "real")``);
        default: ``pos_label`` and "not <pos_label>" for text labels, else ``positive`` and
        ``negative``.

    Returns
    -------
    Audit

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"label": [0, 1] * 30, "prob": [0.2, 0.7, 0.6, 0.9] * 15,
    ...                    "race": ["a"] * 20 + ["b"] * 40, "video": [i // 4 for i in range(60)]})
    >>> r = audit(df, y_true="label", y_score="prob", groups=["race"], clusters="video",
    ...           n_boot=50, min_count=1)
    >>> r.config["bootstrap"], r.config["bootstrap_reason"]
    ('cluster', 'clusters given: whole clusters are resampled together')
    """
    from ._bootstrap import check_engine_options

    check_engine_options(memory_budget, max_order, skip_small_groups)
    given = table_arguments(
        data,
        y_true=y_true,
        y_score=y_score,
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
    scheme, reason = resolve_bootstrap(opts["bootstrap"], given["clusters"] is not None)
    prep = prepare(
        given["y_true"],
        given["y_score"],
        given["groups"],
        scores=opts["scores"],
        threshold=opts["threshold"],
        pos_label=pos_label,
        sample_weight=given["sample_weight"],
        clusters=given["clusters"],
        drop_nan=opts["drop_nan"],
        max_order=max_order,
        missing_groups=opts["missing_groups"],
        allow_perfect_scores=opts["allow_perfect_scores"],
    )
    result = _run_audit(
        prep,
        opts,
        metrics,
        scheme,
        reason,
        reference=reference,
        memory_budget=memory_budget,
        skip_small_groups=skip_small_groups,
        progress=progress,
        gap_ci=gap_ci,
        p_adjust=p_adjust,
        tolerance=tolerance,
        class_names=_class_names(class_names, pos_label),
        dataset=dataset,
        provenance=provenance,
    )
    if compat is None:
        return result
    from ._compat_bridge import compat_from_arrays

    comp = compat_from_arrays(
        given["y_true"],
        given["y_score"],
        given["groups"],
        rule=prep.rule.name,
        mode=compat,
        dataset=dataset,
        drop_nan=opts["drop_nan"],
        pos_label=pos_label,
    )
    return dataclasses.replace(result, compat=comp)


def _run_audit(
    prep,
    opts,
    metrics,
    scheme,
    reason,
    *,
    reference,
    memory_budget,
    skip_small_groups,
    progress,
    gap_ci,
    p_adjust,
    tolerance,
    class_names,
    dataset,
    provenance,
    point_extra=None,
) -> Audit:
    """The audit of prepared entries with checked options (``audit`` and
    :meth:`fairaudit.AuditState.audit` alike): one code path, so they cannot disagree."""
    options = dict(
        n_boot=opts["n_boot"],
        ci=opts["ci"],
        seed=opts["seed"],
        bootstrap=scheme,
        ci_method=opts["ci_method"],
        n_perm=opts["n_perm"],
        max_bins=opts["max_bins"],
        chunk_size=opts["chunk_size"],
        progress=progress,
        metrics=metrics,
        memory_budget=memory_budget,
        skip_small_groups=skip_small_groups,
    )
    _check_uncertainty_options(options, prep)
    result = _audit_prepared(
        prep,
        reference=reference,
        min_count=opts["min_count"],
        **options,
        **_inference_options(gap_ci, p_adjust, tolerance, options),
        class_names=class_names,
        point_extra=point_extra,
    )
    config = dict(result.config)
    config.update({"dataset": dataset, "provenance": provenance or {}, "bootstrap_reason": reason})
    config.update(_missing_groups_config(prep, opts["missing_groups"]))
    return dataclasses.replace(
        result, config=config, warnings=result.warnings + _missing_groups_warnings(prep)
    )


def _class_names(names, pos_label):
    if names is None:
        if isinstance(pos_label, str):
            return [pos_label, f"not {pos_label}"]
        return ["positive", "negative"]
    if isinstance(names, str):
        names = [x.strip() for x in names.split(",")]
    names = list(names)
    if len(names) != 2 or not all(isinstance(x, str) and x for x in names):
        raise bad(
            "class_names", "two names (positive, negative), e.g. ('fake', 'real')", repr(names)
        )
    return names


def _inference_options(gap_ci, p_adjust, tolerance, options):
    """Validated gap-interval method, p-value adjustment and tolerances."""
    from ._inference import GAP_CI_METHODS, P_ADJUST_METHODS
    from ._report import parse_tolerance

    if gap_ci not in GAP_CI_METHODS:
        raise bad("gap_ci", "one of " + ", ".join(GAP_CI_METHODS), repr(gap_ci))
    if p_adjust not in P_ADJUST_METHODS:
        raise bad("p_adjust", "one of " + ", ".join(P_ADJUST_METHODS), repr(p_adjust))
    tol = parse_tolerance(tolerance, options["metrics"])
    if tol and not options["n_boot"]:
        raise bad("tolerance", "bootstrap intervals to judge gaps by (n_boot > 0)", "n_boot 0")
    return {"gap_ci": gap_ci, "p_adjust": p_adjust, "tolerance": tol}


def _missing_groups_config(prep, policy) -> dict:
    return {"missing_groups": policy, "n_dropped_missing_groups": prep.n_dropped_missing_groups}


def _missing_groups_warnings(prep) -> tuple:
    n = prep.n_dropped_missing_groups
    if not n:
        return ()
    return (f"dropped {n} rows without an attribute value (missing_groups drop)",)


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
    """Validate the options with the shared checker (audit and compare); return them
    normalised. The cluster scheme needs cluster ids."""
    o = check_options(**o)
    if o.get("bootstrap") == "cluster" and prep.clusters is None:
        raise bad(opt("bootstrap", "cluster"), f"cluster ids ({opt('clusters')})", "none")
    return o


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
    gap_ci="max-t",
    p_adjust="maxt",
    tolerance=None,
    class_names=("positive", "negative"),
    point_extra=None,
) -> Audit:
    s = prep.structure
    data = prep.data
    point = group_point_metrics(
        data, s, prep.rule.threshold, prep.rule.to_probability, which=metrics, extra=point_extra
    )

    # Unweighted counts per group (and overall, last).
    atom_pos = np.bincount(data.atom, weights=data.y * data.m, minlength=s.n_atoms)
    atom_all = np.bincount(data.atom, weights=data.m, minlength=s.n_atoms)
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
            # confusion counts at the threshold (weighted when sample weights are given)
            **{k: point[k] for k in ("tp", "fp", "tn", "fn")},
        }
    )

    # Uncertainty (bootstrap replicates and permutations) from the shared-bin tables.
    reps = perm = None
    extras = {}
    if point_extra is not None:  # the caller's own numbers of each group's histogram
        extras["point_extra"] = {k: point.pop(k) for k in list(point) if k.endswith("_extra")}
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
            if "bca" in (ci_method, gap_ci):
                extras["jackknife"] = res.jackknife(bootstrap)
        if n_perm_eff > 0:
            perm = res.permutation_gaps(n_perm_eff, s)
    from ._bootstrap import interval

    # Per-group table.
    long_rows, undefined_rows, group_warn = [], [], {}
    for m in metrics:
        vals = point[m]
        if reps is not None:
            jk = extras.get("jackknife", {}).get(m) if ci_method == "bca" else None
            lo, hi = interval(vals, reps[m], ci, ci_method, jk)
        else:
            lo = hi = np.full(vals.shape, np.nan)
        for i in range(len(names)):
            long_rows.append((fams[i], names[i], m, vals[i], lo[i], hi[i]))
            if np.isnan(vals[i]):
                reason = _undefined_reason(
                    m,
                    n_all[i],
                    n_pos[i],
                    n_neg[i],
                    point["tp"][i] + point["fp"][i],
                    point["tn"][i] + point["fn"][i],
                    class_names,
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
            class_names,
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

    # Gaps per family, with intervals, p-values, adjusted p-values and verdicts.
    from ._report import gap_table, parse_references, reference_table

    jack = extras.get("jackknife")
    gaps, gap_warnings = gap_table(
        s,
        gap_point,
        reps,
        perm,
        jack,
        metrics,
        ci=ci,
        gap_ci=gap_ci,
        p_adjust=p_adjust,
        tolerance=tolerance,
    )
    warnings_out.extend(gap_warnings)

    ref_table = None
    refs = parse_references(reference, s)
    if refs:
        ref_table = reference_table(
            refs, s, point, reps, jack, metrics, ci=ci, ci_method=ci_method, p_adjust=p_adjust
        )

    config = {
        "threshold": prep.rule.threshold_probability,
        "score_rule": prep.rule.name,
        "score_rule_text": prep.rule.description,
        "n_boot": int(n_boot),
        "n_perm": int(n_perm_eff) if (n_boot or n_perm) else 0,
        "ci": ci,
        "ci_method": ci_method if n_boot else None,
        "gap_ci": gap_ci if n_boot else None,
        "p_adjust": p_adjust,
        "tolerance": dict(tolerance or {}),
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
        "class_names": list(class_names),
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
    if data.row_entry is not None:  # the rows themselves (arrays; a state has none)
        extras["data"] = {
            "y": data.y[data.row_entry].astype(np.int8),
            "p": prep.rule.to_probability(data.score[data.row_entry]),
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
