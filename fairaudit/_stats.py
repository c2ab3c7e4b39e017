"""Sufficient statistics: rows sorted once, per-group exact histograms, shared-bin atom tables.

Two forms, both feeding :func:`fairaudit._metrics.compute_metrics`:

* exact, per group: the group's rows in score order (taken from one global sort), collapsed to
  its distinct score values. Used for point estimates; every metric is exact.
* shared bins, per atom: one table ``H[atom, label, bin]`` of weighted counts over score bins
  common to all groups. Bootstrap replicates and permutations only re-weight this table. The
  bins are the distinct scores when there are at most ``max_bins`` of them (then every
  replicate is exact too); otherwise quantile bins, with the decision threshold and the
  calibration-bin edges always among the edges, so threshold metrics stay exact and only the
  ranking metrics of replicates see within-bin pairs as ties.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._metrics import ECE_BINS, compute_metrics

__all__ = ["SortedData", "sort_rows", "group_point_metrics", "AtomTable", "atom_table"]


@dataclass(frozen=True)
class SortedData:
    """Rows in ascending order of the ranking score (one sort for the whole audit)."""

    score: np.ndarray  # ranking score, ascending
    y: np.ndarray  # 0/1 labels, float
    w: np.ndarray  # sample weights, float
    atom: np.ndarray  # atom index of each row
    order: np.ndarray  # position of each sorted row in the input


def sort_rows(score, y, w, atom) -> SortedData:
    order = np.argsort(score, kind="stable")
    return SortedData(score[order], y[order].astype(float), w[order].astype(float),
                      atom[order], order)


def exact_histogram(score, y, w):
    """Distinct score values (ascending) with their weighted positive and negative counts."""
    if score.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    starts = np.flatnonzero(np.r_[True, score[1:] != score[:-1]])
    pos = np.add.reduceat(w * y, starts)
    neg = np.add.reduceat(w * (1.0 - y), starts)
    return score[starts], pos, neg


def group_point_metrics(data: SortedData, membership: np.ndarray, threshold: float,
                        to_probability, which=None) -> dict:
    """Exact metrics for every group (rows of ``membership``) and for the whole set (last).

    Returns a dict metric -> ndarray of shape (n_groups + 1,).
    """
    rows = []
    all_member = np.ones(membership.shape[1], dtype=bool)
    for member in list(membership) + [all_member]:
        mask = member[data.atom]
        values, pos, neg = exact_histogram(data.score[mask], data.y[mask], data.w[mask])
        thr_index = int(np.searchsorted(values, threshold, side="left"))
        kw = {} if which is None else {"which": which}
        rows.append(compute_metrics(pos, neg, thr_index, bin_value=to_probability(values),
                                    probabilities=True, **kw))
    return {k: np.array([r[k] for r in rows], dtype=float) for k in rows[0]}


@dataclass(frozen=True)
class AtomTable:
    """Weighted counts ``counts[atom, label, bin]`` over score bins shared by all groups."""

    counts: np.ndarray  # (n_atoms, 2, K): label 0 = real, 1 = fake
    bin_of_row: np.ndarray  # bin of each sorted row
    bin_value: np.ndarray  # (K,) mean probability of each bin (calibration)
    thr_index: int
    exact: bool  # True when the bins are the distinct scores


def atom_table(data: SortedData, n_atoms: int, threshold: float, to_probability,
               max_bins: int = 4096, *, weighted: bool = True) -> AtomTable:
    """Shared bins and the per-atom table (see the module docstring)."""
    s = data.score
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]]) if s.size else np.zeros(0, int)
    if starts.size <= max_bins:
        edges = s[starts]
        exact = True
    else:
        q = np.quantile(s, np.linspace(0.0, 1.0, max_bins + 1)[:-1], method="inverted_cdf")
        prob_edges = np.linspace(0.0, 1.0, ECE_BINS + 1)[1:-1]
        edges = np.unique(np.r_[q, threshold, _from_probability_edges(prob_edges, to_probability, s)])
        exact = False
    bin_of_row = np.searchsorted(edges, s, side="right") - 1
    bin_of_row = np.maximum(bin_of_row, 0)
    K = edges.size
    thr_index = int(np.searchsorted(edges, threshold, side="left"))
    w = data.w if weighted else np.ones_like(data.w)
    flat = (data.atom * 2 + data.y.astype(np.int64)) * K + bin_of_row
    counts = np.bincount(flat, weights=w, minlength=n_atoms * 2 * K).reshape(n_atoms, 2, K)
    row_count = np.bincount(bin_of_row, minlength=K)
    mean_score = np.bincount(bin_of_row, weights=s, minlength=K) / np.maximum(row_count, 1)
    return AtomTable(counts, bin_of_row, to_probability(mean_score), thr_index, exact)


def _from_probability_edges(prob_edges, to_probability, s):
    """Ranking-score values whose probability is each calibration edge (by bisection on s)."""
    p = to_probability(s)
    idx = np.searchsorted(p, prob_edges, side="left")
    idx = idx[(idx > 0) & (idx < s.size)]
    return s[idx]
