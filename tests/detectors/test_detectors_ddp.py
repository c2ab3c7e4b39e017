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


def _merge_worker(rank, world, port, labels, prob, groups, out):
    import os

    import numpy as np
    import torch.distributed as dist

    from detectors._distributed import all_gather_bytes
    from detectors._metrics import state_metrics, validation_state
    from fairaudit import AuditState

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    share = np.arange(len(labels)) % world == rank  # interleaved shares, as a sampler deals
    state = validation_state(labels[share], prob[share], groups[share])
    blobs = all_gather_bytes(state.to_bytes(), torch.device("cpu"))
    merged = AuditState.merge_all(blobs)
    if rank == 0:
        out.put((merged.to_bytes(), state_metrics(merged)))
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow
def test_validation_states_merged_across_processes_equal_one_audit():
    """Each process audits its share into a state; the gathered bytes merge into the state of
    every row, with the metrics of an audit of all rows in one place."""
    import socket

    import numpy as np
    import torch.multiprocessing as mp

    from detectors._metrics import state_metrics, validation_state

    rng = np.random.default_rng(0)
    n = 600
    labels = rng.integers(0, 2, n)
    prob = np.clip(0.35 * labels + 0.65 * rng.random(n), 0, 1)
    groups = rng.integers(0, 8, n)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_merge_worker, args=(r, 2, port, labels, prob, groups, out))
        for r in range(2)
    ]
    for p in procs:
        p.start()
    merged_bytes, merged = out.get(timeout=120)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    whole = validation_state(labels, prob, groups)
    assert merged_bytes == whole.to_bytes()  # the same state, byte for byte
    single = state_metrics(whole)
    assert merged.keys() == single.keys()
    for k in single:
        assert np.isnan(single[k]) and np.isnan(merged[k]) or merged[k] == single[k], k
