"""The fixed score grid of an :class:`~fairaudit.AuditState` past its exact regime.

Cells are fixed at creation, from the score rule, the threshold and a number of bits; they
never depend on the data, so two states binned apart add up cell by cell. The grid is a
floating-point one: ``bits`` leading mantissa bits of a distance, so its cells are finest
where scores crowd:

* probabilities (``prob``, ``percent``): the distance to the nearer end, ``p`` below 1/2 and
  ``1 - p`` above (exact in floating point), from 2^-41 to 1/2; a cell spans ``2^-bits`` of
  its distance (p = 0.999 lies in a cell about 1e-3 x 2^-bits wide);
* logits (``logit``, ``logits2``): the distance to 0, from 2^-30 to 2048 (larger logits share
  the outermost cells).

Every cell that holds the threshold or an edge of the 15 calibration bins is split there, so
that the counts and rates at the threshold are exact and every row keeps its calibration
bin. A cell's key is ``16 * cell + part`` (part: its piece after splits), increasing with
the score.
"""

from __future__ import annotations

import numpy as np

from ._metrics import ECE_BINS

__all__ = ["ScoreGrid"]

SIGN = np.int64(-(2**63))
#: (lowest, highest) binary exponent of the distance the grid resolves, per kind of rule.
EXPONENTS = {"probability": (-41, -1), "logit": (-30, 11)}


def ordinal(x):
    """Integers in the order of float64 values (-0.0 and 0.0 alike).

    >>> bool(ordinal(np.array([-1.0]))[0] < ordinal(np.array([-0.5]))[0] < 0)
    True
    """
    b = np.asarray(x, dtype=np.float64).view(np.int64)
    return np.where(b < 0, -(b & np.int64(2**63 - 1)), b)


def from_ordinal(o):
    """The float64 values of :func:`ordinal` integers.

    >>> from_ordinal(ordinal(np.array([-2.5, 0.0, 3.0]))).tolist()
    [-2.5, 0.0, 3.0]
    """
    o = np.asarray(o, dtype=np.int64)
    return np.where(o < 0, (-o) | SIGN, o).view(np.float64)


class ScoreGrid:
    """Cells of ranking scores for one score rule, threshold and resolution.

    >>> from fairaudit._validation import as_scores
    >>> rule = as_scores([0.2, 0.7], "prob")[1]
    >>> grid = ScoreGrid(rule, 14)
    >>> keys = grid.keys(np.array([0.2, 0.5, 0.50001, 0.9]))
    >>> bool(np.all(np.diff(keys) > 0)), bool(grid.representative(keys)[1] == 0.5)
    (True, True)
    """

    def __init__(self, rule, bits: int):
        self.rule = rule
        self.bits = int(bits)
        self.probability = rule.name in ("prob", "percent")
        lo_exp, hi_exp = EXPONENTS["probability" if self.probability else "logit"]
        self.lo_exp, self.hi_exp = lo_exp, hi_exp
        self.shift64, self.shift32 = 52 - self.bits, 23 - self.bits
        self.base64 = np.int64((lo_exp + 1023) << self.bits)
        self.base32 = np.int32((lo_exp + 127) << self.bits)
        self.top = (hi_exp - lo_exp) << self.bits
        self.side = self.top + 1  # cells per side
        self.n_base = 2 * self.side
        self._split_cells()

    # ------------------------------------------------------------------ rows -> cells
    def _distance_cell(self, x):
        """Cell (int32, 0 .. top) of non-negative distances ``x`` on one side; float32 is
        read as it is (its leading bits give the same cells as float64's)."""
        if x.dtype == np.float32:
            q = x.view(np.int32)  # x is a temporary of the caller's: shifted in place
            q >>= self.shift32
            q -= self.base32
        else:
            q = (x.view(np.int64) >> self.shift64) - self.base64
        q = np.clip(q, 0, self.top, out=q)
        return q.astype(np.int32, copy=False)

    def base_cells(self, r):
        """Unsplit cell (int32, 0 .. 2 * side - 1) of ranking scores ``r``."""
        r = np.asarray(r)
        if r.dtype != np.float32:
            r = r.astype(np.float64, copy=False)
        if self.probability:
            up = r > 0.5
            # the distance to the nearer end; 1 - p is exact above 1/2, and below it the
            # minimum is p itself
            d = r.dtype.type(1) - r
            np.minimum(r, d, out=d)
            q = self._distance_cell(d)
            np.subtract(np.int32(self.n_base - 1), q, out=q, where=up)  # mirrored above 1/2
            return q
        neg = r < 0
        q = self._distance_cell(np.abs(r))
        q += np.int32(self.side)
        np.subtract(np.int32(2 * self.side - 1), q, out=q, where=neg)  # S - 1 - q below 0
        return q

    def segment(self, r):
        """Threshold side plus calibration bin: constant on every split part of a cell."""
        r = np.asarray(r, dtype=np.float64)
        p = self.rule.to_probability(r)
        ece = np.minimum((np.asarray(p) * ECE_BINS).astype(np.int64), ECE_BINS - 1)
        return (r >= self.rule.threshold).astype(np.int64) + ece

    def keys(self, r):
        """Keys ``16 * cell + part`` of ranking scores (increasing with the score)."""
        cell = self.base_cells(r).astype(np.int64)
        part = np.zeros(cell.shape, np.int64)
        hit = self._is_split[cell]
        if hit.any():
            c = cell[hit]
            part[hit] = self.segment(np.asarray(r)[hit]) - self._segment_low[c]
        return cell * 16 + part

    # ------------------------------------------------------------------ dense indices
    def dense(self, r):
        """Dense index of every score's key: the cell, or past ``n_base`` a split part."""
        cell = self.base_cells(r)
        hit = self._is_split[cell]
        if hit.any():
            c = cell[hit]
            part = self.segment(np.asarray(r)[hit]) - self._segment_low[c]
            cell[hit] = np.where(part > 0, self._part_base[c] + part - 1, c)
        return cell  # int32

    @property
    def n_dense(self) -> int:
        return self.key_of_dense.size

    @property
    def dense_in_key_order(self):
        """Dense indices in increasing order of their keys (split parts in place)."""
        if "_key_order" not in self.__dict__:
            self._key_order = np.argsort(self.key_of_dense, kind="stable")
        return self._key_order

    def dense_of_keys(self, keys):
        """Dense indices of keys (the inverse of :attr:`key_of_dense`)."""
        cell, part = keys >> 4, keys & 15
        return np.where(part > 0, self._part_base[cell] + part - 1, cell)

    # ------------------------------------------------------------------ splits
    def _split_cells(self):
        """Cells holding an edge where the segment steps, with their parts."""
        edges = self._segment_edges()
        below = from_ordinal(ordinal(edges) - 1)
        inner = self.base_cells(edges) == self.base_cells(below)
        cells = self.base_cells(edges[inner])
        self._is_split = np.zeros(self.n_base, bool)
        self._segment_low = np.zeros(self.n_base, np.int64)
        self._part_base = np.zeros(self.n_base, np.int64)
        keys = [np.arange(self.n_base, dtype=np.int64) * 16]
        next_index = self.n_base
        for c in np.unique(cells):
            here = edges[inner][cells == c]
            low = int(self.segment(from_ordinal(ordinal(here[:1]) - 1))[0])
            n_parts = int(self.segment(here[-1:])[0]) - low
            self._is_split[c] = True
            self._segment_low[c] = low
            self._part_base[c] = next_index
            keys.append(c * 16 + np.arange(1, n_parts + 1, dtype=np.int64))
            next_index += n_parts
        self.key_of_dense = np.concatenate(keys)

    def _segment_edges(self):
        """The lowest score of every segment step (threshold, calibration edges)."""
        lo, hi = (0.0, 1.0) if self.probability else (-1e300, 1e300)
        targets = np.arange(1, ECE_BINS + 2)  # segment values 1 .. 15 (+ threshold)
        first = self._first_where(lambda r: self.segment(r)[:, None] >= targets, lo, hi)
        thr = np.array([self.rule.threshold])
        return np.unique(np.r_[first[np.isfinite(first)], thr])

    @staticmethod
    def _first_where(test, lo, hi):
        """Smallest float in [lo, hi] where each column of ``test`` turns True (by bisection
        on the order of floats); inf where it never does."""
        a, b = ordinal(np.array([lo]))[0], ordinal(np.array([hi]))[0]
        n = test(np.array([hi])).shape[1]
        lo_o, hi_o = np.full(n, a), np.full(n, b)
        never = ~test(np.array([hi]))[0]
        while (lo_o < hi_o).any():
            mid = (lo_o >> 1) + (hi_o >> 1) + (lo_o & hi_o & 1)  # no overflow
            ok = test(from_ordinal(mid))[np.arange(n), np.arange(n)]
            hi_o = np.where(ok, mid, hi_o)
            lo_o = np.where(ok, lo_o, mid + 1)
        return np.where(never, np.inf, from_ordinal(hi_o))

    # ------------------------------------------------------------------ keys -> values
    def _distance_bounds(self, q):
        """[low, high) of the distances of side cells ``q`` (high inf for the outer cell)."""
        low = from_ordinal((q + self.base64) << self.shift64)
        low = np.where(q == 0, 0.0, low)
        high = from_ordinal((q + 1 + self.base64) << self.shift64)
        outer = q == self.top
        return low, np.where(outer, 0.5 if self.probability else np.inf, high)

    def bounds(self, keys):
        """Lowest and highest ranking score of every key's (unsplit) cell."""
        cell = np.asarray(keys, np.int64) >> 4
        if self.probability:
            up = cell >= self.side
            q = np.where(up, self.n_base - 1 - cell, cell)
            low, high = self._distance_bounds(q)
            return np.where(up, 1.0 - high, low), np.where(up, 1.0 - low, high)
        neg = cell < self.side
        q = np.where(neg, self.side - 1 - cell, cell - self.side)
        low, high = self._distance_bounds(q)
        return np.where(neg, -high, low), np.where(neg, -low, high)

    def representative(self, keys):
        """A ranking score inside every key's cell part (its middle where it can be)."""
        keys = np.asarray(keys, np.int64)
        lo, hi = self.bounds(keys)
        with np.errstate(invalid="ignore", over="ignore"):
            rep = np.where(np.isfinite(lo) & np.isfinite(hi), lo + (hi - lo) / 2, 0.0)
        rep = np.where(np.isfinite(hi), rep, lo)
        rep = np.where(np.isfinite(lo), rep, hi)
        wrong = self.keys(rep) != keys
        if wrong.any():  # split parts and rounding at the ends: bisect for a score inside
            rep[wrong] = self._inside(keys[wrong])
        return rep

    def _inside(self, keys):
        lo, hi = (0.0, 1.0) if self.probability else (-1e300, 1e300)
        first = self._first_where(lambda r: self.keys(r)[:, None] >= keys, lo, hi)
        past = self._first_where(lambda r: self.keys(r)[:, None] > keys, lo, hi)
        last = np.where(np.isfinite(past), from_ordinal(ordinal(past) - 1), hi)
        a, b = ordinal(first), ordinal(last)
        return from_ordinal((a >> 1) + (b >> 1) + (a & b & 1))

    def probability_width(self, keys):
        """Largest difference of p(fake) inside every key's cell (calibration bound)."""
        lo, hi = self.bounds(keys)
        f = self.rule.to_probability
        top = 1.0 if self.probability else 1e300
        return f(np.clip(hi, -top, top)) - f(np.clip(lo, -top, top))
