"""Text and Markdown renderings of an audit or a comparison (terminal, papers, issues).

Both start with the same plain-words summary as the HTML report, then say how the numbers were
made, then the tables. Terminal tables fit :data:`WIDTH` columns: metric columns are split into
blocks and long cells wrap; ``all_metrics`` shows every metric (default: the headline ones).
Markdown holds everything the text holds. Nothing here computes a number.
"""

from __future__ import annotations

import math
import textwrap

from ._summary import (
    ADJUST_WORDS,
    HEADLINE_GAPS,
    HEADLINE_METRICS,
    audit_summary,
    class_names,
    comparison_summary,
    p_words,
)

__all__ = [
    "format_text",
    "format_markdown",
    "format_comparison_text",
    "HEADLINE_GAPS",
    "TABLE_METRICS",
    "WIDTH",
]

TABLE_METRICS = HEADLINE_METRICS
#: Terminal width the text report fits.
WIDTH = 100
OVERALL = "overall"


# ---------------------------------------------------------------------------- cells
def _nan(v) -> bool:
    try:
        return v is None or math.isnan(float(v))
    except (TypeError, ValueError):
        return True


def _fmt(v, digits=3, signed=False) -> str:
    if _nan(v):
        return "-"
    return f"{float(v):+.{digits}f}" if signed else f"{float(v):.{digits}f}"


def _cell(value, lo, hi, signed=False) -> str:
    s = _fmt(value, signed=signed)
    if not (_nan(lo) or _nan(hi)) and s != "-":
        s += f" [{_fmt(lo, signed=signed)}, {_fmt(hi, signed=signed)}]"
    return s


def _p(v) -> str:
    if _nan(v):
        return "-"
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def _direction(metric) -> str:
    from ._metrics import SPECS

    spec = SPECS.get(metric)
    return "" if spec is None else ("higher worse" if spec.higher_is_worse else "higher better")


# ---------------------------------------------------------------------------- grids
def _grid(header, rows, right=None) -> list:
    """Aligned columns, two spaces apart (right-aligned except the first column)."""
    right = set(range(1, len(header))) if right is None else set(right)
    cols = list(zip(*([header] + rows))) if rows else [[h] for h in header]
    widths = [max(len(str(x)) for x in c) for c in cols]
    out = []
    for r in [header] + rows:
        cells = [
            str(x).rjust(w) if i in right else str(x).ljust(w)
            for i, (x, w) in enumerate(zip(r, widths))
        ]
        out.append("  ".join(cells).rstrip())
    return out


def _blocks(keys, header, rows, width=WIDTH) -> list:
    """Split a wide table into blocks of columns that fit ``width``, repeating the ``keys``
    leading columns in each block."""
    widths = [max(len(str(x)) for x in c) for c in zip(*([header] + rows))]
    lead = sum(widths[:keys]) + 2 * keys
    out, start = [], keys
    while start < len(header):
        used, stop = lead, start
        while stop < len(header) and (stop == start or used + widths[stop] + 2 <= width):
            used += widths[stop] + 2
            stop += 1
        sel = list(range(keys)) + list(range(start, stop))
        if out:
            out.append("")
        out += _grid([header[i] for i in sel], [[r[i] for i in sel] for r in rows])
        start = stop
    return out


def _wrap(text, indent="  ", width=WIDTH) -> list:
    return textwrap.wrap(
        text, width=width, initial_indent=indent + "- ", subsequent_indent=indent + "  "
    )


# ---------------------------------------------------------------------------- how
def config_lines(result) -> list:
    """How every number was made, in words."""
    c = result.config
    lines = [f"score rule: {c['score_rule_text']}"]
    rows = f"rows: {c['n_rows']}"
    if c.get("n_dropped"):
        rows += f" ({c['n_dropped']} dropped: NaN/inf scores)"
    lines.append(rows + f"; families: {', '.join(c['families'])}")
    if c.get("n_boot"):
        scheme = c["bootstrap"]
        why = c.get("bootstrap_reason")
        lines.append(
            f"intervals: {c['ci']:.0%} {c['ci_method']} bootstrap of each metric, "
            f"{c['n_boot']} replicates, resampling {scheme}"
            + (f" ({why})" if why else "")
            + f", seed {c['seed']}"
        )
        gap_ci = c.get("gap_ci")
        if gap_ci == "max-t":
            lines.append(
                "gap intervals: max-t (simultaneous over the groups that can be the largest or "
                "smallest; they keep their coverage when groups are equal)"
            )
        elif gap_ci:
            lines.append(f"gap intervals: {gap_ci} bootstrap of the gap (biased near equality)")
    else:
        lines.append("intervals: none (--n-boot 0)")
    if c.get("n_perm"):
        lines.append(
            f"p-values: permutation test of no difference between groups, {c['n_perm']} "
            f"permutations ({c.get('permutation', '')}); "
            f"p_adjusted: {ADJUST_WORDS.get(c.get('p_adjust'), c.get('p_adjust'))}"
        )
    bins = c.get("bootstrap_bins")
    if bins and not bins.get("exact"):
        lines.append(
            f"accuracy: the scores have more distinct values than --max-bins, so replicates "
            f"group them into {bins['n_bins']} bins: counts and rates at the threshold stay "
            "exact, ranking metrics (AUC, EER, AP) of replicates differ from exact by at most "
            "the bound stated in the README"
            + ("" if c.get("state", {}).get("scores") == "grid" else "; point estimates are exact")
        )
    from ._state import scores_words

    if scores_words(c):
        lines.append(scores_words(c))
    lines.append(_direction_line(c.get("metrics", [])))
    tol = c.get("tolerance") or {}
    if tol:
        lines.append("tolerances: " + ", ".join(f"{k} {v:g}" for k, v in tol.items()))
    lines.append(f"EER: {c['eer_definition']}")
    return lines


def _direction_line(metrics) -> str:
    from ._metrics import SPECS

    better = [m for m in metrics if not SPECS[m].higher_is_worse]
    worse = [m for m in metrics if SPECS[m].higher_is_worse]
    return f"higher is better: {', '.join(better)}; higher is worse: {', '.join(worse)}"


def _files_line(result) -> str | None:
    files = (result.config.get("provenance") or {}).get("files") or {}
    if not files:
        return None
    parts = [
        f"{v.get('path', '?') if isinstance(v, dict) else v} ({role})" for role, v in files.items()
    ]
    return "audited: " + ", ".join(parts)


# ---------------------------------------------------------------------------- tables
def _metrics_of(result, all_metrics):
    have = list(result.config.get("metrics", []))
    return have if all_metrics else [m for m in TABLE_METRICS if m in have]


def _group_table(result, family, metrics):
    """Header and rows of one family's groups: counts, then metrics with intervals."""
    pos, neg = class_names(result.config)
    long = result.groups_long[result.groups_long["family"] == family]
    val = long.set_index(["group", "metric"])
    header = ["group", "n", pos, neg] + list(metrics)
    rows = []
    for c in result.counts[result.counts["family"] == family].itertuples(index=False):
        name = c.group + (" (empty)" if c.n == 0 else "")
        if c.n and result.group_warnings.get((family, c.group)):
            name += " (small)"
        row = [name, c.n, c.n_pos, c.n_neg]
        for m in metrics:
            r = val.loc[(c.group, m)]
            row.append(_cell(r["value"], r["lo"], r["hi"]))
        rows.append(row)
    return header, rows


def _gap_table(result, family, names):
    g = result.gaps[result.gaps["family"] == family].set_index("name")
    names = [x for x in names if x in g.index]
    verdicts = "verdict" in g and g.loc[names, "verdict"].notna().any() if names else False
    unusable = "n_unusable" in g and (g.loc[names, "n_unusable"] > 0).any() if names else False
    header = ["gap", "value [interval]", "p", "p_adj"]
    header += ["verdict (tolerance)"] if verdicts else []
    header += ["unusable reps"] if unusable else []
    header += ["left out"]
    rows = []
    for name in names:
        r = g.loc[name]
        row = [name, _cell(r["value"], r["lo"], r["hi"]), _p(r["p_value"]), _p(r.get("p_adjusted"))]
        if verdicts:
            row.append(
                f"{r['verdict']} ({r['tolerance']:g})" if isinstance(r["verdict"], str) else ""
            )
        if unusable:
            row.append(int(r["n_unusable"]))
        row.append(", ".join(r["skipped"]))
        rows.append(row)
    return header, rows


def _reference_table(result, all_metrics):
    ref = result.reference
    metrics = _metrics_of(result, all_metrics)
    ref = ref[ref["metric"].isin(metrics)]
    header = [
        "group",
        "reference",
        "metric",
        "difference [interval]",
        "ratio [interval]",
        "p",
        "p_adj",
    ]
    rows = [
        [
            f"{r.family}={r.group}",
            r.reference,
            r.metric,
            _cell(r.diff, r.diff_lo, r.diff_hi, signed=True),
            _cell(r.ratio, r.ratio_lo, r.ratio_hi),
            _p(r.p_value),
            _p(r.p_adjusted),
        ]
        for r in ref.itertuples(index=False)
    ]
    return header, rows


def _sections(result, *, all_gaps, all_metrics):
    """(title, header, rows) of every table of an audit, in output order."""
    from ._gaps import gap_names

    metrics = _metrics_of(result, all_metrics)
    names = gap_names(result.config["metrics"]) if all_gaps else _shown_gaps(result)
    out = [("whole set", *_group_table(result, OVERALL, list(result.config["metrics"])))]
    for fam in result.families:
        out.append((f"family {fam}: groups", *_group_table(result, fam, metrics)))
        out.append((f"family {fam}: gaps", *_gap_table(result, fam, names)))
    if result.reference is not None and len(result.reference):
        out.append(
            (
                "differences and ratios to the reference groups",
                *_reference_table(result, all_metrics),
            )
        )
    return out


def _shown_gaps(result) -> list:
    """The headline gaps, then every other gap judged against a tolerance."""
    judged = []
    if "verdict" in result.gaps:
        judged = list(dict.fromkeys(result.gaps.loc[result.gaps["verdict"].notna(), "name"]))
    return HEADLINE_GAPS + [g for g in judged if g not in HEADLINE_GAPS]


def _whole_set_lines(header, rows):
    """The whole set as one line of counts and a metric-per-row table (it has one row)."""
    r = rows[0]
    counts = f"{r[1]} rows: {r[2]} {header[2]}, {r[3]} {header[3]}"
    table = _grid(
        ["metric", "value [interval]", "direction"],
        [[h, v, _direction(h)] for h, v in zip(header[4:], r[4:])],
        right=[1],
    )
    return [counts] + table


# ---------------------------------------------------------------------------- audit
def format_text(result, *, all_gaps=False, all_metrics=False) -> str:
    """The terminal report: summary, how, tables (each line at most :data:`WIDTH` columns)."""
    out = ["fairaudit report", "=" * 16]
    files = _files_line(result)
    if files:
        out += textwrap.wrap(files, WIDTH, subsequent_indent="  ")
    out += ["", "summary"]
    for s in audit_summary(result):
        out += _wrap(s)
    out += ["", "how the numbers were made"]
    for s in config_lines(result):
        out += _wrap(s)
    for title, header, rows in _sections(result, all_gaps=all_gaps, all_metrics=all_metrics):
        out += ["", title]
        if title == "whole set":
            out += _whole_set_lines(header, rows)
        else:
            keys = 4 if title.endswith("groups") else 1
            out += _blocks(keys, header, _wrapped_rows(rows))
    if not all_metrics:
        out += [
            "",
            f"(headline metrics shown; --all-metrics shows all {len(result.config['metrics'])})",
        ]
    if result.warnings:
        out += ["", "warnings"] + [x for w in result.warnings for x in _wrap(w)]
    if result.compat is not None:
        from ._compat import format_compat

        out += ["", "compatibility: research fairness-metrics script (--compat pg-fdd)"]
        out += format_compat(result.compat).splitlines()
    return "\n".join(out)


def _wrapped_rows(rows, limit=40):
    """Long free-text cells (the groups left out) are shortened to keep columns narrow."""
    out = []
    for r in rows:
        r = list(r)
        if isinstance(r[-1], str) and len(r[-1]) > limit:
            r[-1] = r[-1][: limit - 3] + "..."
        out.append(r)
    return out


def format_markdown(result, *, all_gaps=False, all_metrics=False) -> str:
    """The same content as :func:`format_text`, as Markdown."""
    lines = ["## Fairness audit", ""]
    files = _files_line(result)
    if files:
        lines += [files, ""]
    lines += ["### Summary", ""] + [f"- {s}" for s in audit_summary(result)] + [""]
    lines += ["### How the numbers were made", ""] + [f"- {x}" for x in config_lines(result)]
    for title, header, rows in _sections(result, all_gaps=all_gaps, all_metrics=all_metrics):
        lines += ["", f"### {title[0].upper()}{title[1:]}", "", _md_table(header, rows)]
    if result.warnings:
        lines += ["", "### Warnings", ""] + [f"- {w}" for w in result.warnings]
    if result.compat is not None:
        from ._compat import format_compat

        lines += [
            "",
            "### Compatibility (--compat pg-fdd)",
            "",
            "```",
            format_compat(result.compat),
            "```",
        ]
    return "\n".join(lines) + "\n"


def _md_table(header, rows=None) -> str:
    """A Markdown table (``|`` escaped in cells)."""

    def esc(v):
        return str(v).replace("|", "\\|")

    if hasattr(header, "columns"):  # a DataFrame (kept for callers that pass one)
        header, rows = list(header.columns), [list(r) for r in header.itertuples(index=False)]
    head = "| " + " | ".join(map(esc, header)) + " |"
    sep = "| " + " | ".join("---" for _ in header) + " |"
    body = ["| " + " | ".join(esc(v) for v in row) + " |" for row in rows]
    return "\n".join([head, sep] + body)


# ---------------------------------------------------------------------------- comparison
def _diff_table(cmp, kind, family=None, names=None, metric=None):
    d = cmp.differences[cmp.differences["kind"] == kind]
    if family is not None:
        d = d[d["family"] == family]
    if names is not None:
        d = d[d["name"].isin(names)]
    if metric is not None:
        d = d[d["name"] == metric]
    na, nb = cmp.config["names"][:2]
    first = "group" if kind == "group" else ("metric" if kind == "overall" else "gap")
    header = [first, na, nb, f"{nb} - {na} [interval]", "p", "p_adj"]
    rows = [
        [
            r.group if kind == "group" else r.name,
            _fmt(r.a),
            _fmt(r.b),
            _cell(r.diff, r.lo, r.hi, signed=True),
            _p(r.p_value),
            _p(getattr(r, "p_adjusted", float("nan"))),
        ]
        for r in d.itertuples(index=False)
    ]
    return header, rows


def _comparison_how(cmp) -> list:
    c = cmp.config
    lines = [
        f"score rules: {c['score_rule_text']}",
        f"rows: {c['n_rows']}; families: {', '.join(c['families'])}",
    ]
    if c["n_boot"]:
        gap = {"max-t": "max-t (simultaneous over the candidate groups of both detectors)"}.get(
            c.get("gap_ci"), f"{c.get('gap_ci')} bootstrap of the change"
        )
        lines.append(
            f"paired bootstrap: {c['n_boot']} replicates, resampling {c['bootstrap']}, "
            f"{c['ci']:.0%} intervals (metrics: percentile; gap changes: {gap}), seed {c['seed']}"
        )
        lines.append(
            "p-values: two-sided, H0 B - A = 0, by inverting the paired interval (p < 1 - ci "
            f"exactly when it excludes 0); p_adjusted: {ADJUST_WORDS.get(c.get('p_adjust'), '')}"
        )
    else:
        lines.append("intervals: none (--n-boot 0)")
    return lines


def format_comparison_text(cmp, *, all_gaps=False, markdown=False, all_metrics=False) -> str:
    """Paired differences B - A: summary, how, whole set, gaps per family, per-group metrics."""
    from ._gaps import gap_names

    c = cmp.config
    a_name, b_name = c["names"]
    names = gap_names(c["metrics"]) if all_gaps else HEADLINE_GAPS
    metrics = _metrics_of(cmp.a, all_metrics)
    blocks = [("whole set", *_diff_table(cmp, "overall"))]
    for fam in cmp.a.families:
        blocks.append((f"family {fam}: gap differences", *_diff_table(cmp, "gap", fam, names)))
        for m in metrics[:1] if not all_metrics else metrics:
            blocks.append(
                (f"family {fam}: per-group {m}", *_diff_table(cmp, "group", fam, metric=m))
            )
    summary = comparison_summary(cmp)
    how = _comparison_how(cmp)
    if markdown:
        out = [f"## Comparison: {b_name} - {a_name}", "", "### Summary", ""]
        out += [f"- {s}" for s in summary] + ["", "### How the numbers were made", ""]
        out += [f"- {x}" for x in how]
        for title, header, rows in blocks:
            out += ["", f"### {title[0].upper()}{title[1:]}", "", _md_table(header, rows)]
        if cmp.warnings:
            out += ["", "### Warnings", ""] + [f"- {w}" for w in cmp.warnings]
        return "\n".join(out) + "\n"
    title = f"fairaudit compare: {b_name} - {a_name}"
    out = [title, "=" * len(title)]
    files = _files_line(cmp)
    if files:
        out += textwrap.wrap(files, WIDTH, subsequent_indent="  ")
    out += ["", "summary"] + [x for s in summary for x in _wrap(s)]
    out += ["", "how the numbers were made"] + [x for s in how for x in _wrap(s)]
    for title, header, rows in blocks:
        out += ["", title] + _blocks(1, header, rows)
    if cmp.warnings:
        out += ["", "warnings"] + [x for w in cmp.warnings for x in _wrap(w)]
    return "\n".join(out)


__all__ += ["p_words", "config_lines"]
