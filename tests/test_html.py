"""The HTML report: parses, holds every group and gap, embeds its images, stays offline,
and escapes user strings."""

import base64
import dataclasses
import html
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import fairaudit  # noqa: E402
from fairaudit._html import (  # noqa: E402
    _figures_note,
    audit_repr_html,
    build_figures,
    render_html,
    write_report,
)

SCRIPT = "<script>alert(1)</script>"
CELLS = {
    ("male", "asian"): (60, 120),
    ("male", "white"): (80, 150),
    ("male", "black"): (10, 40),
    ("female", "asian"): (70, 130),
    ("female", "white"): (75, 160),
    ("female", "black"): (0, 35),
}
PROVENANCE = {
    "files": {
        "scores": {"path": "preds <A>.npy", "sha256": "ab" * 32},
        "csv": {"path": "test&demo.csv", "sha256": "cd" * 32},
    },
    "groups_from": "columns gender, race",
}


def make_data(race_names=None, seed=0):
    rng = np.random.default_rng(seed)
    g, r, y = [], [], []
    for (gender, race), (n_real, n_fake) in CELLS.items():
        g += [gender] * (n_real + n_fake)
        r += [(race_names or {}).get(race, race)] * (n_real + n_fake)
        y += [0] * n_real + [1] * n_fake
    y = np.array(y)
    p = 1 / (1 + np.exp(-(np.where(y == 1, 1.2, -1.2) + rng.normal(0, 1.1, y.size))))
    return y, p, pd.DataFrame({"gender": g, "race": r})


def without_scores(result):
    return dataclasses.replace(
        result, extras={k: v for k, v in result.extras.items() if k != "data"}
    )


class Collector(HTMLParser):
    """Tags, attributes and text of a document (fails on nothing; records everything)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.text, self.stack_errors = [], [], [], 0
        self._open = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.append((tag, dict(attrs)))
        if tag not in {"meta", "img", "br", "hr", "link", "input"}:
            self._open.append(tag)

    def handle_endtag(self, tag):
        if not self._open or self._open[-1] != tag:
            self.stack_errors += 1
        else:
            self._open.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(doc):
    c = Collector()
    c.feed(doc)
    c.close()
    return c


@pytest.fixture(scope="module")
def audit_plain():
    y, p, groups = make_data()
    r = fairaudit.audit(y, p, groups, n_boot=40, seed=0, provenance=PROVENANCE)
    return without_scores(r)


@pytest.fixture(scope="module")
def audit_data(audit_plain):
    y, p, groups = make_data()
    return dataclasses.replace(audit_plain, extras={"data": {"y": y, "p": p, "groups": groups}})


@pytest.fixture(scope="module")
def report(audit_data):
    return render_html(audit_data)


@pytest.fixture(scope="module")
def comparison():
    y, p, groups = make_data()
    p2 = np.clip(p + np.random.default_rng(3).normal(0, 0.05, p.size), 0, 1)
    return fairaudit.compare(y, p, p2, groups, n_boot=30, names=("<b>base</b>", "fair & square"))


def with_scores(result, y, p, groups):
    return dataclasses.replace(
        result, extras={**result.extras, "data": {"y": y, "p": p, "groups": groups}}
    )


def test_report_parses_and_is_well_nested(report):
    c = parse(report)
    assert report.startswith("<!DOCTYPE html>")
    assert c.tags[0] == "html" and "body" in c.tags and "table" in c.tags
    assert c.stack_errors == 0 and c._open == []


def test_report_holds_every_group_and_gap(audit_data, report):
    text = " ".join(parse(report).text)
    for row in audit_data.counts.itertuples(index=False):
        assert row.group in text
    for name in set(audit_data.gaps["name"]):
        assert name in text
    for fam in audit_data.families:
        assert f"Family {fam}" in text


def test_report_embeds_every_figure(audit_data, report):
    n_figures = len(build_figures(audit_data))
    assert n_figures == 7  # bars, heatmap, forest, roc, distributions, sweep, calibration
    imgs = [a for t, a in parse(report).attrs if t == "img"]
    assert len(imgs) == n_figures
    for a in imgs:
        assert a["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(a["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        assert a["alt"]


def test_report_is_offline(report):
    assert "http://" not in report and "https://" not in report
    c = parse(report)
    assert not {"script", "link", "iframe", "object", "embed"} & set(c.tags)
    for tag, a in c.attrs:
        for key in ("src", "href"):
            if key in a:
                assert a[key].startswith(("data:", "#")), (tag, a[key])
    assert "@import" not in report and "url(" not in report


def test_report_config_provenance_and_headline(audit_data, report):
    text = html.unescape(report)
    for info in PROVENANCE["files"].values():
        assert info["path"] in text and info["sha256"] in text
    assert "&lt;A&gt;" in report and "test&amp;demo.csv" in report
    for word in (
        "score rule",
        "threshold",
        "resampling scheme",
        "seed",
        "numpy",
        "pandas",
        "fairaudit",
        "permutation",
    ):
        assert word in text
    assert np.__version__ in text and pd.__version__ in text
    summary = text[text.index('id="summary"') : text.index('id="warnings"')]
    worst = (
        audit_data.gaps[
            audit_data.gaps["name"].str.endswith("_range")
            & audit_data.gaps["name"].isin(
                [
                    "auc_range",
                    "eer_range",
                    "fpr_range",
                    "tpr_range",
                    "accuracy_range",
                    "balanced_error_range",
                ]
            )
        ]
        .sort_values("value")
        .iloc[-1]
    )
    assert worst["name"] in summary and f"{worst['value']:.3f}" in summary
    assert "adjusted p" in summary and "p = &lt;" not in summary  # adjusted, plain words


def test_report_warnings_small_and_undefined(audit_data, report):
    text = html.unescape(report)
    warn = text[text.index('id="warnings"') : text.index('id="tables"')]
    assert len(audit_data.warnings) > 0
    for w in audit_data.warnings:
        assert w in warn
    assert "no negative rows in the group" in warn  # undefined female+black metrics
    assert 'class="small"' in report


def test_script_group_is_escaped():
    y, p, groups = make_data(race_names={"black": SCRIPT})
    r = fairaudit.audit(
        y, p, groups, provenance={"files": {SCRIPT: {"path": SCRIPT, "sha256": "0"}}}, n_boot=0
    )
    doc = render_html(r, figures=False)
    assert SCRIPT not in doc
    assert html.escape(SCRIPT) in doc
    c = parse(doc)
    assert "script" not in c.tags
    assert SCRIPT in "".join(c.text)  # shown as text
    rep = audit_repr_html(r)
    assert SCRIPT not in rep and html.escape(SCRIPT) in rep


def test_script_group_in_figures_and_attribute_names():
    y, p, groups = make_data(race_names={"black": SCRIPT})
    groups = groups.rename(columns={"race": "ra<i>ce"})
    r = without_scores(fairaudit.audit(y, p, groups, n_boot=0))
    doc = render_html(r)
    assert SCRIPT not in doc and "ra<i>ce" not in doc
    assert "script" not in parse(doc).tags and "i" not in parse(doc).tags


def test_without_figures_and_without_scores(audit_plain):
    doc = render_html(audit_plain, figures=False)
    assert "<img" not in doc
    assert [f[0] for f in build_figures(audit_plain)] == [  # no scores
        "group_metrics",
        "heatmap_gender_race",
        "gap_forest",
    ]
    assert "need the scores" in doc or "need the scores" in _figures_note(audit_plain)


def test_write_report_with_figure_files(audit_plain, tmp_path):
    path = write_report(audit_plain, tmp_path / "out", figures="svg")
    assert path == tmp_path / "out" / "report.html" and path.exists()
    files = sorted(p.name for p in (tmp_path / "out" / "figures").iterdir())
    assert files == ["gap_forest.svg", "group_metrics.svg", "heatmap_gender_race.svg"]
    assert (
        (tmp_path / "out" / "figures" / "gap_forest.svg").read_text().lstrip().startswith("<?xml")
    )
    assert path.read_text(encoding="utf-8").count("<img") == 3
    with pytest.raises(fairaudit.FairauditError):
        write_report(audit_plain, tmp_path / "x", figures="gif")


def test_comparison_report(comparison, tmp_path):
    plain = dataclasses.replace(
        comparison, a=without_scores(comparison.a), b=without_scores(comparison.b)
    )
    path = write_report(plain, tmp_path, figures="png")
    doc = path.read_text(encoding="utf-8")
    c = parse(doc)
    assert c.stack_errors == 0
    text = " ".join(c.text)
    assert "<b>base</b>" in text and "fair & square" in text  # names shown as text
    assert "<b>base</b>" not in doc
    for name in set(comparison.gap_differences()["name"]):
        assert name in text
    for g in comparison.a.counts["group"]:
        assert g in text
    figs = sorted(p.stem for p in (tmp_path / "figures").iterdir())
    assert figs == ["compare_gaps", "compare_groups", "compare_heatmap_gender_race"]
    assert doc.count("data:image/png;base64,") == 3
    assert "http://" not in doc and "https://" not in doc
    assert "paired" in text
    assert "need the scores" in text


def test_comparison_figures_with_scores(comparison):
    y, p, groups = make_data()
    p2 = np.clip(p + np.random.default_rng(3).normal(0, 0.05, p.size), 0, 1)
    full = dataclasses.replace(
        comparison,
        a=with_scores(comparison.a, y, p, groups),
        b=with_scores(comparison.b, y, p2, groups),
    )
    figs = build_figures(full)
    assert [f[0] for f in figs] == [
        "compare_gaps",
        "compare_groups",
        "compare_heatmap_gender_race",
        "roc_b_base_b",
        "roc_fair_square",
    ]
    roc_a = figs[3][3]
    assert len(roc_a.axes) == 3 and roc_a.axes[0].get_title().startswith("<b>base</b>: gender")


def test_repr_html_compact(audit_plain, comparison):
    rep = audit_repr_html(audit_plain)
    c = parse(rep)
    assert c.stack_errors == 0 and "img" not in c.tags
    text = " ".join(c.text)
    for g in audit_plain.counts["group"]:
        assert g in text
    assert "fpr_range" in text and "warning" in text
    assert len(rep) < 20000
    # wide tables scroll inside their box in a notebook too (the page's CSS is not there)
    assert rep.count('<div class="scroll">') == rep.count("<table")
    assert ".fairaudit-repr .scroll{overflow-x:auto" in rep
    rep = audit_repr_html(comparison)
    assert "Comparison" in rep and "&lt;b&gt;base&lt;/b&gt;" in rep


def test_cli_writes_report(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    import fairaudit._html as fh
    from fairaudit._cli import main

    made = []

    def one_figure(result):  # the hook is under test here, not the figures (tested above)
        made.append(result)
        fig = Figure(figsize=(2, 2))
        fig.subplots().plot([0, 1])
        return [("line", "A line", "caption", fig)]

    monkeypatch.setattr(fh, "build_figures", one_figure)
    out = tmp_path / "cli"
    rc = main(
        [
            "report",
            "--example",
            "--n-boot",
            "10",
            "--quiet",
            "--out",
            str(out),
            "--figures",
            "pdf",
            "--format",
            "json",
        ]
    )
    assert rc == 0
    doc = (out / "report.html").read_text(encoding="utf-8")
    assert "preds.npy" in doc and "test.csv" in doc
    assert [p.name for p in (out / "figures").iterdir()] == ["line.pdf"]
    assert doc.count("<img") == 1 and isinstance(made[0], fairaudit.Audit)
    from fairaudit._example import example_paths
    from fairaudit._io import sha256

    assert "Family gender+race" in doc and sha256(example_paths()["preds"]) in doc


def test_subsets_single_attribute_and_empty_cells():
    rng = np.random.default_rng(1)
    g = rng.choice(["male", "female"], 500)
    r = rng.choice(["asian", "white", "black"], 500)
    keep = ~((g == "female") & (r == "black"))  # an empty intersection cell
    g, r = g[keep], r[keep]
    y = (rng.random(g.size) < 0.7).astype(int)
    p = 1 / (1 + np.exp(-(np.where(y == 1, 1.0, -1.0) + rng.normal(0, 1, g.size))))
    groups = pd.DataFrame({"gender": g, "race": r})
    cases = {
        "auc only": fairaudit.audit(y, p, groups, n_boot=10, metrics=["auc"]),
        "no bootstrap": fairaudit.audit(y, p, groups, n_boot=0, reference="white"),
        "one attribute": fairaudit.audit(y, p, groups[["race"]], n_boot=10),
    }
    for label, res in cases.items():
        data = {"y": y, "p": p, "groups": groups[res.config["attributes"]]}
        res = dataclasses.replace(res, extras={"data": data})
        names = [f[0] for f in build_figures(res)]
        assert "gap_forest" in names and "roc" in names, label
        assert ("heatmap_gender_race" in names) == (label != "one attribute"), label
        doc = render_html(res, figures=False)
        assert parse(doc).stack_errors == 0, label
        assert "empty" in doc or label == "one attribute", label
        audit_repr_html(res)
    assert "Differences and ratios to the reference groups (white)" in render_html(
        cases["no bootstrap"], figures=False
    )
