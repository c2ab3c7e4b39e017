"""Every notebook in notebooks/ runs top to bottom without error (nbclient, ipykernel).

Notebooks are committed without outputs. The kernel runs in the notebook's folder with the
repository on its import path, offline, with a time limit per notebook.
"""

import os
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "python3"
TIME_LIMIT_S = 240  # per notebook, all cells together


def test_there_are_notebooks():
    names = {p.name for p in NOTEBOOKS}
    assert {"01_quickstart.ipynb", "02_compare_detectors.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name}: clear the outputs before committing"
            )


def _kernel_spec():
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        return KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        pytest.fail(
            f"no '{KERNEL}' Jupyter kernel: install ipykernel in this environment "
            "(it provides the python3 kernel)"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    _kernel_spec()
    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    env["TMPDIR"] = str(tmp_path)  # files a notebook writes go to the test's folder
    env["IPYTHONDIR"] = str(tmp_path / "ipython")  # the kernel's history, not the user's
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))  # connection file
    deadline = time.monotonic() + TIME_LIMIT_S

    def remaining(cell):  # nbclient's per-cell limit: what is left of the notebook's budget
        return max(1, int(deadline - time.monotonic()))

    client = nbclient.NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout_func=remaining,
        startup_timeout=60,
        allow_errors=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        client.execute(env=env)
    except nbclient.exceptions.CellTimeoutError:
        pytest.fail(f"{path.name} ran longer than {TIME_LIMIT_S} s")
    # every code cell ran (an error stops execution and raises above)
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")
    # and every cell that draws shows its figure (the inline backend stays interactive)
    for c in nb.cells:
        if c.cell_type == "code" and "plots.plot_" in c.source:
            assert any(
                o.output_type == "display_data" and "image/png" in o.get("data", {})
                for o in c.outputs
            ), f"{path.name}: no figure shown by\n{c.source}"
