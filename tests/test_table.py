"""fairaudit table: two detectors x two test sets in every format, marks, names, bad inputs.

The second test set is made from the embedded example (one test set of 622 videos): its videos,
sorted by ``video_id``, are dealt alternately into two disjoint halves ("videos_even" gets the
1st, 3rd, ... video, "videos_odd" the 2nd, 4th, ...). Both halves keep the research schema and
all eight gender x race groups with fakes and reals, so the families match; every frame of a
video stays in one half.
"""

import contextlib
import io
import json
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

import fairaudit
from fairaudit._cli import main

N_BOOT = "40"
HALVES = ("videos_even", "videos_odd")
DETECTORS = ("preds", "preds_fair")
COLUMNS = ["auc", "eer", "fpr_range", "equalized_odds", "demographic_parity"]


def cli_json(argv) -> dict:
    """Run the command line in-process with --format json; the printed report.json document."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv + ["--format", "json", "--quiet"]) == 0
    return json.loads(out.getvalue())


def write_doc(doc, folder) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(doc), encoding="utf-8")
    return str(folder)


@pytest.fixture(scope="module")
def halves(tmp_path_factory):
    """Both halves on disk (scores of both detectors, labels, CSV) and every run's report."""
    d = tmp_path_factory.mktemp("halves")
    paths = fairaudit.example_paths()
    csv = pd.read_csv(paths["csv"])
    arrays = {k: np.load(paths[k]) for k in ("labels",) + DETECTORS}
    videos = np.sort(csv["video_id"].unique())
    files, reports, compares = {}, {}, {}
    for half, chosen in zip(HALVES, (videos[::2], videos[1::2])):
        keep = csv["video_id"].isin(chosen).to_numpy()
        folder = d / half
        folder.mkdir()
        csv[keep].to_csv(folder / f"{half}.csv", index=False)
        for k, v in arrays.items():
            np.save(folder / f"{k}.npy", v[keep])
        f = {k: str(folder / f"{k}.npy") for k in arrays} | {"csv": str(folder / f"{half}.csv")}
        files[half] = f
        common = ["--n-boot", N_BOOT, "--cluster", "video_id"]
        for det in DETECTORS:
            doc = cli_json(["report", f[det], f["labels"], f["csv"]] + common)
            reports[(det, half)] = write_doc(doc, d / "runs" / f"{det}_{half}")
        doc = cli_json(["compare", f["preds"], f["preds_fair"], f["labels"], f["csv"]] + common)
        compares[half] = write_doc(doc, d / "runs" / f"compare_{half}")
    return {"dir": d, "files": files, "reports": reports, "compares": compares}


def load(path) -> dict:
    return json.loads(open(f"{path}/report.json", encoding="utf-8").read())


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def text_body(text) -> list:
    """The body lines of a text table (between its two rules), blank block separators out."""
    lines = text.splitlines()
    rules = [i for i, x in enumerate(lines) if x and set(x) == {"-"}]
    assert len(rules) == 2
    return [x for x in lines[rules[0] + 1 : rules[1]] if x.strip()]


def text_legend(text) -> str:
    lines = text.splitlines()
    return "\n".join(lines[[i for i, x in enumerate(lines) if x and set(x) == {"-"}][1] + 1 :])


def four_runs(h):
    return [h["reports"][(det, half)] for half in HALVES for det in DETECTORS]


def all_runs(h):
    return four_runs(h) + [h["compares"][half] for half in HALVES]


# ---------------------------------------------------------------------------- names recorded
def test_report_and_compare_record_names(halves):
    f = halves["files"]["videos_even"]
    doc = load(halves["reports"][("preds_fair", "videos_even")])
    assert (doc["config"]["name"], doc["config"]["dataset_name"]) == ("preds_fair", "videos_even")
    named = cli_json(
        ["report", f["preds"], f["labels"], f["csv"], "--n-boot", "0"]
        + ["--name", "Xception", "--dataset-name", "FF++ (even)"]
    )
    assert (named["config"]["name"], named["config"]["dataset_name"]) == ("Xception", "FF++ (even)")
    cmp_doc = load(halves["compares"]["videos_even"])
    assert cmp_doc["config"]["names"] == ["preds", "preds_fair"]
    assert cmp_doc["config"]["dataset_name"] == "videos_even"
    named = cli_json(
        ["compare", f["preds"], f["preds_fair"], f["labels"], f["csv"], "--n-boot", "0"]
        + ["--names", "base,fair", "--dataset-name", "even"]
    )
    assert named["config"]["names"] == ["base", "fair"]
    assert named["config"]["dataset_name"] == "even"


def test_compare_names_need_two(halves, capsys):
    f = halves["files"]["videos_even"]
    argv = ["compare", f["preds"], f["preds_fair"], f["labels"], f["csv"], "--n-boot", "0"]
    code, out, err = run(argv + ["--names", "solo"], capsys)
    assert code == 2 and err == "fairaudit: error: --names: expected two names A,B, found 'solo'\n"


# ---------------------------------------------------------------------------- every format
class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.in_body, self.tags = [], False, []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "tbody":
            self.in_body = True
        elif tag == "tr" and self.in_body:
            self.rows.append([])
        elif tag == "td" and self.in_body:
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        if tag == "tbody":
            self.in_body = False

    def handle_data(self, data):
        if self.in_body and self.rows and self.rows[-1]:
            self.rows[-1][-1] += data


def latex_rows(text, n_cols):
    """Check the booktabs structure; return the body rows split into cells."""
    lines = text.splitlines()
    spec = re.search(r"\\begin\{tabular\}\{([lcr]+)\}", text).group(1)
    assert len(spec) == n_cols
    top, bottom = lines.index(r"\toprule"), lines.index(r"\bottomrule")
    assert top < lines.index(r"\midrule") < bottom
    assert text.count(r"\begin{tabular}") == text.count(r"\end{tabular}") == 1
    assert text.count(r"\begin{table}") == text.count(r"\end{table}") == 1
    table_lines = [x for x in lines if not x.startswith("%")]
    for line in table_lines:
        plain = re.sub(r"\$[^$]*\$", "", line.replace(r"\\", ""))  # math and row ends out
        plain = re.sub(r"\\[{}&%$#_]", "", plain)  # escaped specials out
        assert plain.count("{") == plain.count("}"), line
        assert not re.search(r"[_%#$^~]", plain), f"unescaped special character in {line!r}"
    rows = [x for x in lines[top + 1 : bottom] if x != r"\midrule"]
    for r in rows:
        assert r.endswith(r" \\") and len(re.findall(r"(?<!\\)&", r)) == n_cols - 1, r
    return [re.split(r"(?<!\\)&", r[: -len(r" \\")]) for r in rows]


def test_four_rows_in_every_format(halves, capsys):
    runs = all_runs(halves)
    n_cols = 2 + len(COLUMNS)
    out = {}
    for fmt in ("text", "markdown", "latex", "csv", "html"):
        code, out[fmt], err = run(["table", *runs, "--format", fmt], capsys)
        assert code == 0 and err == "", err

    assert len(text_body(out["text"])) == 4
    head = out["text"].splitlines()[0]
    assert head.split()[:2] == ["test", "set"] and "auc ↑" in head

    md = [x for x in out["markdown"].splitlines() if x.startswith("|")]
    assert len(md) == 2 + 4
    assert all(len(re.findall(r"(?<!\\)\|", x)) == n_cols + 1 for x in md)
    assert all(re.fullmatch(r"-{3,}:?", c.strip()) for c in md[1].strip("|").split("|"))
    assert "**" in out["markdown"]  # the compare outputs separate some columns

    rows = latex_rows(out["latex"], n_cols)
    assert len(rows) == 1 + 4
    assert [c.strip() for c in rows[0][:2]] == ["test set", "detector"]
    assert r"preds\_fair" in out["latex"] and r"fpr\_range" in out["latex"]

    tidy = pd.read_csv(io.StringIO(out["csv"]))
    assert len(tidy) == 4 * len(COLUMNS)
    assert {"detector", "dataset", "metric", "value", "lo", "hi"} <= set(tidy.columns)
    assert not tidy.duplicated(["detector", "dataset", "metric"]).any()

    parser = _Cells()
    parser.feed(out["html"])
    assert len(parser.rows) == 4 and all(len(r) == n_cols for r in parser.rows)
    assert parser.tags.count("table") == 1 and "caption" in parser.tags


def test_cells_are_the_reports_numbers(halves, capsys):
    code, out, _ = run(["table", *all_runs(halves), "--format", "csv"], capsys)
    tidy = pd.read_csv(io.StringIO(out)).set_index(["detector", "dataset", "metric"])
    undefined = {}  # gap intervals the reports left undefined (most replicates unusable)
    for (det, half), path in halves["reports"].items():
        doc = load(path)
        assert doc["config"]["n_boot"] == int(N_BOOT)
        for m in ("auc", "eer"):
            row = tidy.loc[(det, half, m)]
            want = doc["overall"][m]
            assert (row["value"], row["lo"], row["hi"]) == (want["value"], want["lo"], want["hi"])
        gaps = {g["name"]: g for g in doc["gaps"] if g["family"] == "gender+race"}
        for m in ("fpr_range", "equalized_odds", "demographic_parity"):
            row = tidy.loc[(det, half, m)]
            assert row["family"] == "gender+race"
            assert row["value"] == gaps[m]["value"]
            # an interval left undefined (most replicates unusable) is NaN here, null there
            hi = gaps[m]["hi"]
            assert row["hi"] == hi or (hi is None and np.isnan(row["hi"]))
            assert row["p_value"] == gaps[m]["p_value"]
            undefined[(det, half, m)] = gaps[m]["lo"] is None
    # the comparisons' runs were merged into the reports' rows: the intervals are kept
    kept = tidy["lo"].notna()
    assert all(kept[key] != gone for key, gone in undefined.items()) and kept.any()
    # the text cells round the same numbers
    code, text, _ = run(["table", *four_runs(halves)], capsys)
    auc = load(halves["reports"][("preds", "videos_odd")])["overall"]["auc"]
    assert f"{auc['value']:.3f} [{auc['lo']:.3f}, {auc['hi']:.3f}]" in text


# ---------------------------------------------------------------------------- bold
def expected_best(compare_doc, metric, family="gender+race"):
    """Independent oracle for two runs: the favoured one when the interval excludes 0."""
    kind = "overall" if metric in fairaudit.METRIC_NAMES else "gap"
    (d,) = [
        x
        for x in compare_doc["differences"]
        if x["kind"] == kind
        and x["name"] == metric
        and (kind == "overall" or x["family"] == family)
    ]
    higher_better = metric == "auc"  # of the table's columns; eer and the gaps: lower
    if d["lo"] > 0:  # B - A > 0
        return "preds_fair" if higher_better else "preds"
    if d["hi"] < 0:
        return "preds" if higher_better else "preds_fair"
    return None


def test_bold_exactly_where_paired_intervals_separate(halves, capsys):
    code, out, _ = run(["table", *all_runs(halves), "--format", "csv"], capsys)
    tidy = pd.read_csv(io.StringIO(out))
    n_bold = 0
    for half in HALVES:
        cmp_doc = load(halves["compares"][half])
        for m in COLUMNS:
            sel = tidy[(tidy["dataset"] == half) & (tidy["metric"] == m)]
            bold = sel.loc[sel["best"], "detector"].tolist()
            want = expected_best(cmp_doc, m)
            assert bold == ([want] if want else []), (half, m)
            n_bold += len(bold)
    assert n_bold >= 2  # the AUC and EER differences of the example are clear


def test_nothing_bold_without_paired_comparisons(halves, capsys):
    code, out, _ = run(["table", *four_runs(halves)], capsys)
    body = "\n".join(text_body(out))
    assert code == 0 and "[" in body and "*" not in body
    assert "Nothing bold" in text_legend(out) and "none given" in text_legend(out)


def test_crossing_interval_removes_the_bold(halves, capsys, tmp_path):
    doc = load(halves["compares"]["videos_even"])
    for d in doc["differences"]:
        if d["kind"] == "overall" and d["name"] == "auc":
            assert d["lo"] * d["hi"] > 0  # separated in the real run
            d["lo"], d["hi"] = -abs(d["diff"]), abs(d["diff"])
    edited = write_doc(doc, tmp_path / "edited")
    code, out, _ = run(["table", edited, "--metrics", "auc,eer", "--format", "csv"], capsys)
    tidy = pd.read_csv(io.StringIO(out)).set_index("metric")
    assert not tidy.loc["auc", "best"].any() and tidy.loc["eer", "best"].any()


def small_runs(seed=0, n=800):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    groups = {"gender": rng.choice(["male", "female"], n)}
    strong = np.clip(0.55 * y + 0.45 * rng.random(n), 0, 1)
    weak = np.clip(0.1 * y + 0.9 * rng.random(n), 0, 1)
    return y, groups, strong, weak, rng.random(n)


def test_best_must_beat_every_other_run_by_a_paired_comparison():
    y, g, strong, weak, coin = small_runs()
    audits = [fairaudit.audit(y, s, g, n_boot=30) for s in (strong, weak, coin)]
    names = ["strong", "weak", "coin"]
    opts = dict(n_boot=30, names=("strong", "weak"))
    vs_weak = fairaudit.compare(y, strong, weak, g, **opts)
    vs_coin = fairaudit.compare(y, strong, coin, g, **(opts | {"names": ("strong", "coin")}))
    one = fairaudit.table(audits + [vs_weak], names=names, metrics="auc")
    assert len(one.data) == 3 and not one.data["best"].any()  # no evidence against coin
    assert "coin" in " ".join(one.legend) and "share their rows" in " ".join(one.legend)
    both = fairaudit.table(audits + [vs_weak, vs_coin], names=names, metrics="auc")
    assert both.data.set_index("detector")["best"].to_dict() == {
        "strong": True,
        "weak": False,
        "coin": False,
    }
    assert both.data["lo"].notna().all()  # the audits' intervals, comparisons merged in
    legend = " ".join(both.legend)
    assert "weak and coin on test set 1 share their rows" in legend  # true, and harmless
    assert "strong and" not in legend


# ---------------------------------------------------------------------------- issue-9 keys
def with_verdicts(doc):
    doc = json.loads(json.dumps(doc))
    doc["config"]["gap_ci"] = "studentized bootstrap"
    verdicts = {
        "fpr_range": "exceeds",
        "equalized_odds": "inconclusive",
        "demographic_parity": "within",
    }
    for g in doc["gaps"]:
        g["p_adjusted"] = min(1.0, 3 * g["p_value"])
        if g["family"] == "gender+race" and g["name"] in verdicts:
            g["tolerance"] = 0.1
            g["verdict"] = verdicts[g["name"]]
    return doc


def test_verdicts_marked_and_new_keys_read(halves):
    docs = [with_verdicts(load(halves["reports"][(det, "videos_even")])) for det in DETECTORS]
    t = fairaudit.table(docs)
    text = t.to_text()
    body = "\n".join(text_body(text))
    assert body.count("✗") == 2 and body.count("?") == 2 and body.count("✓") == 2
    assert "studentized bootstrap" in text_legend(text) and "✓ within" in text_legend(text)
    assert t.to_latex().count(r"$^{\surd}$") == 2 + 1  # two cells and the legend
    csv = pd.read_csv(io.StringIO(t.to_csv())).set_index(["detector", "metric"])
    row = csv.loc[("preds", "fpr_range")]
    assert row["verdict"] == "exceeds" and row["tolerance"] == 0.1
    gap = {g["name"]: g for g in docs[0]["gaps"] if g["family"] == "gender+race"}["fpr_range"]
    assert row["p_adjusted"] == gap["p_adjusted"]
    assert csv.loc[("preds", "auc"), "verdict"] != csv.loc[("preds", "auc"), "verdict"]  # NaN


def test_reports_without_verdicts_have_no_marks(halves, capsys):
    code, out, _ = run(["table", *four_runs(halves)], capsys)
    assert not set("✓✗?") & set(out)


# ---------------------------------------------------------------------------- pg-fdd
def test_pgfdd_column_set(halves, capsys, tmp_path):
    f = halves["files"]["videos_odd"]
    runs = []
    for det in DETECTORS:
        doc = cli_json(
            ["report", f[det], f["labels"], f["csv"], "--n-boot", "0", "--compat", "pg-fdd"]
        )
        runs.append(write_doc(doc, tmp_path / det))
    code, out, _ = run(["table", *runs, "--metrics", "pg-fdd", "--format", "csv"], capsys)
    assert code == 0
    tidy = pd.read_csv(io.StringIO(out))
    assert tidy["metric"].unique().tolist() == ["F_FPR", "F_OAE", "F_DP", "F_MEO", "AUC"]
    for det, path in zip(DETECTORS, runs):
        paper = load(path)["compat"]["paper"]
        got = tidy[tidy["detector"] == det].set_index("metric")["value"]
        assert got.to_dict() == paper
        assert got["F_FPR"] == pytest.approx(100 * compat_fpr_range(load(path)), abs=1e-9)
    assert not tidy["best"].any() and tidy["lo"].isna().all()
    code, latex, _ = run(["table", *runs, "--metrics", "pg-fdd", "--format", "latex"], capsys)
    assert r"F\_FPR $\downarrow$" in latex and r"AUC $\uparrow$" in latex
    code, out, err = run(
        [
            "table",
            *runs,
            halves["reports"][("preds", "videos_odd")],
            "--metrics",
            "pg-fdd",
            "--datasets",
            "a,b,c",
        ],
        capsys,
    )
    assert code == 2 and "--compat pg-fdd" in err and len(err.splitlines()) == 1


def compat_fpr_range(doc):
    """The paper's F_FPR from the compat per-set FPRs (independent of compat.paper)."""
    fprs = [g["FPR"] for key, g in doc["compat"]["groups"].items() if "," in key]
    return max(fprs) - min(fprs)


# ---------------------------------------------------------------------------- layout, names
def test_rows_dataset_blocks_by_detector(halves, capsys):
    code, out, _ = run(["table", *four_runs(halves), "--rows", "dataset"], capsys)
    lines = text_body(out)
    assert out.splitlines()[0].split()[:3] == ["detector", "test", "set"]
    assert lines[0].split()[:2] == ["preds", "videos_even"]
    assert lines[1].split()[0] == "videos_odd"  # same detector block: its name not repeated
    assert lines[2].split()[:2] == ["preds_fair", "videos_even"]


def test_names_override_and_special_characters(halves, capsys):
    names = "A&B_1%,[ours],<b>x</b>,y|z"
    datasets = "DF~1,DF~1,Celeb#2,Celeb#2"
    argv = ["table", *four_runs(halves), "--names", names, "--datasets", datasets]
    code, latex, _ = run(argv + ["--format", "latex"], capsys)
    assert r"{[}ours{]}" in latex  # a row may not start with [ after \\
    assert r"A\&B\_1\%" in latex and r"DF\textasciitilde{}1" in latex and r"Celeb\#2" in latex
    latex_rows(latex, 2 + len(COLUMNS))
    code, html, _ = run(argv + ["--format", "html"], capsys)
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x" not in html and "A&amp;B_1%" in html
    code, md, _ = run(argv + ["--format", "markdown"], capsys)
    assert "| DF~1 | A&B_1% |" in md and r"| y\|z |" in md
    rows = [x for x in md.splitlines() if x.startswith("|")]
    assert len(rows) == 6 and all(
        len(re.findall(r"(?<!\\)\|", x)) == 3 + len(COLUMNS) for x in rows
    )
    assert r"y\textbar{}z" in latex and r"\textless{}b\textgreater{}" in latex


def test_python_table_and_helpers(halves):
    y, g, strong, weak, _ = small_runs(1)
    a = fairaudit.audit(y, strong, g, n_boot=30)
    b = fairaudit.audit(y, weak, g, n_boot=30)
    cmp = fairaudit.compare(y, strong, weak, g, n_boot=30)
    t = fairaudit.table([a, b, cmp], names=["strong", "weak"], datasets="toy,toy", family="gender")
    assert isinstance(t, fairaudit.Table)
    frame = t.to_frame()
    assert frame.shape == (2, len(COLUMNS)) and frame.index.names == ["test set", "detector"]
    assert frame.loc[("toy", "strong"), "auc ↑"].startswith(f"{a.overall['auc']:.3f}*")
    assert t.to_markdown().count("\n|") >= 3 and r"\toprule" in t.to_latex()
    assert t._repr_html_() == t.to_html() and str(t) == t.to_text()
    # a report path and a dict work alike
    path = halves["reports"][("preds", "videos_even")]
    assert fairaudit.table([path]).to_csv() == fairaudit.table([load(path)]).to_csv().replace(
        "runs[0]", f"RUN '{path}'"
    )


def test_out_writes_the_file(halves, capsys, tmp_path):
    target = tmp_path / "table.tex"
    code, out, _ = run(
        ["table", *all_runs(halves), "--format", "latex", "--out", str(target)], capsys
    )
    assert code == 0 and out == f"wrote {target}\n"
    assert target.read_text(encoding="utf-8").count(r"\toprule") == 1


# ---------------------------------------------------------------------------- bad inputs
def other_family_report(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    res = fairaudit.audit(y, rng.random(300), {"age": rng.choice(["young", "old"], 300)})
    res.to_json(str(tmp_path / "age.json"))
    return str(tmp_path / "age.json")


def fewer_metrics_report(halves, tmp_path):
    f = halves["files"]["videos_even"]
    csv = pd.read_csv(f["csv"])
    race = np.select([csv[c] == 1 for c in ("isasian", "iswhite", "isblack")], ["a", "w", "b"], "o")
    groups = {"gender": np.where(csv["ismale"] == 1, "male", "female"), "race": race}
    res = fairaudit.audit(np.load(f["labels"]), np.load(f["preds"]), groups, metrics=["auc", "fpr"])
    res.to_json(str(tmp_path / "few.json"))
    return str(tmp_path / "few.json")


@pytest.mark.parametrize(
    "case, expect",
    [
        ("npy", "not JSON"),
        ("json_not_report", "expected a report.json"),
        ("missing", "no such file"),
        ("wrong_types", "'gaps' as a JSON list"),
        ("empty_folder", "no report.json"),
        ("families", "family gender+race"),
        ("metrics", "metric eer"),
        ("name_count", "--names: expected 4 names"),
        ("dataset_count", "--datasets: expected 4 names"),
        ("duplicate", "twice"),
        ("same_dataset_name", "names different rows"),
        ("unknown_metric", "--metrics"),
        ("unknown_family", "family race+age"),
        ("ci_level", "level"),
        ("out", "--out"),
        ("digits", "--digits"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(case, expect, halves, capsys, tmp_path):
    runs = four_runs(halves)
    (tmp_path / "x.npy").write_bytes(b"\x93NUMPY")
    (tmp_path / "x.json").write_text('{"a": 1}')
    bent = dict(load(runs[0]), gaps={"fpr_range": 0.1})
    (tmp_path / "empty").mkdir()
    ci90 = load(runs[0])
    ci90["config"]["ci"] = 0.9
    argv = {
        "npy": [str(tmp_path / "x.npy")],
        "json_not_report": [str(tmp_path / "x.json")],
        "missing": [str(tmp_path / "nope.json")],
        "wrong_types": [write_doc(bent, tmp_path / "bent")],
        "empty_folder": [str(tmp_path / "empty")],
        "families": [runs[0], other_family_report(tmp_path)],
        "metrics": [runs[0], fewer_metrics_report(halves, tmp_path), "--datasets", "a,b"],
        "name_count": runs + ["--names", "a,b,c"],
        "dataset_count": runs + ["--datasets", "a,b,c,d,e"],
        "duplicate": runs + ["--names", "x,x,y,y", "--datasets", "d,d,e,e"],
        "same_dataset_name": runs + ["--names", "a,b,c,d", "--datasets", "d,d,d,d"],
        "unknown_metric": runs + ["--metrics", "auc,fpr_rnage"],
        "unknown_family": runs + ["--family", "race+age"],
        "ci_level": [runs[1], write_doc(ci90, tmp_path / "ci90"), "--names", "a,b"],
        "out": runs + ["--out", str(tmp_path / "no" / "such" / "dir" / "t.txt")],
        "digits": runs + ["--digits", "-1"],
    }[case]
    code, out, err = run(["table", *argv], capsys)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("fairaudit: error: "), err
    assert expect in err, err
    assert "Traceback" not in err
