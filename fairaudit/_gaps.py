"""Gaps: how far apart the groups of one family are, for every metric.

For a family with group values ``m_g`` (NaN groups skipped) and the overall value ``m_all``:

* ``<metric>_range`` = max_g m_g - min_g m_g
* ``<metric>_ratio`` = min_g m_g / max_g m_g (NaN when the max is 0)
* ``<metric>_max_to_overall`` = max_g |m_g - m_all|
* ``<metric>_sum_to_overall`` = sum_g |m_g - m_all|
* ``equalized_odds`` = max(tpr_range, fpr_range); ``equalized_odds_mean`` = their mean;
  ``equalized_odds_ratio`` = min(tpr_ratio, fpr_ratio);
* ``demographic_parity`` = selection_rate_range; ``demographic_parity_ratio`` =
  selection_rate_ratio.

All functions work on arrays with leading replicate axes; the group axis is last.
A gap needs at least two defined groups, else it is NaN.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._metrics import METRIC_NAMES

__all__ = ["GAP_KINDS", "COMPOSITES", "gap_names", "family_gaps"]

GAP_KINDS = {
    "range": "max over groups - min over groups",
    "ratio": "min over groups / max over groups",
    "max_to_overall": "max over groups of |group - overall|",
    "sum_to_overall": "sum over groups of |group - overall|",
}
COMPOSITES = {
    "equalized_odds": "max(tpr_range, fpr_range)",
    "equalized_odds_mean": "(tpr_range + fpr_range) / 2",
    "equalized_odds_ratio": "min(tpr_ratio, fpr_ratio)",
    "demographic_parity": "selection_rate_range",
    "demographic_parity_ratio": "selection_rate_ratio",
}


def gap_names(metrics=METRIC_NAMES) -> list:
    """All gap names in output order (composites only when their metrics are present).

    >>> gap_names(["fpr", "tpr"])[:5]
    ['fpr_range', 'fpr_ratio', 'fpr_max_to_overall', 'fpr_sum_to_overall', 'tpr_range']
    >>> gap_names(["fpr", "tpr"])[-3:]
    ['equalized_odds', 'equalized_odds_mean', 'equalized_odds_ratio']
    """
    out = [f"{m}_{k}" for m in metrics for k in GAP_KINDS]
    if "tpr" in metrics and "fpr" in metrics:
        out += [c for c in COMPOSITES if c.startswith("equalized_odds")]
    if "selection_rate" in metrics:
        out += [c for c in COMPOSITES if c.startswith("demographic_parity")]
    return out


def _nan_reduce(fn, values, axis=-1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(values, axis=axis)


def metric_gaps(values: np.ndarray, overall: np.ndarray) -> dict:
    """The four gap kinds of one metric; ``values`` (..., G), ``overall`` (...)."""
    defined = np.sum(~np.isnan(values), axis=-1)
    hi = _nan_reduce(np.nanmax, values)
    lo = _nan_reduce(np.nanmin, values)
    dev = np.abs(values - overall[..., None])
    enough = defined >= 2
    ratio = np.full(hi.shape, np.nan)
    np.divide(lo, hi, out=ratio, where=enough & (hi != 0))
    return {
        "range": np.where(enough, hi - lo, np.nan),
        "ratio": ratio,
        "max_to_overall": np.where(enough, _nan_reduce(np.nanmax, dev), np.nan),
        "sum_to_overall": np.where(enough, np.nansum(dev, axis=-1), np.nan),
    }


def family_gaps(group_values: dict, overall_values: dict, metrics=METRIC_NAMES) -> dict:
    """Every gap of one family.

    Parameters
    ----------
    group_values : dict
        metric -> ndarray (..., G) of the family's groups.
    overall_values : dict
        metric -> ndarray (...) of the whole set.

    Returns
    -------
    dict
        gap name -> ndarray (...).
    """
    out = {}
    for m in metrics:
        for kind, v in metric_gaps(group_values[m], overall_values[m]).items():
            out[f"{m}_{kind}"] = v
    if "tpr" in metrics and "fpr" in metrics:
        # np.maximum / np.minimum propagate NaN: undefined when either part is undefined
        out["equalized_odds"] = np.maximum(out["tpr_range"], out["fpr_range"])
        out["equalized_odds_mean"] = 0.5 * (out["tpr_range"] + out["fpr_range"])
        out["equalized_odds_ratio"] = np.minimum(out["tpr_ratio"], out["fpr_ratio"])
    if "selection_rate" in metrics:
        out["demographic_parity"] = out["selection_rate_range"]
        out["demographic_parity_ratio"] = out["selection_rate_ratio"]
    return out


def gap_metric(name: str) -> list:
    """The metrics a gap is built from (for reporting which groups it skipped)."""
    if name.startswith("equalized_odds"):
        return ["tpr", "fpr"]
    if name.startswith("demographic_parity"):
        return ["selection_rate"]
    for m in METRIC_NAMES:
        if name.startswith(m + "_") and name[len(m) + 1 :] in GAP_KINDS:
            return [m]
    raise KeyError(name)
