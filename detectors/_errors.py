"""Exceptions raised by :mod:`detectors` for bad user input.

The command-line entry points catch :class:`DetectorsError` and print its
message as one line (``detectors: error: ...``) with exit code 2, so every
message must name the argument or file, what was expected and what was found.
"""

from __future__ import annotations

__all__ = ["DetectorsError", "ConfigError", "DataError", "WeightsError"]


class DetectorsError(Exception):
    """Base class of the errors that the CLIs report as one line."""


class ConfigError(DetectorsError, ValueError):
    """A configuration key or value is unknown or invalid."""


class DataError(DetectorsError, ValueError):
    """A CSV file or an image cannot be used (missing, unreadable, malformed)."""


class WeightsError(DetectorsError, ValueError):
    """A weights or checkpoint file does not fit the model it is loaded into."""
