"""Shared plumbing of the command-line entry points (one-line errors, logging)."""

from __future__ import annotations

import logging
import sys
from typing import Callable

from ._errors import DetectorsError

__all__ = ["run_cli", "setup_logging"]


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (it may be replaced after
    the handler is installed, e.g. by a test harness or a notebook)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # the base class assigns it; the property ignores it
        pass


def setup_logging(level: int = logging.INFO) -> None:
    """Send the ``detectors`` logger to stderr once, with a short format.

    Examples
    --------
    >>> setup_logging(logging.WARNING)
    >>> logging.getLogger("detectors").level == logging.WARNING
    True
    """
    logger = logging.getLogger("detectors")
    logger.setLevel(level)
    if not any(getattr(h, "_detectors_console", False) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        handler._detectors_console = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


def one_line(message: str) -> str:
    """Collapse an error message to its most informative single line.

    Errors raised inside DataLoader workers come back wrapped in a multi-line
    message whose last non-empty line is ``ExceptionType: original message``.

    Examples
    --------
    >>> one_line("Caught DataError in worker 0.\\nTraceback ...\\nDataError: no image: a.png")
    'no image: a.png'
    """
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    if not lines:
        return "unknown error"
    if len(lines) == 1:
        return lines[0]
    last = lines[-1]
    _, sep, rest = last.partition("Error: ")
    return rest if sep else last


def run_cli(
    prog: str, main: Callable[[list[str] | None], int], argv: list[str] | None = None
) -> int:
    """Run ``main`` and turn :class:`DetectorsError` into ``prog: error: ...`` and exit code 2.

    A message holding several problems (one per line) gives one ``error:`` line each.

    Examples
    --------
    >>> from detectors import ConfigError
    >>> def main(argv):
    ...     raise ConfigError("key 'a': expected a number\\nkey 'b': expected a string")
    >>> import contextlib, io
    >>> err = io.StringIO()
    >>> with contextlib.redirect_stderr(err):
    ...     code = run_cli("prog", main, [])
    >>> code, err.getvalue().splitlines()
    (2, ["prog: error: key 'a': expected a number", "prog: error: key 'b': expected a string"])
    """
    try:
        return main(argv)
    except DetectorsError as exc:
        message = str(exc)
        # several problems found at once come one per line; a worker's wrapped traceback as one
        lines = [one_line(message)] if "Traceback" in message else message.splitlines()
        for line in lines or ["unknown error"]:
            print(f"{prog}: error: {line.strip()}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        # DataLoader workers re-raise our DataError as RuntimeError-like wrappers
        # whose text still names the class; anything else is a real bug.
        if "DataError" in str(exc) or "ConfigError" in str(exc):
            print(f"{prog}: error: {one_line(str(exc))}", file=sys.stderr)
            return 2
        raise
