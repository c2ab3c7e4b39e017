"""Figures of an audit and of a paired comparison (matplotlib).

Every function draws into the Axes it is given (``ax=``) or makes a new Figure, and returns
the Axes (single-panel figures) or the Figure (multi-panel figures), so that figures compose
in notebooks and papers.

From the result alone (:class:`~fairaudit.Audit`):

* :func:`plot_group_metric` / :func:`plot_group_metrics` -- per-group bars with interval
  whiskers, grouped by family, the overall value as a reference line;
* :func:`plot_heatmap` -- an annotated two-attribute intersection (e.g. gender x race);
* :func:`plot_gap_forest` -- gaps with intervals and p-values, a line at "no gap".

From the scores (ROC curves, distributions, thresholds, calibration need the rows): pass an
Audit whose ``extras["data"]`` holds ``{"y", "p", "groups"}`` (labels 0/1, p(fake), the
attribute columns), or the arrays ``y_true=``, ``y_score=``, ``groups=`` (then ``scores=``
gives the score rule, as in :func:`fairaudit.audit`):

* :func:`plot_roc`, :func:`plot_score_distributions`, :func:`plot_threshold_sweep`,
  :func:`plot_calibration`.

From a :class:`Comparison` (detector B - detector A on the same rows):

* :func:`plot_compare_gaps` (paired differences of gaps), :func:`plot_compare_groups`
  (A and B per group); :func:`plot_heatmap` draws B - A of a comparison.

Colours: the Okabe-Ito palette (safe for the common colour-vision deficiencies). Each value
of each attribute has one colour in every figure (``male``, ``female``, ``asian``, ...); an
intersection group takes the colour of its last attribute's value and a line style / hatch /
marker from the others (``male+asian`` solid, ``female+asian`` dashed); the whole set is
black. New figures fit a paper column (:data:`COLUMN_WIDTH` inches) or a full page width
(:data:`PAGE_WIDTH`) and use :data:`PAPER_RC` (7-8 pt text); drawing into your own Axes keeps
your style (``with matplotlib.rc_context(plots.PAPER_RC):`` around ``plt.subplots`` and the
plot calls gives the paper style there too).
"""

from __future__ import annotations

import functools
import math
from itertools import combinations

import numpy as np

__all__ = [
    "OKABE_ITO",
    "PALETTE",
    "OVERALL_COLOR",
    "COLUMN_WIDTH",
    "PAGE_WIDTH",
    "PAPER_RC",
    "group_styles",
    "group_colors",
    "readable_families",
    "plot_group_metric",
    "plot_group_metrics",
    "plot_heatmap",
    "plot_gap_forest",
    "plot_roc",
    "plot_score_distributions",
    "plot_threshold_sweep",
    "plot_calibration",
    "plot_compare_gaps",
    "plot_compare_groups",
]

#: The Okabe-Ito colour-blind-safe palette.
OKABE_ITO = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "bluish_green": "#009E73",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "sky_blue": "#56B4E9",
    "yellow": "#F0E442",
    "black": "#000000",
}
#: Group colours, in the order attribute values take them (black is kept for the whole set).
PALETTE = tuple(
    OKABE_ITO[k]
    for k in (
        "blue",
        "orange",
        "bluish_green",
        "vermillion",
        "reddish_purple",
        "sky_blue",
        "yellow",
    )
)
OVERALL_COLOR = OKABE_ITO["black"]
LINESTYLES = ("-", "--", ":", "-.")
HATCHES = ("", "////", "....", "xxxx")
MARKERS = ("o", "s", "^", "D")
REAL_COLOR, FAKE_COLOR = "#999999", "#333333"

COLUMN_WIDTH = 3.4  # inches: one column of a two-column paper
PAGE_WIDTH = 7.0  # inches: both columns

#: Matplotlib settings applied while a figure is drawn (7-8 pt text, light frames).
PAPER_RC = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.title_fontsize": 7,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "hatch.linewidth": 0.6,
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
}

OVERALL = "overall"
DEFAULT_FOREST_GAPS = (
    "auc_range",
    "eer_range",
    "fpr_range",
    "tpr_range",
    "equalized_odds",
    "demographic_parity",
)
DEFAULT_PANEL_METRICS = ("auc", "eer", "fpr", "tpr")


# ---------------------------------------------------------------------------- helpers
def _paper_style(fn):
    """Make new figures with :data:`PAPER_RC`; Axes the caller gives keep the caller's style."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import matplotlib as mpl

        own = all(kwargs.get(k) is None for k in ("ax", "fig", "axes"))
        with mpl.rc_context(PAPER_RC if own else {}):
            out = fn(*args, **kwargs)
            interactive = mpl.is_interactive()
        # pyplot's first figure may start the notebook backend, which turns interactive mode
        # on; leaving rc_context must not undo that (later figures would not be shown)
        if mpl.is_interactive() != interactive:
            mpl.interactive(interactive)
        return out

    return wrapper


def _t(s) -> str:
    """User text for matplotlib: a literal ``$`` must not start mathtext."""
    return str(s).replace("$", r"\$")


def _new_axes(figsize, nrows=1, ncols=1, **kw):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        nrows, ncols, figsize=figsize, squeeze=False, layout="constrained", **kw
    )
    return fig, axes


def _isnan(v) -> bool:
    return v is None or (isinstance(v, (float, np.floating)) and math.isnan(v))


def _fmt(v, digits=3) -> str:
    return "n/a" if _isnan(v) else f"{v:.{digits}f}"


def _fmt_p(p) -> str:
    if _isnan(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _spec(metric):
    from ._metrics import SPECS

    if metric not in SPECS:
        raise ValueError(f"metric: expected one of {', '.join(SPECS)}, found {metric!r}")
    return SPECS[metric]


def _direction(metric) -> str:
    return "higher is worse" if _spec(metric).higher_is_worse else "higher is better"


def _is_comparison(result) -> bool:
    return hasattr(result, "differences") and hasattr(result, "a")


def _audit_of(result):
    return result.a if _is_comparison(result) else result


def _ci_label(result) -> str:
    ci = _audit_of(result).config.get("ci") or 0.95
    return f"{ci:.0%} interval"


def _alpha_of(result, alpha):
    if alpha is not None:
        return alpha
    ci = _audit_of(result).config.get("ci") or 0.95
    return 1.0 - ci


class _Layout:
    """Attributes, families and groups in display order; the style of each group."""

    def __init__(self, attributes, families, groups_by_family):
        self.attributes = [str(a) for a in attributes]
        self.families = list(families)
        self.groups = {f: list(g) for f, g in groups_by_family.items()}
        self.values = {a: self.groups.get(a, []) for a in self.attributes}
        combos = {}
        for k in range(1, len(self.attributes) + 1):
            for c in combinations(self.attributes, k):
                combos["+".join(c)] = c
        self.family_attrs = {f: combos.get(f, (f,)) for f in self.families}
        self.offset, total = {}, 0
        for a in self.attributes:
            self.offset[a] = total
            total += len(self.values[a])

    @classmethod
    def of(cls, result):
        a = _audit_of(result)
        counts = a.counts[a.counts["family"] != OVERALL]
        groups = {f: list(counts.loc[counts["family"] == f, "group"]) for f in a.families}
        attrs = a.config.get("attributes") or [f for f in a.families if "+" not in f]
        return cls(attrs, a.families, groups)

    @classmethod
    def of_structure(cls, s):
        groups = {}
        for f, g in zip(s.group_family, s.group_name):
            groups.setdefault(f, []).append(g)
        return cls(s.attributes, s.families, groups)

    def value_index(self, family, group):
        """Indices of the group's value of each attribute of the family (or None)."""
        attrs = self.family_attrs.get(family)
        groups = self.groups.get(family, [])
        if attrs is None or group not in groups:
            return None
        dims = [len(self.values.get(a, [])) for a in attrs]
        if 0 in dims or int(np.prod(dims)) != len(groups):
            return None
        return tuple(int(i) for i in np.unravel_index(groups.index(group), dims))

    def style(self, family, group) -> dict:
        if family == OVERALL:
            return {"color": OVERALL_COLOR, "linestyle": "-", "hatch": "", "marker": "o"}
        idx = self.value_index(family, group)
        if idx is None:  # unknown layout: colours in order, then line styles
            j = (
                self.groups.get(family, [group]).index(group)
                if group in self.groups.get(family, [])
                else 0
            )
            color, variant = PALETTE[j % len(PALETTE)], j // len(PALETTE)
        else:
            attrs = self.family_attrs[family]
            color = PALETTE[(self.offset[attrs[-1]] + idx[-1]) % len(PALETTE)]
            dims = [len(self.values[a]) for a in attrs[:-1]]
            variant = int(np.ravel_multi_index(idx[:-1], dims)) if dims else 0
        return {
            "color": color,
            "linestyle": LINESTYLES[variant % 4],
            "hatch": HATCHES[variant % 4],
            "marker": MARKERS[variant % 4],
        }

    def pick_families(self, families):
        if families is None:
            return list(self.families)
        if isinstance(families, str):
            families = [families]
        unknown = [f for f in families if f not in self.families]
        if unknown:
            raise ValueError(
                f"families: expected some of {', '.join(self.families)}, "
                f"found {', '.join(map(str, unknown))}"
            )
        return list(families)

    def two_attribute_families(self):
        return [f for f in self.families if len(self.family_attrs.get(f, ())) == 2]


def readable_families(result, *, max_groups=12, max_rows=60, max_families=None) -> list:
    """The families a figure can show legibly: every single attribute, then intersections of
    at most ``max_groups`` groups, lowest order first, while the rows stay within ``max_rows``.

    Audits with many intersections keep their figures readable and small with it; the other
    families stay in the tables.

    Parameters
    ----------
    result : Audit or Comparison
    max_groups : int
        Largest intersection drawn.
    max_rows : int
        Groups (plus one header per family) of all drawn families together; single
        attributes always count, intersections stop when the next would pass it.
    max_families : int, optional
        At most this many families (single attributes first).

    Returns
    -------
    list of str
        Family names in display order.

    >>> import numpy as np, fairaudit
    >>> rng = np.random.default_rng(0)
    >>> cols = {k: rng.choice(list("abcd"), 400) for k in ("x", "y", "z")}
    >>> a = fairaudit.audit(rng.integers(0, 2, 400), rng.random(400), cols)
    >>> readable_families(a, max_groups=16, max_rows=40)  # 3 x 5 rows, then 17 per pair
    ['x', 'y', 'z', 'x+y']
    """
    lay = _Layout.of(result)
    order = {f: len(lay.family_attrs.get(f, (f,))) for f in lay.families}
    singles = [f for f in lay.families if order[f] == 1]
    rows = sum(len(lay.groups[f]) + 1 for f in singles)
    out = list(singles)
    for f in sorted((f for f in lay.families if order[f] > 1), key=lambda f: order[f]):
        size = len(lay.groups[f])
        if size <= max_groups and rows + size + 1 <= max_rows:
            out.append(f)
            rows += size + 1
    if max_families is not None:
        out = out[:max_families]
    return [f for f in lay.families if f in out]


def group_styles(result) -> dict:
    """Colour, line style, hatch and marker of every group, as used by every figure.

    Parameters
    ----------
    result : Audit or Comparison

    Returns
    -------
    dict
        ``(family, group) -> {"color", "linestyle", "hatch", "marker"}``, the whole set
        included as ``("overall", "overall")``.

    Examples
    --------
    >>> from fairaudit._example import _demo
    >>> style = group_styles(_demo())[("race", "black")]
    >>> sorted(style)
    ['color', 'hatch', 'linestyle', 'marker']
    """
    lay = _Layout.of(result)
    out = {(f, g): lay.style(f, g) for f in lay.families for g in lay.groups[f]}
    out[(OVERALL, OVERALL)] = lay.style(OVERALL, OVERALL)
    return out


def group_colors(result) -> dict:
    """``(family, group) -> colour`` (see :func:`group_styles`).

    >>> from fairaudit._example import _demo
    >>> key = ("race", "black")
    >>> group_colors(_demo())[key] == group_styles(_demo())[key]["color"]
    True
    """
    return {k: v["color"] for k, v in group_styles(result).items()}


def _family_blocks(ax, blocks, *, header_weight="bold"):
    """Lay out rows top to bottom: a header row per family, then its items.

    ``blocks`` is a list of (family, items); returns {(family, item): y} and sets the y ticks.
    """
    ys, ticks, labels, headers = {}, [], [], []
    y = 0.0
    for fam, items in blocks:
        ticks.append(y)
        labels.append(_t(fam))
        headers.append(len(ticks) - 1)
        y += 1
        for item, label in items:
            ys[(fam, item)] = y
            ticks.append(y)
            labels.append(label)
            y += 1
        y += 0.4
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels)
    for i, tl in enumerate(ax.get_yticklabels()):
        if i in headers:
            tl.set_fontweight(header_weight)
    for i, tick in enumerate(ax.yaxis.get_major_ticks()):
        if i in headers:
            tick.tick1line.set_visible(False)
    ax.set_ylim(y - 0.4 - 0.5, -0.7)
    return ys


def _small(audit, family, group) -> bool:
    return bool(audit.group_warnings.get((family, group)))


def _interval_lines(ax, values, lo, hi, y, **kw):
    """Whiskers from lo to hi (a point estimate may lie outside a percentile interval)."""
    ok = ~(np.isnan(lo) | np.isnan(hi))
    if ok.any():
        y = np.asarray(y, dtype=float)
        ax.hlines(y[ok], lo[ok], hi[ok], **kw)
        ax.plot(
            np.r_[lo[ok], hi[ok]],
            np.r_[y[ok], y[ok]],
            linestyle="none",
            marker="|",
            markersize=3.5,
            color=kw.get("colors", "black"),
            markeredgewidth=kw.get("linewidth", 0.8),
        )
    return ok


# ---------------------------------------------------------------------------- per-group bars
@_paper_style
def plot_group_metric(
    result, metric="fpr", *, families=None, ax=None, show_overall=True, show_ci=True, legend=True
):
    """Per-group bars of one metric with interval whiskers, grouped by family.

    Parameters
    ----------
    result : Audit
    metric : str
        A metric of :data:`fairaudit.METRIC_NAMES` that the audit computed.
    families : list of str, optional
        Families to show (default all, in the audit's order).
    ax : matplotlib Axes, optional
        Draw here; a new column-width figure otherwise.
    show_overall : bool
        Dashed black line at the whole set's value.
    show_ci : bool
        Whiskers from the bootstrap interval (when the audit has one).

    Returns
    -------
    matplotlib Axes
        One horizontal bar per group with a defined value (colour and hatch of the group);
        groups with few positives or negatives are drawn pale and marked ``*``; undefined
        values are written as "undefined".

    Examples
    --------
    >>> from fairaudit._example import _demo
    >>> plot_group_metric(_demo(), "fpr").get_xlabel()
    'fpr (higher is worse)'
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    audit = _audit_of(result)
    _check_metric_in(audit, metric)
    lay = _Layout.of(audit)
    fams = lay.pick_families(families)
    tab = audit.intervals(metric)
    if ax is None:
        n_rows = sum(len(lay.groups[f]) + 1 for f in fams)
        _, axes = _new_axes((COLUMN_WIDTH, 0.5 + 0.16 * n_rows))
        ax = axes[0, 0]
    blocks = []
    for f in fams:
        items = []
        for g in lay.groups[f]:
            items.append((g, _t(g) + (" *" if _small(audit, f, g) else "")))
        blocks.append((f, items))
    ys = _family_blocks(ax, blocks)
    vals, los, his, yy = [], [], [], []
    any_small = False
    for f in fams:
        for g in lay.groups[f]:
            st = lay.style(f, g)
            v, lo, hi = tab.loc[(f, g)]
            y = ys[(f, g)]
            if _isnan(v):
                ax.text(
                    0,
                    y,
                    " undefined",
                    va="center",
                    ha="left",
                    fontsize="small",
                    style="italic",
                    color="#555555",
                )
                continue
            small = _small(audit, f, g)
            any_small |= small
            ax.barh(
                y,
                v,
                height=0.72,
                color=st["color"],
                hatch=st["hatch"],
                edgecolor="white",
                linewidth=0,
                alpha=0.45 if small else 1.0,
                label="_nolegend_",
            )
            vals.append(v), los.append(lo), his.append(hi), yy.append(y)
    handles, labels = [], []
    if show_ci and yy:
        ok = _interval_lines(
            ax,
            np.array(vals),
            np.array(los, float),
            np.array(his, float),
            yy,
            colors="black",
            linewidth=0.8,
        )
        if ok.any():
            handles.append(Line2D([], [], color="black", linewidth=0.8, marker="|"))
            labels.append(_ci_label(audit))
    if show_overall:
        ov = tab.loc[(OVERALL, OVERALL), "value"]
        if not _isnan(ov):
            line = ax.axvline(ov, color=OVERALL_COLOR, linestyle="--", linewidth=0.8)
            handles.insert(0, line)
            labels.insert(0, f"overall {ov:.3f}")
    if any_small:
        handles.append(Patch(facecolor="#777777", alpha=0.45))
        labels.append(f"* fewer than {audit.config.get('min_count', 30)} reals or fakes")
    ax.set_xlabel(f"{metric} ({_direction(metric)})")
    ax.set_xlim(left=0)
    ax.grid(axis="x", linewidth=0.4, alpha=0.5)
    ax.set_axisbelow(True)
    if legend and handles:
        ax.legend(
            handles,
            labels,
            loc="lower center",
            bbox_to_anchor=(0.5, 1.0),
            ncol=2,
            borderaxespad=0.2,
            handlelength=1.5,
            columnspacing=1.0,
        )
    return ax


def _check_metric_in(audit, metric):
    _spec(metric)
    if metric not in audit.config.get("metrics", [metric]):
        raise ValueError(
            f"metric: {metric!r} was not computed by this audit (metrics: "
            f"{', '.join(audit.config['metrics'])})"
        )


@_paper_style
def plot_group_metrics(
    result, metrics=DEFAULT_PANEL_METRICS, *, families=None, fig=None, show_ci=True
):
    """:func:`plot_group_metric` for several metrics side by side (shared group axis).

    Returns
    -------
    matplotlib Figure
        One panel per metric (those the audit computed), page width.

    Examples
    --------
    >>> from fairaudit._example import _demo
    >>> len(plot_group_metrics(_demo(), ("auc", "fpr")).axes) >= 2
    True
    """
    audit = _audit_of(result)
    metrics = [m for m in metrics if m in audit.config.get("metrics", metrics)]
    if not metrics:
        raise ValueError("metrics: none of them was computed by this audit")
    lay = _Layout.of(audit)
    fams = lay.pick_families(families)
    n_rows = sum(len(lay.groups[f]) + 1 for f in fams)
    size = (PAGE_WIDTH if len(metrics) > 2 else COLUMN_WIDTH, 0.7 + 0.16 * n_rows)
    if fig is None:
        fig, axes = _new_axes(size, 1, len(metrics), sharey=True)
    else:
        axes = np.atleast_2d(fig.subplots(1, len(metrics), sharey=True, squeeze=False))
    for i, (m, ax) in enumerate(zip(metrics, axes[0])):
        plot_group_metric(audit, m, families=fams, ax=ax, show_ci=show_ci, legend=False)
        ax.set_xlabel(m)
        ax.set_title(_direction(m), fontsize="small", color="#555555")
        if i > 0:
            ax.tick_params(axis="y", left=False)
    # one legend for the figure, from the first panel's artists
    _figure_legend(fig, audit, axes[0][0], show_ci)
    return fig


def _figure_legend(fig, audit, ax, show_ci):
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color=OVERALL_COLOR, linestyle="--", linewidth=0.8)]
    labels = ["overall"]
    if show_ci and audit.config.get("n_boot"):
        handles.append(Line2D([], [], color="black", linewidth=0.8, marker="|"))
        labels.append(_ci_label(audit))
    if audit.group_warnings:
        handles.append(Patch(facecolor="#777777", alpha=0.45))
        labels.append(f"* fewer than {audit.config.get('min_count', 30)} reals or fakes")
    fig.legend(handles, labels, loc="outside upper center", ncol=len(handles))


# ---------------------------------------------------------------------------- heatmap
def _matrix(result, lay, family, metric):
    """Values, lo, hi, small flags and undefined reasons of a two-attribute family."""
    attrs = lay.family_attrs[family]
    rows, cols = lay.values[attrs[0]], lay.values[attrs[1]]
    shape = (len(rows), len(cols))
    val, lo, hi = (np.full(shape, np.nan) for _ in range(3))
    small = np.zeros(shape, bool)
    reason = np.full(shape, "", dtype=object)
    audit = _audit_of(result)
    if _is_comparison(result):
        d = result.differences
        d = d[(d["kind"] == "group") & (d["family"] == family) & (d["name"] == metric)]
        table = d.set_index("group")[["diff", "lo", "hi"]]
    else:
        table = audit.intervals(metric).loc[family]
    und = audit.undefined[
        (audit.undefined["family"] == family) & (audit.undefined["metric"] == metric)
    ].set_index("group")["reason"]
    for g in lay.groups[family]:
        i, j = lay.value_index(family, g)
        if g in table.index:
            val[i, j], lo[i, j], hi[i, j] = table.loc[g].to_numpy(dtype=float)
        small[i, j] = _small(audit, family, g) or (
            _is_comparison(result) and _small(result.b, family, g)
        )
        if g in und.index:
            reason[i, j] = und.loc[g]
    return rows, cols, val, lo, hi, small, reason


@_paper_style
def plot_heatmap(
    result,
    metric="fpr",
    *,
    family=None,
    ax=None,
    show_ci=True,
    cmap=None,
    colorbar=True,
    vmin=None,
    vmax=None,
):
    """Annotated heatmap of one metric over a two-attribute intersection (e.g. gender x race).

    Parameters
    ----------
    result : Audit or Comparison
        With a Comparison the cells are the paired differences B - A (diverging colours
        centred on 0).
    metric : str
    family : str, optional
        A family of two attributes (default: the first, e.g. ``gender+race``).
    show_ci : bool
        Write the interval under each value (when there is one).
    cmap : str or Colormap, optional
        Default ``cividis`` oriented so that darker is worse (``PuOr_r`` for differences).

    Returns
    -------
    matplotlib Axes
        Rows are the first attribute's values, columns the second's. Cells of groups with
        few positives or negatives are hatched and their value marked ``*``; undefined
        cells are grey and read "n/a".

    Examples
    --------
    >>> from fairaudit._example import _demo
    >>> plot_heatmap(_demo(), "fpr", family="gender+race").get_xlabel()
    'race'
    """
    import matplotlib as mpl
    from matplotlib.patches import Patch, Rectangle

    audit = _audit_of(result)
    _check_metric_in(audit, metric)
    lay = _Layout.of(audit)
    choices = lay.two_attribute_families()
    if family is None:
        if not choices:
            raise ValueError(
                "family: the audit has no family of two attributes (an "
                "intersection such as gender+race) to draw as a heatmap"
            )
        family = choices[0]
    elif family not in choices:
        raise ValueError(
            f"family: expected a family of two attributes "
            f"({', '.join(choices) or 'none in this audit'}), found {family!r}"
        )
    rows, cols, val, lo, hi, small, reason = _matrix(result, lay, family, metric)
    is_diff = _is_comparison(result)
    if ax is None:
        _, axes = _new_axes((COLUMN_WIDTH, 0.9 + 0.42 * len(rows)))
        ax = axes[0, 0]
    if is_diff:
        lim = np.nanmax(np.abs(val)) if np.isfinite(val).any() else 1.0
        lim = lim if lim > 0 else 1.0
        vmin = -lim if vmin is None else vmin
        vmax = lim if vmax is None else vmax
        default = "PuOr_r"
    else:
        default = "cividis_r" if _spec(metric).higher_is_worse else "cividis"
    if not isinstance(cmap, mpl.colors.Colormap):
        cmap = mpl.colormaps[cmap or default]
    cmap = cmap.with_extremes(bad="#dddddd")
    masked = np.ma.masked_invalid(val)
    im = ax.imshow(masked, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    with_ci = show_ci and np.isfinite(lo).any()
    for i in range(len(rows)):
        for j in range(len(cols)):
            v = val[i, j]
            ci_txt = None
            if np.isnan(v):
                txt, color = "n/a", "#333333"
            else:
                txt = (f"{v:+.3f}" if is_diff else f"{v:.3f}") + ("*" if small[i, j] else "")
                if with_ci and not np.isnan(lo[i, j]):
                    ci_txt = f"[{lo[i, j]:.2f}, {hi[i, j]:.2f}]"
                r, g, b, _ = cmap(im.norm(v))
                color = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "white"
            ax.text(
                j,
                i - (0.13 if ci_txt else 0),
                txt,
                ha="center",
                va="center",
                fontsize="medium" if not ci_txt else "small",
                color=color,
            )
            if ci_txt:
                ax.text(
                    j, i + 0.2, ci_txt, ha="center", va="center", fontsize="x-small", color=color
                )
            if small[i, j]:
                ax.add_patch(
                    Rectangle(
                        (j - 0.5, i - 0.5),
                        1,
                        1,
                        fill=False,
                        hatch="////",
                        edgecolor="#ffffff80",
                        linewidth=0,
                    )
                )
    attrs = lay.family_attrs[family]
    ax.set_xticks(range(len(cols)), [_t(c) for c in cols])
    ax.set_yticks(range(len(rows)), [_t(r) for r in rows])
    ax.set_xlabel(_t(attrs[1]))
    ax.set_ylabel(_t(attrs[0]))
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    if is_diff:
        na, nb = result.config.get("names", ["A", "B"])[:2]
        label = f"{metric}: {_t(nb)} - {_t(na)}"
    else:
        label = f"{metric} ({_direction(metric)})"
    if colorbar:
        cb = ax.figure.colorbar(im, ax=ax, shrink=0.9, pad=0.02)
        cb.set_label(label)
        cb.outline.set_linewidth(0.4)
    else:
        ax.set_title(label)
    handles, labels = [], []
    if small.any():
        handles.append(Patch(facecolor="#bbbbbb", hatch="////", edgecolor="white"))
        labels.append("* few reals or fakes")
    if np.isnan(val).any():
        handles.append(Patch(facecolor="#dddddd"))
        labels.append("n/a: undefined")
    if handles:
        ax.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.18 if len(rows) > 1 else -0.35),
            ncol=2,
            borderaxespad=0,
            handlelength=1.2,
        )
    return ax


# ---------------------------------------------------------------------------- forest plots
def _forest(ax, blocks, *, alpha, ci_label, xlabel, reference_lines):
    """Points with whiskers per row, filled when p < alpha; p-values at the right margin."""
    from matplotlib.lines import Line2D

    ys = _family_blocks(
        ax, [(fam, [(name, _t(name)) for name, *_ in rows]) for fam, rows in blocks]
    )
    n_sig = n_ns = n_untested = 0
    for fam, rows in blocks:
        for name, v, lo, hi, p in rows:
            y = ys[(fam, name)]
            if not (_isnan(lo) or _isnan(hi)):
                ax.hlines(y, lo, hi, colors="black", linewidth=0.9)
            if _isnan(v):
                ax.text(
                    0,
                    y,
                    " undefined",
                    va="center",
                    fontsize="small",
                    style="italic",
                    color="#555555",
                )
            elif _isnan(p):
                ax.plot(v, y, marker="D", markersize=3.5, color="#555555")
                n_untested += 1
            elif p < alpha:
                ax.plot(v, y, marker="o", markersize=4.5, color="black")
                n_sig += 1
            else:
                ax.plot(
                    v,
                    y,
                    marker="o",
                    markersize=4.5,
                    markerfacecolor="white",
                    markeredgecolor="black",
                    markeredgewidth=0.9,
                )
                n_ns += 1
            ax.annotate(
                _fmt_p(p),
                xy=(1.0, y),
                xycoords=("axes fraction", "data"),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                ha="left",
                fontsize="small",
                annotation_clip=False,
            )
    for x, style in reference_lines:
        ax.axvline(x, color="#555555", linestyle=style, linewidth=0.8, zorder=0)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", linewidth=0.4, alpha=0.5)
    ax.set_axisbelow(True)
    handles, labels = [], []
    if n_sig:
        handles.append(Line2D([], [], marker="o", linestyle="none", color="black", markersize=4.5))
        labels.append(f"p < {alpha:g}")
    if n_ns:
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                linestyle="none",
                markerfacecolor="white",
                markeredgecolor="black",
                markersize=4.5,
            )
        )
        labels.append(f"p \u2265 {alpha:g}")
    if n_untested:
        handles.append(
            Line2D([], [], marker="D", linestyle="none", color="#555555", markersize=3.5)
        )
        labels.append("no test")
    handles.append(Line2D([], [], color="black", linewidth=0.9))
    labels.append(ci_label)
    ax.legend(
        handles,
        labels,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=len(handles),
        borderaxespad=0.2,
        handlelength=1.2,
        columnspacing=0.8,
    )
    return ax


def _pick_gaps(available, gaps):
    if gaps is None:
        return [g for g in DEFAULT_FOREST_GAPS if g in available]
    if isinstance(gaps, str):
        gaps = [gaps]
    unknown = [g for g in gaps if g not in available]
    if unknown:
        raise ValueError(
            f"gaps: unknown {', '.join(map(str, unknown))} (available: "
            f"{', '.join(dict.fromkeys(available))})"
        )
    return list(gaps)


def _forest_height(n_fams, n_gaps):
    return 0.75 + 0.16 * n_fams * (n_gaps + 1.4)


@_paper_style
def plot_gap_forest(result, *, gaps=None, families=None, ax=None, alpha=None):
    """Forest plot of gaps: each gap with its interval and permutation p-value.

    Parameters
    ----------
    result : Audit
    gaps : list of str, optional
        Gap names (default: ``auc_range``, ``eer_range``, ``fpr_range``, ``tpr_range``,
        ``equalized_odds``, ``demographic_parity``, those computed). Ratio gaps (1 = parity)
        get a dotted line at 1.
    families : list of str, optional
    alpha : float, optional
        Level at which a point is filled (default 1 - the audit's ``ci``).

    Returns
    -------
    matplotlib Axes
        One row per (family, gap); a solid line at 0 (no gap).

    Examples
    --------
    >>> from fairaudit._example import _demo
    >>> plot_gap_forest(_demo(), gaps=["fpr_range", "auc_range"]).get_xlabel()
    'gap (0 = no gap)'
    """
    audit = _audit_of(result)
    lay = _Layout.of(audit)
    fams = lay.pick_families(families)
    names = _pick_gaps(list(audit.gaps["name"]), gaps)
    alpha = _alpha_of(audit, alpha)
    if ax is None:
        _, axes = _new_axes((COLUMN_WIDTH, _forest_height(len(fams), len(names))))
        ax = axes[0, 0]
    g = audit.gaps.set_index(["family", "name"])
    blocks = [
        (f, [(n, *g.loc[(f, n), ["value", "lo", "hi", "p_value"]].to_numpy(float)) for n in names])
        for f in fams
    ]
    refs = [(0.0, "-")] + ([(1.0, ":")] if any(n.endswith("ratio") for n in names) else [])
    _forest(
        ax,
        blocks,
        alpha=alpha,
        ci_label=_ci_label(audit),
        xlabel="gap (0 = no gap)",
        reference_lines=refs,
    )
    return ax


@_paper_style
def plot_compare_gaps(comparison, *, gaps=None, families=None, ax=None, alpha=None):
    """Paired differences B - A of gaps, with their intervals and p-values.

    Returns
    -------
    matplotlib Axes
        One row per (family, gap); negative values mean a smaller gap for detector B.

    Examples
    --------
    >>> from fairaudit._example import _demo
    >>> plot_compare_gaps(_demo("compare"), gaps=["fpr_range"]).get_xlabel().splitlines()[0]
    'change of the gap, B - A'
    """
    d = comparison.differences
    d = d[d["kind"] == "gap"]
    lay = _Layout.of(comparison)
    fams = lay.pick_families(families)
    names = _pick_gaps(list(d["name"]), gaps)
    alpha = _alpha_of(comparison, alpha)
    if ax is None:
        _, axes = _new_axes((COLUMN_WIDTH, _forest_height(len(fams), len(names))))
        ax = axes[0, 0]
    t = d.set_index(["family", "name"])
    blocks = [
        (f, [(n, *t.loc[(f, n), ["diff", "lo", "hi", "p_value"]].to_numpy(float)) for n in names])
        for f in fams
    ]
    na, nb = comparison.config.get("names", ["A", "B"])[:2]
    _forest(
        ax,
        blocks,
        alpha=alpha,
        ci_label=_ci_label(comparison) + " (paired)",
        xlabel=f"change of the gap, {_t(nb)} - {_t(na)}\n(< 0: smaller gap for {_t(nb)})",
        reference_lines=[(0.0, "-")],
    )
    return ax


@_paper_style
def plot_compare_groups(
    comparison, metric="auc", *, families=None, ax=None, alpha=None, legend=True
):
    """A and B side by side per group (hollow A, filled B, joined), for one metric.

    Returns
    -------
    matplotlib Axes
        One row per group; a ``*`` right of the pair marks a paired difference with
        p < alpha (next to the points, so that panels sharing the group axis stay right).

    Examples
    --------
    >>> from fairaudit._example import _demo
    >>> plot_compare_groups(_demo("compare"), "auc").get_xlabel()
    'auc (higher is better)'
    """
    audit = comparison.a
    _check_metric_in(audit, metric)
    lay = _Layout.of(comparison)
    fams = lay.pick_families(families)
    alpha = _alpha_of(comparison, alpha)
    d = comparison.differences
    d = d[d["name"] == metric]
    t = d[d["kind"] == "group"].set_index(["family", "group"])
    if ax is None:
        n_rows = sum(len(lay.groups[f]) + 1 for f in fams)
        _, axes = _new_axes((COLUMN_WIDTH, 0.6 + 0.16 * n_rows))
        ax = axes[0, 0]
    ys = _family_blocks(ax, [(f, [(g, _t(g)) for g in lay.groups[f]]) for f in fams])
    for f in fams:
        for g in lay.groups[f]:
            if (f, g) not in t.index:
                continue
            a, b = t.loc[(f, g), ["a", "b"]].to_numpy(float)
            st = lay.style(f, g)
            y = ys[(f, g)]
            if not (_isnan(a) or _isnan(b)):
                ax.plot([a, b], [y, y], color=st["color"], linewidth=1.2)
            ax.plot(
                a,
                y,
                marker="o",
                markersize=4.5,
                markerfacecolor="white",
                markeredgecolor=st["color"],
                markeredgewidth=1.0,
            )
            ax.plot(b, y, marker="o", markersize=4.5, color=st["color"])
            p = t.loc[(f, g), "p_value"]
            if not _isnan(p) and p < alpha:
                ax.annotate(
                    "*",
                    xy=(np.nanmax([a, b]), y),
                    xytext=(4, 0),
                    textcoords="offset points",
                    va="center",
                    ha="left",
                    fontweight="bold",
                )
    ov = d[d["kind"] == "overall"]
    if len(ov):
        ax.axvline(ov["a"].iloc[0], color=OVERALL_COLOR, linestyle=":", linewidth=0.8)
        ax.axvline(ov["b"].iloc[0], color=OVERALL_COLOR, linestyle="--", linewidth=0.8)
    if legend:
        handles, labels, title = _compare_groups_legend(comparison, alpha)
        ax.legend(
            handles,
            labels,
            title=title,
            loc="lower center",
            bbox_to_anchor=(0.5, 1.0),
            ncol=2,
            borderaxespad=0.2,
            handlelength=1.3,
            columnspacing=0.8,
        )
    ax.set_xlabel(f"{metric} ({_direction(metric)})")
    ax.grid(axis="x", linewidth=0.4, alpha=0.5)
    ax.set_axisbelow(True)
    return ax


def _compare_groups_legend(comparison, alpha):
    from matplotlib.lines import Line2D

    na, nb = comparison.config.get("names", ["A", "B"])[:2]
    handles = [
        Line2D(
            [], [], marker="o", linestyle="none", markerfacecolor="white", markeredgecolor="#555555"
        ),
        Line2D([], [], marker="o", linestyle="none", color="#555555"),
        Line2D([], [], color=OVERALL_COLOR, linestyle=":", linewidth=0.8),
        Line2D([], [], color=OVERALL_COLOR, linestyle="--", linewidth=0.8),
    ]
    labels = [_t(na), _t(nb), f"overall {_t(na)}", f"overall {_t(nb)}"]
    return handles, labels, f"* paired p < {alpha:g}"


# ---------------------------------------------------------------------------- raw scores
class _Rows:
    """Labels, p(fake) and the group structure of the rows behind an audit."""

    def __init__(self, y, p, structure):
        self.y, self.p, self.structure = y, p, structure
        self.layout = _Layout.of_structure(structure)

    def groups_of(self, family):
        s = self.structure
        if family not in s.families:
            raise ValueError(f"family: expected one of {', '.join(s.families)}, found {family!r}")
        out = []
        for i in s.family_slice(family):
            out.append((s.group_name[i], s.membership[i][s.atom]))
        return out


def _rows(result, y_true, y_score, groups, scores, threshold):
    """Resolve the rows from explicit arrays (preferred) or ``result.extras["data"]``."""
    from ._groups import build_groups
    from ._validation import as_groups, as_labels, as_scores

    given = [x is not None for x in (y_true, y_score, groups)]
    if any(given):
        if not all(given):
            raise ValueError(
                "y_true, y_score and groups: pass all three (or none, with an "
                "Audit holding extras['data'])"
            )
        ranking, rule = as_scores(
            y_score, scores, 0.5 if threshold is None else threshold, argument="y_score"
        )
        y = as_labels(y_true, ranking.shape[0], argument="y_true")
        attrs = as_groups(groups, ranking.shape[0])
        p = rule.to_probability(ranking)
    else:
        data = None if result is None else getattr(result, "extras", {}).get("data")
        if data is None:
            raise ValueError(
                "this figure needs the scores: pass an Audit whose "
                "extras['data'] holds {'y', 'p', 'groups'}, or y_true=, y_score= "
                "and groups="
            )
        y = np.asarray(data["y"]).astype(np.int8)
        p = np.asarray(data["p"], dtype=float)
        attrs = as_groups(data["groups"], p.shape[0])
    keep = np.isfinite(p)
    if not keep.all():
        y, p, attrs = y[keep], p[keep], attrs[keep].reset_index(drop=True)
    return _Rows(y, p, build_groups(attrs))


def _threshold(result, threshold):
    if threshold is not None:
        return float(threshold)
    if result is not None:
        return float(_audit_of(result).config.get("threshold", 0.5))
    return 0.5


def _default_family(rows, family):
    fams = rows.structure.families
    if family is None:
        return fams[0]
    if family not in fams:
        raise ValueError(f"family: expected one of {', '.join(fams)}, found {family!r}")
    return family


def _roc_curve(y, p):
    """(fpr, tpr) at every distinct threshold, from (0, 0) to (1, 1)."""
    order = np.argsort(-p, kind="mergesort")
    ps, ys = p[order], y[order].astype(float)
    last = np.r_[np.flatnonzero(np.diff(ps) != 0), ys.size - 1]
    tp = np.cumsum(ys)[last]
    fp = (last + 1) - tp
    return np.r_[0.0, fp / fp[-1]], np.r_[0.0, tp / tp[-1]]


def _area(fpr, tpr):
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


@_paper_style
def plot_roc(
    result=None,
    *,
    y_true=None,
    y_score=None,
    groups=None,
    scores="auto",
    family=None,
    threshold=None,
    ax=None,
    show_overall=True,
):
    """ROC curve of every group of one family, with the operating point at the threshold.

    Parameters
    ----------
    result : Audit, optional
        An audit with ``extras["data"]`` (or give the arrays).
    y_true, y_score, groups : array-like, optional
        Labels (1 = fake), scores and attribute columns, as for :func:`fairaudit.audit`.
    scores : {"auto", "prob", "logit", "logits2"}
        Score rule of ``y_score``.
    family : str, optional
        Default: the first family (e.g. ``gender``).
    threshold : float, optional
        On p(fake); default the audit's threshold, else 0.5.

    Returns
    -------
    matplotlib Axes
        One curve per group with both classes (legend ``group (AUC x)``), the whole set
        in black, the chance diagonal in grey; a marker on each curve at the threshold.

    Examples
    --------
    >>> from fairaudit._example import _demo
    >>> ax = plot_roc(_demo(), family="race")
    >>> ax.get_title(), len(ax.get_lines()) >= 4
    ('race; dots: threshold 0.5', True)
    """
    rows = _rows(result, y_true, y_score, groups, scores, threshold)
    family = _default_family(rows, family)
    thr = _threshold(result, threshold)
    if ax is None:
        _, axes = _new_axes((COLUMN_WIDTH, COLUMN_WIDTH))
        ax = axes[0, 0]
    ax.plot([0, 1], [0, 1], color="#bbbbbb", linewidth=0.7, linestyle="-", label="_chance")
    handles, labels, skipped = [], [], []
    curves = [(family, g, m) for g, m in rows.groups_of(family)]
    if show_overall:
        curves.append((OVERALL, OVERALL, np.ones(rows.p.size, bool)))
    for fam, g, m in curves:
        y, p = rows.y[m], rows.p[m]
        if y.size == 0 or y.min() == y.max():
            skipped.append(g)
            continue
        fpr, tpr = _roc_curve(y, p)
        st = rows.layout.style(fam, g)
        (line,) = ax.plot(
            fpr,
            tpr,
            color=st["color"],
            linestyle=st["linestyle"],
            linewidth=1.0 if fam != OVERALL else 1.3,
            drawstyle="default",
        )
        op_f, op_t = np.mean(p[y == 0] >= thr), np.mean(p[y == 1] >= thr)
        ax.plot(
            op_f,
            op_t,
            marker=st["marker"],
            color=st["color"],
            markersize=4,
            markeredgecolor="white",
            markeredgewidth=0.5,
            linestyle="none",
        )
        handles.append(line)
        labels.append(f"{_t(g)} ({_area(fpr, tpr):.3f})")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false-positive rate (reals flagged)")
    ax.set_ylabel("true-positive rate (fakes caught)")
    ax.set_title(f"{_t(family)}; dots: threshold {thr:g}")
    if skipped:
        ax.text(
            0.98,
            0.02,
            "no curve (one class): " + ", ".join(map(_t, skipped)),
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize="x-small",
            color="#555555",
        )
    many = len(handles) > 5
    ax.legend(
        handles,
        labels,
        title="group (AUC)",
        loc="lower right" if not skipped else "center right",
        handlelength=1.5 if many else 1.8,
        borderaxespad=0.3,
        fontsize="x-small" if many else None,
        labelspacing=0.25 if many else None,
        title_fontsize="x-small" if many else None,
    )
    return ax


@_paper_style
def plot_score_distributions(
    result=None,
    *,
    y_true=None,
    y_score=None,
    groups=None,
    scores="auto",
    family=None,
    threshold=None,
    ax=None,
    bins=25,
):
    """p(fake) of every group of one family, reals to the left and fakes to the right.

    Each group is a split histogram ("violin" of bars): the left half (pale) shows the reals,
    the right half (full colour) the fakes, each half scaled to the same width; a short black
    tick marks each half's median and a dashed line the threshold.

    Returns
    -------
    matplotlib Axes
        Two filled shapes per group with rows of both labels (one per label present).

    Examples
    --------
    >>> from fairaudit._example import _demo
    >>> plot_score_distributions(_demo(), family="gender").get_xlabel()
    'gender'
    """
    from matplotlib.patches import Patch

    rows = _rows(result, y_true, y_score, groups, scores, threshold)
    family = _default_family(rows, family)
    thr = _threshold(result, threshold)
    members = rows.groups_of(family)
    if ax is None:
        _, axes = _new_axes((COLUMN_WIDTH, 2.3))
        ax = axes[0, 0]
    edges = np.linspace(0.0, 1.0, bins + 1)
    half = 0.42
    for x, (g, m) in enumerate(members):
        st = rows.layout.style(family, g)
        for label, side, alpha in ((0, -1, 0.4), (1, 1, 0.95)):
            p = rows.p[m & (rows.y == label)]
            if p.size == 0:
                continue
            h, _ = np.histogram(p, bins=edges)
            w = half * h / h.max()
            yy = np.repeat(edges, 2)[1:-1]
            ww = np.repeat(w, 2)
            ax.fill_betweenx(
                yy,
                x,
                x + side * ww,
                color=st["color"],
                alpha=alpha,
                linewidth=0,
                hatch=st["hatch"] if label == 1 else None,
                edgecolor="white",
            )
            med = float(np.median(p))
            ax.plot([x, x + side * half * 0.5], [med, med], color="black", linewidth=0.8)
        ax.text(
            x,
            1.02,
            f"n={int(m.sum())}",
            ha="center",
            va="bottom",
            fontsize="x-small",
            color="#555555",
            transform=ax.get_xaxis_transform(),
        )
    ax.axhline(thr, color="black", linestyle="--", linewidth=0.7)
    ax.set_xticks(
        range(len(members)),
        [_t(g) for g, _ in members],
        rotation=30 if len(members) > 4 else 0,
        ha="right" if len(members) > 4 else "center",
    )
    ax.set_xlim(-0.6, len(members) - 0.4)
    ax.set_ylim(0, 1)
    ax.set_ylabel("p(fake)")
    ax.set_xlabel(_t(family))
    handles = [
        Patch(facecolor="#777777", alpha=0.4),
        Patch(facecolor="#777777", alpha=0.95),
        ax.lines[-1],
    ]
    ax.legend(
        handles,
        ["real (left)", "fake (right)", f"threshold {thr:g}"],
        loc="lower center",
        bbox_to_anchor=(0.5, 1.06),
        ncol=3,
        borderaxespad=0.2,
        handlelength=1.2,
    )
    return ax


def _rates(p, y, thresholds):
    """FPR and TPR at every threshold (predicted fake when p >= t); NaN without the class."""
    out = []
    for label in (0, 1):
        s = np.sort(p[y == label])
        if s.size == 0:
            out.append(np.full(thresholds.size, np.nan))
        else:
            out.append(1.0 - np.searchsorted(s, thresholds, side="left") / s.size)
    return out


@_paper_style
def plot_threshold_sweep(
    result=None,
    *,
    y_true=None,
    y_score=None,
    groups=None,
    scores="auto",
    family=None,
    threshold=None,
    thresholds=None,
    fig=None,
    axes=None,
):
    """Per-group FPR and TPR, and the gaps, as the threshold moves.

    Parameters
    ----------
    thresholds : array-like, optional
        Thresholds on p(fake) (default 201 points from 0 to 1).
    axes : sequence of 3 Axes, optional
        Draw FPR, TPR and the gaps here; else a new figure (``fig`` if given).

    Returns
    -------
    matplotlib Figure
        Three panels: FPR per group, TPR per group (one line per group, the whole set in
        black), and ``fpr_range``, ``tpr_range`` and ``equalized_odds`` of the family; a
        dotted line at the audit's threshold.

    Examples
    --------
    >>> from fairaudit._example import _demo
    >>> len(plot_threshold_sweep(_demo(), family="race").axes) >= 2
    True
    """
    rows = _rows(result, y_true, y_score, groups, scores, threshold)
    family = _default_family(rows, family)
    thr = _threshold(result, threshold)
    t = np.linspace(0.0, 1.0, 201) if thresholds is None else np.asarray(thresholds, float)
    if axes is None:
        if fig is None:
            fig, grid = _new_axes((PAGE_WIDTH, 2.2), 1, 3)
        else:
            grid = fig.subplots(1, 3, squeeze=False)
        axes = list(grid[0])
    fig = axes[0].figure
    ax_f, ax_t, ax_g = axes
    fprs, tprs, handles, labels = [], [], [], []
    for g, m in rows.groups_of(family):
        st = rows.layout.style(family, g)
        f, tp = _rates(rows.p[m], rows.y[m], t)
        fprs.append(f)
        tprs.append(tp)
        kw = dict(color=st["color"], linestyle=st["linestyle"], linewidth=1.0)
        (line,) = ax_f.plot(t, f, **kw)
        ax_t.plot(t, tp, **kw)
        handles.append(line)
        labels.append(_t(g))
    f_all, t_all = _rates(rows.p, rows.y, t)
    for ax, v in ((ax_f, f_all), (ax_t, t_all)):
        (line,) = ax.plot(t, v, color=OVERALL_COLOR, linewidth=1.3)
    handles.append(line)
    labels.append("overall")
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fpr_range = _range(np.array(fprs))
            tpr_range = _range(np.array(tprs))
    eo = np.maximum(fpr_range, tpr_range)
    ax_g.plot(t, eo, color="black", linewidth=1.3, label="equalized_odds")
    ax_g.plot(t, fpr_range, color="#555555", linestyle="--", linewidth=1.0, label="fpr_range")
    ax_g.plot(t, tpr_range, color="#555555", linestyle=":", linewidth=1.0, label="tpr_range")
    for ax, ylabel in (
        (ax_f, "false-positive rate"),
        (ax_t, "true-positive rate"),
        (ax_g, f"gap over {_t(family)}"),
    ):
        ax.axvline(thr, color="#555555", linestyle=":", linewidth=0.7)
        ax.set_xlabel("threshold on p(fake)")
        ax.set_ylabel(ylabel)
        ax.set_xlim(t.min(), t.max())
        ax.set_ylim(-0.02, 1.02)
        ax.grid(linewidth=0.4, alpha=0.5)
    ax_g.legend(loc="upper right", handlelength=1.8)
    many = len(handles) > 5
    # TPR stays near 1 at low thresholds: the lower left of its panel is free
    ax_t.legend(
        handles,
        labels,
        loc="lower left",
        handlelength=1.5 if many else 1.8,
        fontsize="x-small" if many else None,
        labelspacing=0.25 if many else None,
    )
    return fig


def _range(values):
    """max - min over groups (axis 0), NaN where fewer than two groups are defined."""
    defined = np.sum(~np.isnan(values), axis=0)
    out = np.nanmax(values, axis=0) - np.nanmin(values, axis=0)
    return np.where(defined >= 2, out, np.nan)


@_paper_style
def plot_calibration(
    result=None,
    *,
    y_true=None,
    y_score=None,
    groups=None,
    scores="auto",
    family=None,
    n_bins=10,
    min_bin_count=10,
    ax=None,
    show_overall=True,
):
    """Reliability diagram per group: share of fakes against mean p(fake), per score bin.

    Parameters
    ----------
    n_bins : int
        Equal-width bins of p(fake).
    min_bin_count : int
        Bins with fewer rows of a group are left out of its curve (too noisy).

    Returns
    -------
    matplotlib Axes
        One line per group (the whole set in black) and the diagonal of perfect calibration.
        The legend gives each group's expected calibration error when the audit has it.

    Examples
    --------
    >>> from fairaudit._example import _demo
    >>> plot_calibration(_demo(), family="race").get_xlabel()
    'mean p(fake) in bin'
    """
    rows = _rows(result, y_true, y_score, groups, scores, None)
    family = _default_family(rows, family)
    if ax is None:
        _, axes = _new_axes((COLUMN_WIDTH, COLUMN_WIDTH))
        ax = axes[0, 0]
    ece = None
    if result is not None and "ece" in _audit_of(result).config.get("metrics", []):
        ece = _audit_of(result).intervals("ece")["value"]
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ax.plot([0, 1], [0, 1], color="#bbbbbb", linewidth=0.7)
    curves = [(family, g, m) for g, m in rows.groups_of(family)]
    if show_overall:
        curves.append((OVERALL, OVERALL, np.ones(rows.p.size, bool)))
    handles, labels = [], []
    for fam, g, m in curves:
        p, y = rows.p[m], rows.y[m]
        b = np.minimum(np.searchsorted(edges, p, side="right") - 1, n_bins - 1)
        cnt = np.bincount(b, minlength=n_bins)
        mp = np.bincount(b, weights=p, minlength=n_bins)
        my = np.bincount(b, weights=y, minlength=n_bins)
        ok = cnt >= max(1, min_bin_count)
        if not ok.any():
            continue
        st = rows.layout.style(fam, g)
        (line,) = ax.plot(
            mp[ok] / cnt[ok],
            my[ok] / cnt[ok],
            color=st["color"],
            linestyle=st["linestyle"],
            marker=st["marker"],
            markersize=3,
            linewidth=1.0 if fam != OVERALL else 1.3,
        )
        handles.append(line)
        label = _t(g)
        if ece is not None and (fam, g) in ece.index and not _isnan(ece.loc[(fam, g)]):
            label += f" ({ece.loc[(fam, g)]:.3f})"
        labels.append(label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("mean p(fake) in bin")
    ax.set_ylabel("share of fakes in bin")
    ax.set_title(_t(family))
    many = len(handles) > 5
    ax.legend(
        handles,
        labels,
        title="group (ECE)" if ece is not None else None,
        loc="best",
        handlelength=1.5 if many else 1.8,
        borderaxespad=0.3,
        fontsize="x-small" if many else None,
        labelspacing=0.25 if many else None,
        title_fontsize="x-small" if many else None,
    )
    return ax
