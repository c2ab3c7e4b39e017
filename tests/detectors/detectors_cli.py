"""Helpers of the detectors tests that run ``python -m detectors...`` in a subprocess (a module
of its own: test files import it by a name no other test folder uses)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cli_env() -> dict[str, str]:
    """Environment for ``python -m detectors...`` subprocesses run from the repository root."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    return env
