"""Figures: the expected axes, labels, legend entries and number of bars/lines for known input."""

import dataclasses

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

import fairaudit  # noqa: E402
from fairaudit import plots  # noqa: E402

# (gender, race) -> (reals, fakes): race "black" has few reals (small), female+black none.
CELLS = {
    ("male", "asian"): (60, 120),
    ("male", "white"): (80, 150),
    ("male", "black"): (10, 40),
    ("female", "asian"): (70, 130),
    ("female", "white"): (75, 160),
    ("female", "black"): (0, 35),
}
N_GROUPS = 2 + 3 + 6


def make_data(seed=0, race_names=None):
    rng = np.random.default_rng(seed)
    g, r, y = [], [], []
    for (gender, race), (n_real, n_fake) in CELLS.items():
        g += [gender] * (n_real + n_fake)
        r += [(race_names or {}).get(race, race)] * (n_real + n_fake)
        y += [0] * n_real + [1] * n_fake
    y = np.array(y)
    shift = np.array([0.4 if x == "black" else 0.0 for x in r])
    logit = np.where(y == 1, 1.2, -1.2) + shift + rng.normal(0, 1.1, y.size)
    p = 1 / (1 + np.exp(-logit))
    groups = pd.DataFrame({"gender": pd.Categorical(g, ["male", "female"]), "race": r})
    return y, p, logit, groups


def with_data(result, y, p, groups):
    return dataclasses.replace(
        result, extras={**result.extras, "data": {"y": y, "p": p, "groups": groups}}
    )


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def res(data):
    y, p, _, groups = data
    r = fairaudit.audit(y, p, groups, n_boot=60, seed=1)
    return with_data(r, y, p, groups)


@pytest.fixture(scope="module")
def cmp(data):
    y, p, _, groups = data
    p2 = np.clip(p + np.random.default_rng(5).normal(0, 0.05, p.size), 0, 1)
    return fairaudit.compare(y, p, p2, groups, n_boot=40, names=("base", "fair"))


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def texts(items):
    return [t.get_text() for t in items]


def legend_texts(ax):
    leg = ax.get_legend()
    assert leg is not None
    return texts(leg.get_texts())


def curves(ax, min_points=3):
    return [ln for ln in ax.get_lines() if len(ln.get_xdata()) >= min_points]


# ---------------------------------------------------------------------------- styles
def test_group_styles_consistent_colour_blind_safe(res):
    st = plots.group_styles(res)
    assert st[("overall", "overall")]["color"] == plots.OVERALL_COLOR
    single = [st[("gender", g)]["color"] for g in ("male", "female")]
    single += [st[("race", g)]["color"] for g in ("asian", "white", "black")]
    assert len(set(single)) == 5 and set(single) <= set(plots.PALETTE)
    for race in ("asian", "white", "black"):
        m, f = st[("gender+race", f"male+{race}")], st[("gender+race", f"female+{race}")]
        assert m["color"] == f["color"] == st[("race", race)]["color"]
        assert m["linestyle"] != f["linestyle"] and m["hatch"] != f["hatch"]
    assert plots.group_colors(res)[("race", "white")] == st[("race", "white")]["color"]


# ---------------------------------------------------------------------------- bars
def test_group_metric_bars(res):
    ax = plots.plot_group_metric(res, "fpr")
    fig = ax.figure
    assert fig.get_size_inches()[0] == pytest.approx(plots.COLUMN_WIDTH)
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    undefined = res.undefined.query("metric == 'fpr'")
    assert len(undefined) == 1 and undefined.iloc[0]["group"] == "female+black"
    assert len(bars) == N_GROUPS - 1
    labels = texts(ax.get_yticklabels())
    assert labels[:3] == ["gender", "male", "female"]
    assert "race" in labels and "gender+race" in labels
    assert "black *" in labels and "male+black *" in labels  # small groups are marked
    assert "undefined" in " ".join(texts(ax.texts))
    ov = res.intervals("fpr").loc[("overall", "overall"), "value"]
    leg = legend_texts(ax)
    assert leg[0] == f"overall {ov:.3f}" and "95% interval" in leg
    assert any(t.startswith("* fewer than 30") for t in leg)
    assert ax.get_xlabel() == "fpr (higher is worse)"
    # bar lengths are the metric values, in the group order of the audit
    male = res.intervals("fpr").loc[("gender", "male"), "value"]
    assert bars[0].get_width() == pytest.approx(male)


def test_group_metric_into_given_axes_and_families(res):
    fig, ax = plt.subplots()
    out = plots.plot_group_metric(res, "auc", families=["race"], ax=ax, show_overall=False)
    assert out is ax
    assert texts(ax.get_yticklabels()) == ["race", "asian", "white", "black *"]
    assert len(ax.patches) == 3
    assert not any(t.startswith("overall") for t in legend_texts(ax))
    with pytest.raises(ValueError, match="families"):
        plots.plot_group_metric(res, "auc", families=["age"])
    with pytest.raises(ValueError, match="metric"):
        plots.plot_group_metric(res, "f1")


def test_group_metrics_panels(res):
    fig = plots.plot_group_metrics(res, ["auc", "fpr", "tpr"])
    axes = fig.axes
    assert [a.get_xlabel() for a in axes] == ["auc", "fpr", "tpr"]
    assert len(fig.legends) == 1
    assert texts(fig.legends[0].get_texts())[:2] == ["overall", "95% interval"]


# ---------------------------------------------------------------------------- heatmap
def test_heatmap_cells_marked(res):
    ax = plots.plot_heatmap(res, "fpr")
    im = [c for c in ax.get_children() if isinstance(c, AxesImage)]
    assert len(im) == 1 and im[0].get_array().shape == (2, 3)
    assert im[0].get_array().mask[1, 2]  # female+black undefined
    assert texts(ax.get_xticklabels()) == ["asian", "white", "black"]
    assert texts(ax.get_yticklabels()) == ["male", "female"]
    assert ax.get_xlabel() == "race" and ax.get_ylabel() == "gender"
    cell_texts = texts(ax.texts)
    assert "n/a" in cell_texts
    value = res.intervals("fpr").loc[("gender+race", "male+black"), "value"]
    assert f"{value:.3f}*" in cell_texts  # small cell marked
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == 1  # male+black (female+black is undefined, also small)
    assert legend_texts(ax) == ["* few reals or fakes", "n/a: undefined"]
    cbar_label = ax.figure.axes[-1].get_ylabel()
    assert cbar_label == "fpr (higher is worse)"


def test_heatmap_needs_two_attributes(data):
    y, p, _, groups = data
    r = fairaudit.audit(y, p, groups[["race"]], n_boot=0)
    with pytest.raises(ValueError, match="two attributes"):
        plots.plot_heatmap(r, "fpr")


def test_heatmap_of_comparison_is_difference(cmp):
    ax = plots.plot_heatmap(cmp, "tpr", show_ci=False)
    im = [c for c in ax.get_children() if isinstance(c, AxesImage)][0]
    d = cmp.differences.query("kind == 'group' and family == 'gender+race' and name == 'tpr'")
    diff = d.set_index("group")["diff"]
    assert im.get_array()[0, 0] == pytest.approx(diff["male+asian"])
    assert im.norm.vmin == pytest.approx(-im.norm.vmax)
    assert ax.figure.axes[-1].get_ylabel() == "tpr: fair - base"


# ---------------------------------------------------------------------------- forests
def test_gap_forest(res):
    ax = plots.plot_gap_forest(res, gaps=["fpr_range", "tpr_range", "equalized_odds"])
    labels = texts(ax.get_yticklabels())
    assert labels == [
        "gender",
        "fpr_range",
        "tpr_range",
        "equalized_odds",
        "race",
        "fpr_range",
        "tpr_range",
        "equalized_odds",
        "gender+race",
        "fpr_range",
        "tpr_range",
        "equalized_odds",
    ]
    p_texts = [t for t in texts(ax.texts) if t.startswith("p ")]
    assert len(p_texts) == 9
    g = res.gap("race", "tpr_range")
    points = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 1]
    assert len(points) == 9
    assert any(ln.get_xdata()[0] == pytest.approx(g["value"]) for ln in points)
    zero = [ln for ln in ax.get_lines() if list(ln.get_xdata()) == [0, 0]]
    assert zero, "a reference line at 0"
    leg = legend_texts(ax)
    assert leg[-1] == "95% interval"
    assert set(leg[:-1]) <= {"p < 0.05", "p \u2265 0.05", "no test"}
    with pytest.raises(ValueError, match="gaps"):
        plots.plot_gap_forest(res, gaps=["nope"])


def test_default_forest_skips_ratios(res):
    ax = plots.plot_gap_forest(res, families="race")
    labels = texts(ax.get_yticklabels())
    assert labels == ["race"] + list(plots.DEFAULT_FOREST_GAPS)


def test_compare_gaps_and_groups(cmp):
    ax = plots.plot_compare_gaps(cmp, gaps=["auc_range", "fpr_range"])
    assert len([ln for ln in ax.get_lines() if len(ln.get_xdata()) == 1]) == 6
    assert "fair - base" in ax.get_xlabel()
    assert legend_texts(ax)[-1] == "95% interval (paired)"
    ax = plots.plot_compare_groups(cmp, "auc", families=["race"])
    markers = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 1]
    assert len(markers) == 2 * 3  # A and B per group
    assert legend_texts(ax) == ["base", "fair", "overall base", "overall fair"]
    assert ax.get_legend().get_title().get_text() == "* paired p < 0.05"
    assert texts(ax.get_yticklabels()) == ["race", "asian", "white", "black"]
    d = cmp.differences.query("kind == 'group' and family == 'race' and name == 'auc'")
    assert texts(ax.texts).count("*") == int((d["p_value"] < 0.05).sum())


# ---------------------------------------------------------------------------- raw scores
def test_roc_lines_and_operating_points(res):
    ax = plots.plot_roc(res, family="race")
    lines = curves(ax)
    assert len(lines) == 3 + 1  # groups + overall (the chance diagonal has 2 points)
    leg = legend_texts(ax)
    auc = res.intervals("auc")
    assert leg == [
        f"{g} ({auc.loc[(f, g), 'value']:.3f})"
        for f, g in [
            ("race", "asian"),
            ("race", "white"),
            ("race", "black"),
            ("overall", "overall"),
        ]
    ]
    points = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 1]
    fpr, tpr = res.intervals("fpr")["value"], res.intervals("tpr")["value"]
    assert points[1].get_xdata()[0] == pytest.approx(fpr[("race", "white")])
    assert points[1].get_ydata()[0] == pytest.approx(tpr[("race", "white")])
    assert "false-positive" in ax.get_xlabel() and "true-positive" in ax.get_ylabel()


def test_roc_one_class_group_is_skipped_and_arrays_accepted(data, res):
    y, p, logit, groups = data
    ax = plots.plot_roc(
        y_true=y, y_score=logit, groups=groups, scores="logit", family="gender+race"
    )
    assert len(curves(ax)) == 5 + 1  # female+black has no reals
    assert any("female+black" in t for t in texts(ax.texts))
    ax2 = plots.plot_roc(res, family="gender+race")
    a, b = curves(ax), curves(ax2)
    for la, lb in zip(a, b):
        np.testing.assert_allclose(la.get_xydata(), lb.get_xydata(), atol=1e-12)


def test_raw_figures_need_scores(data):
    y, p, _, groups = data
    r = fairaudit.audit(y, p, groups, n_boot=0)
    r = dataclasses.replace(r, extras={})
    with pytest.raises(ValueError, match="needs the scores"):
        plots.plot_roc(r)
    with pytest.raises(ValueError, match="all three"):
        plots.plot_calibration(y_true=y, y_score=p)


def test_score_distributions(res):
    ax = plots.plot_score_distributions(res, family="gender+race")
    shapes = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(shapes) == 2 * 6 - 1  # female+black has no reals
    assert texts(ax.get_xticklabels())[0] == "male+asian"
    assert ax.get_ylabel() == "p(fake)" and ax.get_ylim() == (0, 1)
    assert legend_texts(ax) == ["real (left)", "fake (right)", "threshold 0.5"]


def test_threshold_sweep_matches_audit_at_threshold(res):
    fig = plots.plot_threshold_sweep(res, family="race")
    ax_f, ax_t, ax_g = fig.axes
    assert len(curves(ax_f)) == 3 + 1 and len(curves(ax_t)) == 3 + 1
    assert legend_texts(ax_t) == ["asian", "white", "black", "overall"]
    assert legend_texts(ax_g) == ["equalized_odds", "fpr_range", "tpr_range"]
    x, eo = curves(ax_g)[0].get_data()
    k = int(np.argmin(np.abs(x - 0.5)))
    assert eo[k] == pytest.approx(res.gap("race", "equalized_odds")["value"])
    _, fpr_white = curves(ax_f)[1].get_data()
    assert fpr_white[k] == pytest.approx(res.intervals("fpr").loc[("race", "white"), "value"])


def test_calibration(res):
    ax = plots.plot_calibration(res, family="gender", n_bins=5)
    lines = curves(ax, min_points=2)
    assert len(lines) == 1 + 2 + 1  # diagonal, groups, overall
    leg = legend_texts(ax)
    ece = res.intervals("ece")["value"]
    assert leg[0] == f"male ({ece[('gender', 'male')]:.3f})"
    assert ax.get_legend().get_title().get_text() == "group (ECE)"
    assert leg[-1].startswith("overall")
    assert ax.get_xlim() == (0, 1)


def test_user_text_is_literal(data):
    y, p, _, groups = data
    odd = groups.assign(race=groups["race"].map({"asian": "a$b$", "white": "_w", "black": "b"}))
    r = fairaudit.audit(y, p, odd, n_boot=0)
    r = with_data(r, y, p, odd)
    ax = plots.plot_roc(r, family="race")
    ax.figure.canvas.draw()  # no mathtext error
    leg = legend_texts(ax)
    assert any(t.startswith("_w (") for t in leg)  # not hidden as a private label
    assert any(t.startswith(r"a\$b\$ (") for t in leg)
    ax = plots.plot_group_metric(r, "tpr", families="race")
    ax.figure.canvas.draw()
