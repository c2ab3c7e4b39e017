"""The command line end to end: inputs, outputs, and one-line errors for every bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fairaudit._cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def seed_csv(path, n=400, seed=0, six_groups=False):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 6 if six_groups else 8, n)
    y = rng.integers(0, 2, n)
    if six_groups:  # celebdf coding: 0 m-white 1 m-black 2 m-others 3 f-white 4 f-black 5 f-others
        male = np.where(ids < 3, 1, -1)
        race = ids % 3
        df = pd.DataFrame(
            {
                "img_path": [f"f/{i}.png" for i in range(n)],
                "label": y,
                "ismale": male,
                "iswhite": np.where(race == 0, 1, -1),
                "isblack": np.where(race == 1, 1, -1),
                "intersec_label": ids,
            }
        )
    else:
        male = np.where(ids < 4, 1, -1)
        race = ids % 4
        df = pd.DataFrame(
            {
                "img_path": [f"f/{i}.png" for i in range(n)],
                "label": y,
                "ismale": male,
                "isasian": np.where(race == 0, 1, -1),
                "iswhite": np.where(race == 1, 1, -1),
                "isblack": np.where(race == 2, 1, -1),
                "intersec_label": ids,
                "video": rng.integers(0, 50, n),
                "w": rng.uniform(0.5, 2, n),
            }
        )
    df.to_csv(path, index=False)
    p = 1 / (1 + np.exp(-(rng.normal(size=n) + 2 * y - 1)))
    return df, y, p


@pytest.fixture
def files(tmp_path):
    df, y, p = seed_csv(tmp_path / "test.csv")
    np.save(tmp_path / "preds.npy", p)
    np.save(tmp_path / "labels.npy", y)
    return tmp_path, df, y, p


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_report_writes_outputs(files, capsys):
    d, df, y, p = files
    code, out, err = run(
        [
            "report",
            str(d / "preds.npy"),
            str(d / "labels.npy"),
            str(d / "test.csv"),
            "--n-boot",
            "50",
            "--out",
            str(d / "out"),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    for fam in ("family gender: groups", "family race: gaps", "family gender+race: groups"):
        assert fam in out
    assert "male+asian" in out and "equalized_odds" in out
    assert "scores are probabilities" in out
    doc = json.loads((d / "out" / "report.json").read_text())
    assert doc["config"]["score_rule"] == "prob" and doc["config"]["n_boot"] == 50
    assert {g["family"] for g in doc["groups"]} == {"gender", "race", "gender+race"}
    fpr = [g for g in doc["groups"] if g["group"] == "female+white"][0]["metrics"]["fpr"]
    assert fpr["lo"] <= fpr["value"] <= fpr["hi"]
    groups = pd.read_csv(d / "out" / "groups.csv")
    gaps = pd.read_csv(d / "out" / "gaps.csv")
    assert {"family", "group", "n", "fpr", "fpr_lo", "fpr_hi"} <= set(groups.columns)
    assert {"family", "name", "value", "lo", "hi", "p_value"} <= set(gaps.columns)
    assert len(groups) == 2 + 4 + 8 + 1
    # the numbers agree with the Python API
    import fairaudit
    from fairaudit._io import read_demographics

    r = fairaudit.audit(y, p, read_demographics(str(d / "test.csv")).attributes, n_boot=0)
    row = groups[(groups.family == "race") & (groups.group == "black")].iloc[0]
    assert row["fpr"] == pytest.approx(r.groups.loc[("race", "black"), "fpr"])


def test_labels_from_csv_and_logits(files, capsys):
    d, df, y, p = files
    np.save(d / "logits.npy", np.c_[np.zeros_like(p), np.log(p) - np.log1p(-p)])
    code, out, _ = run(
        ["report", str(d / "logits.npy"), str(d / "test.csv"), "--n-boot", "0", "--format", "json"],
        capsys,
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["config"]["score_rule"] == "logits2"
    assert doc["gaps"][0]["lo"] is None


def test_csv_score_column_attributes_weights_cluster(tmp_path, capsys):
    rng = np.random.default_rng(2)
    n = 300
    df = pd.DataFrame(
        {
            "score": rng.random(n),
            "y": rng.integers(0, 2, n),
            "age_group": rng.choice(["young", "old"], n),
            "skin_tone": rng.choice(["light", "medium", "dark"], n),
            "wt": rng.uniform(0.5, 2, n),
            "vid": rng.integers(0, 40, n),
        }
    )
    df.to_csv(tmp_path / "t.csv", index=False)
    np.save(tmp_path / "y.npy", df["y"].to_numpy())
    code, out, err = run(
        [
            "report",
            f"{tmp_path / 't.csv'}:score",
            str(tmp_path / "y.npy"),
            str(tmp_path / "t.csv"),
            "--attributes",
            "age_group,skin_tone",
            "--weights",
            "wt",
            "--n-boot",
            "30",
            "--n-perm",
            "0",
            "--format",
            "json",
        ],
        capsys,
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["config"]["families"] == ["age_group", "skin_tone", "age_group+skin_tone"]
    assert doc["config"]["weighted"] is True


def test_results_dir_layout_and_compat(tmp_path, capsys):
    rng = np.random.default_rng(4)
    res = tmp_path / "results"
    res.mkdir()
    for g in ("male", "nonmale"):
        for r in ("asian", "white", "black", "others"):
            y = rng.integers(0, 2, 40)
            np.save(res / f"{g},{r}labels.npy", y)
            np.save(res / f"{g},{r}predictions.npy", rng.normal(size=40) + 2 * y - 1)
    code, out, err = run(
        [
            "report",
            str(res),
            "--dataset",
            "ff++",
            "--n-boot",
            "0",
            "--compat",
            "pg-fdd",
            "--out",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert code == 0, err
    assert "F_FPR" in out
    doc = json.loads((tmp_path / "o" / "report.json").read_text())
    assert doc["config"]["score_rule"] == "logit"
    assert "nonmale,asian" in doc["compat"]["groups"]
    assert doc["compat"]["paper"]["F_FPR"] == doc["compat"]["gaps_x100"]["inter"]["FPR"]


def test_example_runs_as_installed_module():
    proc = subprocess.run(
        [sys.executable, "-m", "fairaudit", "report", "--example", "--n-boot", "20", "--quiet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "female+black" in proc.stdout and "bootstrap" in proc.stdout


def test_compare_command(files, capsys):
    d, df, y, p = files
    rng = np.random.default_rng(9)
    np.save(d / "b.npy", np.clip(p + rng.normal(0, 0.05, p.size), 0, 1))
    code, out, err = run(
        [
            "compare",
            str(d / "preds.npy"),
            str(d / "b.npy"),
            str(d / "labels.npy"),
            str(d / "test.csv"),
            "--n-boot",
            "40",
            "--out",
            str(d / "cmp"),
        ],
        capsys,
    )
    assert code == 0, err
    assert "gap differences" in out
    doc = json.loads((d / "cmp" / "report.json").read_text())
    assert doc["kind"] == "comparison"
    assert (d / "cmp" / "gaps.csv").exists() and (d / "cmp" / "groups.csv").exists()
    from fairaudit._cli import OUT_FILES  # what --help lists (figures/ needs --figures)

    listed = {name.rstrip("/") for name, _ in OUT_FILES["compare"]} - {"figures"}
    assert set(os.listdir(d / "cmp")) == listed


# ------------------------------------------------------------------------- bad inputs
def bad_case(tmp, kind):
    df, y, p = seed_csv(tmp / "test.csv", n=100)
    np.save(tmp / "preds.npy", p)
    np.save(tmp / "labels.npy", y)
    args = [str(tmp / "preds.npy"), str(tmp / "labels.npy"), str(tmp / "test.csv")]
    extra = []
    if kind == "missing file":
        args[0] = str(tmp / "nope.npy")
    elif kind == "wrong length":
        np.save(tmp / "preds.npy", p[:-3])
    elif kind == "nan scores":
        q = p.copy()
        q[[3, 7]] = np.nan
        np.save(tmp / "preds.npy", q)
    elif kind == "non-binary labels":
        np.save(tmp / "labels.npy", np.where(y == 1, 2, 0) + (np.arange(y.size) == 5))
    elif kind == "csv without columns":
        df.drop(columns=["ismale", "intersec_label"]).to_csv(tmp / "test.csv", index=False)
    elif kind == "unknown attribute":
        extra = ["--attributes", "age"]
    elif kind == "unknown dataset":
        extra = ["--dataset", "imagenet"]
    elif kind == "object array":
        np.save(tmp / "preds.npy", np.array([object()] * y.size), allow_pickle=True)
    elif kind == "3-d array":
        np.save(tmp / "preds.npy", np.zeros((y.size, 2, 2)))
    elif kind == "empty input":
        np.save(tmp / "preds.npy", np.zeros(0))
    elif kind == "label disagreement":
        y2 = y.copy()
        y2[[10, 11]] = 1 - y2[[10, 11]]
        np.save(tmp / "labels.npy", y2)
    elif kind == "csv row count":
        df.iloc[:-1].to_csv(tmp / "test.csv", index=False)
    elif kind == "bad flags":
        df.loc[4, "ismale"] = 0
        df.to_csv(tmp / "test.csv", index=False)
    elif kind == "directory as file":
        args[1] = str(tmp)
    elif kind == "bad threshold":
        extra = ["--threshold", "1.5"]
    elif kind == "cluster without column":
        extra = ["--bootstrap", "cluster"]
    return args + extra + ["--n-boot", "5"]


BAD = {
    "missing file": "no file at",
    "wrong length": "rows",
    "nan scores": "NaN/inf values, first at rows [3, 7]",
    "non-binary labels": "0/1 labels",
    "csv without columns": "research schema",
    "unknown attribute": "--attributes",
    "unknown dataset": "--dataset",
    "object array": "pickle",
    "3-d array": "shape (100, 2, 2)",
    "empty input": "empty",
    "label disagreement": "first [10, 11]",
    "csv row count": "99 rows",
    "bad flags": "flags 1 or -1",
    "directory as file": "directory",
    "bad threshold": "--threshold",
    "cluster without column": "--cluster",
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_input_one_line_exit_2(tmp_path, capsys, kind):
    argv = ["report"] + bad_case(tmp_path, kind)
    with pytest.raises(SystemExit) as exc_info:
        code = main(argv)
        raise SystemExit(code)
    out, err = capsys.readouterr()
    assert exc_info.value.code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fairaudit: error: ")
    assert BAD[kind] in lines[0]
    assert "Traceback" not in err
    assert "np.float" not in err and "np.int" not in err  # plain numbers


def test_drop_nan_reports_count(tmp_path, capsys):
    args = bad_case(tmp_path, "nan scores")
    code, out, err = run(["report"] + args + ["--drop-nan", "--format", "json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["config"]["n_dropped"] == 2 and doc["config"]["n_rows"] == 98
    assert any("dropped 2 rows" in w for w in doc["warnings"])


def test_pos_label_and_bool_labels(tmp_path, capsys):
    df, y, p = seed_csv(tmp_path / "test.csv", n=120)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "yb.npy", y.astype(bool))
    code, out, _ = run(
        [
            "report",
            str(tmp_path / "p.npy"),
            str(tmp_path / "yb.npy"),
            str(tmp_path / "test.csv"),
            "--n-boot",
            "0",
            "--format",
            "json",
        ],
        capsys,
    )
    assert code == 0
    a = json.loads(out)["overall"]["auc"]["value"]
    np.save(tmp_path / "y7.npy", np.where(y == 1, 7, 3))
    code, out, _ = run(
        [
            "report",
            str(tmp_path / "p.npy"),
            str(tmp_path / "y7.npy"),
            str(tmp_path / "test.csv"),
            "--n-boot",
            "0",
            "--pos-label",
            "7",
            "--format",
            "json",
        ],
        capsys,
    )
    assert code == 0 and json.loads(out)["overall"]["auc"]["value"] == a


def test_six_group_layout(tmp_path, capsys):
    df, y, p = seed_csv(tmp_path / "test.csv", six_groups=True)
    np.save(tmp_path / "p.npy", p)
    code, out, err = run(
        [
            "report",
            str(tmp_path / "p.npy"),
            str(tmp_path / "test.csv"),
            "--dataset",
            "celebdf",
            "--n-boot",
            "0",
            "--format",
            "json",
        ],
        capsys,
    )
    assert code == 0, err
    groups = {g["group"] for g in json.loads(out)["groups"]}
    assert "asian" not in groups and "female+others" in groups
    # the FF++ coding of the same ids contradicts the flags: a clear error
    code, out, err = run(
        [
            "report",
            str(tmp_path / "p.npy"),
            str(tmp_path / "test.csv"),
            "--dataset",
            "ff++",
            "--n-boot",
            "0",
        ],
        capsys,
    )
    assert code == 2 and "check --dataset" in err


# ------------------------------------------------------------------ mistakes caught (issue 10)
def one_line_error(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own checks exit from inside the parser
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fairaudit: error: ") and "Traceback" not in err
    assert "np.float" not in err and "np.int" not in err and "⟦" not in err
    return lines[0][len("fairaudit: error: ") :]


def test_compare_with_the_second_score_file_forgotten(files, capsys):
    d, df, y, p = files
    argv = ["compare", str(d / "preds.npy"), str(d / "labels.npy"), str(d / "test.csv")]
    text = one_line_error(argv + ["--n-boot", "0"], capsys)
    assert text.startswith(f"scores B ('{d / 'labels.npy'}'): expected a classifier's scores")
    assert "score file left out" in text and "--allow-perfect" in text
    code, out, err = run(argv + ["--n-boot", "0", "--allow-perfect", "--format", "json"], capsys)
    assert code == 0, err


def test_labels_given_as_scores(files, capsys):
    d, df, y, p = files
    text = one_line_error(["report", str(d / "labels.npy"), str(d / "test.csv")], capsys)
    assert text.startswith(f"scores ('{d / 'labels.npy'}')") and "labels themselves" in text


def test_hard_predictions_that_differ_from_labels_are_audited(files, capsys):
    d, df, y, p = files
    hard = (p >= 0.5).astype(int)
    assert (hard != y).any()
    np.save(d / "hard.npy", hard)
    code, out, err = run(
        ["report", str(d / "hard.npy"), str(d / "test.csv"), "--n-boot", "0", "--format", "json"],
        capsys,
    )
    assert code == 0, err


def test_percent_scores_need_scores_percent(files, capsys):
    d, df, y, p = files
    np.save(d / "pct.npy", 100 * p)
    argv = ["report", str(d / "pct.npy"), str(d / "test.csv"), "--n-boot", "0"]
    text = one_line_error(argv, capsys)
    assert "percentages?" in text and "--scores percent" in text and "--scores logit" in text
    code, out, err = run(argv + ["--scores", "percent", "--format", "json"], capsys)
    assert code == 0, err
    pct = json.loads(out)
    code, out, err = run(
        ["report", str(d / "preds.npy"), str(d / "test.csv"), "--n-boot", "0", "--format", "json"],
        capsys,
    )
    prob = json.loads(out)
    assert pct["config"]["score_rule"] == "percent"
    flat = [pd.json_normalize(doc["groups"]).drop(columns="warnings") for doc in (pct, prob)]
    pd.testing.assert_frame_equal(*flat, rtol=1e-12)


def research_dir(path, second="female", extra=()):
    rng = np.random.default_rng(4)
    path.mkdir()
    for g in ("male", second):
        for r in ("asian", "white", "black", "others"):
            y = rng.integers(0, 2, 40)
            np.save(path / f"{g},{r}labels.npy", y)
            np.save(path / f"{g},{r}predictions.npy", rng.normal(size=40) + 2 * y - 1)
    for name in extra:
        (path / name).write_text("x")
    return path


def test_results_dir_with_female_files(tmp_path, capsys):
    res = research_dir(tmp_path / "results")
    code, out, err = run(
        ["report", str(res), "--n-boot", "0", "--format", "json", "--compat", "pg-fdd"], capsys
    )
    assert code == 0 and err == "", err
    doc = json.loads(out)
    assert doc["config"]["n_rows"] == 8 * 40
    counts = {g["group"]: g["n"] for g in doc["groups"] if g["family"] == "gender"}
    assert counts == {"male": 160, "female": 160}
    assert "nonmale,asian" in doc["compat"]["groups"]


@pytest.mark.parametrize(
    "extra, found", [(["notes.txt"], "'notes.txt'"), (["male,asianscores.npy"], "scores.npy")]
)
def test_results_dir_file_outside_the_layout_is_an_error(tmp_path, capsys, extra, found):
    res = research_dir(tmp_path / "results", extra=extra)
    text = one_line_error(["report", str(res), "--n-boot", "0"], capsys)
    assert text.startswith("RESULTS_DIR: expected only files") and found in text


def test_results_dir_with_both_spellings_or_another_dataset(tmp_path, capsys):
    res = research_dir(tmp_path / "results")
    np.save(res / "nonmale,asianlabels.npy", np.array([0, 1]))
    np.save(res / "nonmale,asianpredictions.npy", np.array([0.0, 1.0]))
    assert "one spelling" in one_line_error(["report", str(res), "--n-boot", "0"], capsys)
    other = research_dir(tmp_path / "ffpp", second="nonmale")
    text = one_line_error(["report", str(other), "--dataset", "celebdf", "--n-boot", "0"], capsys)
    assert "asian" in text and "check --dataset" in text


@pytest.mark.parametrize(
    "order, found",
    [
        (["csv", "preds", "labels"], "the order is SCORES [LABELS] CSV"),
        (["preds", "labels", "preds"], "expected the demographics CSV as the last input"),
        (["preds", "labels"], "the demographics CSV left out?"),
        (["labels", "preds", "csv"], "look swapped"),
    ],
)
def test_files_out_of_order_name_the_likely_cause(files, capsys, order, found):
    d, df, y, p = files
    path = {"csv": d / "test.csv", "preds": d / "preds.npy", "labels": d / "labels.npy"}
    text = one_line_error(["report"] + [str(path[k]) for k in order], capsys)
    assert found in text


def test_missing_folder_names_what_was_expected(tmp_path, capsys):
    text = one_line_error(["report", str(tmp_path / "no_such_dir")], capsys)
    assert text.startswith("RESULTS_DIR: expected an existing folder") and "nothing at" in text


# ------------------------------------------------------------------ honest defaults (issue 10)
def test_video_id_column_means_the_cluster_scheme(files, capsys):
    d, df, y, p = files
    video_id = df["intersec_label"] * 100 + df["video"] % 7  # videos inside one group
    df.assign(video_id=video_id).to_csv(d / "test.csv", index=False)
    argv = ["report", str(d / "preds.npy"), str(d / "test.csv"), "--n-boot", "20"]
    code, out, err = run(argv + ["--format", "json", "--n-perm", "20"], capsys)
    assert code == 0, err
    config = json.loads(out)["config"]
    assert config["bootstrap"] == "cluster" and config["clusters"] is True
    assert "video_id column" in config["bootstrap_reason"]
    assert "whole clusters" in config["permutation"]
    code, out, err = run(argv + ["--format", "json", "--bootstrap", "iid"], capsys)
    config = json.loads(out)["config"]
    assert config["bootstrap"] == "iid" and config["clusters"] is False
    assert config["bootstrap_reason"] == "asked for (--bootstrap iid)"


def test_cli_and_python_defaults_give_the_same_numbers(files, capsys):
    d, df, y, p = files
    import fairaudit
    from fairaudit._io import read_demographics

    code, out, err = run(
        ["report", str(d / "preds.npy"), str(d / "test.csv"), "--format", "json", "--quiet"], capsys
    )
    assert code == 0, err
    cli = pd.DataFrame(json.loads(out)["gaps"])
    py = fairaudit.audit(y, p, read_demographics(str(d / "test.csv")).attributes)
    np.testing.assert_allclose(cli["lo"], py.gaps["lo"])
    np.testing.assert_allclose(cli["p_value"], py.gaps["p_value"])


def test_pos_label_with_text_labels(files, capsys):
    d, df, y, p = files
    text = np.where(y == 1, "fake", "real")
    np.save(d / "text.npy", text)
    df.assign(label=text, cls=text).to_csv(d / "text.csv", index=False)
    base = ["--n-boot", "0", "--format", "json"]
    code, out, err = run(["report", str(d / "preds.npy"), str(d / "test.csv")] + base, capsys)
    expected = json.loads(out)["groups"]
    for argv in (
        [str(d / "preds.npy"), str(d / "text.npy"), str(d / "test.csv")],
        [str(d / "preds.npy"), f"{d / 'text.csv'}:cls", str(d / "test.csv")],
        [str(d / "preds.npy"), str(d / "text.csv")],  # the CSV's own label column
    ):
        code, out, err = run(["report"] + argv + base + ["--pos-label", "fake"], capsys)
        assert code == 0, err
        assert json.loads(out)["groups"] == expected
    text = one_line_error(
        ["report", str(d / "preds.npy"), str(d / "text.npy"), str(d / "test.csv")], capsys
    )
    assert "text labels" in text and "--pos-label" in text


def test_pos_label_on_boolean_labels_and_bad_values(files, capsys):
    d, df, y, p = files
    np.save(d / "yb.npy", y.astype(bool))
    argv = ["report", str(d / "preds.npy"), str(d / "yb.npy"), str(d / "test.csv"), "--n-boot", "0"]
    code, out, err = run(argv + ["--format", "json", "--pos-label", "False"], capsys)
    assert code == 0, err
    assert json.loads(out)["overall"]["auc"]["value"] < 0.5  # the positive class is False
    assert "True or False" in one_line_error(argv + ["--pos-label", "maybe"], capsys)
    y3 = np.where(y == 1, 7, 3)
    y3[:4] = 5
    np.save(d / "y3.npy", y3)
    argv[2] = str(d / "y3.npy")
    assert "3 values" in one_line_error(argv + ["--pos-label", "7"], capsys)
    assert "an integer" in one_line_error(argv + ["--pos-label", "seven"], capsys)


def test_missing_groups_option(tmp_path, capsys):
    rng = np.random.default_rng(3)
    n = 200
    df = pd.DataFrame({"label": rng.integers(0, 2, n), "skin": rng.choice(["light", "dark"], n)})
    df.loc[[4, 8, 15], "skin"] = None
    df.to_csv(tmp_path / "t.csv", index=False)
    np.save(tmp_path / "p.npy", rng.random(n))
    argv = ["report", str(tmp_path / "p.npy"), str(tmp_path / "t.csv"), "--attributes", "skin"]
    argv += ["--n-boot", "0"]
    text = one_line_error(argv, capsys)
    assert text.startswith("attribute 'skin': expected a value on every row")
    assert "--missing-groups drop" in text and "--missing-groups keep" in text
    code, out, err = run(argv + ["--missing-groups", "drop", "--format", "json"], capsys)
    doc = json.loads(out)
    assert doc["config"]["n_rows"] == n - 3 and doc["config"]["n_dropped_missing_groups"] == 3
    code, out, err = run(argv + ["--missing-groups", "keep", "--format", "json"], capsys)
    unknown = [g for g in json.loads(out)["groups"] if g["group"] == "unknown"]
    assert unknown[0]["n"] == 3


def test_group_key_collisions_from_the_command_line(tmp_path, capsys):
    rng = np.random.default_rng(3)
    n = 120
    df = pd.DataFrame(
        {
            "label": rng.integers(0, 2, n),
            "a": rng.choice(["p", "p+q"], n),
            "b": rng.choice(["r", "q+r"], n),
            "a+b": rng.choice(["x", "y"], n),
        }
    )
    df.to_csv(tmp_path / "t.csv", index=False)
    np.save(tmp_path / "p.npy", rng.random(n))
    argv = ["report", str(tmp_path / "p.npy"), str(tmp_path / "t.csv"), "--n-boot", "0"]
    assert "'p+q+r'" in one_line_error(argv + ["--attributes", "a,b"], capsys)
    assert "rename columns" in one_line_error(argv + ["--attributes", "a+b,a,b"], capsys)


# ------------------------------------------------------------------ options, help, version
@pytest.mark.parametrize(
    "flag, value, found",
    [
        ("--seed", "-3", "--seed: expected a non-negative integer, found -3"),
        ("--seed", "1.5", "--seed: expected an integer, found '1.5'"),
        ("--min-count", "-3", "--min-count: expected a non-negative integer, found -3"),
        ("--n-boot", "-1", "--n-boot: expected a non-negative integer (0: no intervals), found -1"),
        ("--ci", "1.5", "--ci: expected a confidence level strictly between 0 and 1, found 1.5"),
        ("--threshold", "0", "--threshold: expected a probability strictly between 0 and 1"),
        ("--scores", "pct", "--scores: expected one of auto, prob, percent, logit, logits2"),
        ("--max-bins", "8", "--max-bins: expected an integer of at least 16, found 8"),
    ],
)
def test_bad_options_name_their_flag(files, capsys, flag, value, found):
    d, df, y, p = files
    argv = ["report", str(d / "preds.npy"), str(d / "test.csv"), flag, value]
    assert one_line_error(argv, capsys).startswith(found)
    argv[0] = "compare"
    argv.insert(1, str(d / "preds.npy"))
    assert one_line_error(argv, capsys).startswith(found)


def test_cli_errors_name_flags_and_data_by_file(files, capsys):
    d, df, y, p = files
    q = p.copy()
    q[2] = np.nan
    np.save(d / "nan.npy", q)
    text = one_line_error(["report", str(d / "nan.npy"), str(d / "test.csv")], capsys)
    assert text.startswith(f"scores ('{d / 'nan.npy'}'): expected finite values (or --drop-nan")
    text = one_line_error(
        ["report", str(d / "preds.npy"), str(d / "test.csv"), "--bootstrap", "cluster"], capsys
    )
    assert text == "--bootstrap cluster: expected cluster ids (--cluster), found none"


def test_help_shows_defaults_and_every_file_out_writes(files, capsys):
    for command in ("report", "compare"):
        with pytest.raises(SystemExit) as e:
            main([command, "--help"])
        assert e.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "(default: 1000)" in text and "(default: 0.95)" in text
        assert "(default: auto)" in text and "(default: error)" in text
        assert "random draw (default: 0)" in text and "(default: percentile)" in text
        for name, _ in __import__("fairaudit._cli", fromlist=["OUT_FILES"]).OUT_FILES[command]:
            assert name in text
    d, df, y, p = files
    out = d / "out"
    code, _, err = run(
        ["report", str(d / "preds.npy"), str(d / "test.csv"), "--n-boot", "5", "--out", str(out)]
        + ["--figures", "png", "--reference", "white", "--quiet"],
        capsys,
    )
    assert code == 0, err
    from fairaudit._cli import OUT_FILES

    listed = {name.rstrip("/") for name, _ in OUT_FILES["report"]}
    assert set(os.listdir(out)) == listed


def test_version(capsys):
    import fairaudit

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"fairaudit {fairaudit.__version__}"


def test_compat_refuses_rows_without_a_group(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame(
        {
            "label": rng.integers(0, 2, n),
            "gender": rng.choice(["male", "female"], n),
            "race": rng.choice(["asian", "white", "black", "others"], n),
        }
    )
    df.loc[3, "race"] = None
    df.to_csv(tmp_path / "t.csv", index=False)
    np.save(tmp_path / "p.npy", rng.random(n))
    argv = ["report", str(tmp_path / "p.npy"), str(tmp_path / "t.csv"), "--n-boot", "0"]
    argv += ["--attributes", "gender,race", "--missing-groups", "drop", "--compat", "pg-fdd"]
    assert "1 rows without one" in one_line_error(argv, capsys)
