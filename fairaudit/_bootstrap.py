"""Bootstrap replicates, permutation tests and confidence intervals, from sufficient statistics.

Nothing here touches rows per replicate when it can be avoided, and no array grows with
replicates x groups x bins beyond the memory budget:

* the bootstrap re-weights *cells* (:class:`fairaudit._stats.CellTable`: each atom's rows on
  the atom's own score grid). ``iid`` without weights or clusters: one multinomial draw over
  the cells (or, when cells are nearly as many as rows, rows drawn and counted);
  ``stratified``: one draw per atom (every group keeps its size); ``cluster``, and any scheme
  with sample weights: units (clusters, or rows) drawn with replacement and their cell
  contributions summed with ``bincount``. Every family's group histograms are then read off
  the same cell counts (a gather and a run sum), and each group's metrics are computed on its
  own bins (at most ``max_bins``), one group at a time;
* the permutation test permutes group labels within each class (whole clusters when
  clusters are given) on bins shared by all groups (:class:`fairaudit._stats.AtomTable`);
  the p-value of a gap is the share of permuted gaps at least as large as the observed one
  (at most as large for ratios), counted as (1 + hits) / (1 + B).

Replicates are processed in chunks whose size follows the memory budget, and groups one at a
time (bootstrap) or in chunks (permutations). Replicate ``b`` always uses the random stream
``SeedSequence(seed, spawn_key=(stream, b))``, so results do not depend on the budget, the
chunk size or the number of threads.
"""

from __future__ import annotations

import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.sparse import csr_matrix
from scipy.special import ndtr, ndtri

from ._errors import bad
from ._gaps import family_gaps, gap_names
from ._metrics import METRIC_NAMES, compute_metrics
from ._stats import atom_table, cell_table, group_point_metrics

__all__ = [
    "Resampler",
    "interval",
    "PermutationResult",
    "run_chunks",
    "rng_for",
    "check_engine_options",
    "replicates_per_chunk",
]

BOOT, PERM, JACK = 0, 1, 2
#: Metrics whose binning error is systematic (a fake and a real in one bin count as a tie,
#: which draws the AUC towards 1/2 and always lowers the average precision): replicates are
#: shifted by the error on the data itself. The EER's error changes sign from replicate to
#: replicate (the crossing falls anywhere inside a bin): no shift. The threshold metrics are
#: exact; the calibration error of the data is exact on any bins.
SHIFTED_METRICS = ("auc", "average_precision")
MB = 2**20
#: Replicates per chunk at most (larger chunks only save Python overhead on small groups).
MAX_CHUNK = 128
#: Float arrays of one group's bins alive at once inside ``compute_metrics`` (measured peak).
METRIC_TEMPORARIES = 24
# Relative costs (ns) that choose how replicates are drawn; they depend on the data's shape
# only, never on the budget, so the budget cannot change a number.
NS_PER_CELL_MULTINOMIAL = 70
NS_PER_ROW_DRAW = 6
NS_PER_COLOR_HYPERGEOMETRIC = 200
NS_PER_ROW_PERMUTED = 15


def rng_for(seed, stream, b):
    """The random stream of replicate ``b`` of ``stream`` (bootstrap, permutation, ...).

    >>> float(rng_for(0, 0, 5).random()) == float(rng_for(0, 0, 5).random())
    True
    """
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(stream, b))))


def check_engine_options(memory_budget, max_order, skip_small_groups):
    """Validate the engine's options once (``bad`` names the option on failure).

    >>> check_engine_options(1024, None, False)
    >>> check_engine_options(1024, 0, False)
    Traceback (most recent call last):
    ...
    fairaudit._errors.FairauditError: --max-order: expected a positive integer, found 0
    """
    number = (int, float, np.integer, np.floating)
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, number):
        raise bad("--memory-budget", "a number of megabytes above 0", repr(memory_budget))
    if not (np.isfinite(memory_budget) and memory_budget > 0):
        raise bad("--memory-budget", "a number of megabytes above 0", repr(memory_budget))
    if max_order is not None and (
        isinstance(max_order, bool) or not isinstance(max_order, (int, np.integer)) or max_order < 1
    ):
        raise bad("--max-order", "a positive integer", repr(max_order))
    if not isinstance(skip_small_groups, (bool, np.bool_)):
        raise bad("--skip-small-groups", "True or False", repr(skip_small_groups))


def _n_threads():
    return max(1, min(2, os.cpu_count() or 1))


def resident_bytes() -> int:
    """Memory the process holds now (from ``/proc/self/statm``; 0 where it is unknown).

    >>> resident_bytes() >= 0
    True
    """
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0


def working_bytes(budget_bytes, reserved=0.0) -> float:
    """What resampling may add: the budget less what the process holds and ``reserved``.

    The budget bounds the peak of the whole process; a fifth of what is left stays free for
    what the estimates miss (allocator slack, small temporaries). When the process already
    holds more, the resampling still gets an eighth of the budget (it cannot do with nothing).

    >>> working_bytes(1024 * MB, reserved=2048 * MB) == 128 * MB
    True
    """
    return max(budget_bytes / 8, 0.8 * (budget_bytes - resident_bytes() - reserved))


def replicates_per_chunk(budget_bytes, per_replicate_bytes, n, cap=None):
    """How many replicates one chunk may hold: every thread's chunk fits in the budget.

    At least one (a single replicate is the floor of what can be bounded).

    >>> replicates_per_chunk(100 * MB, 1 * MB, 1000)  # two threads, 50 MB each
    50
    """
    cap = MAX_CHUNK if cap is None else max(1, int(cap))
    fit = int(budget_bytes // (_n_threads() * max(per_replicate_bytes, 1)))
    return max(1, min(n, cap, fit))


class Resampler:
    """Bootstrap replicates and permutations of every group's metrics within a memory budget.

    Parameters
    ----------
    prep : Prepared
        Validated, sorted inputs (:func:`fairaudit._audit.prepare`).
    max_bins : int
        Bins per group of the bootstrap and bins of the permutation test.
    memory_budget : float
        Megabytes the process may hold at its peak (what it already holds counts, see
        :func:`working_bytes`); chunks of replicates and groups are sized to fit. Numbers do
        not depend on it.
    resampled : array of bool, optional
        Groups to resample (default all); the others get NaN replicates.
    chunk_size : int, optional
        At most this many replicates per chunk (default: as the budget allows, <= 128).

    >>> from fairaudit._audit import prepare
    >>> rng = np.random.default_rng(0)
    >>> y, s = rng.integers(0, 2, 400), rng.random(400)
    >>> prep = prepare(y, s, {"g": rng.choice(["a", "b"], 400)})
    >>> reps = Resampler(prep, metrics=("fpr", "auc")).bootstrap(50, "iid")
    >>> reps["auc"].shape  # 50 replicates x (2 groups + the whole set)
    (50, 3)
    """

    def __init__(
        self,
        prep,
        *,
        max_bins=1024,
        chunk_size=None,
        seed=0,
        progress=False,
        metrics=METRIC_NAMES,
        memory_budget=1024,
        resampled=None,
    ):
        self.prep = prep
        self.metrics = tuple(metrics)
        self.seed = int(seed)
        self.max_bins = int(max_bins)
        self.chunk_size = chunk_size
        self.progress = progress
        self.budget = float(memory_budget) * MB
        s = prep.structure
        self.n_columns = s.n_groups + 1
        self.resampled = np.ones(s.n_groups, bool) if resampled is None else np.asarray(resampled)
        self._cells = self._table = None
        # Unweighted counts are integers: float32 holds them exactly (below 2^24 rows) in half
        # the memory, and they become float64 before any metric, so numbers do not change.
        n = prep.data.n_rows
        self.count_dtype = np.float64 if prep.weighted or n >= 2**24 else np.float32

    # -------------------------------------------------------------- lazily built statistics
    @property
    def cells(self):
        """The bootstrap's :class:`~fairaudit._stats.CellTable` (built on first use)."""
        if self._cells is None:
            p = self.prep
            self._cells = cell_table(
                p.data,
                p.structure,
                p.rule.threshold,
                p.rule.to_probability,
                self.max_bins,
                self.resampled,
            )
        return self._cells

    @property
    def table(self):
        """The permutation test's :class:`~fairaudit._stats.AtomTable` (built on first use)."""
        if self._table is None:
            p = self.prep
            self._table = atom_table(
                p.data, p.structure.n_atoms, p.rule.threshold, p.rule.to_probability, self.max_bins
            )
        return self._table

    @property
    def n_bins(self) -> int:
        """Bins of the largest group in bootstrap replicates (at most ``max_bins``)."""
        return self.cells.n_bins

    @property
    def bins_exact(self) -> bool:
        """Whether every group's bootstrap bins are its distinct scores (exact replicates)."""
        return self.cells.exact

    # -------------------------------------------------------------- evaluation of cell counts
    def cell_metrics(self, counts, out=None, rows=slice(None)):
        """Cell counts (B, 2, n_cells) -> dict metric -> (B, n_groups + 1) replicate values.

        Every family's histograms come from the same counts; each group is computed on its
        own bins, one group at a time, so memory stays at one family's bins per replicate.
        """
        return self._metrics_by_cell(np.ascontiguousarray(counts.transpose(2, 1, 0)), out, rows)

    def _metrics_by_cell(self, by_cell, out=None, rows=slice(None)):
        """:meth:`cell_metrics` of counts laid out (n_cells, 2, B): cells x label x replicate.

        In that layout a family's bins are one sparse product away (every cell adds its
        row of counts to the one bin it falls in).
        """
        n_cells, _, B = by_cell.shape
        if out is None:
            out = {m: np.full((B, self.n_columns), np.nan) for m in self.metrics}
        by_cell = by_cell.reshape(n_cells, 2 * B)
        for fam in self.cells.families:
            if fam.matrix.shape[0] == 0:
                continue
            hist = (fam.matrix @ by_cell).reshape(-1, 2, B)  # bins x label x replicate
            for j, col in enumerate(fam.columns):
                k = int(fam.n_bins[j])
                if k == 0:
                    continue
                o = int(fam.offset[j])
                group = np.ascontiguousarray(hist[o : o + k].transpose(1, 2, 0))  # (2, B, k)
                res = compute_metrics(
                    group[1],
                    group[0],
                    int(fam.thr_index[j]),
                    bin_value=fam.bin_value[o : o + k],
                    probabilities=True,
                    which=self.metrics,
                )
                for m in self.metrics:
                    out[m][rows, col] = res[m]
        return out

    def _cell_bytes(self):
        """Bytes of one replicate's cell counts, gathered cells, family bins and temporaries.

        A family has at most as many bins as there are cells, so no family needs more.
        """
        c = self.cells
        size = np.dtype(self.count_dtype).itemsize
        return size * 4 * c.n_cells + 8 * METRIC_TEMPORARIES * max(c.n_bins, 1)

    def _run_cells(self, n, label, counts_of):
        """Replicates 0..n-1 of cell counts ``counts_of(b)`` -> dict metric -> (n, columns)."""
        out = {m: np.full((n, self.n_columns), np.nan) for m in self.metrics}
        per_rep = self._cell_bytes()  # builds the cells first: the process holds them, and out
        reserved = _n_threads() * self._draw_bytes()
        B = replicates_per_chunk(working_bytes(self.budget, reserved), per_rep, n, self.chunk_size)

        def work(rg):
            by_cell = np.empty((self.cells.n_cells, 2, len(rg)), self.count_dtype)
            for i, b in enumerate(rg):
                by_cell[:, :, i] = counts_of(b).T
            self._metrics_by_cell(by_cell, out, slice(rg.start, rg.stop))

        run_chunks(n, B, work, self.progress, label)
        return out

    # -------------------------------------------------------------- bootstrap draws
    def _draw_bytes(self):
        return 16 * self.prep.data.score.size

    def _boot_units(self, scheme):
        """Units drawn whole (clusters; rows when weighted), with their cell entries.

        Weighted rows are drawn one by one (their weights differ), or, when an entry stands
        for many rows (a state's entries: rows of one score, weight and group), as one
        multinomial over the entries, which draws the same distribution without expanding
        the rows (chosen by the data's shape only, like every draw).
        """
        if scheme == "cluster":
            return self._units("boot_clusters", self.prep.clusters)
        if self.prep.weighted and not self._entries_are_cheaper(scheme):
            return self._units("boot_rows", None)
        return None

    def _entries_are_cheaper(self, scheme):
        """Multinomial draws over the entries cost less than drawing their rows."""
        d = self.prep.data
        n_draws = self.prep.structure.n_atoms if scheme == "stratified" else 1
        return _multinomial_is_cheaper(d.score.size, d.n_rows, n_draws)

    def _units(self, key, unit):
        """Unit atom, class stratum and (unit, cell, weight) entries; cached per ``key``."""
        cache = self.__dict__.setdefault("_unit_cache", {})
        if key not in cache:
            boot = key.startswith("boot")
            if boot:
                n_cells = 2 * self.cells.n_cells
                cell = (
                    self.prep.data.y.astype(np.intp) * self.cells.n_cells + self.cells.cell_of_row
                )
            else:
                K = self.table.counts.shape[-1]
                n_cells = 2 * K
                cell = self.prep.data.y.astype(np.intp) * K + self.table.bin_of_row
            cache[key] = _unit_entries(self.prep.data, unit, cell, n_cells)
        return cache[key]

    def _entry_drawer(self, scheme, cell, size):
        """Draws of every entry's rows as multinomials over the entries (iid: one over all of
        them; stratified: one per atom), each entry contributing weight x draws to its cell."""
        d = self.prep.data
        parts = _multinomial_parts(d.m.astype(float), d.atom if scheme == "stratified" else None)

        def draw_entries(b):
            rng = rng_for(self.seed, BOOT, b)
            draws = np.zeros(d.score.size)
            for entries, k, p in parts:
                draws[entries] = rng.multinomial(k, p)
            return np.bincount(cell, weights=draws * d.w, minlength=size).reshape(2, -1)

        return draw_entries

    def _boot_drawer(self, scheme):
        """A function ``b -> cell counts (2, n_cells)`` of bootstrap replicate ``b``.

        Everything the draws share is set up here, once, before the threads start; how the
        draw is made depends on the data's shape only (see the ``NS_`` costs).
        """
        c = self.cells
        size = 2 * c.n_cells
        u = self._boot_units(scheme)
        if u is not None:
            if scheme == "stratified":
                _units_by_atom(u)

            def draw_units(b):
                draws = _unit_draws(rng_for(self.seed, BOOT, b), u, scheme)
                w = draws[u["entry_unit"]] * u["entry_w"]
                return np.bincount(u["entry_cell"], weights=w, minlength=size).reshape(2, -1)

            return draw_units
        if self.prep.weighted:
            return self._entry_drawer(scheme, self._entry_cell(), size)
        flat = c.counts.ravel()
        nz = np.flatnonzero(flat)
        n = self.prep.data.n_rows
        if scheme == "stratified":
            n_atoms = self.prep.structure.n_atoms
            if _multinomial_is_cheaper(nz.size, n, n_atoms):
                atom_of_cell = np.r_[c.cell_atom, c.cell_atom][nz]
                parts = _multinomial_parts(flat[nz], atom_of_cell, nz)

                def draw_per_atom(b):
                    rng = rng_for(self.seed, BOOT, b)
                    out = np.zeros(size)
                    for cells, k, p in parts:
                        out[cells] = rng.multinomial(k, p)
                    return out.reshape(2, -1)

                return draw_per_atom
            rows, first, size_of = self._rows_by_atom()
            row_cell = self._row_cell()

            def draw_rows_per_atom(b):
                pick = rows[first + rng_for(self.seed, BOOT, b).integers(0, size_of)]
                return np.bincount(row_cell[pick], minlength=size).reshape(2, -1)

            return draw_rows_per_atom
        if _multinomial_is_cheaper(nz.size, n, 1):
            p = flat[nz] / n

            def draw_cells(b):
                out = np.zeros(size)
                out[nz] = rng_for(self.seed, BOOT, b).multinomial(n, p)
                return out.reshape(2, -1)

            return draw_cells
        row_cell = self._row_cell()

        def draw_rows(b):
            pick = rng_for(self.seed, BOOT, b).integers(0, n, n)
            return np.bincount(row_cell[pick], minlength=size).reshape(2, -1)

        return draw_rows

    def _entry_cell(self):
        """Flat cell (label x cell) of every entry."""
        if "_entry_cell_cache" not in self.__dict__:
            c = self.cells
            self._entry_cell_cache = self.prep.data.y.astype(np.intp) * c.n_cells + c.cell_of_row
        return self._entry_cell_cache

    def _row_cell(self):
        """Flat cell of every row (entries expanded to their rows, in entry order)."""
        if "_row_cell_cache" not in self.__dict__:
            self._row_cell_cache = self.prep.data.expand(self._entry_cell())
        return self._row_cell_cache

    def _rows_by_atom(self):
        """Rows grouped by atom and, for every row slot, its atom's first slot and size."""
        atom = self.prep.data.expand(self.prep.data.atom)
        rows = np.argsort(atom, kind="stable")
        sizes = np.bincount(atom, minlength=self.prep.structure.n_atoms)
        first = np.r_[0, np.cumsum(sizes)[:-1]]
        slot_atom = atom[rows]
        return rows, first[slot_atom], sizes[slot_atom]

    def binning_offsets(self, point=None):
        """Per metric, binned minus exact value of every group on the data itself (zeros when
        the bins are exact). Replicates are shifted by it (see :meth:`bootstrap`).

        A group's bins are fixed and its replicates resample its rows, so the binning error of
        a replicate is nearly that of the data: subtracting it removes the systematic part
        (e.g. average precision, which ties in a bin always lower), and what is left varies
        little between replicates (``benchmarks/bench_binning.py`` measures both).
        ``point``: the exact point estimates when already computed.
        """
        if "_offsets" not in self.__dict__:
            self._offsets = {}
            if not self.bins_exact:
                p = self.prep
                if point is None:
                    point = group_point_metrics(
                        p.data, p.structure, p.rule.threshold, p.rule.to_probability, self.metrics
                    )
                binned = self.cell_metrics(self.cells.counts[None])
                for m in SHIFTED_METRICS:
                    if m in self.metrics:
                        off = binned[m][0] - point[m]
                        self._offsets[m] = np.where(np.isfinite(off), off, 0.0)
        return self._offsets

    def _shift(self, values):
        """Replicate values (dict metric -> (B, columns)) less the binning offsets, in place."""
        for m, off in self.binning_offsets().items():
            values[m] -= off
        return values

    def binning_shift(self, reps):
        """The offsets subtracted from replicates: the largest per metric over groups, and the
        largest in units of the group's bootstrap standard deviation (for the report)."""
        shift, shift_sd = {}, {}
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # groups without replicates
            for m, off in self.binning_offsets().items():
                sd = np.nanstd(reps[m], axis=0, ddof=1)
                rel = np.where(sd > 0, np.abs(off) / sd, np.where(off != 0, np.inf, 0.0))
                shift[m] = float(np.max(np.abs(off), initial=0.0))
                shift_sd[m] = float(np.nanmax(rel, initial=0.0))
        return {"shift": shift, "shift_sd": shift_sd} if shift else {}

    def bootstrap(self, n_boot, scheme, point=None):
        """dict metric -> (n_boot, n_groups + 1) replicate values (last column: whole set).

        With binned (not exact) groups, AUC and average precision are shifted by
        :meth:`binning_offsets` (``point``: the exact point estimates, when known).
        """
        if scheme == "cluster" and self.prep.clusters is None:
            raise bad("--bootstrap cluster", "a cluster column", "none")
        self.binning_offsets(point)
        return self._shift(self._run_cells(n_boot, "bootstrap", self._boot_drawer(scheme)))

    def jackknife(self, scheme, n_blocks=50):
        """Delete-a-block jackknife values (for the BCa acceleration): dict -> (J, columns).

        Blocks are made of clusters (each entry belongs to one) or of rows (entries expanded).
        """
        rng = rng_for(self.seed, JACK, 0)
        data = self.prep.data
        if scheme == "cluster":
            unit_of_item = self._units("boot_clusters", self.prep.clusters)["unit"]
            n_units = int(unit_of_item.max()) + 1
            item_cell, item_w = self._entry_cell(), data.mass
        else:
            n_units = data.n_rows
            unit_of_item = np.arange(n_units)
            item_cell, item_w = self._row_cell(), data.expand(data.w)
        J = int(min(n_blocks, n_units))
        block = (rng.permutation(n_units) % J)[unit_of_item]
        items = np.argsort(block, kind="stable")
        bounds = np.r_[0, np.cumsum(np.bincount(block, minlength=J))]
        size = 2 * self.cells.n_cells

        def without_block(j):
            r = items[bounds[j] : bounds[j + 1]]
            left_out = np.bincount(item_cell[r], weights=item_w[r], minlength=size)
            return self.cells.counts - left_out.reshape(2, -1)

        return self._shift(self._run_cells(J, "jackknife", without_block))

    # -------------------------------------------------------------- permutations
    def _perm_uses_hypergeometric(self):
        """Draw permuted atom tables bin by bin (few atoms x bins) or permute rows/clusters."""
        if self.prep.clusters is not None or self.prep.weighted:
            return False
        A, _, K = self.table.counts.shape
        cost_tables = 2 * max(A - 1, 0) * K * NS_PER_COLOR_HYPERGEOMETRIC
        return cost_tables < self.prep.data.n_rows * NS_PER_ROW_PERMUTED

    def _perm_drawer(self):
        """A function ``b -> atom table (A, 2, K)`` of permutation ``b``, set up once: group
        labels permuted within each class (whole clusters when clusters are given)."""
        counts = self.table.counts
        A = counts.shape[0]
        if self._perm_uses_hypergeometric():
            by_class = [counts[:, y, :].astype(np.int64) for y in (0, 1)]
            pools = [(t.sum(axis=0), t.sum(axis=1)) for t in by_class]

            def draw_bins(b):
                rng = rng_for(self.seed, PERM, b)
                out = np.zeros_like(counts)
                for y, (remaining, rows) in enumerate(pools):
                    for a in range(A - 1):
                        if rows[a] == 0:
                            continue
                        draw = rng.multivariate_hypergeometric(
                            remaining, int(rows[a]), method="marginals"
                        )
                        out[a, y] = draw
                        remaining = remaining - draw
                    out[A - 1, y] = remaining
                return out

            return draw_bins
        u = self._perm_units()
        strata = [np.flatnonzero(u["stratum"] == st) for st in (0, 1, 2)]
        strata = [idx for idx in strata if idx.size > 1]
        K2 = 2 * counts.shape[-1]

        def draw_units(b):
            rng = rng_for(self.seed, PERM, b)
            atom = u["atom"].copy()
            for idx in strata:
                atom[idx] = atom[idx][rng.permutation(idx.size)]
            cell = atom[u["entry_unit"]] * K2 + u["entry_cell"]
            tab = np.bincount(cell, weights=u["entry_w"], minlength=counts.size)
            return tab.reshape(counts.shape)

        return draw_units

    def _perm_units(self):
        if self.prep.clusters is not None:
            return self._units("perm_clusters", self.prep.clusters)
        return self._units("perm_rows", None)

    def _perm_families(self, structure):
        """Per family: its resampled groups with rows (positions) and their atom sums (CSR)."""
        out = {}
        for f in structure.families:
            cols = structure.family_slice(f)
            keep = np.flatnonzero(self.resampled[cols] & structure.membership[cols].any(axis=1))
            out[f] = (keep, csr_matrix(structure.membership[cols[keep]].astype(np.float32)))
        return out

    def permutation_gaps(self, n_perm, structure):
        """Gap values of every family under permuted group labels (a PermutationResult)."""
        cu = self._perm_units() if self.prep.clusters is not None else None
        if cu is not None and cu["mixed"].size:
            first = int(cu["mixed"][0])
            raise bad(
                "clusters",
                "every cluster inside one group (for the permutation test)",
                f"{cu['mixed'].size} clusters spanning several groups "
                f"(e.g. cluster #{first}); --n-perm 0 (n_perm=0) skips the test",
            )
        tab = self.table
        A, _, K = tab.counts.shape
        ms = self.metrics
        fams = self._perm_families(structure)
        # Permuting group labels leaves the whole set unchanged: its metrics are fixed.
        whole = tab.counts.sum(axis=0)
        ov1 = compute_metrics(
            whole[1], whole[0], tab.thr_index, bin_value=tab.bin_value, probabilities=True, which=ms
        )
        size = np.dtype(self.count_dtype).itemsize
        per_rep = size * A * 2 * K
        units = self.prep.data.score.size
        if not self._perm_uses_hypergeometric() and self.prep.clusters is None:
            units = self.prep.data.n_rows  # rows are permuted one by one
        reserved = _n_threads() * 3 * 8 * units
        names = gap_names(ms)
        out = {f: {g: np.full(n_perm, np.nan) for g in names} for f in fams}
        free = working_bytes(self.budget, reserved)  # the process already holds ``out``
        # half for the replicate tables, half for the groups' histograms and metrics
        B = replicates_per_chunk(free / 2, per_rep, n_perm, self.chunk_size)
        group_bytes = B * K * (2 * size + 8 * METRIC_TEMPORARIES)
        group_chunk = max(1, int(free / 2 / _n_threads() // group_bytes))

        draw = self._perm_drawer()

        def work(rg):
            n = len(rg)
            # atoms x (replicate, label, bin): a group's histograms are one sparse product away
            tables = np.empty((A, n, 2 * K), self.count_dtype)
            for i, b in enumerate(rg):
                tables[:, i] = draw(b).reshape(A, 2 * K)
            tables = tables.reshape(A, -1)
            ov = {m: np.broadcast_to(ov1[m], (n,)) for m in ms}
            for f, (pos, sums) in fams.items():
                vals = {m: np.full((n, structure.family_slice(f).size), np.nan) for m in ms}
                for g0 in range(0, pos.size, group_chunk):
                    g1 = min(pos.size, g0 + group_chunk)
                    hist = (sums[g0:g1] @ tables).reshape(g1 - g0, n, 2, K)
                    res = compute_metrics(
                        hist[:, :, 1, :],
                        hist[:, :, 0, :],
                        tab.thr_index,
                        bin_value=tab.bin_value,
                        probabilities=True,
                        which=ms,
                    )
                    for m in ms:
                        vals[m][:, pos[g0:g1]] = res[m].T
                gaps = family_gaps(vals, ov, ms)
                for name, v in gaps.items():
                    out[f][name][rg.start : rg.stop] = v

        run_chunks(n_perm, B, work, self.progress, "permutations")
        return PermutationResult(out)


def _multinomial_is_cheaper(n_cells, n_rows, n_draws):
    return n_cells * NS_PER_CELL_MULTINOMIAL + n_draws * 3000 < n_rows * NS_PER_ROW_DRAW


def _unit_entries(data, unit, cell, n_cells):
    """Units (clusters; rows when ``unit`` is None) and their summed cell contributions.

    ``unit`` and ``cell`` are per entry; rows as units expand every entry to its rows.
    """
    rows = unit is None
    if rows:
        expanded = (data.m != 1).any()
        entry = np.repeat(np.arange(data.score.size), data.m) if expanded else None
        pick = (lambda a: a[entry]) if expanded else (lambda a: a)  # noqa: E731
        atom, y, cell, w = pick(data.atom), pick(data.y), pick(cell), pick(data.w)
        unit = np.arange(atom.size)
        ones = np.ones(atom.size)
    else:
        atom, y, w, ones = data.atom, data.y * data.m, data.mass, data.m
    n_units = int(unit.max()) + 1
    atom_min = np.full(n_units, np.iinfo(np.int64).max)
    atom_max = np.full(n_units, -1)
    np.minimum.at(atom_min, unit, atom)
    np.maximum.at(atom_max, unit, atom)
    if rows:
        entry_unit, entry_cell, weight = unit, cell, w
    else:
        key = unit.astype(np.int64) * n_cells + cell
        ukey, inv = np.unique(key, return_inverse=True)
        weight = np.bincount(inv, weights=w)
        entry_unit, entry_cell = ukey // n_cells, ukey % n_cells
    ypos = np.bincount(unit, weights=y, minlength=n_units)
    ycnt = np.bincount(unit, weights=ones, minlength=n_units)
    return {
        "unit": unit,
        "n": n_units,
        "atom": atom_min,
        "mixed": np.flatnonzero(atom_min != atom_max),
        "entry_unit": entry_unit,
        "entry_cell": entry_cell,
        "entry_w": weight,
        "stratum": np.where(ypos == ycnt, 1, np.where(ypos == 0, 0, 2)),
    }


def _multinomial_parts(counts, group=None, index=None):
    """(positions, total, probabilities) of one multinomial draw per ``group`` (or one over
    everything) of items with ``counts`` (rows); ``index`` maps items to output positions."""
    index = np.arange(counts.size) if index is None else index
    if group is None:
        total = int(counts.sum())
        return [(index, total, counts / total)] if total else []
    order = np.argsort(group, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(group))]
    parts = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if hi > lo:
            items = order[lo:hi]
            k = int(counts[items].sum())
            parts.append((index[items], k, counts[items] / k))
    return parts


def _unit_draws(rng, u, scheme):
    """How many times each unit is drawn in one replicate (stratified: within each atom)."""
    if scheme != "stratified":
        return np.bincount(rng.integers(0, u["n"], u["n"]), minlength=u["n"])
    order, first, size = _units_by_atom(u)
    return np.bincount(order[first + rng.integers(0, size)], minlength=u["n"])


def _units_by_atom(u):
    """Units of each atom together, and each slot's atom start and size (cached in ``u``)."""
    if "by_atom" not in u:
        order = np.argsort(u["atom"], kind="stable")
        sizes = np.bincount(u["atom"])
        slot_atom = u["atom"][order]
        u["by_atom"] = (order, np.r_[0, np.cumsum(sizes)[:-1]][slot_atom], sizes[slot_atom])
    return u["by_atom"]


def run_chunks(n, chunk_size, work, progress=False, label=""):
    """Apply ``work`` to consecutive ranges of replicate indices on up to two threads.

    Returns the list of results in replicate order. Each replicate draws from its own seeded
    stream, so neither the chunk size nor the thread count changes any number.

    >>> run_chunks(5, 2, lambda rg: list(rg))
    [[0, 1], [2, 3], [4]]
    """
    chunks = [range(i, min(n, i + chunk_size)) for i in range(0, n, chunk_size)]
    bar = None
    if progress and sys.stderr.isatty() and n >= 200:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=label, unit="rep", leave=False)
    results = []
    with ThreadPoolExecutor(_n_threads()) as pool:
        for rg, r in zip(chunks, pool.map(work, chunks)):
            results.append(r)
            if bar is not None:
                bar.update(len(rg))
    if bar is not None:
        bar.close()
    return results


class PermutationResult:
    """Permutation distributions of the gaps; :meth:`p_value` compares an observed gap."""

    def __init__(self, gaps):
        self.gaps = gaps

    def p_value(self, family, name, observed):
        if observed is None or np.isnan(observed):
            return np.nan
        null = self.gaps[family][name]
        null = null[~np.isnan(null)]
        if null.size == 0:
            return np.nan
        tol = 1e-12 * max(1.0, abs(observed))
        if name.endswith("ratio"):
            hits = np.sum(null <= observed + tol)
        else:
            hits = np.sum(null >= observed - tol)
        return float((1 + hits) / (1 + null.size))


def interval(point, reps, ci, method="percentile", jack=None):
    """Confidence limits per column of ``reps`` (B, P) around ``point`` (P,).

    percentile: the (1-ci)/2 and (1+ci)/2 quantiles of the replicates (NaN replicates left
    out; NaN when fewer than half are defined). bca: bias-corrected and accelerated quantiles,
    bias from the share of replicates below the point estimate, acceleration from the
    (delete-a-block) jackknife values ``jack`` (J, P).
    """
    point = np.atleast_1d(np.asarray(point, dtype=float))
    reps = np.asarray(reps, dtype=float)
    alpha = 1.0 - ci
    lo = np.full(point.shape, np.nan)
    hi = np.full(point.shape, np.nan)
    for j in range(point.size):
        r = reps[:, j]
        r = r[~np.isnan(r)]
        if np.isnan(point[j]) or r.size < max(2, reps.shape[0] // 2):
            continue
        qs = np.array([alpha / 2, 1 - alpha / 2])
        if method == "bca" and jack is not None:
            qs = _bca_levels(point[j], r, np.asarray(jack)[:, j], qs)
        lo[j], hi[j] = np.quantile(r, qs)
    return lo, hi


def _bca_levels(theta, r, jk, qs):
    B = r.size
    prop = (np.sum(r < theta) + 0.5 * np.sum(r == theta)) / B
    prop = np.clip(prop, 0.5 / B, 1 - 0.5 / B)
    z0 = ndtri(prop)
    jk = jk[~np.isnan(jk)]
    a = 0.0
    if jk.size > 2:
        d = jk.mean() - jk
        den = 6.0 * np.sum(d**2) ** 1.5
        a = float(np.sum(d**3) / den) if den > 0 else 0.0
    z = ndtri(qs)
    adj = ndtr(z0 + (z0 + z) / (1 - a * (z0 + z)))
    return np.clip(adj, 0.0, 1.0)
