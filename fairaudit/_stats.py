"""Sufficient statistics: rows sorted once, per-group exact histograms, binned tables.

The rows come as *entries* (:class:`SortedData`): distinct (score, atom, label, weight,
cluster) combinations with their row counts, sorted by score. :func:`fairaudit.audit` makes
them from its arrays, an :class:`~fairaudit.AuditState` holds them; everything below reads
entries, so both give the same numbers. Three forms, all feeding
:func:`fairaudit._metrics.compute_metrics`:

* exact, per group: the group's rows in score order (taken from one global sort), collapsed to
  its distinct score values. Used for point estimates; every metric is exact.
* cells, per atom (:class:`CellTable`, the bootstrap): every atom's rows binned on the atom's
  own grid (its distinct scores, or ``max_bins`` quantile cells); a group's histogram is its
  atoms' cells merged in score order, at most ``max_bins`` bins. A replicate re-weights the
  cells; every group, however narrow its score range, is resolved on its own scale.
* shared bins, per atom (:class:`AtomTable`, the permutation test): one table
  ``H[atom, label, bin]`` over bins common to all groups, since permuted groups are random
  subsets of the whole set.

Bins are the distinct scores when there are at most ``max_bins`` of them (then replicates are
exact too); otherwise exactly ``max_bins`` bins, with the decision threshold and the
calibration-bin edges always among the edges, so threshold metrics stay exact and only the
ranking metrics of replicates see within-bin pairs as ties.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.sparse import csr_matrix

from ._metrics import ECE_BINS, compute_metrics

__all__ = [
    "SortedData",
    "sort_rows",
    "group_point_metrics",
    "AtomTable",
    "atom_table",
    "CellTable",
    "cell_table",
    "choose_bins",
    "canonical_ids",
]


@dataclass(frozen=True)
class SortedData:
    """The audit's rows as *entries*: distinct (score, atom, label, weight, cluster) tuples
    with their row counts, in ascending order of the ranking score (one sort for the whole
    audit; ties ordered by atom, label, weight and cluster, so the order is canonical).

    Rows that agree on every field are interchangeable for every metric and every resampling
    scheme, so an audit of entries is an audit of the rows; an :class:`~fairaudit.AuditState`
    holds exactly these entries, whatever batches and merges made it.
    """

    score: np.ndarray  # ranking score, ascending
    y: np.ndarray  # 0/1 labels, float
    w: np.ndarray  # sample weight of each of the entry's rows, float
    atom: np.ndarray  # atom index of each entry
    m: np.ndarray  # rows per entry (int64)
    cluster: np.ndarray | None = None  # cluster code of each entry (codes in sorted id order)
    row_entry: np.ndarray | None = None  # entry of each input row (None for a state)

    @property
    def n_rows(self) -> int:
        return int(self.m.sum())

    @cached_property
    def mass(self) -> np.ndarray:
        """Weighted row count of each entry (weight x rows)."""
        return self.w * self.m

    @cached_property
    def row_of_entry_start(self) -> np.ndarray:
        """Position of each entry's first row when entries are expanded to rows."""
        return np.r_[0, np.cumsum(self.m)[:-1]]

    def expand(self, values):
        """Per-entry ``values`` repeated for every row (rows in entry order)."""
        return np.repeat(values, self.m)


def sort_rows(score, y, w, atom, cluster=None, m=None) -> SortedData:
    """Rows (or entries with row counts ``m``) as the sorted, collapsed :class:`SortedData`.

    >>> d = sort_rows(np.array([0.3, 0.1, 0.3]), np.array([1, 0, 1]), np.ones(3), np.zeros(3, int))
    >>> d.score.tolist(), d.m.tolist(), d.row_entry.tolist()
    ([0.1, 0.3], [1, 2], [1, 0, 1])
    """
    score = np.asarray(score, dtype=float) + 0.0  # -0.0 and 0.0 are one score
    y = np.asarray(y)
    w = np.asarray(w, dtype=float)
    atom = np.asarray(atom, dtype=np.int64)
    n = score.size
    tie = atom * 2 + y.astype(np.int64)  # atom and label in one integer
    keys = [k for k in (cluster, None if _all_equal(w) else w) if k is not None]
    # a state's entries come in runs sorted by score (one per atom and label): merged fast by
    # a stable sort; rows in any order: a quicksort
    order = _canonical_order(score, tie, keys, "quicksort" if m is None else "stable")
    s_score, s_tie = score[order], tie[order]
    new = np.ones(n, bool)
    if n:
        new[1:] = (s_score[1:] != s_score[:-1]) | (s_tie[1:] != s_tie[:-1])
        for k in keys:
            sk = k[order]
            new[1:] |= sk[1:] != sk[:-1]
    starts = np.flatnonzero(new)
    mult = np.ones(n, np.int64) if m is None else np.asarray(m, np.int64)[order]
    counts = mult if starts.size == n else np.add.reduceat(mult, starts)
    first = order[starts]
    row_entry = None
    if m is None:
        row_entry = np.empty(n, np.int64)
        row_entry[order] = np.cumsum(new) - 1
    return SortedData(
        score[first],
        y[first].astype(float),
        w[first],
        atom[first],
        counts,
        None if cluster is None else np.asarray(cluster)[first],
        row_entry,
    )


def _canonical_order(score, tie, keys, kind="quicksort"):
    """Order by score, ties by ``tie`` then ``keys`` (rows equal in all are interchangeable).

    One sort of the scores; only where scores tie, a second sort of the tie keys.
    """
    order = np.argsort(score, kind=kind)
    if score.size < 2:
        return order
    s = score[order]
    tied = s[1:] == s[:-1]
    if not tied.any():
        return order
    rank = np.cumsum(np.r_[True, ~tied]) - 1  # the score's rank, constant over a tie
    t = tie[order]
    width = int(t.max()) + 1
    if keys or rank[-1] >= 2**62 // width:
        sub = np.lexsort((*[k[order] for k in keys], t, rank))
    else:
        sub = np.argsort(rank * width + t)
    return order[sub]


def _all_equal(a) -> bool:
    return a.size == 0 or bool((a == a[0]).all())


def exact_histogram(score, pos_w, neg_w):
    """Distinct score values (ascending) with their summed positive and negative weights."""
    if score.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    starts = np.flatnonzero(np.r_[True, score[1:] != score[:-1]])
    if starts.size == score.size:  # no ties: every row is its own bin
        return score, pos_w, neg_w
    return score[starts], np.add.reduceat(pos_w, starts), np.add.reduceat(neg_w, starts)


def group_point_metrics(
    data: SortedData, structure, threshold: float, to_probability, which=None, extra=None
) -> dict:
    """Exact metrics for every group of ``structure`` and for the whole set (last).

    Each family partitions the rows; one stable sort of the family's group codes (a radix
    sort of small integers) makes every group a contiguous, still score-sorted slice.
    ``extra(values, pos, neg)``, when given, adds its own numbers of each group's histogram.

    Returns a dict metric -> ndarray of shape (n_groups + 1,).
    """
    kw = {} if which is None else {"which": which}
    pos_w = data.mass * data.y
    neg_w = data.mass - pos_w
    rows = [None] * (structure.n_groups + 1)

    def fill(slot, score, pos, neg):
        values, p, q = exact_histogram(score, pos, neg)
        thr_index = int(np.searchsorted(values, threshold, side="left"))
        rows[slot] = compute_metrics(
            p, q, thr_index, bin_value=to_probability(values), probabilities=True, **kw
        )
        if extra is not None:
            rows[slot].update(extra(values, p, q))

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


# ---------------------------------------------------------------------------- binned tables
def forced_edges(score, threshold, to_probability):
    """Ranking-score edges that every binning keeps: the threshold and the calibration edges.

    ``score`` is sorted; a calibration edge is the first score whose probability reaches it.

    >>> forced_edges(np.linspace(0, 1, 31), 0.5, lambda p: p)[:3].round(3).tolist()
    [0.067, 0.133, 0.2]
    """
    prob_edges = np.linspace(0.0, 1.0, ECE_BINS + 1)[1:-1]
    return np.unique(np.r_[threshold, _from_probability_edges(prob_edges, to_probability, score)])


def choose_bins(weight, forced_break, max_bins):
    """Bins of ``M`` ordered values: consecutive runs, exactly ``min(M, max_bins)`` of them.

    Every forced break (``forced_break[j]``: a bin ends after value ``j``) is kept; the other
    breaks sit at the quantiles of ``weight`` (rows per value: a bin then holds a small share
    of the group's majority class, which bounds the pairs of a fake and a real tied in one
    bin), and where heavy values make quantiles coincide, at evenly spaced free positions, so
    the count is exact.

    >>> choose_bins(np.ones(6), np.zeros(5, bool), 3).tolist()
    [0, 0, 1, 1, 2, 2]
    >>> choose_bins(np.ones(6), np.array([1, 0, 0, 0, 0], bool), 3).tolist()  # break after 0
    [0, 1, 1, 2, 2, 2]
    """
    m = weight.size
    if m <= max_bins:
        return np.arange(m)
    breaks = np.asarray(forced_break, bool).copy()
    need = max_bins - 1 - int(breaks.sum())
    if need > 0:
        cum = np.cumsum(weight)
        targets = cum[-1] * np.arange(1, need + 1) / (need + 1)
        pos = np.searchsorted(cum[:-1], targets, side="left")
        breaks[pos[pos < m - 1]] = True
        short = max_bins - 1 - int(breaks.sum())
        if short > 0:
            free = np.flatnonzero(~breaks)
            breaks[free[((np.arange(short) + 0.5) * free.size / short).astype(np.intp)]] = True
    return np.r_[0, np.cumsum(breaks)]


def _segment_break(values, edges):
    """True between consecutive sorted values that lie on different sides of an edge."""
    seg = np.searchsorted(edges, values, side="right")
    return seg[1:] != seg[:-1]


def _run_starts(*keys):
    """Start positions of runs of equal consecutive key tuples."""
    n = keys[0].size
    new = np.zeros(n, bool)
    if n:
        new[0] = True
    for k in keys:
        new[1:] |= k[1:] != k[:-1]
    return np.flatnonzero(new)


@dataclass(frozen=True)
class AtomTable:
    """Weighted counts ``counts[atom, label, bin]`` over score bins shared by all groups.

    The permutation test uses it: a permuted group is a random subset of the whole set, so
    quantile bins of the whole set resolve it. ``K`` is exactly ``min(distinct scores,
    max_bins)``; the threshold and the calibration edges are always bin edges.
    """

    counts: np.ndarray  # (n_atoms, 2, K): label 0 = real, 1 = fake
    bin_of_row: np.ndarray  # bin of each entry (a row of SortedData)
    bin_value: np.ndarray  # (K,) mean probability of each bin (calibration)
    thr_index: int
    exact: bool  # True when the bins are the distinct scores


def atom_table(
    data: SortedData,
    n_atoms: int,
    threshold: float,
    to_probability,
    max_bins: int = 1024,
    *,
    weighted: bool = True,
) -> AtomTable:
    """Shared bins and the per-atom table (see :class:`AtomTable`).

    >>> d = sort_rows(np.arange(40) / 40, np.arange(40) % 2, np.ones(40), np.arange(40) % 2)
    >>> t = atom_table(d, 2, 0.5, lambda p: p, max_bins=16)
    >>> t.counts.shape, t.exact, float(t.counts.sum())
    ((2, 2, 16), False, 40.0)
    """
    s = data.score
    starts = _run_starts(s)
    value_of_row = np.cumsum(np.r_[True, s[1:] != s[:-1]]) - 1
    values = s[starts]
    rows_per_value = np.add.reduceat(data.m, starts) if s.size else np.zeros(0, np.int64)
    brk = _segment_break(values, forced_edges(s, threshold, to_probability))
    bin_of_value = choose_bins(rows_per_value, brk, max_bins)
    bin_of_row = bin_of_value[value_of_row]
    K = int(bin_of_value[-1]) + 1 if values.size else 0
    first = np.searchsorted(values, threshold, side="left")
    thr_index = int(bin_of_value[first]) if first < values.size else K
    w = data.mass if weighted else data.m.astype(float)
    flat = (data.atom * 2 + data.y.astype(np.int64)) * K + bin_of_row
    counts = np.bincount(flat, weights=w, minlength=n_atoms * 2 * K).reshape(n_atoms, 2, K)
    bin_value = _bin_probability(bin_of_value, values, rows_per_value, to_probability, K)
    return AtomTable(counts, bin_of_row, bin_value, thr_index, bool(values.size <= max_bins))


def _bin_probability(bin_of_value, values, rows, to_probability, n_bins):
    """Mean probability of the rows of each bin (the value's own when a bin holds one)."""
    p = to_probability(values)
    total = np.bincount(bin_of_value, weights=p * rows, minlength=n_bins)
    count = np.bincount(bin_of_value, weights=rows, minlength=n_bins)
    distinct = np.bincount(bin_of_value, minlength=n_bins)
    mean = total / np.maximum(count, 1)
    single = np.zeros(n_bins)
    single[bin_of_value] = p  # any value of a one-value bin is that bin's value
    return np.where(distinct == 1, single, mean)


@dataclass(frozen=True)
class FamilyBins:
    """How the histograms of one family's groups (or of the whole set) are read off cells.

    ``matrix @ counts`` (one sparse product: every cell adds to the one bin it falls in) gives
    the family's bins from cell counts: group ``j`` owns bins ``offset[j] : offset[j] +
    n_bins[j]``, in ascending score order, the first ``thr_index[j]`` below the threshold.
    """

    columns: np.ndarray  # column (group index; n_groups = whole set) of each group
    matrix: object  # scipy.sparse CSR (n family bins, n cells) of ones
    offset: np.ndarray
    n_bins: np.ndarray
    thr_index: np.ndarray
    bin_value: np.ndarray  # mean probability of each bin (calibration)
    exact: np.ndarray  # per group: its bins are its distinct scores


@dataclass(frozen=True)
class CellTable:
    """Bootstrap statistics: each atom's rows binned on the atom's own grid ("cells").

    An atom keeps its distinct scores as cells when it has at most ``max_bins`` of them, else
    ``max_bins`` quantile cells; the threshold and the calibration edges are always cell
    edges. A group's bins are its atoms' cells merged in score order (by the cell's mean
    score; equal scores merge as ties) and, when there are more than ``max_bins``, grouped
    into ``max_bins`` runs of about equal row counts. So every group is resolved on its own
    scale, however narrow its score range; a replicate only re-weights cells.
    """

    counts: np.ndarray  # (2, n_cells) weighted counts: label 0 = real, 1 = fake
    cell_of_row: np.ndarray  # cell of each entry (a row of SortedData)
    cell_atom: np.ndarray  # atom of each cell
    families: tuple  # FamilyBins of every family, then of the whole set
    max_bins: int

    @property
    def n_cells(self) -> int:
        return self.counts.shape[1]

    @property
    def n_bins(self) -> int:
        """The largest number of bins of a group (at most ``max_bins``)."""
        return int(max((f.n_bins.max(initial=0) for f in self.families), default=0))

    @property
    def exact(self) -> bool:
        return bool(all(f.exact.all() for f in self.families))


def cell_table(data, structure, threshold, to_probability, max_bins=1024, resampled=None):
    """The :class:`CellTable` of sorted entries; ``resampled`` (n_groups,) leaves groups out.

    >>> import pandas as pd
    >>> from fairaudit._groups import build_groups
    >>> s = build_groups(pd.DataFrame({"g": ["a", "b"] * 50}))
    >>> d = sort_rows(np.arange(100) / 100, np.arange(100) // 50, np.ones(100), s.atom)
    >>> t = cell_table(d, s, 0.5, lambda p: p, max_bins=16)
    >>> t.n_cells, t.n_bins, t.exact  # 16 cells per atom; every group and the whole set: 16
    (32, 16, False)
    """
    atom = data.atom
    by_atom = np.argsort(atom, kind="stable")  # rows of each atom together, still score-sorted
    s, a = data.score[by_atom], atom[by_atom]
    starts = _run_starts(a, s)  # one run per distinct (atom, score)
    values, value_atom = s[starts], a[starts]
    rows_per_value = np.add.reduceat(data.m[by_atom], starts)
    edges = forced_edges(data.score, threshold, to_probability)
    # A new cell at every value, except inside atoms with more than max_bins values.
    new_cell = np.ones(values.size, bool)
    atom_start = _run_starts(value_atom)
    atom_end = np.r_[atom_start[1:], values.size]
    for lo, hi in zip(atom_start, atom_end):
        if hi - lo > max_bins:
            b = choose_bins(rows_per_value[lo:hi], _segment_break(values[lo:hi], edges), max_bins)
            new_cell[lo + 1 : hi] = b[1:] != b[:-1]
    cell_of_value = np.cumsum(new_cell) - 1
    n_cells = int(cell_of_value[-1]) + 1
    value_of_sorted = np.repeat(np.arange(values.size), np.diff(np.r_[starts, s.size]))
    cell_of_row = np.empty(s.size, np.intp)
    cell_of_row[by_atom] = cell_of_value[value_of_sorted]

    rows = np.bincount(cell_of_value, weights=rows_per_value, minlength=n_cells)
    n_values = np.bincount(cell_of_value, minlength=n_cells)
    mean_score = np.bincount(cell_of_value, weights=values * rows_per_value) / rows
    first_value = values[np.flatnonzero(new_cell)]
    cell = {
        "atom": value_atom[new_cell],
        # one-value cells keep their score exactly, so that equal scores of different atoms
        # merge as ties in a group
        "rep": np.where(n_values == 1, first_value, mean_score),
        "rows": rows,
        "single": n_values == 1,
        "prob": np.bincount(
            cell_of_value, weights=to_probability(values) * rows_per_value, minlength=n_cells
        )
        / rows,
    }
    cell["prob"] = np.where(cell["single"], to_probability(cell["rep"]), cell["prob"])
    flat = data.y.astype(np.intp) * n_cells + cell_of_row
    counts = np.bincount(flat, weights=data.mass, minlength=2 * n_cells).reshape(2, n_cells)

    memb = np.vstack([structure.membership, np.ones((1, structure.n_atoms), bool)])
    keep = np.ones(memb.shape[0], bool) if resampled is None else np.r_[resampled, True]
    fams = [structure.family_slice(f) for f in structure.families]
    fams.append(np.array([structure.n_groups]))
    families = tuple(
        _family_bins(
            memb, cols[keep[cols]], cell, edges, threshold, to_probability, max_bins, n_cells
        )
        for cols in fams
    )
    return CellTable(counts, cell_of_row, cell["atom"], families, max_bins)


def _family_bins(memb, columns, cell, edges, threshold, to_probability, max_bins, n_cells):
    """Group bins of one family (``columns``: its groups) from the cells of their atoms."""
    group_of_atom = np.full(memb.shape[1], -1)
    for j, col in enumerate(columns):
        group_of_atom[memb[col]] = j
    gid = group_of_atom[cell["atom"]]
    mine = np.flatnonzero(gid >= 0)
    order = mine[np.lexsort((cell["rep"][mine], gid[mine]))]
    g, rep = gid[order], cell["rep"][order]
    vstart = _run_starts(g, rep)  # distinct (group, score) runs: ties merge
    v_group, v_rep = g[vstart], rep[vstart]
    v_rows = np.add.reduceat(cell["rows"][order], vstart) if order.size else np.zeros(0)
    new_bin = np.ones(vstart.size, bool)
    gstart = _run_starts(v_group)
    gend = np.r_[gstart[1:], vstart.size]
    for lo, hi in zip(gstart, gend):
        if hi - lo > max_bins:
            b = choose_bins(v_rows[lo:hi], _segment_break(v_rep[lo:hi], edges), max_bins)
            new_bin[lo + 1 : hi] = b[1:] != b[:-1]
    bin_of_value = np.cumsum(new_bin) - 1
    n_bins_total = int(bin_of_value[-1]) + 1 if vstart.size else 0
    bin_start = np.flatnonzero(new_bin)
    bin_group = v_group[bin_start]
    n_bins = np.bincount(bin_group, minlength=columns.size)
    offset = np.r_[0, np.cumsum(n_bins)[:-1]]
    below = np.bincount(bin_group, weights=v_rep[bin_start] < threshold, minlength=columns.size)
    # mean probability per bin; a bin of one exact score keeps that score's probability
    cell_bin = np.repeat(bin_of_value, np.diff(np.r_[vstart, order.size]))
    rows = cell["rows"][order]
    total = np.bincount(cell_bin, weights=cell["prob"][order] * rows, minlength=n_bins_total)
    count = np.bincount(cell_bin, weights=rows, minlength=n_bins_total)
    one_value = np.bincount(bin_of_value, minlength=n_bins_total) == 1
    all_single = np.bincount(cell_bin, weights=~cell["single"][order], minlength=n_bins_total) == 0
    single = one_value & all_single
    bin_value = total / np.maximum(count, 1)
    bin_value[single] = to_probability(v_rep[bin_start][single])
    coarse = np.bincount(bin_group, weights=~single, minlength=columns.size) > 0
    matrix = csr_matrix(
        (np.ones(order.size, np.float32), (cell_bin, order)), shape=(n_bins_total, n_cells)
    )
    return FamilyBins(
        columns=np.asarray(columns),
        matrix=matrix,
        offset=offset,
        n_bins=n_bins,
        thr_index=below.astype(np.intp),
        bin_value=bin_value,
        exact=~coarse,
    )


def _from_probability_edges(prob_edges, to_probability, s):
    """Ranking-score values whose probability is each calibration edge (by bisection on s)."""
    p = to_probability(s)
    idx = np.searchsorted(p, prob_edges, side="left")
    idx = idx[(idx > 0) & (idx < s.size)]
    return s[idx]


def canonical_ids(values) -> tuple:
    """Codes of cluster ids numbered in sorted order of the ids, and the sorted ids.

    Integers (and booleans) stay integers; anything else is compared as text, so the numbering
    does not depend on the order rows arrive in (a state merged from any batches numbers its
    clusters alike).

    >>> canonical_ids(np.array(["v2", "v10", "v2"]))[0].tolist()
    [1, 0, 1]
    """
    arr = values.to_numpy() if hasattr(values, "to_numpy") else np.asarray(values)
    if arr.dtype.kind in "biu":
        arr = arr.astype(np.int64)
    elif arr.dtype.kind != "U":
        arr = arr.astype(str)
    uniques, codes = np.unique(arr, return_inverse=True)
    return codes.astype(np.int64).ravel(), uniques
