"""Text and Markdown renderings of an audit for the terminal, papers and issues."""

from __future__ import annotations

import math

import pandas as pd

__all__ = ["format_text", "format_markdown", "HEADLINE_GAPS", "TABLE_METRICS"]

TABLE_METRICS = ["auc", "eer", "fpr", "tpr", "accuracy", "selection_rate"]
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


def _fmt(v, digits=3):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}"


def _cell(value, lo, hi, with_ci):
    s = _fmt(value)
    if with_ci and not (lo is None or math.isnan(lo)):
        s += f" [{_fmt(lo)}, {_fmt(hi)}]"
    return s


def _group_rows(result, family, metrics, with_ci):
    long = result.groups_long
    metrics = [m for m in metrics if m in result.config.get("metrics", metrics)]
    counts = result.counts[result.counts["family"] == family]
    rows = []
    for c in counts.itertuples(index=False):
        sel = long[(long["family"] == family) & (long["group"] == c.group)].set_index("metric")
        row = {"group": c.group, "n": c.n, "n_pos": c.n_pos, "n_neg": c.n_neg}
        for m in metrics:
            r = sel.loc[m]
            row[m] = _cell(r["value"], r["lo"], r["hi"], with_ci)
        flag = result.group_warnings.get((family, c.group))
        row["note"] = "small" if flag and c.n > 0 else ("empty" if c.n == 0 else "")
        rows.append(row)
    return pd.DataFrame(rows)


def _gap_rows(result, family, names, with_ci):
    g = result.gaps[result.gaps["family"] == family].set_index("name")
    names = [x for x in names if x in g.index]
    rows = []
    for name in names:
        r = g.loc[name]
        rows.append(
            {
                "gap": name,
                "value": _cell(r["value"], r["lo"], r["hi"], with_ci),
                "p_value": _fmt(r["p_value"], 4) if not math.isnan(r["p_value"]) else "-",
                "skipped": ", ".join(r["skipped"]) or "",
            }
        )
    return pd.DataFrame(rows)


def config_lines(result) -> list:
    c = result.config
    lines = [
        f"score rule: {c['score_rule_text']}",
        f"rows: {c['n_rows']} (dropped {c['n_dropped']}); families: {', '.join(c['families'])}",
    ]
    if c.get("n_boot"):
        lines.append(
            f"intervals: {c['ci']:.0%} {c['ci_method']} bootstrap, {c['n_boot']} "
            f"replicates, scheme {c['bootstrap']}, seed {c['seed']}"
        )
    else:
        lines.append("intervals: none (--n-boot 0)")
    if c.get("n_perm"):
        lines.append(
            f"p-values: permutation test, {c['n_perm']} permutations, {c.get('permutation', '')}"
        )
    bins = c.get("bootstrap_bins")
    if bins and not bins["exact"]:
        lines.append(
            f"note: replicates use {bins['n_bins']} score bins (ties within a bin) for "
            "ranking metrics; point estimates are exact"
        )
    lines.append(f"EER: {c['eer_definition']}")
    return lines


def format_text(result, *, all_gaps=False) -> str:
    from ._gaps import gap_names

    with_ci = bool(result.config.get("n_boot"))
    out = ["fairaudit report", "=" * 16] + config_lines(result) + [""]
    names = gap_names(result.config["metrics"]) if all_gaps else HEADLINE_GAPS
    with pd.option_context(
        "display.width", 250, "display.max_columns", 40, "display.max_colwidth", 40
    ):
        ov = _group_rows(result, "overall", TABLE_METRICS, with_ci)
        out += ["overall", ov.drop(columns=["group"]).to_string(index=False), ""]
        for fam in result.families:
            out += [
                f"family {fam}: groups",
                _group_rows(result, fam, TABLE_METRICS, with_ci).to_string(index=False),
                "",
            ]
            out += [
                f"family {fam}: gaps",
                _gap_rows(result, fam, names, with_ci).to_string(index=False),
                "",
            ]
        if result.reference is not None:
            ref = result.reference[result.reference["metric"].isin(["fpr", "tpr", "auc", "eer"])]
            out += [
                f"differences to reference group {ref['reference'].iloc[0]}",
                ref.pivot(index=["family", "group"], columns="metric", values="diff")
                .round(4)
                .to_string(),
                "",
            ]
    if result.warnings:
        out += ["warnings"] + [f"  - {w}" for w in result.warnings] + [""]
    if result.compat is not None:
        from ._compat import format_compat

        out += [
            "compatibility: research fairness-metrics script (--compat pg-fdd)",
            format_compat(result.compat),
            "",
        ]
    return "\n".join(out)


def format_markdown(result, *, all_gaps=False) -> str:
    from ._gaps import gap_names

    with_ci = bool(result.config.get("n_boot"))
    lines = ["## Fairness audit", ""] + [f"- {x}" for x in config_lines(result)] + [""]
    names = gap_names(result.config["metrics"]) if all_gaps else HEADLINE_GAPS
    for fam in result.families:
        g = _group_rows(result, fam, ["auc", "eer", "fpr", "tpr", "accuracy"], with_ci)
        lines += [
            f"### {fam}",
            "",
            _md_table(g),
            "",
            _md_table(_gap_rows(result, fam, names, with_ci)),
            "",
        ]
    if result.warnings:
        lines += ["### Warnings", ""] + [f"- {w}" for w in result.warnings] + [""]
    return "\n".join(lines)


def _md_table(df: pd.DataFrame) -> str:
    def esc(v):
        return str(v).replace("|", "\\|")

    head = "| " + " | ".join(map(esc, df.columns)) + " |"
    sep = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = ["| " + " | ".join(esc(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep] + body)


def _diff_rows(cmp, kind, family=None, names=None, metric=None):
    d = cmp.differences[cmp.differences["kind"] == kind]
    if family is not None:
        d = d[d["family"] == family]
    if names is not None:
        d = d[d["name"].isin(names)]
    if metric is not None:
        d = d[d["name"] == metric]
    rows = []
    for r in d.itertuples(index=False):
        rows.append(
            {
                "group" if kind == "group" else "name": r.group if kind == "group" else r.name,
                "A": _fmt(r.a),
                "B": _fmt(r.b),
                "B - A": _cell(r.diff, r.lo, r.hi, not math.isnan(r.lo)),
                "p_value": _fmt(r.p_value, 4),
            }
        )
    return pd.DataFrame(rows)


def format_comparison_text(cmp, *, all_gaps=False, markdown=False) -> str:
    """Paired differences B - A: gaps per family, overall metrics, per-group AUC."""
    from ._gaps import gap_names

    c = cmp.config
    a_name, b_name = c["names"]
    head = [
        f"score rules: {c['score_rule_text']}",
        f"rows: {c['n_rows']}; families: {', '.join(c['families'])}",
        (
            f"paired bootstrap: {c['n_boot']} replicates, scheme {c['bootstrap']}, "
            f"{c['ci']:.0%} percentile intervals, seed {c['seed']}"
        )
        if c["n_boot"]
        else "intervals: none (--n-boot 0)",
        "p-values: two-sided, H0 B - A = 0, by inverting the paired bootstrap interval"
        if c["n_boot"]
        else "p-values: none",
    ]
    names = gap_names(c["metrics"]) if all_gaps else HEADLINE_GAPS
    blocks = [("overall metrics", _diff_rows(cmp, "overall"))]
    for fam in cmp.a.families:
        blocks.append((f"family {fam}: gap differences", _diff_rows(cmp, "gap", fam, names)))
        blocks.append((f"family {fam}: per-group AUC", _diff_rows(cmp, "group", fam, metric="auc")))
    if markdown:
        out = [f"## Comparison: {b_name} - {a_name}", ""] + [f"- {x}" for x in head] + [""]
        for title, t in blocks:
            out += [f"### {title}", "", _md_table(t), ""]
    else:
        out = [f"fairaudit compare: {b_name} - {a_name}", "=" * 30] + head + [""]
        with pd.option_context("display.width", 250, "display.max_columns", 20):
            for title, t in blocks:
                out += [title, t.to_string(index=False), ""]
    if cmp.warnings:
        out += ["warnings"] + [f"  - {w}" for w in cmp.warnings]
    return "\n".join(out)
