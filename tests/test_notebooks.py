"""Every notebook in notebooks/ is stored with its outputs and runs top to bottom to the same
outputs (nbclient, ipykernel): the stored outputs cannot drift from the code.

``python notebooks/execute.py`` runs the notebooks and stores their outputs. Here each notebook
runs again in a fresh kernel, offline, with a time limit; the text of every output must equal
the stored text after :func:`normalise` (scratch paths, addresses and durations masked), except
in cells tagged ``volatile`` (training logs), whose kinds of output must match.
"""

import importlib.util
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]


def _runner():
    spec = importlib.util.spec_from_file_location("execute", ROOT / "notebooks" / "execute.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


RUN = _runner()
NOTEBOOKS = RUN.NOTEBOOKS


def test_there_are_notebooks():
    names = {p.name for p in NOTEBOOKS}
    assert {"01_quickstart.ipynb", "02_compare_detectors.ipynb"} <= names


def test_normalise_masks_what_changes_between_runs():
    a = RUN.normalise("wrote /tmp/tmpab12/x/report.json in 3.2 s <obj at 0x7f0012345678>")
    b = RUN.normalise("wrote /tmp/tmpzz99/x/report.json in 11 s <obj at 0x7f00aaaaaaaa>")
    assert a == b
    assert RUN.normalise("auc 0.935") != RUN.normalise("auc 0.936")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_stored_with_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name}: run `python notebooks/execute.py {path.name[:2]}` to store its outputs"
    )
    assert any(c.outputs for c in code)


def _kernel_spec():
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        return KernelSpecManager().get_kernel_spec(RUN.KERNEL)
    except NoSuchKernel:
        pytest.fail(
            f"no '{RUN.KERNEL}' Jupyter kernel: install ipykernel in this environment "
            "(it provides the python3 kernel)"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_to_its_stored_outputs(path, tmp_path):
    _kernel_spec()
    stored = nbformat.read(path, as_version=4)
    try:
        nb = RUN.execute(path, str(tmp_path))
    except nbclient.exceptions.CellTimeoutError:
        pytest.fail(f"{path.name} ran longer than {RUN.TIME_LIMIT_S} s")
    # every code cell ran (an error stops execution and raises above)
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")
    for old, new in zip(stored.cells, nb.cells):
        if new.cell_type != "code":
            continue
        # every cell that draws shows its figure (the inline backend stays interactive)
        if "plots.plot_" in new.source:
            assert any(
                o.output_type == "display_data" and "image/png" in o.get("data", {})
                for o in new.outputs
            ), f"{path.name}: no figure shown by\n{new.source}"
        was, now = RUN.merged(old.outputs), RUN.merged(new.outputs)
        assert [k for k, _ in was] == [k for k, _ in now], (
            f"{path.name}: outputs changed in\n{new.source}"
        )
        if RUN.VOLATILE in new.metadata.get("tags", []):
            continue
        assert was == now, (
            f"{path.name}: stored outputs differ from a fresh run of\n{new.source}\n"
            f"(run `python notebooks/execute.py {path.name[:2]}`)"
        )
