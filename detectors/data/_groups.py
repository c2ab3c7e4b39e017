"""Demographic group codings of the research data sets (spec section 7), in one table.

``intersec_label`` is an integer whose meaning depends on the data set: FF++ and
DFDC use 8 gender x race groups, Celeb-DF and DFD 6 (no Asian group) in a
different order. Group names use the research code's strings (``male`` /
``nonmale``; ``asian``, ``white``, ``black``, ``others``) because they name the
per-group result files (``<gender>,<race>labels.npy``).
"""

from __future__ import annotations

from .._errors import ConfigError

__all__ = ["GROUP_CODINGS", "group_names", "num_groups", "check_dataset"]

_GENDERS = ("male", "nonmale")
_EIGHT = tuple((g, r) for g in _GENDERS for r in ("asian", "white", "black", "others"))
_SIX = tuple((g, r) for g in _GENDERS for r in ("white", "black", "others"))

#: data set name -> tuple indexed by ``intersec_label`` of (gender, race)
GROUP_CODINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "ff++": _EIGHT,
    "dfdc": _EIGHT,
    "celebdf": _SIX,
    "dfd": _SIX,
}


def check_dataset(dataset: str) -> str:
    """Return ``dataset`` if it has a group coding, else raise :class:`ConfigError`.

    Examples
    --------
    >>> check_dataset("celebdf")
    'celebdf'
    >>> check_dataset("ffpp")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detectors._errors.ConfigError: unknown dataset 'ffpp' for the group coding (known: ff++, ...)
    """
    if dataset not in GROUP_CODINGS:
        raise ConfigError(
            f"unknown dataset {dataset!r} for the group coding (known: {', '.join(GROUP_CODINGS)})"
        )
    return dataset


def group_names(dataset: str) -> list[str]:
    """Group names in id order, e.g. ``['male,asian', 'male,white', ...]``.

    Examples
    --------
    >>> group_names("celebdf")[:3]
    ['male,white', 'male,black', 'male,others']
    """
    return [f"{g},{r}" for g, r in GROUP_CODINGS[check_dataset(dataset)]]


def num_groups(dataset: str) -> int:
    """Number of intersectional groups of ``dataset`` (8 or 6).

    Examples
    --------
    >>> num_groups("ff++"), num_groups("dfd")
    (8, 6)
    """
    return len(GROUP_CODINGS[check_dataset(dataset)])
