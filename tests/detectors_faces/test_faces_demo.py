"""The offline demo end to end: real photos -> prepare -> self-blended training -> predict ->
fairaudit report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.mark.slow
def test_demo_runs_end_to_end_and_says_its_labels_are_synthetic(tmp_path, cli_runner):
    out = tmp_path / "demo"
    proc = cli_runner(
        "detectors.demo",
        "--out",
        str(out),
        "--lfw",
        "16",
        "--epochs",
        "1",
        "--size",
        "64",
        "--n-boot",
        "20",
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("SYNTHETIC DEMOGRAPHIC LABELS")
    assert "gender+race" in proc.stdout and "fpr_range" in proc.stdout  # fairaudit's report
    report = (out / "report.md").read_text()
    assert (
        report.startswith("# Demo audit (synthetic demographic labels)")
        and "SYNTHETIC DEMOGRAPHIC LABELS" in report
    )
    # each stage left its files
    assert {
        "faketrain.csv",
        "realtrain.csv",
        "fakeval.csv",
        "realval.csv",
        "test.csv",
        "report.csv",
    } <= {p.name for p in (out / "data").iterdir()}
    assert (out / "run" / "best.pt").is_file() and (out / "audit" / "report.json").is_file()
    test = pd.read_csv(out / "test_sbi" / "test.csv")
    preds = np.load(out / "predictions" / "preds.npy")
    assert (
        len(preds) == len(test)
        and set(test["label"]) == {0, 1}
        and (test["demographics"] == "synthetic").all()
    )
    assert ((preds >= 0) & (preds <= 1)).all()
    summary = pd.read_csv(out / "run" / "summary.csv")
    assert len(summary) == 1 and np.isfinite(summary["train_overall"]).all()
