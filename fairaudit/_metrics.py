"""Metric definitions: one table, and every metric as a function of score histograms.

A group's data are summarised by its *score histogram*: for each score bin ``k`` (bins in
ascending score order) the weighted number of positives ``pos[k]`` and negatives ``neg[k]``.
Rows whose score lies in a bin at or above ``thr_index`` are predicted positive (fake).
Every metric below is computed from ``pos``, ``neg`` and ``thr_index`` alone, vectorised over
any leading axes (bootstrap replicates, groups). When the bins are the distinct score values
the results are exact; point estimates always use such exact bins.

The table :data:`METRICS` is the single place where a metric is named and described: the
command line columns, the JSON schema, the report and the documentation are all generated
from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MetricSpec", "METRICS", "METRIC_NAMES", "compute_metrics", "ECE_BINS"]

#: Number of equal-width probability bins of the expected calibration error.
ECE_BINS = 15


@dataclass(frozen=True)
class MetricSpec:
    """One row of the metric table.

    Attributes
    ----------
    name : str
        Column name used everywhere (CLI, JSON, CSV, report).
    formula : str
        The definition in words.
    higher_is_worse : bool
        Direction: True for error rates, False for AUC, TPR, ...
    denominator : str or None
        The count the metric divides by (``n``, ``n_pos``, ``n_neg``, ``n_pred_pos``); a group
        whose denominator is below the small-group limit gets a warning for this metric.
    needs_probabilities : bool
        Only defined when the scores are probabilities (calibration).
    """

    name: str
    formula: str
    higher_is_worse: bool
    denominator: str | None
    needs_probabilities: bool = False
    value_range: tuple[float, float] = (0.0, 1.0)


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "auc",
        "ROC AUC: P(score_fake > score_real) + 0.5 P(tie) (Mann-Whitney)",
        False,
        "n_pos,n_neg",
    ),
    MetricSpec(
        "eer",
        "equal error rate: FPR = FNR at the crossing of the ROC curve, linearly interpolated "
        "between ROC points",
        True,
        "n_pos,n_neg",
    ),
    MetricSpec("accuracy", "(TP + TN) / n at the threshold", False, "n"),
    MetricSpec("balanced_error", "(FPR + FNR) / 2 = 1 - balanced accuracy", True, "n_pos,n_neg"),
    MetricSpec("tpr", "TP / (TP + FN): fakes detected", False, "n_pos"),
    MetricSpec("fpr", "FP / (FP + TN): reals flagged as fake", True, "n_neg"),
    MetricSpec("tnr", "TN / (TN + FP)", False, "n_neg"),
    MetricSpec("fnr", "FN / (FN + TP): fakes missed", True, "n_pos"),
    MetricSpec("ppv", "TP / (TP + FP): precision at the threshold", False, "n_pred_pos"),
    MetricSpec("npv", "TN / (TN + FN): precision of 'real' at the threshold", False, "n_pred_neg"),
    MetricSpec("fdr", "FP / (TP + FP) = 1 - ppv: false discovery rate", True, "n_pred_pos"),
    MetricSpec("for", "FN / (TN + FN) = 1 - npv: false omission rate", True, "n_pred_neg"),
    MetricSpec("selection_rate", "(TP + FP) / n: share predicted fake", False, "n"),
    MetricSpec(
        "average_precision",
        "sum over distinct thresholds of (recall step) x precision (scikit-learn's definition)",
        False,
        "n_pos",
    ),
    MetricSpec(
        "ece",
        f"expected calibration error: sum over {ECE_BINS} equal-width probability bins of "
        "(n_b / n) |mean score - share of fakes|",
        True,
        "n",
        needs_probabilities=True,
    ),
)

METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in METRICS)
SPECS = {m.name: m for m in METRICS}


def _div(num, den):
    """num / den with NaN where den == 0 (no warnings)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _auc(pos, neg, P, N):
    below = np.cumsum(neg, axis=-1) - neg
    return _div(np.sum(pos * (below + 0.5 * neg), axis=-1), P * N)


def _at_or_above(counts):
    """Counts in bins >= k, for every k (reverse cumulative sum)."""
    return np.flip(np.cumsum(np.flip(counts, -1), axis=-1), -1)


def _average_precision(pos, tp_at, fp_at, P):
    # Each distinct threshold adds (recall step) x (precision at that threshold); a bin without
    # positives adds nothing, so 0/0 precisions there are irrelevant.
    precision = np.divide(tp_at, tp_at + fp_at, out=np.zeros_like(tp_at), where=pos > 0)
    return _div(np.sum(pos * precision, axis=-1), P)


def _eer(tp_at, fp_at, P, N):
    """Interpolated crossing of FPR and FNR along the ROC curve (NaN if P or N is 0)."""
    shape = tp_at.shape[:-1]
    if tp_at.shape[-1] == 0:
        return np.full(shape, np.nan)
    zeros = np.zeros(shape + (1,))
    # ROC points from the highest threshold (nothing predicted positive) down to the lowest.
    fp = np.concatenate([zeros, np.flip(fp_at, -1)], axis=-1)
    tp = np.concatenate([zeros, np.flip(tp_at, -1)], axis=-1)
    fpr = _div(fp, N[..., None])
    tpr = _div(tp, P[..., None])
    d = fpr + tpr - 1.0  # = FPR - FNR, non-decreasing from -1 to 1
    j = np.argmax(d >= 0, axis=-1)
    j = np.maximum(j, 1)
    take = lambda a, i: np.take_along_axis(a, i[..., None], axis=-1)[..., 0]  # noqa: E731
    d0, d1 = take(d, j - 1), take(d, j)
    f0, f1 = take(fpr, j - 1), take(fpr, j)
    t = _div(-d0, d1 - d0)
    t = np.where(np.isfinite(t), t, 0.0)
    out = f0 + np.clip(t, 0.0, 1.0) * (f1 - f0)
    return np.where((P > 0) & (N > 0), out, np.nan)


def _ece(pos, neg, bin_value, n):
    """Expected calibration error from bins whose scores are ``bin_value`` (probabilities)."""
    ece_bin = np.minimum((np.asarray(bin_value) * ECE_BINS).astype(int), ECE_BINS - 1)
    resid = (pos + neg) * bin_value - pos  # sum of (p - y) per score bin
    if resid.shape[-1] == 0:
        return np.full(n.shape, np.nan)
    # bins are in ascending score order, so each calibration bin is one contiguous run
    starts = np.flatnonzero(np.r_[True, ece_bin[1:] != ece_bin[:-1]])
    per = np.add.reduceat(resid, starts, axis=-1)
    return _div(np.abs(per).sum(axis=-1), n)


def compute_metrics(
    pos, neg, thr_index, *, bin_value=None, probabilities=False, which=METRIC_NAMES
) -> dict:
    """Metrics of :data:`METRICS` from score histograms.

    Parameters
    ----------
    pos, neg : ndarray, shape (..., K)
        Weighted counts of positives and negatives per score bin, bins in ascending order.
    thr_index : int
        Bins ``k >= thr_index`` are predicted positive.
    bin_value : ndarray, shape (K,), optional
        The (mean) probability of each bin; needed for the calibration error.
    probabilities : bool, keyword-only
        Whether probabilities are available (the calibration error is NaN otherwise).
    which : iterable of str
        The metrics to compute (default all); the counts are always returned.

    Returns
    -------
    dict
        Metric name -> ndarray of shape ``pos.shape[:-1]``; also the counts ``tp``, ``fp``,
        ``tn``, ``fn``, ``w_pos``, ``w_neg``.
    """
    pos = np.asarray(pos, dtype=float)
    neg = np.asarray(neg, dtype=float)
    P = pos.sum(axis=-1)
    N = neg.sum(axis=-1)
    n = P + N
    tp = pos[..., thr_index:].sum(axis=-1)
    fp = neg[..., thr_index:].sum(axis=-1)
    fn = P - tp
    tn = N - fp
    tpr = _div(tp, P)
    fpr = _div(fp, N)
    if "eer" in which or "average_precision" in which:
        tp_at, fp_at = _at_or_above(pos), _at_or_above(neg)  # counts at or above each bin
    simple = {
        "accuracy": lambda: _div(tp + tn, n),
        "balanced_error": lambda: 0.5 * (fpr + (1.0 - tpr)),
        "tpr": lambda: tpr,
        "fpr": lambda: fpr,
        "tnr": lambda: 1.0 - fpr,
        "fnr": lambda: 1.0 - tpr,
        "ppv": lambda: _div(tp, tp + fp),
        "npv": lambda: _div(tn, tn + fn),
        "fdr": lambda: _div(fp, tp + fp),
        "for": lambda: _div(fn, tn + fn),
        "selection_rate": lambda: _div(tp + fp, n),
        "auc": lambda: _auc(pos, neg, P, N),
        "eer": lambda: _eer(tp_at, fp_at, P, N),
        "average_precision": lambda: _average_precision(pos, tp_at, fp_at, P),
        "ece": lambda: (
            _ece(pos, neg, bin_value, n)
            if probabilities and bin_value is not None
            else np.full(P.shape, np.nan)
        ),
    }
    out = {m: simple[m]() for m in which}
    out.update({"tp": tp, "fp": fp, "tn": tn, "fn": fn, "w_pos": P, "w_neg": N})
    return out
