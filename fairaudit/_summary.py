"""The summary in plain words, shared by the terminal, Markdown and HTML renderings.

Each function returns a list of sentences (plain text, no markup); renderers escape and style
them. The summary uses adjusted p-values when the report has them.
"""

from __future__ import annotations

import math

import pandas as pd

__all__ = [
    "audit_summary",
    "comparison_summary",
    "class_names",
    "p_words",
    "HEADLINE_METRICS",
    "HEADLINE_GAPS",
]

OVERALL = "overall"
#: Metrics shown first (terminal tables, the summary).
HEADLINE_METRICS = ["auc", "eer", "fpr", "tpr", "accuracy", "selection_rate"]
#: Gaps shown by default (``--all-gaps`` shows every gap).
HEADLINE_GAPS = [
    "auc_range",
    "eer_range",
    "fpr_range",
    "tpr_range",
    "accuracy_range",
    "balanced_error_range",
    "fpr_max_to_overall",
    "equalized_odds",
    "equalized_odds_mean",
    "demographic_parity",
    "demographic_parity_ratio",
]
ADJUST_WORDS = {
    "maxt": "step-down max-T adjustment over every p-value of the table (Westfall-Young from "
    "the permutations for gaps, Romano-Wolf from the bootstrap for differences)",
    "holm": "Holm adjustment",
    "bh": "Benjamini-Hochberg (false discovery rate) adjustment",
    "none": "no adjustment for multiple tests",
}


def _nan(v) -> bool:
    try:
        return v is None or math.isnan(float(v))
    except (TypeError, ValueError):
        return True


def p_words(p) -> str:
    """``p = 0.034`` or ``p < 0.001``.

    >>> p_words(0.0341), p_words(0.0002), p_words(float("nan"))
    ('p = 0.034', 'p < 0.001', 'p not computed')
    """
    if _nan(p):
        return "p not computed"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def class_names(config) -> tuple:
    """(positive, negative) class names of a report: ``fake``/``real`` for the research schema,
    else what the user gave or the generic ``positive``/``negative``.

    >>> class_names({"class_names": ["fake", "real"]})
    ('fake', 'real')
    >>> class_names({})
    ('positive', 'negative')
    """
    names = config.get("class_names") or ("positive", "negative")
    return str(names[0]), str(names[1])


def _interval(lo, hi, ci) -> str:
    if _nan(lo) or _nan(hi):
        return ""
    return f" ({ci:.0%} interval {lo:.3f} to {hi:.3f})"


def _extremes(audit, family, metric):
    t = audit.groups_long
    t = t[(t["family"] == family) & (t["metric"] == metric)].dropna(subset=["value"])
    if t.empty:
        return None
    lo = t.loc[t["value"].idxmin()]
    hi = t.loc[t["value"].idxmax()]
    return (lo["group"], lo["value"]), (hi["group"], hi["value"])


def _p_of(row):
    """(p, adjusted?) preferring the adjusted p-value."""
    p_adj = getattr(row, "p_adjusted", float("nan"))
    return (p_adj, True) if not _nan(p_adj) else (row.p_value, False)


def audit_summary(a, top=4) -> list:
    """Sentences: the whole set, the largest gap of every family, tests, verdicts, warnings."""
    from ._gaps import gap_metric

    c = a.config
    ci = c.get("ci") or 0.95
    alpha = 1.0 - ci
    pos, neg = class_names(c)
    out = []
    ov = a.groups_long[a.groups_long["family"] == OVERALL].set_index("metric")
    parts = []
    for m in [m for m in HEADLINE_METRICS if m in ov.index][:4]:
        r = ov.loc[m]
        cell = "undefined" if _nan(r["value"]) else f"{r['value']:.3f}"
        if not (_nan(r["lo"]) or _nan(r["hi"])):
            cell += f" [{r['lo']:.3f}, {r['hi']:.3f}]"
        parts.append(f"{m} {cell}")
    n = a.counts[a.counts["family"] == OVERALL].iloc[0]
    out.append(
        f"Whole set: {int(n.n)} rows ({int(n.n_pos)} {pos}, {int(n.n_neg)} {neg}) at "
        f"threshold {c['threshold']:g}: " + "; ".join(parts) + "."
    )
    names = [g for g in HEADLINE_GAPS if g.endswith("_range") and g in set(a.gaps["name"])]
    g = a.gaps[a.gaps["name"].isin(names)].dropna(subset=["value"])
    g = g.sort_values("value", ascending=False, kind="mergesort")
    first = g.drop_duplicates("family")  # the worst gap of every family first, then the rest
    g = pd.concat([first, g.drop(first.index)]).head(max(top, len(first)))
    for r in g.itertuples(index=False):
        metric = gap_metric(r.name)[0]
        ext = _extremes(a, r.family, metric)
        if ext is None:
            continue
        (g_lo, v_lo), (g_hi, v_hi) = ext
        s = (
            f"{r.family}: {metric} ranges from {v_lo:.3f} ({g_lo}) to {v_hi:.3f} ({g_hi}), "
            f"gap {r.name} {r.value:.3f}{_interval(r.lo, r.hi, ci)}"
        )
        p, adjusted = _p_of(r)
        if _nan(p):
            s += "; not tested."
        else:
            label = "adjusted " if adjusted else ""
            verdict = (
                "unlikely if the groups did not differ"
                if p < alpha
                else "compatible with no difference"
            )
            s += f"; {label}{p_words(p)}: {verdict}."
        if r.skipped:
            s += f" Left out (undefined): {', '.join(r.skipped)}."
        out.append(s)
    if len(out) == 1:
        out.append("No gap could be computed (fewer than two groups with a defined value).")
    if c.get("n_perm"):
        tested = a.gaps[a.gaps["name"].isin(names)]
        col = "p_adjusted" if tested["p_adjusted"].notna().any() else "p_value"
        tested = tested.dropna(subset=[col])
        k = int((tested[col] < alpha).sum())
        how = ADJUST_WORDS.get(c.get("p_adjust"), "") if col == "p_adjusted" else "unadjusted"
        out.append(
            f"{k} of {len(tested)} headline range gaps have p < {alpha:g} ({how}; "
            f"{c['n_perm']} permutations, smallest possible p {1 / (c['n_perm'] + 1):.4f})."
        )
    verdicts = a.gaps.dropna(subset=["verdict"]) if "verdict" in a.gaps else a.gaps.iloc[:0]
    if len(verdicts):
        counts = verdicts["verdict"].value_counts()
        parts = [f"{int(counts.get(v, 0))} {v}" for v in ("within", "exceeds", "inconclusive")]
        worst = verdicts[verdicts["verdict"] == "exceeds"].head(3)
        s = f"Tolerances: {len(verdicts)} gaps judged: " + ", ".join(parts) + "."
        if len(worst):
            s += (
                " Exceeding: "
                + "; ".join(
                    f"{r.family} {r.name} {r.value:.3f} [{r.lo:.3f}, {r.hi:.3f}] vs {r.tolerance:g}"
                    for r in worst.itertuples(index=False)
                )
                + "."
            )
        out.append(s)
    if a.warnings:
        out.append(f"{len(a.warnings)} warning(s), listed below.")
    return out


def comparison_summary(cmp, top=4) -> list:
    """Sentences: whole-set changes and the clearest gap changes, B - A."""
    from ._gaps import gap_metric  # noqa: F401  (kept for symmetry with audit_summary)

    c = cmp.config
    ci = c.get("ci") or 0.95
    alpha = 1.0 - ci
    na, nb = c["names"][:2]
    d = cmp.differences
    out = []
    ov = d[(d["kind"] == "overall") & d["name"].isin(HEADLINE_METRICS[:4])]
    parts = []
    for r in ov.itertuples(index=False):
        s = f"{r.name} {r.a:.3f} -> {r.b:.3f} ({r.diff:+.3f}"
        if not (_nan(r.lo) or _nan(r.hi)):
            s += f" [{r.lo:+.3f}, {r.hi:+.3f}]"
        s += f", {p_words(r.p_value)})" if not _nan(r.p_value) else ")"
        parts.append(s)
    out.append(f"Whole set, {na} -> {nb}: " + "; ".join(parts) + ".")
    names = [g for g in HEADLINE_GAPS if g.endswith("_range")]
    gaps = d[(d["kind"] == "gap") & d["name"].isin(names)].dropna(subset=["diff"])
    key = gaps["p_adjusted"] if "p_adjusted" in gaps else gaps["p_value"]
    order = gaps.assign(_p=key.fillna(2.0), _m=-gaps["diff"].abs())
    for r in order.sort_values(["_p", "_m"], kind="mergesort").head(top).itertuples(index=False):
        way = "smaller" if r.diff < 0 else "larger"
        s = f"{r.family} {r.name}: {r.a:.3f} ({na}) -> {r.b:.3f} ({nb}), {way} by {abs(r.diff):.3f}"
        if not (_nan(r.lo) or _nan(r.hi)):
            s += f" ({ci:.0%} interval of the change {r.lo:+.3f} to {r.hi:+.3f})"
        p, adjusted = _p_of(r)
        if _nan(p):
            s += "."
        else:
            label = "adjusted paired " if adjusted else "paired "
            word = "unlikely to be chance" if p < alpha else "compatible with no change"
            s += f"; {label}{p_words(p)}: {word}."
        out.append(s)
    if cmp.warnings:
        out.append(f"{len(cmp.warnings)} warning(s), listed below.")
    return out
