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

from concurrent.futures import ThreadPoolExecutor
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
    order = np.argsort(score)  # ties need no order: they fall into one histogram bin
    return SortedData(
        score[order], y[order].astype(float), w[order].astype(float), atom[order], order
    )


def exact_histogram(score, pos_w, neg_w):
    """Distinct score values (ascending) with their summed positive and negative weights."""
    if score.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    starts = np.flatnonzero(np.r_[True, score[1:] != score[:-1]])
    if starts.size == score.size:  # no ties: every row is its own bin
        return score, pos_w, neg_w
    return score[starts], np.add.reduceat(pos_w, starts), np.add.reduceat(neg_w, starts)


def group_point_metrics(
    data: SortedData, structure, threshold: float, to_probability, which=None
) -> dict:
    """Exact metrics for every group of ``structure`` and for the whole set (last).

    Each family partitions the rows; one stable sort of the family's group codes (a radix
    sort of small integers) makes every group a contiguous, still score-sorted slice.

    Returns a dict metric -> ndarray of shape (n_groups + 1,).
    """
    kw = {} if which is None else {"which": which}
    pos_w = data.w * data.y
    neg_w = data.w - pos_w
    rows = [None] * (structure.n_groups + 1)

    def fill(slot, score, pos, neg):
        values, p, q = exact_histogram(score, pos, neg)
        thr_index = int(np.searchsorted(values, threshold, side="left"))
        rows[slot] = compute_metrics(
            p, q, thr_index, bin_value=to_probability(values), probabilities=True, **kw
        )

    def family(fam):
        idx = structure.family_slice(fam)
        group_of_atom = np.full(structure.n_atoms, -1, dtype=np.int64)
        for j, g in enumerate(idx):
            group_of_atom[structure.membership[g]] = j
        small = np.int16 if idx.size < 2**15 else np.int64  # 16-bit keys get a radix sort
        code = group_of_atom.astype(small)[data.atom]
        order = np.argsort(code, kind="stable")
        bounds = np.r_[0, np.cumsum(np.bincount(code, minlength=idx.size))]
        s_f, p_f, n_f = data.score[order], pos_w[order], neg_w[order]
        for j, g in enumerate(idx):
            sl = slice(bounds[j], bounds[j + 1])
            fill(g, s_f[sl], p_f[sl], n_f[sl])

    def whole_set(_):
        fill(structure.n_groups, data.score, pos_w, neg_w)

    # Families and the whole set are independent; numpy releases the GIL in large operations.
    with ThreadPoolExecutor(2) as pool:
        jobs = [pool.submit(whole_set, None)] + [pool.submit(family, f) for f in structure.families]
        for job in jobs:
            job.result()
    return {k: np.array([r[k] for r in rows], dtype=float) for k in rows[0]}


@dataclass(frozen=True)
class AtomTable:
    """Weighted counts ``counts[atom, label, bin]`` over score bins shared by all groups."""

    counts: np.ndarray  # (n_atoms, 2, K): label 0 = real, 1 = fake
    bin_of_row: np.ndarray  # bin of each sorted row
    bin_value: np.ndarray  # (K,) mean probability of each bin (calibration)
    thr_index: int
    exact: bool  # True when the bins are the distinct scores


def atom_table(
    data: SortedData,
    n_atoms: int,
    threshold: float,
    to_probability,
    max_bins: int = 4096,
    *,
    weighted: bool = True,
) -> AtomTable:
    """Shared bins and the per-atom table (see the module docstring)."""
    s = data.score
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]]) if s.size else np.zeros(0, int)
    if starts.size <= max_bins:
        edges = s[starts]
        exact = True
    else:
        q = np.quantile(s, np.linspace(0.0, 1.0, max_bins + 1)[:-1], method="inverted_cdf")
        prob_edges = np.linspace(0.0, 1.0, ECE_BINS + 1)[1:-1]
        edges = np.unique(
            np.r_[q, threshold, _from_probability_edges(prob_edges, to_probability, s)]
        )
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
