"""Shared plumbing of the command-line entry points (one-line errors, logging)."""

from __future__ import annotations

import logging
import sys
from typing import Callable

from ._errors import DetectorsError

__all__ = ["run_cli", "setup_logging"]


def setup_logging(level: int = logging.INFO) -> None:
    """Send the ``detectors`` logger to stderr once, with a short format."""
    logger = logging.getLogger("detectors")
    logger.setLevel(level)
    if not any(getattr(h, "_detectors_console", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        handler._detectors_console = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


def one_line(message: str) -> str:
    """Collapse an error message to its most informative single line.

    Errors raised inside DataLoader workers come back wrapped in a multi-line
    message whose last non-empty line is ``ExceptionType: original message``.
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
    """Run ``main`` and turn :class:`DetectorsError` into ``prog: error: ...`` and exit code 2."""
    try:
        return main(argv)
    except DetectorsError as exc:
        print(f"{prog}: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        # DataLoader workers re-raise our DataError as RuntimeError-like wrappers
        # whose text still names the class; anything else is a real bug.
        if "DataError" in str(exc) or "ConfigError" in str(exc):
            print(f"{prog}: error: {one_line(str(exc))}", file=sys.stderr)
            return 2
        raise
