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
