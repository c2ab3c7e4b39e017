"""Shared fixtures of the detectors tests: a synthetic data set and one tiny trained run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

try:
    import torch
except ImportError:  # the audit core is tested without the detectors extra
    collect_ignore_glob = ["test_*.py"]
    torch = None

if torch is not None:
    # Two cores shared with other processes: one intra-op thread avoids OpenMP spin contention.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory) -> Path:
    """240 synthetic 64 x 64 images in the research schema (FF++ group coding)."""
    from detectors.synth import generate

    root = tmp_path_factory.mktemp("synth")
    generate(root, 240, size=64, seed=0)
    return root


@pytest.fixture(scope="session")
def small_data(tmp_path_factory) -> Path:
    """80 synthetic images (fast training-loop tests)."""
    from detectors.synth import generate

    root = tmp_path_factory.mktemp("small")
    generate(root, 80, size=64, seed=1, groups="uniform")
    return root


@pytest.fixture(scope="session")
def trained_run(synth_data, tmp_path_factory) -> Path:
    """The ``tiny`` preset (5 epochs) trained on ``synth_data`` (run folder)."""
    from detectors.train import main

    run = tmp_path_factory.mktemp("run") / "tiny"
    assert main(["--config", "tiny", f"data.root={synth_data}", f"run_dir={run}"]) == 0
    return run


@pytest.fixture
def python() -> str:
    return sys.executable
