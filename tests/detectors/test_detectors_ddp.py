"""Two processes with torchrun on the gloo backend (CPU DDP)."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
import torch

from detectors_cli import REPO, cli_env


@pytest.mark.slow
def test_two_process_ddp_run_with_torchrun(small_data, tmp_path):
    run = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "detectors.train",
        "--config",
        "tiny",
        f"data.root={small_data}",
        f"run_dir={run}",
        "train.epochs=2",
        "device=cpu",
        "data.batch_size=2",
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == 2 and len(ckpt["rng"]) == 2  # one generator state per process
    assert not any(k.startswith("module.") for k in ckpt["model"])  # saved unwrapped
    assert "2 process(es)" in (run / "train.log").read_text()
    with open(run / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["epoch"] for r in rows] == ["1", "2"] and all(
        0 <= float(r["val_auc"]) <= 1 for r in rows
    )
    assert proc.stderr.count("epoch 1/2:") == 1  # rank 0 logs alone
