"""Exceptions raised by :mod:`detectors` for bad user input.

The command-line entry points catch :class:`DetectorsError` and print its
message as one line (``detectors: error: ...``) with exit code 2, so every
message must name the argument or file, what was expected and what was found.
"""

from __future__ import annotations

__all__ = ["DetectorsError", "ConfigError", "DataError", "WeightsError"]


class DetectorsError(Exception):
    """Base class of the errors that the CLIs report as one line.

    Examples
    --------
    >>> issubclass(ConfigError, DetectorsError), issubclass(DataError, ValueError)
    (True, True)
    """


class ConfigError(DetectorsError, ValueError):
    """A configuration key or value is unknown or invalid.

    Examples
    --------
    >>> from detectors.config import load_config
    >>> try:
    ...     load_config("tiny", ["train.epoch=3"])
    ... except ConfigError as exc:
    ...     print(str(exc)[:44])
    unknown config key 'train.epoch' (known here
    """


class DataError(DetectorsError, ValueError):
    """A CSV file or an image cannot be used (missing, unreadable, malformed).

    Examples
    --------
    >>> from detectors.data import read_table
    >>> try:
    ...     read_table("missing.csv")
    ... except DataError as exc:
    ...     print(exc)
    CSV file not found: missing.csv
    """


class WeightsError(DetectorsError, ValueError):
    """A weights or checkpoint file does not fit the model it is loaded into.

    Examples
    --------
    >>> from detectors._checkpoint import load_checkpoint
    >>> try:
    ...     load_checkpoint("missing.pt")
    ... except WeightsError as exc:
    ...     print(exc)
    checkpoint not found: missing.pt
    """
