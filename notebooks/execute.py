"""Run every notebook top to bottom and store its outputs, so that it reads on a repository page.

    python notebooks/execute.py            # all notebooks
    python notebooks/execute.py 01 02      # those whose names start with these prefixes

The test suite executes each notebook again and compares the text of every output with the
stored one (:func:`normalise`), except in cells tagged ``volatile`` (training logs, timings),
where only the kinds of output are compared; so stored outputs cannot drift from the code.
Cells run with the repository on the import path, offline, in a scratch folder for files.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbclient
import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "python3"
TIME_LIMIT_S = 240  # per notebook, all cells together
VOLATILE = "volatile"

_TMP = re.compile(r"(/[\w.-]+)*/(tmp|pytest-of-[\w-]+|T)/[\w./+-]*")
_ADDRESS = re.compile(r"0x[0-9a-f]{6,}")
_SECONDS = re.compile(r"\b\d+(\.\d+)?\s?(s|ms|seconds?)\b")


def normalise(text: str) -> str:
    """Output text without what changes from run to run: scratch paths, object addresses,
    durations, trailing spaces.

    >>> normalise("wrote /tmp/abc/report.json in 1.2 s at 0x7f00aa11bb22  ")
    'wrote <tmp> in <t> at <addr>'
    """
    text = _TMP.sub("<tmp>", text)
    text = _ADDRESS.sub("<addr>", text)
    text = _SECONDS.sub("<t>", text)
    return "\n".join(line.rstrip() for line in text.splitlines())


def merged(outputs) -> list:
    """Outputs with consecutive stream chunks of one stream joined (a log can arrive in any
    number of chunks), as (kind, text) pairs."""
    out = []
    for o in outputs:
        kind = o.get("output_type")
        if kind == "stream":
            name = o.get("name")
            if out and out[-1][0] == f"stream:{name}":
                out[-1] = (out[-1][0], out[-1][1] + o.get("text", ""))
                continue
            out.append((f"stream:{name}", o.get("text", "")))
        else:
            out.append((kind, output_text(o)))
    return [(k, normalise(t) if k.startswith("stream") else t) for k, t in out]


def output_text(output) -> str:
    """The comparable text of one output (stream text, or a result's text/plain)."""
    if output.get("output_type") == "stream":
        return normalise(output.get("text", ""))
    data = output.get("data", {})
    return normalise(data.get("text/plain", "")) if "image/png" not in data else "<image>"


def execute(path: Path, workdir: str) -> nbformat.NotebookNode:
    """Run one notebook in a fresh kernel; return it with its outputs."""
    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    env["TMPDIR"] = workdir  # files a notebook writes go to the scratch folder
    env["IPYTHONDIR"] = os.path.join(workdir, "ipython")  # the kernel's history, not the user's
    env["JUPYTER_RUNTIME_DIR"] = os.path.join(workdir, "runtime")
    env.setdefault("OMP_NUM_THREADS", "1")
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
    old = os.environ.get("JUPYTER_RUNTIME_DIR")
    os.environ["JUPYTER_RUNTIME_DIR"] = env["JUPYTER_RUNTIME_DIR"]
    try:
        client.execute(env=env)
    finally:
        if old is None:
            os.environ.pop("JUPYTER_RUNTIME_DIR", None)
        else:
            os.environ["JUPYTER_RUNTIME_DIR"] = old
    for cell in nb.cells:  # no timestamps: a re-run that changes nothing changes no byte
        cell.metadata.pop("execution", None)
    return nb


def main(argv=None) -> int:
    prefixes = (argv if argv is not None else sys.argv[1:]) or [""]
    for path in NOTEBOOKS:
        if not any(path.name.startswith(p) for p in prefixes):
            continue
        t0 = time.time()
        with tempfile.TemporaryDirectory() as work:
            nb = execute(path, work)
        nbformat.write(nb, path)
        print(f"{path.name}: {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
