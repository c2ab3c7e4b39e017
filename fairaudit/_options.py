"""The options of an audit: their defaults, defined once, and one checker for all of them.

:func:`fairaudit.audit`, :func:`fairaudit.compare` and the command line take their defaults
from :data:`DEFAULTS`, so that "the same options" means the same numbers everywhere, and
validate with :func:`check_options` before computing anything. Numbers may be Python or numpy
scalars (``np.float32(0.9)`` is a fine confidence level); integers must be integers (a seed of
1.5 is refused, not truncated).
"""

from __future__ import annotations

import numbers

import numpy as np

from ._errors import bad, shown

__all__ = ["DEFAULTS", "SCORE_RULES", "check_options"]

SCORE_RULES = ("auto", "prob", "percent", "logit", "logits2")
BOOTSTRAP_SCHEMES = ("iid", "stratified", "cluster")
CI_METHODS = ("percentile", "bca")
MISSING_GROUPS = ("error", "drop", "keep")

#: Defaults shared by ``audit``, ``compare`` and the command line.
DEFAULTS = {
    "scores": "auto",
    "threshold": 0.5,
    "n_boot": 1000,
    "n_perm": None,  # as many permutations as bootstrap replicates
    "ci": 0.95,
    "ci_method": "percentile",
    "bootstrap": None,  # cluster when clusters are given, else iid
    "seed": 0,
    "min_count": 30,
    "max_bins": 1024,
    "missing_groups": "error",
    "drop_nan": False,
    "allow_perfect_scores": False,
}


def _integer(name, value, minimum, what):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise bad(name, what, _found(value))
    if value < minimum:
        raise bad(name, what, _found(value))
    return int(value)


def _real(value):
    """A Python float for any real scalar; float32 keeps the decimal the user wrote."""
    if isinstance(value, np.floating) and value.dtype != np.float64:
        return float(str(value))
    return float(value)


def _probability(name, value, what):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise bad(name, what, _found(value))
    v = _real(value)
    if not 0.0 < v < 1.0:
        raise bad(name, what, _found(value))
    return v


def _choice(name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise bad(name, "one of " + ", ".join(choices), _found(value))
    return value


def _flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise bad(name, "True or False", _found(value))
    return bool(value)


def _found(value):
    if isinstance(value, (str, numbers.Number, np.generic)) or value is None:
        return shown(value)
    return f"{shown(value)} (a {type(value).__name__})"


_CHECKS = {
    "scores": lambda v: _choice("scores", v, SCORE_RULES),
    "threshold": lambda v: _probability("threshold", v, "a probability strictly between 0 and 1"),
    "n_boot": lambda v: _integer("n_boot", v, 0, "a non-negative integer (0: no intervals)"),
    "n_perm": lambda v: (
        None if v is None else _integer("n_perm", v, 0, "a non-negative integer (0: no test)")
    ),
    "ci": lambda v: _probability("ci", v, "a confidence level strictly between 0 and 1"),
    "ci_method": lambda v: _choice("ci_method", v, CI_METHODS),
    "bootstrap": lambda v: None if v is None else _choice("bootstrap", v, BOOTSTRAP_SCHEMES),
    "seed": lambda v: _integer("seed", v, 0, "a non-negative integer"),
    "min_count": lambda v: _integer("min_count", v, 0, "a non-negative integer"),
    "max_bins": lambda v: _integer("max_bins", v, 16, "an integer of at least 16"),
    "chunk_size": lambda v: (
        None
        if v is None
        else _integer("chunk_size", v, 1, "a positive integer (None: sized by the memory budget)")
    ),
    "missing_groups": lambda v: _choice("missing_groups", v, MISSING_GROUPS),
    "drop_nan": lambda v: _flag("drop_nan", v),
    "allow_perfect_scores": lambda v: _flag("allow_perfect_scores", v),
}


def check_options(**options) -> dict:
    """Validate options by name; return them normalised (Python ints and floats).

    Names without a check here pass through unchanged.

    >>> check_options(seed=np.int64(3), ci=np.float32(0.9), n_perm=None)
    {'seed': 3, 'ci': 0.9, 'n_perm': None}
    >>> check_options(seed=1.5)
    Traceback (most recent call last):
    ...
    fairaudit._errors.FairauditError: seed: expected a non-negative integer, found 1.5
    """
    return {k: _CHECKS[k](v) if k in _CHECKS else v for k, v in options.items()}


def resolve_bootstrap(bootstrap, has_clusters: bool) -> tuple:
    """The resampling scheme in force and why (recorded as ``config["bootstrap_reason"]``).

    >>> resolve_bootstrap(None, True)
    ('cluster', 'clusters given: whole clusters are resampled together')
    >>> resolve_bootstrap("iid", True)
    ('iid', 'asked for')
    """
    if bootstrap is not None:
        return bootstrap, "asked for"
    if has_clusters:
        return "cluster", "clusters given: whole clusters are resampled together"
    return "iid", "no clusters given: rows are resampled"
