"""The self-contained HTML report of an audit or a comparison, and the notebook renderings.

``report.html`` is one file: styles inline, figures embedded as base64 PNG, no script, no
font, no link that leaves the page. Every user string (group, attribute and file names,
detector names, warnings) goes through :func:`html.escape`.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import platform
import re
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["render_html", "write_report", "audit_repr_html", "build_figures"]

OVERALL = "overall"
FIGURE_FORMATS = ("png", "svg", "pdf")
EMBED_DPI = 150
FILE_DPI = 300

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:#1a1a1a;background:#fff;margin:0;line-height:1.45;font-size:15px}
main{max-width:1100px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.25em;margin:36px 0 10px;
 border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:1.05em;margin:22px 0 8px}
.sub{color:#555;margin:0 0 12px}nav a{margin-right:14px;color:#0072B2}
table{border-collapse:collapse;margin:6px 0 12px;font-size:.86em}
th,td{border-bottom:1px solid #e4e4e4;padding:3px 9px;text-align:right;vertical-align:top}
th{background:#f4f4f4;font-weight:600}td.l,th.l{text-align:left}
.scroll{overflow-x:auto;max-width:100%}.ci{color:#666;font-size:.86em;white-space:nowrap}
.sig{font-weight:600}.small{background:#fff4d6}.tag{display:inline-block;padding:0 5px;
 border-radius:3px;font-size:.8em;background:#f0e0b0;margin-left:4px}
.na{color:#999}ul.headline li{margin:4px 0}.warn li{margin:2px 0}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}
.mono{word-break:break-all}figure{margin:18px 0 26px}figure img{max-width:100%;height:auto;
 border:1px solid #eee}figcaption{color:#444;font-size:.9em;margin-top:4px}
details{margin:6px 0 12px}summary{cursor:pointer;color:#0072B2}
pre{background:#f7f7f7;padding:10px;overflow-x:auto;font-size:.82em}
.note{color:#555;font-size:.9em}
"""


# ---------------------------------------------------------------------------- small helpers
def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _isnan(v) -> bool:
    if v is None:
        return True
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        return False


def _f(v, digits=3) -> str:
    return "&ndash;" if _isnan(v) else f"{float(v):.{digits}f}"


def _p(v) -> str:
    """A p-value cell: ``0.034`` or ``< 0.001``."""
    if _isnan(v):
        return "&ndash;"
    return "&lt; 0.001" if v < 0.001 else f"{float(v):.3f}"


def _p_words(v) -> str:
    """A p-value in a sentence: ``p = 0.034`` or ``p &lt; 0.001`` (never ``p = < 0.001``)."""
    from ._summary import p_words

    return _e(p_words(v))


def _cell(v, lo, hi, *, signed=False) -> str:
    if _isnan(v):
        return '<span class="na">&ndash;</span>'
    s = f"{float(v):+.3f}" if signed else f"{float(v):.3f}"
    if not (_isnan(lo) or _isnan(hi)):
        s += f' <span class="ci">[{float(lo):.3f}, {float(hi):.3f}]</span>'
    return s


_L = ' class="l"'


def _table(header, rows, *, left=1, row_class=None) -> str:
    """HTML table; header cells escaped here, body cells are HTML already."""
    out = ['<div class="scroll"><table><thead><tr>']
    out += [f"<th{_L if i < left else ''}>{_e(h)}</th>" for i, h in enumerate(header)]
    out.append("</tr></thead><tbody>")
    for k, r in enumerate(rows):
        cls = row_class[k] if row_class else ""
        out.append(f'<tr class="{cls}">' if cls else "<tr>")
        out += [f"<td{_L if i < left else ''}>{c}</td>" for i, c in enumerate(r)]
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _is_comparison(result) -> bool:
    return hasattr(result, "differences") and hasattr(result, "a")


def _ci_words(config) -> str:
    ci = config.get("ci") or 0.95
    return f"{ci:.0%} CI"


def _metric_list(audit, wanted):
    have = audit.config.get("metrics", [])
    return [m for m in wanted if m in have]


def _table_metrics():
    from ._format import TABLE_METRICS

    return TABLE_METRICS


def _headline_range_gaps():
    from ._format import HEADLINE_GAPS

    return [g for g in HEADLINE_GAPS if g.endswith("_range")]


def _versions() -> list:
    from . import __version__

    out = [("fairaudit", __version__), ("numpy", np.__version__), ("pandas", pd.__version__)]
    try:
        import matplotlib

        out.append(("matplotlib", matplotlib.__version__))
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        pass
    out.append(("python", platform.python_version()))
    return out


# ---------------------------------------------------------------------------- headline
def _extremes(audit, family, metric):
    t = audit.groups_long
    t = t[(t["family"] == family) & (t["metric"] == metric)].dropna(subset=["value"])
    if t.empty:
        return None
    lo = t.loc[t["value"].idxmin()]
    hi = t.loc[t["value"].idxmax()]
    return (lo["group"], lo["value"]), (hi["group"], hi["value"])


def _headline(sentences) -> str:
    """The shared plain-words summary as an HTML list (escaped; the verdict words in bold)."""
    items = []
    for text in sentences:
        t = _e(text)
        for word in ("unlikely if the groups did not differ", "unlikely to be chance", "Exceeding"):
            t = t.replace(word, f'<span class="sig">{word}</span>')
        if text.endswith("listed below."):
            t = t.replace("listed below.", 'see <a href="#warnings">Warnings</a>.')
        items.append(f"<li>{t}</li>")
    return '<ul class="headline">' + "".join(items) + "</ul>"


def _headline_audit(a) -> str:
    from ._summary import audit_summary

    return _headline(audit_summary(a))


def _headline_comparison(cmp) -> str:
    from ._summary import comparison_summary

    return _headline(comparison_summary(cmp))


# ---------------------------------------------------------------------------- tables
def _group_table(a, family, metrics) -> str:
    long = a.groups_long[a.groups_long["family"] == family].set_index(["group", "metric"])
    und = a.undefined[a.undefined["family"] == family].set_index(["group", "metric"])["reason"]
    rows, classes = [], []
    for c in a.counts[a.counts["family"] == family].itertuples(index=False):
        small = bool(a.group_warnings.get((family, c.group)))
        name = (
            _e(c.group)
            + (' <span class="tag">small</span>' if small and c.n else "")
            + (' <span class="tag">empty</span>' if c.n == 0 else "")
        )
        row = [name, str(c.n), str(c.n_pos), str(c.n_neg)]
        for m in metrics:
            r = long.loc[(c.group, m)]
            cell = _cell(r["value"], r["lo"], r["hi"])
            if (c.group, m) in und.index:
                cell = f'<span class="na" title="{_e(und.loc[(c.group, m)])}">undefined</span>'
            row.append(cell)
        rows.append(row)
        classes.append("small" if small else "")
    return _table(["group", "n", "fake", "real"] + list(metrics), rows, row_class=classes)


def _gap_table(a, family, names) -> str:
    g = a.gaps[(a.gaps["family"] == family) & a.gaps["name"].isin(names)]
    g = g.set_index("name").reindex([n for n in names if n in set(g["name"])])
    judged = "verdict" in g and g["verdict"].notna().any()
    rows = []
    for name, r in g.iterrows():
        row = [
            f"<code>{_e(name)}</code>",
            _cell(r["value"], r["lo"], r["hi"]),
            _p(r["p_value"]),
            _p(r.get("p_adjusted")),
        ]
        if judged:
            v = r["verdict"]
            row.append(f"{_e(v)} ({r['tolerance']:g})" if isinstance(v, str) else "")
        row.append(_e(", ".join(r["skipped"])) if r["skipped"] else "")
        rows.append(row)
    head = ["gap", "value [interval]", "p-value", "adjusted p"]
    head += ["verdict (tolerance)"] if judged else []
    return _table(head + ["left out (undefined)"], rows)


def _audit_tables(a) -> str:
    from ._gaps import gap_names

    c = a.config
    main_metrics = _metric_list(a, _table_metrics())
    all_metrics = list(c.get("metrics", []))
    out = ["<h3>Whole set</h3>", _group_table(a, OVERALL, all_metrics)]
    from ._format import _shown_gaps

    headline = [g for g in _shown_gaps(a) if g in set(a.gaps["name"])]
    every = [g for g in gap_names(all_metrics) if g in set(a.gaps["name"])]
    for fam in a.families:
        out.append(f'<h3 id="family-{_slug(fam)}">Family {_e(fam)}</h3>')
        out.append(_group_table(a, fam, main_metrics))
        out.append(
            f"<details><summary>all {len(all_metrics)} metrics of {_e(fam)}</summary>"
            + _group_table(a, fam, all_metrics)
            + "</details>"
        )
        out.append(_gap_table(a, fam, headline))
        out.append(
            f"<details><summary>all {len(every)} gaps of {_e(fam)}</summary>"
            + _gap_table(a, fam, every)
            + "</details>"
        )
    if a.reference is not None and len(a.reference):
        ref = a.reference
        rows = [
            [
                _e(r.family),
                _e(r.group),
                _e(r.reference),
                f"<code>{_e(r.metric)}</code>",
                _cell(r.diff, r.diff_lo, r.diff_hi, signed=True),
                _cell(r.ratio, r.ratio_lo, r.ratio_hi),
                _p(r.p_value),
                _p(r.p_adjusted),
            ]
            for r in ref.itertuples(index=False)
        ]
        refs = ", ".join(dict.fromkeys(ref["reference"]))
        out.append(f"<h3>Differences and ratios to the reference groups ({_e(refs)})</h3>")
        out.append(
            "<details><summary>table</summary>"
            + _table(
                [
                    "family",
                    "group",
                    "reference",
                    "metric",
                    "difference [interval]",
                    "ratio [interval]",
                    "p-value",
                    "adjusted p",
                ],
                rows,
                left=4,
            )
            + "</details>"
        )
    if a.compat is not None:
        try:
            from ._compat import format_compat

            text = format_compat(a.compat)
        except Exception as exc:  # the compatibility block must not break the report
            text = f"(could not format the compatibility block: {exc})"
        out.append("<h3>Compatibility: the research fairness-metrics script</h3>")
        out.append(f"<pre>{_e(text)}</pre>")
    return "".join(out)


def _comparison_tables(cmp) -> str:
    from ._format import HEADLINE_GAPS
    from ._gaps import gap_names

    c = cmp.config
    na, nb = c["names"][:2]
    d = cmp.differences
    head = ["", na, nb, f"{nb} - {na} [interval]", "p-value", "adjusted p"]

    def rows_of(sel, label):
        return [
            [
                label(r),
                _f(r.a),
                _f(r.b),
                _cell(r.diff, r.lo, r.hi, signed=True),
                _p(r.p_value),
                _p(getattr(r, "p_adjusted", None)),
            ]
            for r in sel.itertuples(index=False)
        ]

    out = [
        "<h3>Whole set</h3>",
        _table(
            ["metric"] + head[1:],
            rows_of(d[d["kind"] == "overall"], lambda r: f"<code>{_e(r.name)}</code>"),
        ),
    ]
    main_metrics = _metric_list(cmp.a, _table_metrics())
    all_metrics = list(c.get("metrics", []))
    headline = [g for g in HEADLINE_GAPS if g in set(d["name"])]
    every = [g for g in gap_names(all_metrics) if g in set(d.loc[d["kind"] == "gap", "name"])]
    for fam in cmp.a.families:
        gd = d[(d["kind"] == "gap") & (d["family"] == fam)].set_index("name")
        out.append(f'<h3 id="family-{_slug(fam)}">Family {_e(fam)}</h3>')
        out.append(
            _table(
                ["gap"] + head[1:],
                rows_of(
                    gd.loc[[g for g in headline if g in gd.index]].reset_index(),
                    lambda r: f"<code>{_e(r.name)}</code>",
                ),
            )
        )
        out.append(
            f"<details><summary>all {len(every)} gap differences of {_e(fam)}</summary>"
            + _table(
                ["gap"] + head[1:],
                rows_of(
                    gd.loc[[g for g in every if g in gd.index]].reset_index(),
                    lambda r: f"<code>{_e(r.name)}</code>",
                ),
            )
            + "</details>"
        )
        gr = d[(d["kind"] == "group") & (d["family"] == fam)]
        for m in main_metrics:
            sel = gr[gr["name"] == m]
            out.append(
                f"<details><summary>per-group <code>{_e(m)}</code> of {_e(fam)}"
                "</summary>"
                + _table(["group"] + head[1:], rows_of(sel, lambda r: _e(r.group)))
                + "</details>"
            )
    for label, a in ((na, cmp.a), (nb, cmp.b)):
        out.append(f"<details><summary>groups of detector {_e(label)} (point estimates)</summary>")
        for fam in a.families:
            out.append(f"<h4>{_e(fam)}</h4>" + _group_table(a, fam, main_metrics))
        out.append("</details>")
    return "".join(out)


# ---------------------------------------------------------------------------- config
def _files_rows(config):
    prov = config.get("provenance") or {}
    rows = []
    for role, info in (prov.get("files") or {}).items():
        if isinstance(info, dict):
            rows.append(
                [
                    _e(role),
                    f'<span class="mono">{_e(info.get("path", ""))}</span>',
                    f'<span class="mono">{_e(info.get("sha256", "") or "")}</span>',
                ]
            )
        else:
            rows.append([_e(role), f'<span class="mono">{_e(info)}</span>', ""])
    return rows


def _config_section(result) -> str:
    cmp = _is_comparison(result)
    c = result.config
    a = result.a if cmp else result
    prov = c.get("provenance") or {}
    kv = []
    if cmp:
        kv.append(
            (
                "detectors",
                f"A = {_e(c['names'][0])}, B = {_e(c['names'][1])}; differences are B - A",
            )
        )
    kv.append(("score rule", _e(c.get("score_rule_text", c.get("score_rule", "")))))
    kv.append(
        ("threshold", f"{c.get('threshold'):g} on p(fake) (predicted fake when p &ge; threshold)")
    )
    kv.append(("rows", f"{c.get('n_rows')} used, {c.get('n_dropped', 0)} dropped"))
    if prov.get("groups_from"):
        kv.append(("groups from", _e(prov["groups_from"])))
    if c.get("dataset"):
        kv.append(("dataset coding", _e(c["dataset"])))
    kv.append(
        (
            "attributes / families",
            _e(", ".join(c.get("attributes", []))) + " / " + _e(", ".join(c.get("families", []))),
        )
    )
    if c.get("n_boot"):
        kv.append(
            (
                "intervals",
                f"{(c.get('ci') or 0.95):.0%} {_e(c.get('ci_method'))} "
                f"bootstrap, {c['n_boot']} replicates",
            )
        )
        kv.append(
            (
                "resampling scheme",
                _e(c.get("bootstrap"))
                + (" (whole clusters)" if c.get("bootstrap") == "cluster" else ""),
            )
        )
    else:
        kv.append(("intervals", "none (no bootstrap replicates)"))
    if cmp:
        kv.append(("p-values", _e(c.get("paired", "")) if c.get("n_boot") else "none"))
    elif c.get("n_perm"):
        kv.append(
            (
                "p-values",
                f"permutation test of no disparity, {c['n_perm']} "
                f"permutations: {_e(c.get('permutation', ''))}",
            )
        )
    else:
        kv.append(("p-values", "none (no permutations)"))
    kv.append(("seed", _e(c.get("seed"))))
    kv.append(("small-group limit", f"fewer than {_e(c.get('min_count'))} fakes or reals"))
    kv.append(("sample weights", "yes" if c.get("weighted") else "no"))
    kv.append(("clusters", "yes" if c.get("clusters") else "no"))
    if c.get("reference"):
        kv.append(("reference group", _e(c["reference"])))
    bins = c.get("bootstrap_bins")
    if bins and not bins.get("exact"):
        kv.append(
            (
                "score bins",
                f"replicates use {bins['n_bins']} score bins for the ranking metrics"
                + (
                    ""
                    if c.get("state", {}).get("scores") == "grid"
                    else "; point estimates are exact"
                ),
            )
        )
    from ._state import scores_words

    if scores_words(c):
        kv.append(("scores", _e(scores_words(c))))
    kv.append(("EER", _e(c.get("eer_definition", ""))))
    if c.get("note"):
        kv.append(("note", _e(c["note"])))
    kv.append(("versions", ", ".join(f"{_e(k)} {_e(v)}" for k, v in _versions())))
    out = [_table(["setting", "value"], [[_e(k), v] for k, v in kv], left=2)]
    files = _files_rows(c)
    if files:
        out.append("<h3>Input files</h3>")
        out.append(_table(["role", "file", "sha256"], files, left=3))
    elif not cmp and a is not None:
        out.append('<p class="note">Inputs were arrays (no files recorded).</p>')
    return "".join(out)


def _warnings_section(result) -> str:
    cmp = _is_comparison(result)
    warnings = list(result.warnings)
    out = []
    if warnings:
        out.append('<ul class="warn">' + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul>")
    else:
        out.append(
            "<p>None: every group has enough fakes and reals, every metric is "
            "defined and no row was dropped.</p>"
        )
    audits = (
        [("", result)]
        if not cmp
        else [(result.config["names"][0], result.a), (result.config["names"][1], result.b)]
    )
    for label, a in audits:
        und = a.undefined
        if len(und):
            rows = [
                [_e(r.family), _e(r.group), f"<code>{_e(r.metric)}</code>", _e(r.reason)]
                for r in und.itertuples(index=False)
            ]
            title = "Undefined metrics" + (f" of {_e(label)}" if label else "")
            out.append(
                f"<details><summary>{title} ({len(und)})</summary>"
                + _table(["family", "group", "metric", "reason"], rows, left=4)
                + "</details>"
            )
    return "".join(out)


def _definitions(result) -> str:
    from ._gaps import COMPOSITES, GAP_KINDS
    from ._metrics import METRICS

    have = set(result.config.get("metrics", []))
    rows = [
        [
            f"<code>{_e(m.name)}</code>",
            _e(m.formula),
            "higher is worse" if m.higher_is_worse else "higher is better",
        ]
        for m in METRICS
        if m.name in have
    ]
    out = [_table(["metric", "definition", "direction"], rows, left=3)]
    rows = [[f"<code>&lt;metric&gt;_{_e(k)}</code>", _e(v)] for k, v in GAP_KINDS.items()]
    rows += [[f"<code>{_e(k)}</code>", _e(v)] for k, v in COMPOSITES.items()]
    out.append(_table(["gap", "definition"], rows, left=2))
    out.append(
        '<p class="note">Labels: 1 = fake (positive class), 0 = real. Scores: higher '
        "= more likely fake.</p>"
    )
    return "".join(out)


# ---------------------------------------------------------------------------- figures
def _slug(name) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._")
    return s or "x"


def _figure(size):
    from matplotlib.figure import Figure

    return Figure(figsize=size, layout="constrained")


def build_figures(result) -> list:
    """Every figure of the report: a list of ``(name, title, caption, Figure)``.

    Figures are made without pyplot (no GUI backend, nothing left open). The raw-score
    figures are included when the audit holds ``extras["data"]``.
    """
    import matplotlib as mpl

    from . import plots

    with mpl.rc_context(plots.PAPER_RC):
        if _is_comparison(result):
            return _comparison_figures(result, plots)
        return _audit_figures(result, plots)


def _has_data(a) -> bool:
    return isinstance(getattr(a, "extras", None), dict) and a.extras.get("data") is not None


#: Families drawn per figure: single attributes and small intersections (the rest in tables).
FIGURE_ROWS = 60
SCORE_PANELS = 6


def figure_families(result, plots):
    """The families the figures show, and those only the tables show."""
    a = result.a if _is_comparison(result) else result
    shown = plots.readable_families(result, max_rows=FIGURE_ROWS)
    return shown, [f for f in a.families if f not in shown]


def _audit_figures(a, plots) -> list:
    figs = []
    lay = plots._Layout.of(a)
    fams, _ = figure_families(a, plots)
    n_rows = sum(len(lay.groups[f]) + 1 for f in fams)
    ci = _ci_words(a.config) if a.config.get("n_boot") else None
    metrics = _metric_list(a, plots.DEFAULT_PANEL_METRICS)
    if metrics:
        fig = _figure(
            (plots.PAGE_WIDTH if len(metrics) > 2 else plots.COLUMN_WIDTH, 0.7 + 0.16 * n_rows)
        )
        plots.plot_group_metrics(a, metrics, families=fams, fig=fig)
        figs.append(
            (
                "group_metrics",
                "Per-group metrics",
                "Each bar is one group; whiskers: "
                + (ci or "no intervals")
                + "; dashed line: the whole set. Pale bars marked * have few fakes or "
                "reals.",
                fig,
            )
        )
    for fam in [f for f in lay.two_attribute_families() if f in fams]:
        hm = _metric_list(a, ("fpr", "tpr", "auc", "eer"))
        if not hm:
            break
        rows_ = len(lay.values[lay.family_attrs[fam][0]])
        ncols = 2 if len(hm) > 1 else 1
        nrows = math.ceil(len(hm) / ncols)
        fig = _figure(
            (plots.PAGE_WIDTH if ncols > 1 else plots.COLUMN_WIDTH, nrows * (0.9 + 0.42 * rows_))
        )
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
        for ax, m in zip(axes, hm):
            plots.plot_heatmap(a, m, family=fam, ax=ax)
        for ax in axes[len(hm) :]:
            ax.set_visible(False)
        figs.append(
            (
                f"heatmap_{_slug(fam)}",
                f"Intersections: {fam}",
                "Each cell is one intersection group; darker is worse. Hatched cells "
                "(value marked *) have few fakes or reals; grey cells are undefined.",
                fig,
            )
        )
    names = [g for g in plots.DEFAULT_FOREST_GAPS if g in set(a.gaps["name"])]
    if names:
        fig = _figure((plots.COLUMN_WIDTH + 0.6, plots._forest_height(len(fams), len(names))))
        plots.plot_gap_forest(a, families=fams, ax=fig.subplots())
        figs.append(
            (
                "gap_forest",
                "Gaps with intervals and p-values",
                "Each row is one gap of one family; filled points: permutation p "
                "below the level; the line at 0 means no gap.",
                fig,
            )
        )
    if _has_data(a):
        figs += _score_figures(a, plots, fams[:SCORE_PANELS], "")
    return figs


def _square_panels(plots, k, per_row=3):
    """A figure of k square panels, at most ``per_row`` across (unused ones hidden)."""
    ncols = min(k, per_row)
    nrows = math.ceil(k / ncols)
    side = plots.PAGE_WIDTH / ncols if k > 1 else plots.COLUMN_WIDTH
    fig = _figure((plots.PAGE_WIDTH if k > 1 else plots.COLUMN_WIDTH, nrows * (side + 0.25)))
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[k:]:
        ax.set_visible(False)
    return fig, axes[:k]


def _score_figures(a, plots, families, suffix) -> list:
    figs = []
    k = len(families)
    label = f" ({suffix})" if suffix else ""
    slug = f"_{_slug(suffix)}" if suffix else ""
    fig, axes = _square_panels(plots, k)
    for ax, fam in zip(axes, families):
        plots.plot_roc(a, family=fam, ax=ax)
        if suffix:
            ax.set_title(f"{plots._t(suffix)}: {ax.get_title()}")
    figs.append(
        (
            f"roc{slug}",
            f"ROC curves per group{label}",
            "One curve per group, the whole set in black; markers: the operating point "
            "at the threshold.",
            fig,
        )
    )
    fig = _figure((plots.PAGE_WIDTH, 2.3 * k))
    for ax, fam in zip(np.atleast_1d(fig.subplots(k, 1, squeeze=False).ravel()), families):
        plots.plot_score_distributions(a, family=fam, ax=ax)
    figs.append(
        (
            f"score_distributions{slug}",
            f"Score distributions{label}",
            "p(fake) per group: reals on the left (pale), fakes on the right; black "
            "ticks: medians; dashed line: the threshold.",
            fig,
        )
    )
    fig = _figure((plots.PAGE_WIDTH, 2.1 * k))
    grid = fig.subplots(k, 3, squeeze=False)
    for row, fam in zip(grid, families):
        plots.plot_threshold_sweep(a, family=fam, axes=list(row))
    figs.append(
        (
            f"threshold_sweep{slug}",
            f"Threshold sweep{label}",
            "False- and true-positive rates of every group and the gaps of the family "
            "as the threshold moves; dotted line: the threshold in use.",
            fig,
        )
    )
    fig, axes = _square_panels(plots, k)
    for ax, fam in zip(axes, families):
        plots.plot_calibration(a, family=fam, ax=ax)
    figs.append(
        (
            f"calibration{slug}",
            f"Calibration per group{label}",
            "Share of fakes against mean p(fake) in 10 equal-width bins (bins with "
            "fewer than 10 rows left out); the diagonal is perfect calibration.",
            fig,
        )
    )
    return figs


def _comparison_figures(cmp, plots) -> list:
    figs = []
    na, nb = cmp.config["names"][:2]
    lay = plots._Layout.of(cmp)
    fams, _ = figure_families(cmp, plots)
    d = cmp.differences
    names = [g for g in plots.DEFAULT_FOREST_GAPS if g in set(d.loc[d["kind"] == "gap", "name"])]
    if names:
        fig = _figure((plots.COLUMN_WIDTH + 0.6, plots._forest_height(len(fams), len(names)) + 0.2))
        plots.plot_compare_gaps(cmp, families=fams, ax=fig.subplots())
        figs.append(
            (
                "compare_gaps",
                f"Change of the gaps: {nb} - {na}",
                "Paired bootstrap differences of each gap; filled points: paired p below "
                "the level; left of 0: a smaller gap for " + nb + ".",
                fig,
            )
        )
    metrics = _metric_list(cmp.a, plots.DEFAULT_PANEL_METRICS)
    if metrics:
        n_rows = sum(len(lay.groups[f]) + 1 for f in fams)
        fig = _figure((plots.PAGE_WIDTH, 0.8 + 0.16 * n_rows))
        axes = fig.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
        for i, (ax, m) in enumerate(zip(axes, metrics)):
            plots.plot_compare_groups(cmp, m, families=fams, ax=ax, legend=False)
            ax.set_xlabel(m)
            ax.set_title(plots._direction(m), fontsize="small", color="#555555")
            if i > 0:
                ax.tick_params(axis="y", left=False)
        handles, labels, title = plots._compare_groups_legend(
            cmp, 1.0 - (cmp.config.get("ci") or 0.95)
        )
        fig.legend(
            handles,
            labels,
            loc="outside upper center",
            ncol=len(handles) + 1,
            title=title,
            alignment="center",
        )
        figs.append(
            (
                "compare_groups",
                f"Per-group metrics of {na} and {nb}",
                f"Hollow: {na}; filled: {nb}; * paired p below the level.",
                fig,
            )
        )
    for fam in [f for f in lay.two_attribute_families() if f in fams]:
        hm = _metric_list(cmp.a, ("fpr", "tpr"))
        if not hm:
            break
        rows_ = len(lay.values[lay.family_attrs[fam][0]])
        fig = _figure((plots.PAGE_WIDTH if len(hm) > 1 else plots.COLUMN_WIDTH, 0.9 + 0.42 * rows_))
        for ax, m in zip(fig.subplots(1, len(hm), squeeze=False)[0], hm):
            plots.plot_heatmap(cmp, m, family=fam, ax=ax)
        figs.append(
            (
                f"compare_heatmap_{_slug(fam)}",
                f"Change per intersection: {fam}",
                f"{nb} - {na} per intersection group with the paired interval.",
                fig,
            )
        )
    for label, a in ((na, cmp.a), (nb, cmp.b)):
        if _has_data(a):
            roc = _score_figures(a, plots, fams[:SCORE_PANELS], label)[0]
            figs.append(roc)
    return figs


def _png_bytes(fig, dpi=EMBED_DPI) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def _figures_html(rendered) -> str:
    out = []
    for name, title, caption, png in rendered:
        b64 = base64.b64encode(png).decode("ascii")
        out.append(
            f'<figure id="fig-{_e(name)}"><h3>{_e(title)}</h3>'
            f'<img alt="{_e(title)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>"
        )
    return "".join(out)


# ---------------------------------------------------------------------------- the page
def _page(result, rendered, *, figures_note="") -> str:
    cmp = _is_comparison(result)
    c = result.config
    title = (
        f"fairaudit comparison: {c['names'][1]} - {c['names'][0]}" if cmp else "fairaudit report"
    )
    sections = [
        ("summary", "Summary"),
        ("warnings", "Warnings"),
        ("tables", "Tables"),
        ("figures", "Figures"),
        ("config", "Configuration and provenance"),
        ("definitions", "Definitions"),
    ]
    from . import __version__

    sub = (
        f"{c.get('n_rows')} rows; families {', '.join(c.get('families', []))}; "
        f"made by fairaudit {__version__}"
    )
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">{_e(sub)}</p>',
        "<nav>" + "".join(f'<a href="#{k}">{_e(v)}</a>' for k, v in sections) + "</nav>",
    ]
    body.append('<section id="summary"><h2>Summary</h2>')
    body.append(_headline_comparison(result) if cmp else _headline_audit(result))
    body.append("</section>")
    body.append(
        '<section id="warnings"><h2>Warnings</h2>' + _warnings_section(result) + "</section>"
    )
    body.append(
        '<section id="tables"><h2>Tables</h2>'
        + (_comparison_tables(result) if cmp else _audit_tables(result))
        + "</section>"
    )
    body.append('<section id="figures"><h2>Figures</h2>')
    if figures_note:
        body.append(f'<p class="note">{_e(figures_note)}</p>')
    body.append(_figures_html(rendered) if rendered else "<p>No figures.</p>")
    body.append("</section>")
    body.append(
        '<section id="config"><h2>Configuration and provenance</h2>'
        + _config_section(result)
        + "</section>"
    )
    body.append(
        '<section id="definitions"><h2>Definitions</h2>' + _definitions(result) + "</section>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>"
        + "".join(body)
        + "</main></body></html>\n"
    )


def _figures_note(result) -> str:
    from . import plots

    audits = [result.a, result.b] if _is_comparison(result) else [result]
    notes = []
    shown, hidden = figure_families(result, plots)
    if hidden:
        notes.append(
            f"So that they stay legible, the figures show the single attributes and the "
            f"smaller intersections ({', '.join(shown)}); the other {len(hidden)} families "
            f"({_few(hidden)}) are in the tables."
        )
    if len(shown) > SCORE_PANELS and all(_has_data(a) for a in audits):
        notes.append(
            f"Score figures (ROC, distributions, threshold sweep, calibration) show the first "
            f"{SCORE_PANELS} of them."
        )
    if not all(_has_data(a) for a in audits):
        notes.append(
            "ROC curves, score distributions, the threshold sweep and calibration need the "
            "scores, which this result does not hold; they are left out."
        )
    return " ".join(notes)


def _few(names, k=4):
    return ", ".join(names[:k]) + (", ..." if len(names) > k else "")


def _render(result, with_figures):
    import matplotlib as mpl

    from . import plots

    rendered, figs = [], []
    if with_figures:
        figs = build_figures(result)
        with mpl.rc_context(plots.PAPER_RC):
            rendered = [(n, t, c, _png_bytes(f)) for n, t, c, f in figs]
    return rendered, figs


def render_html(result, *, figures=True) -> str:
    """The report of an :class:`Audit` or a :class:`Comparison` as one HTML string.

    Parameters
    ----------
    result : Audit or Comparison
    figures : bool
        Embed the figures (base64 PNG); ``False`` gives the tables only (fast).

    Returns
    -------
    str
        A complete, self-contained HTML document.
    """
    rendered, _ = _render(result, figures)
    return _page(result, rendered, figures_note=_figures_note(result) if figures else "")


def write_report(result, out_dir, figures=None) -> Path:
    """Write ``out_dir/report.html`` (and, with ``figures``, ``out_dir/figures/*.<fmt>``).

    Parameters
    ----------
    result : Audit or Comparison
    out_dir : str or Path
        Created when missing.
    figures : {None, "png", "svg", "pdf"}
        Also write every figure as a file in this format.

    Returns
    -------
    Path
        The path of ``report.html``.
    """
    import matplotlib as mpl

    from . import plots

    if figures is not None and figures not in FIGURE_FORMATS:
        from ._errors import bad

        raise bad("--figures", "one of " + ", ".join(FIGURE_FORMATS), repr(figures))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rendered, figs = _render(result, True)
    if figures is not None:
        fig_dir = out / "figures"
        fig_dir.mkdir(exist_ok=True)
        meta = {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}[
            figures
        ]
        with mpl.rc_context(plots.PAPER_RC):
            for name, _, _, fig in figs:
                fig.savefig(
                    fig_dir / f"{name}.{figures}", format=figures, dpi=FILE_DPI, metadata=meta
                )
    path = out / "report.html"
    text = _page(result, rendered, figures_note=_figures_note(result))
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------- notebooks
def audit_repr_html(result) -> str:
    """Compact HTML of an Audit (or a Comparison) for notebooks (``_repr_html_``)."""
    if _is_comparison(result):
        return _comparison_repr_html(result)
    a = result
    c = a.config
    n = a.counts[a.counts["family"] == OVERALL].iloc[0]
    boot = (
        f"{(c.get('ci') or 0.95):.0%} {_e(c.get('bootstrap'))} bootstrap, {c['n_boot']} replicates"
        if c.get("n_boot")
        else "no intervals"
    )
    head = (
        f"<b>Audit</b>: {int(n.n)} rows ({int(n.n_pos)} fake, {int(n.n_neg)} real); "
        f"score rule {_e(c.get('score_rule'))}; threshold {c.get('threshold'):g}; {boot}"
        + (f"; <b>{len(a.warnings)} warning(s)</b>" if a.warnings else "")
    )
    metrics = _metric_list(a, ("auc", "eer", "fpr", "tpr"))
    long = a.groups_long.set_index(["family", "group", "metric"])
    rows, classes = [], []
    for r in a.counts.itertuples(index=False):
        small = bool(a.group_warnings.get((r.family, r.group)))
        row = [_e(r.family), _e(r.group) + (" *" if small else ""), str(r.n)]
        for m in metrics:
            x = long.loc[(r.family, r.group, m)]
            row.append(_cell(x["value"], x["lo"], x["hi"]))
        rows.append(row)
        classes.append("")
    gaps = [
        g
        for g in ("auc_range", "fpr_range", "tpr_range", "equalized_odds")
        if g in set(a.gaps["name"])
    ]
    grows = []
    gt = a.gaps.set_index(["family", "name"])
    for fam in a.families:
        row = [_e(fam)]
        for g in gaps:
            x = gt.loc[(fam, g)]
            row.append(
                _cell(x["value"], x["lo"], x["hi"])
                + (
                    f' <span class="ci">{_p_words(x["p_value"])}</span>'
                    if not _isnan(x["p_value"])
                    else ""
                )
            )
        grows.append(row)
    style = (
        "<style>.fairaudit-repr td,.fairaudit-repr th{padding:2px 8px;text-align:right}"
        ".fairaudit-repr .l{text-align:left}.fairaudit-repr .ci{color:#777;"
        "font-size:85%}.fairaudit-repr .scroll{overflow-x:auto;max-width:100%}</style>"
    )
    foot = (
        '<p style="color:#666;font-size:85%">* few fakes or reals; full tables: '
        "<code>.groups</code>, <code>.gaps</code>, <code>.intervals(metric)</code></p>"
    )
    return (
        '<div class="fairaudit-repr">'
        + style
        + f"<p>{head}</p>"
        + _table(["family", "group", "n"] + metrics, rows, left=2)
        + (_table(["family"] + gaps, grows) if gaps and grows else "")
        + foot
        + "</div>"
    )


def _comparison_repr_html(cmp) -> str:
    c = cmp.config
    na, nb = c["names"][:2]
    d = cmp.differences
    head = f"<b>Comparison</b> {_e(nb)} - {_e(na)}: {c.get('n_rows')} rows; " + (
        f"paired {_e(c.get('bootstrap'))} bootstrap, {c['n_boot']} replicates"
        if c.get("n_boot")
        else "no intervals"
    )
    sel = d[(d["kind"] == "overall") & d["name"].isin(("auc", "eer", "fpr", "tpr"))]
    sel = [sel] + [
        d[
            (d["kind"] == "gap")
            & (d["name"].isin(("auc_range", "fpr_range", "tpr_range", "equalized_odds")))
        ]
    ]
    rows = []
    for part in sel:
        for r in part.itertuples(index=False):
            rows.append(
                [
                    _e(r.kind),
                    _e(r.family),
                    f"<code>{_e(r.name)}</code>",
                    _f(r.a),
                    _f(r.b),
                    _cell(r.diff, r.lo, r.hi, signed=True),
                    _p(r.p_value),
                ]
            )
    style = (
        "<style>.fairaudit-repr td,.fairaudit-repr th{padding:2px 8px;text-align:right}"
        ".fairaudit-repr .l{text-align:left}.fairaudit-repr .ci{color:#777;"
        "font-size:85%}</style>"
    )
    return (
        '<div class="fairaudit-repr">'
        + style
        + f"<p>{head}</p>"
        + _table(["kind", "family", "name", na, nb, f"{nb} - {na}", "p"], rows, left=3)
        + "</div>"
    )
