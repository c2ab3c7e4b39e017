"""Bootstrap replicates, permutation tests and confidence intervals, from sufficient statistics.

Nothing here touches rows per replicate when it can be avoided:

* ``iid`` without weights or clusters: a row bootstrap of counts is one multinomial draw over
  the cells (atom x label x score bin) of the atom table;
* ``stratified``: one multinomial per atom (every group keeps its size);
* ``cluster``, and any scheme with sample weights: units (clusters, or rows) are drawn with
  replacement and their cell contributions summed with ``bincount``.

A replicate table (atoms x label x bins) becomes group histograms by one matrix product with
the membership matrix, and every metric is computed for a whole chunk of replicates at once
(:func:`fairaudit._metrics.compute_metrics`). Replicate ``b`` always uses the random stream
``SeedSequence(seed, spawn_key=(stream, b))``, so results do not depend on the chunk size or on
the number of threads.

The permutation test of "no disparity" permutes group labels within each class (whole
clusters when clusters are given): the p-value of a gap is the share of permuted gaps at least
as large as the observed one (at most as large for ratios), counted as (1 + hits) / (1 + B).
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.special import ndtr, ndtri

from ._errors import bad
from ._gaps import family_gaps
from ._metrics import METRIC_NAMES, compute_metrics
from ._stats import atom_table

__all__ = ["Resampler", "interval", "PermutationResult", "run_chunks", "table_metrics", "rng_for"]

BOOT, PERM, JACK = 0, 1, 2


def rng_for(seed, stream, b):
    """The random stream of replicate ``b`` of ``stream`` (bootstrap, permutation, ...)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(stream, b))))


def _n_threads():
    return max(1, min(2, os.cpu_count() or 1))


class Resampler:
    """Draws replicate atom tables and turns them into per-group metrics."""

    def __init__(
        self, prep, *, max_bins=1024, chunk_size=64, seed=0, progress=False, metrics=METRIC_NAMES
    ):
        self.prep = prep
        self.metrics = tuple(metrics)
        s = prep.structure
        data = prep.data
        self.seed = int(seed)
        self.chunk_size = max(1, int(chunk_size))
        self.progress = progress
        self.table = atom_table(
            data, s.n_atoms, prep.rule.threshold, prep.rule.to_probability, max_bins=max_bins
        )
        self.A, _, self.K = self.table.counts.shape
        self.memb = np.vstack([s.membership, np.ones((1, s.n_atoms), bool)]).astype(float)
        self.y_int = data.y.astype(np.int64)
        # Cell of each row inside its atom (label x bin) and its global cell.
        self.cell_in_atom = self.y_int * self.K + self.table.bin_of_row
        self.row_cell = data.atom * (2 * self.K) + self.cell_in_atom
        # Units drawn or permuted whole: clusters (cluster scheme, permutation test), rows
        # (any scheme with sample weights, and small data sets, where O(rows) work per
        # replicate beats O(cells)); otherwise rows are never touched: cell counts suffice.
        self.cluster_units = None if prep.clusters is None else self._units(prep.clusters)
        n = data.score.size
        self.row_units = (
            self._units(np.arange(n), rows=True)
            if prep.weighted or n <= 4 * self.A * self.K
            else None
        )

    # -------------------------------------------------------------- units (clusters or rows)
    def _units(self, unit, rows=False):
        """Unit atom, class stratum and (unit, cell, weight) entries of a unit id per row."""
        data = self.prep.data
        n_units = int(unit.max()) + 1
        atom_min = np.full(n_units, np.iinfo(np.int64).max)
        atom_max = np.full(n_units, -1)
        np.minimum.at(atom_min, unit, data.atom)
        np.maximum.at(atom_max, unit, data.atom)
        mixed = np.flatnonzero(atom_min != atom_max)
        if rows:
            entry_unit, entry_cell, weight = unit, self.row_cell, data.w
        else:
            key = unit * (2 * self.K * self.A) + self.row_cell
            ukey, inv = np.unique(key, return_inverse=True)
            weight = np.bincount(inv, weights=data.w)
            entry_unit = ukey // (2 * self.K * self.A)
            entry_cell = ukey % (2 * self.K * self.A)
        ypos = np.bincount(unit, weights=data.y, minlength=n_units)
        ycnt = np.bincount(unit, minlength=n_units)
        stratum = np.where(ypos == ycnt, 1, np.where(ypos == 0, 0, 2))
        return {
            "unit": unit,
            "n": n_units,
            "atom": atom_min,
            "mixed": mixed,
            "entry_unit": entry_unit,
            "entry_cell": entry_cell,
            "entry_w": weight,
            "entry_cell_in_atom": entry_cell % (2 * self.K),
            "stratum": stratum,
        }

    # -------------------------------------------------------------- replicate tables
    def _boot_table(self, b, scheme):
        rng = rng_for(self.seed, BOOT, b)
        counts = self.table.counts
        u = self.cluster_units if scheme == "cluster" else self.row_units
        if u is None:
            flat = counts.reshape(self.A, -1)
            out = np.zeros_like(flat)
            if scheme == "stratified":
                for a in range(self.A):
                    nz = np.flatnonzero(flat[a])
                    n_a = int(flat[a, nz].sum())
                    out[a, nz] = rng.multinomial(n_a, flat[a, nz] / n_a)
            else:
                f = flat.ravel()
                nz = np.flatnonzero(f)
                n = int(f[nz].sum())
                o = out.ravel()
                o[nz] = rng.multinomial(n, f[nz] / n)
            return out.reshape(counts.shape)
        if scheme == "stratified":
            draws = np.zeros(u["n"])
            for a in range(self.A):
                members = np.flatnonzero(u["atom"] == a)
                if members.size:
                    pick = members[rng.integers(0, members.size, members.size)]
                    draws += np.bincount(pick, minlength=u["n"])
        else:
            draws = np.bincount(rng.integers(0, u["n"], u["n"]), minlength=u["n"])
        tab = np.bincount(
            u["entry_cell"], weights=draws[u["entry_unit"]] * u["entry_w"], minlength=counts.size
        )
        return tab.reshape(counts.shape)

    def _perm_table(self, b):
        rng = rng_for(self.seed, PERM, b)
        counts = self.table.counts
        u = self.cluster_units if self.cluster_units is not None else self.row_units
        if u is None:
            out = np.zeros_like(counts)
            for y in (0, 1):
                t = counts[:, y, :].astype(np.int64)
                remaining = t.sum(axis=0)
                rows = t.sum(axis=1)
                for a in range(self.A - 1):
                    if rows[a] == 0:
                        continue
                    draw = rng.multivariate_hypergeometric(
                        remaining, int(rows[a]), method="marginals"
                    )
                    out[a, y] = draw
                    remaining = remaining - draw
                out[self.A - 1, y] = remaining
            return out
        atom = u["atom"].copy()
        for st in (0, 1, 2):
            idx = np.flatnonzero(u["stratum"] == st)
            if idx.size > 1:
                atom[idx] = atom[idx][rng.permutation(idx.size)]
        cell = atom[u["entry_unit"]] * (2 * self.K) + u["entry_cell_in_atom"]
        return np.bincount(cell, weights=u["entry_w"], minlength=counts.size).reshape(counts.shape)

    # -------------------------------------------------------------- metrics of tables
    def metrics_of(self, tables):
        """tables (B, A, 2, K) -> dict metric -> (B, n_groups + 1)."""
        return table_metrics(
            tables, self.memb, self.table.thr_index, self.table.bin_value, self.metrics
        )

    def _run(self, n, make_table, reduce, label):
        return run_chunks(
            n,
            self.chunk_size,
            lambda rg: reduce(self.metrics_of(np.stack([make_table(b) for b in rg]))),
            self.progress,
            label,
        )

    def bootstrap(self, n_boot, scheme):
        """dict metric -> (n_boot, n_groups + 1) replicate values."""
        if scheme == "cluster" and self.prep.clusters is None:
            raise bad("--bootstrap cluster", "a cluster column", "none")
        parts = self._run(n_boot, lambda b: self._boot_table(b, scheme), lambda m: m, "bootstrap")
        return {m: np.concatenate([p[m] for p in parts]) for m in self.metrics}

    def jackknife(self, scheme, n_blocks=50):
        """Delete-a-block jackknife values (for the BCa acceleration)."""
        rng = rng_for(self.seed, JACK, 0)
        if scheme == "cluster":
            unit_of_row, n_units = self.cluster_units["unit"], self.cluster_units["n"]
        else:
            unit_of_row = np.arange(self.prep.data.score.size)
            n_units = unit_of_row.size
        J = int(min(n_blocks, n_units))
        block_of_unit = rng.permutation(n_units) % J
        block = block_of_unit[unit_of_row]
        w = self.prep.data.w
        flat = block * self.table.counts.size + self.row_cell
        per_block = np.bincount(flat, weights=w, minlength=J * self.table.counts.size)
        per_block = per_block.reshape((J,) + self.table.counts.shape)
        return self.metrics_of(self.table.counts[None] - per_block)

    def permutation_gaps(self, n_perm, structure):
        """Gap values of every family under permuted group labels."""
        fams = {f: structure.family_slice(f) for f in structure.families}

        ms = self.metrics

        def reduce(met):
            ov = {m: met[m][:, -1] for m in ms}
            return {
                f: family_gaps({m: met[m][:, idx] for m in ms}, ov, ms) for f, idx in fams.items()
            }

        cu = self.cluster_units
        if cu is not None and cu["mixed"].size:
            first = int(cu["mixed"][0])
            raise bad(
                "clusters",
                "every cluster inside one group (for the permutation test)",
                f"{cu['mixed'].size} clusters spanning several groups "
                f"(e.g. cluster #{first}); --n-perm 0 (n_perm=0) skips the test",
            )
        parts = self._run(n_perm, self._perm_table, reduce, "permutations")
        out = {f: {g: np.concatenate([p[f][g] for p in parts]) for g in parts[0][f]} for f in fams}
        return PermutationResult(out)


def table_metrics(tables, memb, thr_index, bin_value, metrics):
    """Atom tables (B, A, 2, K) -> dict metric -> (B, n_groups + 1) via group membership."""
    B, A, _, K = tables.shape
    g = np.matmul(memb, np.asarray(tables, dtype=float).reshape(B, A, 2 * K))  # (B, G+1, 2K)
    res = compute_metrics(
        g[..., K:], g[..., :K], thr_index, bin_value=bin_value, probabilities=True, which=metrics
    )
    return {m: res[m] for m in metrics}


def run_chunks(n, chunk_size, work, progress=False, label=""):
    """Apply ``work`` to consecutive ranges of replicate indices on up to two threads.

    Returns the list of results in replicate order. Each replicate draws from its own seeded
    stream, so neither the chunk size nor the thread count changes any number.
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
