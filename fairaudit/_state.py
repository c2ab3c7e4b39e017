"""A mergeable audit state: the sufficient statistics of an audit as a value of their own.

Every number of an audit is a function of its *entries*: the distinct (group cell, label,
score, weight, cluster) combinations of its rows with their row counts. Counts add up, so a
state is built from one batch, merged with another (associative and commutative: integer
sums of counts on fixed keys), serialised without pickle and audited; in-memory, Parquet,
Dask and distributed-training audits are the same state filled by different readers. The
state knows nothing of files or engines.

Scores are kept exactly while the state holds at most ``exact_cap`` distinct (group cell,
label, score) entries; past that, every score is replaced by its cell of a fixed grid
(:class:`fairaudit._grid.ScoreGrid`), fixed at creation, so that states binned apart still
add up. Counts and every rate at the threshold stay exact; the ranking metrics get an error
bound computed on the state itself (recorded in ``config["state"]``).
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd

from ._errors import bad, opt, shown
from ._grid import ScoreGrid
from ._groups import UNKNOWN, _value_order, build_groups
from ._options import DEFAULTS, check_options, resolve_bootstrap
from ._stats import canonical_ids, sort_rows

__all__ = ["AuditState", "MAGIC", "FORMAT_VERSION"]

MAGIC = b"FAIRAUDIT-STATE\n"
FORMAT_VERSION = 1
#: Distinct (group cell, label, score) entries kept exactly; past it, scores go on the grid.
EXACT_CAP = 2**18
#: Mantissa bits of the score grid (a cell spans 2^-14 of the distance to 0 or 1).
GRID_BITS = 14
#: Dense grid counts (atoms x labels x cells, int64) are used while they fit in this.
DENSE_LIMIT = 512 * 2**20
#: Pending batch entries are merged into the compacted ones past this size (and past them).
COMPACT_MIN = 2**18
#: A ranking metric whose grid error bound passes this gets a warning.
BOUND_WARN = 1e-4
RULES = ("prob", "percent", "logit", "logits2")
_DUMMY = {"logits2": [[0.0, 0.0]], "logit": [0.0]}


class _Entries:
    """Columns of entries: atom, label, key (score or grid key), weight, cluster, count."""

    COLUMNS = ("atom", "label", "key", "weight", "cluster", "count")

    def __init__(self, atom, label, key, weight, cluster, count):
        self.atom, self.label, self.key = atom, label, key
        self.weight, self.cluster, self.count = weight, cluster, count

    def __len__(self):
        return self.count.size

    def columns(self):
        return [getattr(self, c) for c in self.COLUMNS]

    @classmethod
    def concat(cls, parts):
        cols = []
        for c in cls.COLUMNS:
            arrays = [getattr(p, c) for p in parts]
            cols.append(None if arrays[0] is None else np.concatenate(arrays))
        return cls(*cols)

    def take(self, index):
        return _Entries(*[None if a is None else a[index] for a in self.columns()])

    def collapse(self):
        """Sorted by (atom, label, key, weight, cluster), equal keys summed."""
        if self.increasing():
            return self
        keys = [k for k in (self.cluster, self.weight) if k is not None]
        order = np.lexsort((*keys, self.key, self.label, self.atom))
        e = self.take(order)
        new = np.zeros(len(e), bool)
        if len(e):
            new[0] = True
            for k in (e.atom, e.label, e.key, e.weight, e.cluster):
                if k is not None:
                    new[1:] |= k[1:] != k[:-1]
        starts = np.flatnonzero(new)
        if starts.size == len(e):
            return e
        out = e.take(starts)
        out.count = np.add.reduceat(e.count, starts)
        return out

    def increasing(self) -> bool:
        """Whether the entries are strictly increasing in (atom, label, key, weight,
        cluster): already collapsed (one pass instead of a sort)."""
        if len(self) < 2:
            return True
        later = np.zeros(len(self) - 1, bool)  # entry i + 1 > entry i on the columns so far
        equal = np.ones(len(self) - 1, bool)
        for k in (self.atom, self.label, self.key, self.weight, self.cluster):
            if k is not None:
                a, b = k[:-1], k[1:]
                later |= equal & (b > a)
                equal &= b == a
        return bool(later.all())

    def n_scores(self) -> int:
        """Distinct (atom, label, key) triples (entries differing only by weight or cluster
        count once)."""
        if self.weight is None and self.cluster is None or not len(self):
            return len(self)
        same = (
            (self.atom[1:] == self.atom[:-1])
            & (self.label[1:] == self.label[:-1])
            & (self.key[1:] == self.key[:-1])
        )
        return int(len(self) - same.sum())


def _empty_entries(weighted, clustered, key_dtype):
    return _Entries(
        np.zeros(0, np.int64),
        np.zeros(0, np.int8),
        np.zeros(0, key_dtype),
        np.zeros(0) if weighted else None,
        np.zeros(0, np.int64) if clustered else None,
        np.zeros(0, np.int64),
    )


class AuditState:
    """The sufficient statistics of an audit: filled batch by batch, merged, serialised,
    audited.

    Parameters
    ----------
    attributes : list of str
        The attribute columns every batch brings (e.g. ``["gender", "race"]``).
    scores : {"prob", "percent", "logit", "logits2"}
        The score rule, fixed for every batch (``auto`` needs every row at once).
    threshold : float
        Decision threshold on p(fake).
    pos_label : optional
        The label value meaning fake when labels are not 0/1 (at most two values overall).
    categories : dict of str -> list of str, optional
        Values of an attribute in the order of the report, listed even when no row has them
        (other values are refused); default: values seen, in display order.
    missing_groups : {"error", "drop", "keep"}
        Rows without an attribute value: refused, dropped (counted) or audited as
        ``unknown``.
    drop_nan : bool
        Drop rows with NaN/inf scores (counted) instead of refusing them.
    clustered, weighted : bool
        Whether every batch brings cluster ids (whole clusters are resampled) or sample
        weights.
    exact_cap : int or None
        Distinct (group cell, label, score) entries kept exactly; past it, scores go on the
        grid (None: always exact).
    grid_bits : int
        Resolution of the score grid (8 to 20 bits; each bit halves the cells and the error
        bounds).

    Examples
    --------
    >>> import numpy as np
    >>> from fairaudit import AuditState
    >>> rng = np.random.default_rng(0)
    >>> y, p = rng.integers(0, 2, 400), rng.random(400)
    >>> race = rng.choice(["asian", "white"], 400)
    >>> a = AuditState(["race"]).update(y[:150], p[:150], {"race": race[:150]})
    >>> b = AuditState(["race"]).update(y[150:], p[150:], {"race": race[150:]})
    >>> whole = AuditState.from_bytes(a.merge(b).to_bytes())
    >>> n = whole.audit(n_boot=0).groups.loc[("race", "white"), "n"]
    >>> bool(n == (race == "white").sum())
    True
    """

    def __init__(
        self,
        attributes,
        *,
        scores="prob",
        threshold=DEFAULTS["threshold"],
        pos_label=None,
        categories=None,
        missing_groups=DEFAULTS["missing_groups"],
        drop_nan=DEFAULTS["drop_nan"],
        clustered=False,
        weighted=False,
        exact_cap=EXACT_CAP,
        grid_bits=GRID_BITS,
    ):
        from ._validation import as_scores

        if isinstance(attributes, str) or not all(isinstance(a, str) for a in attributes):
            raise bad("attributes", "a list of attribute names", shown(attributes))
        attributes = list(attributes)
        if not attributes or len(set(attributes)) != len(attributes):
            raise bad("attributes", "one or more distinct names", shown(attributes))
        if scores not in RULES:
            raise bad(
                "scores",
                "a score rule fixed for every batch: " + ", ".join(RULES),
                shown(scores) + (" (auto needs every row at once)" if scores == "auto" else ""),
            )
        o = check_options(threshold=threshold, missing_groups=missing_groups, drop_nan=drop_nan)
        for name, v in (("clustered", clustered), ("weighted", weighted)):
            if not isinstance(v, (bool, np.bool_)):
                raise bad(name, "True or False", shown(v))
        if exact_cap is not None and (
            isinstance(exact_cap, bool) or not isinstance(exact_cap, (int, np.integer))
        ):
            raise bad("exact_cap", "a non-negative integer or None", shown(exact_cap))
        if isinstance(grid_bits, bool) or grid_bits not in range(8, 21):
            raise bad("grid_bits", "an integer from 8 to 20", shown(grid_bits))
        self.attributes = attributes
        self.categories = _check_categories(categories, attributes)
        self.pos_label = pos_label.item() if isinstance(pos_label, np.generic) else pos_label
        self.missing_groups, self.drop_nan = o["missing_groups"], o["drop_nan"]
        self.clustered, self.weighted = bool(clustered), bool(weighted)
        self.exact_cap = None if exact_cap is None else max(0, int(exact_cap))
        self.grid_bits = int(grid_bits)
        _, self.rule = as_scores(_DUMMY.get(scores, [0.5]), scores, o["threshold"])
        self._grid = None
        # values and atoms numbered as they come (canonical numbering on export)
        self._values = [dict() for _ in attributes]
        self._atoms, self._atom_values = {}, []
        self._label_values = set()
        self._counters = {"rows": 0, "dropped_nan": 0, "dropped_missing": 0}
        self._exact = True
        self._main = _empty_entries(self.weighted, self.clustered, np.float64)
        self._parts, self._pending = [], 0
        self._dense = None  # grid counts (atom x label, dense cell) while they fit
        self._lock = threading.Lock()
        self._sparse_grid = self.weighted or self.clustered

    # ================================================================== configuration
    def config(self) -> dict:
        """Everything fixed at creation (JSON-ready); states merge only with equal ones.

        >>> AuditState(["race"]).config()["scores"]
        'prob'
        """
        return {
            "attributes": list(self.attributes),
            "scores": self.rule.name,
            "threshold": self.rule.threshold_probability,
            "pos_label": self.pos_label,
            "categories": self.categories,
            "missing_groups": self.missing_groups,
            "drop_nan": self.drop_nan,
            "clustered": self.clustered,
            "weighted": self.weighted,
            "exact_cap": self.exact_cap,
            "grid_bits": self.grid_bits,
        }

    def empty_like(self) -> AuditState:
        """A state without rows and with the same settings.

        >>> AuditState(["race"], scores="logit").empty_like().n_rows
        0
        """
        c = self.config()
        return AuditState(c.pop("attributes"), **c)

    @property
    def grid(self) -> ScoreGrid:
        """The score grid past the exact regime (built on first use)."""
        if self._grid is None:
            self._grid = ScoreGrid(self.rule, self.grid_bits)
        return self._grid

    @property
    def n_rows(self) -> int:
        """Rows held (rows dropped for NaN scores or missing groups not counted)."""
        return self._counters["rows"]

    @property
    def exact(self) -> bool:
        """Whether scores are still kept exactly (else on the grid)."""
        self._settle()
        return self._exact

    def __reduce__(self):
        # pickled (by multiprocessing, Dask, Spark) through the documented byte format
        return (AuditState.from_bytes, (self.to_bytes(),))

    def __repr__(self) -> str:
        return (
            f"<AuditState rows={self.n_rows} attributes={self.attributes} "
            f"scores={self.rule.name} threshold={self.rule.threshold_probability:g} "
            f"{'exact' if self._exact else 'grid'}>"
        )

    # ================================================================== filling
    def update(self, y_true, y_score, groups, clusters=None, weights=None) -> AuditState:
        """Add one batch of rows; returns the state itself.

        ``y_true``: 0/1 or boolean labels (any two values with ``pos_label``); ``y_score``:
        scores under the state's rule; ``groups``: the state's attribute columns (a
        DataFrame, a dict of columns or a list of named Series); ``clusters`` and
        ``weights``: one value per row when the state is clustered / weighted.

        >>> s = AuditState(["g"]).update([0, 1, 1], [0.2, 0.9, 0.4], {"g": ["a", "b", "b"]})
        >>> s.n_rows
        3
        """
        from ._validation import as_groups, as_scores, as_weights

        ranking, _ = as_scores(y_score, self.rule.name, self.rule.threshold_probability)
        n = ranking.shape[0]
        y = self._labels(y_true, n)
        attrs = as_groups(groups, n, missing=self.missing_groups)
        if sorted(attrs.columns) != sorted(self.attributes):
            raise bad(
                "groups",
                "the state's attributes " + ", ".join(self.attributes),
                "columns " + ", ".join(map(str, attrs.columns)),
            )
        codes, values = [], []
        for a in self.attributes:
            cat = attrs[a].array
            codes.append(np.asarray(cat.codes, np.int64))
            values.append([str(v) for v in cat.categories])
        w = None
        if self.weighted or weights is not None:
            self._check_given("weights", "weighted", weights)
            w = as_weights(weights, n, argument="weights")
        cl = self._clusters(clusters, n)
        self._add_columns(ranking, y, codes, values, w, cl)
        return self

    def _check_given(self, name, flag, value):
        if getattr(self, flag) and value is None:
            raise bad(name, f"one value per row (the state is {flag})", "none")
        if not getattr(self, flag) and value is not None:
            raise bad(name, f"none (the state was made with {flag}=False)", "values")

    def _clusters(self, clusters, n):
        if not (self.clustered or clusters is not None):
            return None
        self._check_given("clusters", "clustered", clusters)
        arr = clusters.to_numpy() if isinstance(clusters, pd.Series) else np.asarray(clusters)
        if arr.ndim != 1 or arr.shape[0] != n:
            raise bad("clusters", f"one cluster id per row ({n})", f"shape {arr.shape}")
        if pd.isna(arr).any():
            raise bad("clusters", "a cluster id on every row", f"{int(pd.isna(arr).sum())} missing")
        return arr.astype(np.int64) if arr.dtype.kind in "biu" else arr.astype(str)

    def _labels(self, y_true, n):
        """0/1 labels; with ``pos_label``, the values seen are kept (two at most overall)."""
        from ._validation import _missing_mask, _parse_pos_label, _typed_labels, as_labels

        if self.pos_label is None:
            return as_labels(y_true, n)
        arr = y_true.to_numpy() if isinstance(y_true, (pd.Series, pd.DataFrame)) else y_true
        arr = np.asarray(arr)
        if arr.ndim != 1 or arr.shape[0] != n:
            raise bad("y_true", f"{n} labels (as many as the scores)", f"shape {arr.shape}")
        if _missing_mask(arr).any():
            raise bad("y_true", "a label on every row", f"{int(_missing_mask(arr).sum())} missing")
        arr = _typed_labels(arr)
        target = _parse_pos_label(self.pos_label, arr, opt("pos_label"))
        self._label_values |= {str(v) for v in np.unique(arr)}
        if len(self._label_values) > 2:
            raise bad(
                "y_true",
                f"two label values overall (the positive {shown(self.pos_label)} and one other)",
                f"values {sorted(self._label_values)[:6]}",
            )
        return (arr == target).astype(np.int8)

    def _add_columns(self, ranking, y, codes, values, w=None, cl=None):
        """Rows with validated scores and labels and per-attribute ``codes`` into ``values``
        (-1: missing): drop what the state's policies drop, then add the rest."""
        self._commit(self._prepare(ranking, y, codes, values, w, cl))

    def _prepare(self, ranking, y, codes, values, w=None, cl=None) -> dict:
        """The part of adding a batch that changes nothing (a reader runs it on worker
        threads): the rows the policies drop, the batch's own atom keys and, while the state
        counts on the dense grid, every row's cell."""
        n = y.shape[0]
        keep = np.ones(n, bool)
        n_nan = 0
        # one pass when every score is finite (the sum of finite scores is, short of overflow)
        finite = (
            True if np.isfinite(np.add.reduce(ranking, dtype=np.float64)) else np.isfinite(ranking)
        )
        if finite is not True and not finite.all():
            if not self.drop_nan:
                first = np.flatnonzero(~finite)[:5].tolist()
                raise bad(
                    "y_score",
                    f"finite values (or {opt('drop_nan', True)} to drop those rows)",
                    f"{int((~finite).sum())} NaN/inf values, first at rows {first}",
                )
            keep &= finite
            n_nan = int((~finite).sum())
        local, texts, n_missing = [], [], 0
        for a, c, vals in zip(self.attributes, codes, values):
            vals = [str(v) for v in vals]
            if c.size and c.min() < 0:
                missing = c < 0
                if self.missing_groups == "error":
                    from ._groups import _missing

                    _missing(a, missing)
                if self.missing_groups == "keep":
                    vals = vals + [UNKNOWN]
                    c = np.where(missing, len(vals) - 1, c)
                else:
                    n_missing += int((missing & keep).sum())
                    keep &= ~missing
            texts.append(vals)
            local.append(c)
        if not keep.all():
            ranking, y = ranking[keep], y[keep]
            local = [c[keep] for c in local]
            w = None if w is None else w[keep]
            cl = None if cl is None else cl[keep]
        out = dict(
            ranking=ranking,
            y=y.astype(np.int8, copy=False),
            w=w,
            cl=cl,
            texts=texts,
            n_nan=n_nan,
            n_missing=n_missing,
            cells=None,
        )
        with self._lock:  # values and atoms are numbered as they come, whatever the thread
            luts = [[self._value(j, v) for v in vals] for j, vals in enumerate(texts)]
            if y.size:
                radix = [max(len(v), 1) for v in texts]
                keys, inverse = _local_atoms(local, radix)
                ids = self._register_atoms(keys, radix, luts)
        out["luts"] = luts
        if not y.size:
            return out
        out["atom"] = np.take(ids, inverse)
        if not self._exact and self._dense is not None and not self._sparse_grid:
            # every row's index in the dense counts: atom block, label, cell
            n_atoms = len(self._atom_values)
            index = np.int32 if n_atoms * 2 * self.grid.n_dense < 2**31 else np.int64
            flat = out["atom"].astype(index) * index(2 * self.grid.n_dense)
            flat += out["y"].astype(index) * index(self.grid.n_dense)
            flat += self.grid.dense(ranking)
            out["cells"] = flat
        return out

    def _commit(self, b):
        """Add a prepared batch (:meth:`_prepare`)."""
        self._counters["dropped_nan"] += b["n_nan"]
        self._counters["dropped_missing"] += b["n_missing"]
        if not b["y"].size:
            return
        y, atom = b["y"], b["atom"]
        if b["cells"] is not None and not self._exact and self._use_dense(atom):
            self._counters["rows"] += int(y.size)
            np.add.at(self._dense.reshape(-1), b["cells"], 1)
        else:
            self._add_rows(b["ranking"], y, atom, b["w"], b["cl"])

    def _value(self, j, v):
        values = self._values[j]
        if v not in values:
            declared = self.categories.get(self.attributes[j])
            if declared is not None and v not in declared and v != UNKNOWN:
                raise bad(
                    f"attribute '{self.attributes[j]}'",
                    "one of the declared categories " + ", ".join(declared),
                    shown(v),
                )
            values[v] = len(values)
        return values[v]

    def _atom_of(self, codes, luts=None):
        """Atom number of every row from its attribute value ``codes`` (into ``luts``, each
        code's value number in the state; None: the codes are value numbers)."""
        if luts is None:
            luts = [range(len(v)) for v in self._values]
        radix = [max(len(lut), 1) for lut in luts]
        keys, inverse = _local_atoms(codes, radix)
        return self._register_atoms(keys, radix, luts)[inverse]

    def _register_atoms(self, keys, radix, luts):
        """Atom numbers of mixed-radix ``keys`` of batch codes (new atoms numbered on)."""
        ids = np.empty(keys.size, np.int32 if len(self._atoms) + keys.size < 2**31 else np.int64)
        for i, k in enumerate(keys.tolist()):
            combo = []
            for lut, r in zip(reversed(luts), reversed(radix)):
                k, v = divmod(k, r)
                combo.append(lut[v])
            combo = tuple(reversed(combo))
            if combo not in self._atoms:
                self._atoms[combo] = len(self._atom_values)
                self._atom_values.append(combo)
            ids[i] = self._atoms[combo]
        return ids

    def _add_rows(self, ranking, y, atom, w, cl):
        self._counters["rows"] += int(y.size)
        if self._exact:
            part = _batch_entries(ranking, y, atom, w, cl, self.exact_cap)
            if part is not None:
                self._parts.append(part)
                self._pending += len(part)
                self._maybe_compact()
                return
            # this batch alone has more distinct scores than the cap: on the grid from now
            self._settle()
            if self._exact:
                self._to_grid()
        self._add_grid(ranking, y, atom, w, cl)

    # ------------------------------------------------------------------ regimes
    def _maybe_compact(self):
        if self._pending <= max(COMPACT_MIN, len(self._main)):
            return
        if self.exact_cap is not None and not (self.weighted or self.clustered):
            # past the cap, the entries go on the grid unsorted (counting is cheaper)
            e = _Entries.concat([self._main, *self._parts])
            if _distinct_scores(e) > self.exact_cap:
                self._parts, self._pending = [], 0
                self._main = e
                self._to_grid()
                return
        self._compact()
        self._check_cap()

    def _compact(self):
        if self._parts:
            self._main = _Entries.concat([self._main, *self._parts]).collapse()
            self._parts, self._pending = [], 0

    def _check_cap(self):
        if self._exact and self.exact_cap is not None:
            if self._main.n_scores() > self.exact_cap:
                self._to_grid()

    def _to_grid(self):
        """Scores to their grid cells (the same as if every row had come on the grid)."""
        e = self._main
        self._exact = False
        self._main = _empty_entries(self.weighted, self.clustered, np.int64)
        if len(e):
            self._add_entries_grid(
                e.atom, e.label, self.grid.keys(e.key), e.weight, e.cluster, e.count
            )

    def _add_grid(self, ranking, y, atom, w, cl):
        if self._use_dense(atom):
            index = np.int32 if self._dense.size < 2**31 else np.int64
            flat = atom.astype(index) * index(2 * self.grid.n_dense)
            flat += y.astype(index) * index(self.grid.n_dense)
            flat += self.grid.dense(ranking)
            np.add.at(self._dense.reshape(-1), flat, 1)  # 32-bit indices: several times faster
            return
        e = _Entries(atom, y, self.grid.keys(ranking), w, cl, np.ones(y.size, np.int64))
        self._parts.append(e.collapse())
        self._pending += len(self._parts[-1])
        if self._pending > max(COMPACT_MIN, len(self._main)):
            self._compact()

    def _add_entries_grid(self, atom, label, keys, weight, cluster, count):
        if self._use_dense(atom):
            flat = (atom * 2 + label) * self.grid.n_dense + self.grid.dense_of_keys(keys)
            np.add.at(self._dense.reshape(-1), flat, count)
            return
        self._parts.append(_Entries(atom, label, keys, weight, cluster, count).collapse())
        self._pending += len(self._parts[-1])
        self._compact()

    def _use_dense(self, atom):
        """Dense grid counts for the atoms so far, while they fit (else sparse from now)."""
        if self._sparse_grid:
            return False
        n_atoms = len(self._atom_values)
        have = 0 if self._dense is None else self._dense.shape[0] // 2
        if n_atoms <= have:
            return True
        if n_atoms * 2 * self.grid.n_dense * 8 > DENSE_LIMIT:
            self._sparse_grid = True
            if self._dense is not None:
                self._main = _Entries.concat([self._main, self._dense_entries()]).collapse()
                self._dense = None
            return False
        room = max(n_atoms, min(2 * have, DENSE_LIMIT // (2 * self.grid.n_dense * 8)))
        grown = np.zeros((2 * room, self.grid.n_dense), np.int64)  # room to grow, in the limit
        if self._dense is not None:
            grown[: self._dense.shape[0]] = self._dense
        self._dense = grown
        if len(self._main):  # entries from before (a state read back or merged): dense now
            e, self._main = self._main, _empty_entries(False, False, np.int64)
            flat = (e.atom * 2 + e.label) * self.grid.n_dense + self.grid.dense_of_keys(e.key)
            np.add.at(self._dense.reshape(-1), flat, e.count)
        return True

    def _dense_entries(self):
        """The dense grid counts as entries, in order of (atom, label, key)."""
        order = self.grid.dense_in_key_order
        counts = np.take(self._dense, order, axis=1)  # C-ordered: rows stay atom x label
        flat = np.flatnonzero(counts)
        row, index = np.divmod(flat, counts.shape[1])
        return _Entries(
            (row // 2).astype(np.int64),
            (row % 2).astype(np.int8),
            self.grid.key_of_dense[order[index]],
            None,
            None,
            counts.reshape(-1)[flat],
        )

    def _settle(self):
        """Everything compacted and the regime decided on every row held."""
        self._compact()
        self._check_cap()

    def _entries(self) -> _Entries:
        self._settle()
        if self._dense is None:
            return self._main
        return _Entries.concat([self._main, self._dense_entries()]).collapse()

    # ================================================================== merging
    def merge(self, other) -> AuditState:
        """A new state holding the rows of both (neither changes). Associative and
        commutative: any split of the rows, merged in any order, gives the same state.

        >>> a = AuditState(["g"]).update([0, 1], [0.2, 0.9], {"g": ["a", "b"]})
        >>> b = AuditState(["g"]).update([1, 0], [0.7, 0.1], {"g": ["b", "c"]})
        >>> a.merge(b).to_bytes() == b.merge(a).to_bytes()
        True
        """
        out = self.empty_like()
        out._absorb(self)
        out._absorb(_as_state(other, "other"))
        return out

    @classmethod
    def merge_all(cls, parts) -> AuditState:
        """One state from many: states or their bytes (e.g. gathered from every process).

        >>> parts = [AuditState(["g"]).update([i % 2], [0.1 * i], {"g": ["a"]}).to_bytes()
        ...          for i in range(4)]
        >>> AuditState.merge_all(parts).n_rows
        4
        """
        states = [_as_state(p, f"parts[{i}]") for i, p in enumerate(parts)]
        if not states:
            raise bad("parts", "at least one state (or its bytes)", "none")
        out = states[0].empty_like()
        for s in states:
            out._absorb(s)
        return out

    def _absorb(self, other: AuditState):
        mine, theirs = self.config(), other.config()
        if mine != theirs:
            differ = [k for k in mine if mine[k] != theirs[k]]
            raise bad(
                "other",
                "a state made with the same settings",
                ", ".join(f"{k} {shown(theirs[k])} (here {shown(mine[k])})" for k in differ),
            )
        c = other._canonical()
        for k, v in c["counters"].items():
            self._counters[k] += v
        self._label_values |= set(c["label_values"] or [])
        maps = [
            np.array([self._value(j, v) for v in vals] + [-1], np.int64)
            for j, vals in enumerate(c["values"])
        ]
        e = c["entries"]
        if not len(e):
            return
        cols = [m[c["atoms"][:, j]] for j, m in enumerate(maps)]
        atom_ids = self._atom_of([col.astype(np.int64) for col in cols])  # value numbers
        cluster = None if e.cluster is None else c["cluster_ids"][e.cluster]
        atom = atom_ids[e.atom]
        if c["exact"] and self._exact:
            self._parts.append(_Entries(atom, e.label, e.key, e.weight, cluster, e.count))
            self._pending += len(e)
            self._maybe_compact()
            return
        if self._exact:
            self._settle()
            if self._exact:
                self._to_grid()
        keys = self.grid.keys(e.key) if c["exact"] else e.key
        self._add_entries_grid(atom, e.label, keys, e.weight, cluster, e.count)

    # ================================================================== canonical form
    def _canonical(self) -> dict:
        """Everything the state holds, numbered and ordered independently of how it was
        filled: values in display order, atoms in order of their values, entries in order
        of (atom, label, key, weight, cluster), clusters in order of their ids."""
        e = self._entries()
        values, remap = [], []
        for j, a in enumerate(self.attributes):
            seen = list(self._values[j])
            declared = self.categories.get(a)
            if declared is None:
                order = _value_order(a, seen)
            else:
                order = list(declared) + ([UNKNOWN] if UNKNOWN in seen else [])
            values.append(order)
            remap.append(np.array([order.index(v) for v in seen] + [-1], np.int64))
        atoms = np.array(
            [[remap[j][v] for j, v in enumerate(combo)] for combo in self._atom_values],
            dtype=np.int64,
        ).reshape(len(self._atom_values), len(self.attributes))
        order = np.lexsort(atoms.T[::-1]) if len(atoms) else np.zeros(0, np.int64)
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order))
        cluster_ids = None
        cluster = e.cluster
        if cluster is not None:
            cluster, cluster_ids = canonical_ids(cluster) if len(e) else (cluster, cluster[:0])
        canon = _Entries(
            rank[e.atom] if len(e) else e.atom, e.label, e.key, e.weight, cluster, e.count
        )
        if cluster is None and len(e) and e.increasing():
            # atoms renumbered: entries move by atom only (a stable sort of small integers)
            canon = canon.take(np.argsort(canon.atom, kind="stable"))
        canon = canon.collapse()
        return {
            "values": values,
            "atoms": atoms[order],
            "entries": canon,
            "cluster_ids": cluster_ids,
            "exact": self._exact,
            "counters": dict(self._counters),
            "label_values": sorted(self._label_values) if self.pos_label is not None else None,
        }

    # ================================================================== serialisation
    def to_bytes(self) -> bytes:
        """The state in the versioned, pickle-free format of the README (equal states give
        equal bytes).

        >>> AuditState(["g"]).update([0, 1], [0.3, 0.8], {"g": ["a", "b"]}).to_bytes()[:16]
        b'FAIRAUDIT-STATE\\n'
        """
        c = self._canonical()
        e = c["entries"]
        arrays = {
            "atoms": c["atoms"].astype("<i4"),
            "atom": e.atom.astype("<i4"),
            "label": e.label.astype("|i1"),
            "key": e.key.astype("<f8" if c["exact"] else "<i8"),
            "count": e.count.astype("<i8"),
        }
        if e.weight is not None:
            arrays["weight"] = e.weight.astype("<f8")
        ids_kind = None
        if e.cluster is not None:
            arrays["cluster"] = e.cluster.astype("<i8")
            ids = c["cluster_ids"]
            if ids.dtype.kind in "iu":
                ids_kind = "int64"
                arrays["cluster_ids"] = ids.astype("<i8")
            else:
                ids_kind = "text"
                blobs = [str(v).encode("utf-8") for v in ids]
                arrays["cluster_text"] = np.frombuffer(b"".join(blobs), dtype="|u1")
                arrays["cluster_text_ends"] = np.cumsum([len(b) for b in blobs], dtype="<i8")
        header = {
            "format": "fairaudit-state",
            "version": FORMAT_VERSION,
            "config": self.config(),
            "regime": "exact" if c["exact"] else "grid",
            "values": c["values"],
            "label_values": c["label_values"],
            "counters": c["counters"],
            "cluster_ids": ids_kind,
            "arrays": [],
        }
        offset, blobs = 0, []
        for name, arr in arrays.items():
            raw = np.ascontiguousarray(arr).tobytes()
            header["arrays"].append(
                {
                    "name": name,
                    "dtype": arr.dtype.str,
                    "shape": list(arr.shape),
                    "offset": offset,
                    "nbytes": len(raw),
                }
            )
            blobs.append(raw + b"\0" * (-len(raw) % 8))
            offset += len(blobs[-1])
        text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
        text += b" " * (-(len(MAGIC) + 4 + len(text)) % 8)
        return MAGIC + np.uint32(len(text)).astype("<u4").tobytes() + text + b"".join(blobs)

    @classmethod
    def from_bytes(cls, data) -> AuditState:
        """A state from :meth:`to_bytes` output (bytes, bytearray, memoryview or a uint8
        array); anything else is refused with what was found.

        >>> s = AuditState(["g"]).update([0, 1], [0.3, 0.8], {"g": ["a", "b"]})
        >>> AuditState.from_bytes(s.to_bytes()).n_rows
        2
        """
        return _read_state(cls, data)

    # ================================================================== the audit
    def audit(
        self,
        *,
        reference=None,
        n_boot=DEFAULTS["n_boot"],
        ci=DEFAULTS["ci"],
        seed=DEFAULTS["seed"],
        bootstrap=DEFAULTS["bootstrap"],
        ci_method=DEFAULTS["ci_method"],
        n_perm=DEFAULTS["n_perm"],
        allow_perfect_scores=DEFAULTS["allow_perfect_scores"],
        min_count=DEFAULTS["min_count"],
        max_bins=DEFAULTS["max_bins"],
        max_order=None,
        memory_budget=1024,
        skip_small_groups=False,
        chunk_size=None,
        metrics=None,
        progress=False,
        gap_ci="max-t",
        p_adjust="maxt",
        tolerance=None,
        class_names=None,
        dataset=None,
        provenance=None,
    ):
        """The :class:`~fairaudit.Audit` of the rows held, with the options of
        :func:`fairaudit.audit` (the input options were fixed at creation). The same rows
        and options give the same numbers as :func:`fairaudit.audit` while the scores are
        exact; ``config["state"]`` says which regime held and bounds the grid's errors.

        >>> rng = np.random.default_rng(1)
        >>> s = AuditState(["g"]).update(rng.integers(0, 2, 300), rng.random(300),
        ...                              {"g": rng.choice(["a", "b"], 300)})
        >>> r = s.audit(n_boot=20)
        >>> r.config["state"]["scores"], r.config["n_boot"]
        ('exact', 20)
        """
        from ._audit import _check_metrics, _class_names, _run_audit
        from ._bootstrap import check_engine_options

        check_engine_options(memory_budget, max_order, skip_small_groups)
        opts = check_options(
            n_boot=n_boot,
            ci=ci,
            seed=seed,
            bootstrap=bootstrap,
            ci_method=ci_method,
            n_perm=n_perm,
            allow_perfect_scores=allow_perfect_scores,
            min_count=min_count,
            max_bins=max_bins,
            chunk_size=chunk_size,
        )
        opts.update(missing_groups=self.missing_groups)
        metrics = _check_metrics(metrics)
        scheme, reason = resolve_bootstrap(opts["bootstrap"], self.clustered)
        prep = self.prepared(max_order, opts["allow_perfect_scores"])
        grid = None if self._exact else self.grid
        result = _run_audit(
            prep,
            opts,
            metrics,
            scheme,
            reason,
            reference=reference,
            memory_budget=memory_budget,
            skip_small_groups=skip_small_groups,
            progress=progress,
            gap_ci=gap_ci,
            p_adjust=p_adjust,
            tolerance=tolerance,
            class_names=_class_names(class_names, self.pos_label),
            dataset=dataset,
            provenance=provenance,
            point_extra=None
            if grid is None
            else (lambda v, p, n: grid_error_bounds(grid, v, p, n)),
        )
        bounds = result.extras.pop("point_extra", None)
        info, warn = self._state_config(prep, bounds)
        config = {**result.config, "state": info}
        import dataclasses

        return dataclasses.replace(result, config=config, warnings=result.warnings + warn)

    def prepared(self, max_order=None, allow_perfect_scores=False):
        """The entries as the engine's :class:`~fairaudit._audit.Prepared` input.

        >>> s = AuditState(["g"]).update([0, 1, 1, 0], [0.2, 0.9, 0.9, 0.9],
        ...                              {"g": ["a", "b", "b", "a"]})
        >>> s.prepared().data.m.tolist()  # two rows share score, group and label
        [1, 1, 2]
        """
        from ._audit import Prepared
        from ._validation import check_scores_not_labels

        c = self._canonical()
        e = c["entries"]
        if not len(e):
            raise bad("state", "at least one row (update() it first)", "none")
        if self.pos_label is not None and str(self.pos_label) not in c["label_values"]:
            raise bad(
                opt("pos_label"),
                "a value that occurs in the labels",
                f"{shown(self.pos_label)} (labels hold {shown(c['label_values'])})",
            )
        frame = pd.DataFrame(
            {
                a: pd.Categorical.from_codes(c["atoms"][:, j], categories=c["values"][j])
                for j, a in enumerate(self.attributes)
            }
        )
        structure = build_groups(frame, max_order=max_order)
        if not np.array_equal(structure.atom, np.arange(len(frame))):
            raise AssertionError("atoms out of their canonical order")  # cannot happen
        score = e.key if c["exact"] else self.grid.representative(e.key)
        data = sort_rows(
            score,
            e.label,
            np.ones(len(e)) if e.weight is None else e.weight,
            e.atom,
            e.cluster,
            m=e.count,
        )
        check_scores_not_labels(data.score, data.y, allow=allow_perfect_scores)
        return Prepared(
            data,
            structure,
            self.rule,
            c["counters"]["dropped_nan"],
            data.cluster,
            weighted=self.weighted,
            attrs=None,
            n_dropped_missing_groups=c["counters"]["dropped_missing"],
        )

    def _state_config(self, prep, bounds=None):
        """config["state"] and warnings: the regime, and on the grid the error bounds
        (``bounds``: metric_error_bound_extra -> per group, from the audit's own pass)."""
        info = {
            "rows": prep.data.n_rows,
            "entries": int(prep.data.score.size),
            "scores": "exact" if self._exact else "grid",
            "exact_cap": self.exact_cap,
            "grid_bits": self.grid_bits,
        }
        if self._exact or not bounds:
            return info, ()
        s = prep.structure
        names = [f"{f}={g}" for f, g in zip(s.group_family, s.group_name)] + ["overall"]
        info["error_bound"], info["error_bound_group"], warn = {}, {}, []
        for m in ("auc", "eer", "average_precision", "ece"):
            b = bounds[f"{m}_error_bound_extra"]
            if np.isfinite(b).any():
                i = int(np.nanargmax(b))
                info["error_bound"][m], info["error_bound_group"][m] = float(b[i]), names[i]
                if b[i] > BOUND_WARN:
                    warn.append(
                        f"scores on the grid ({self.grid_bits} bits): {m} of {names[i]} may be "
                        f"off by up to {b[i]:.2g} (a state with more grid_bits, or a larger "
                        "exact_cap, resolves finer)"
                    )
        return info, tuple(warn)


# ---------------------------------------------------------------------------- helpers
def grid_error_bounds(grid, values, pos, neg) -> dict:
    """Largest possible error of a group's metrics computed on grid cells instead of scores.

    ``values``: the cells' representative scores (ascending), ``pos``/``neg``: the group's
    (weighted) fakes and reals per cell. AUC: pairs of a fake and a real in one cell count as
    ties, so the error is at most half their share of all pairs. EER: the crossing of FPR and
    FNR lies, exactly and on the grid, inside the box of the ROC segment of one cell, so the
    error is at most the smaller of that cell's shares of reals and fakes. Average
    precision: a fake's precision moves by at most max(fakes, reals) of its cell over the
    rows at or above the cell. Calibration: every row's p(fake) moves by at most its cell's
    width in p(fake).

    >>> from fairaudit._validation import as_scores
    >>> g = ScoreGrid(as_scores([0.5], "prob")[1], 14)
    >>> b = grid_error_bounds(g, np.array([0.2, 0.8]), np.array([1.0, 3.0]), np.array([2.0, 1]))
    >>> round(b["auc_error_bound_extra"], 4), b["eer_error_bound_extra"]
    (0.2083, 0.3333333333333333)
    """
    P, N = float(pos.sum()), float(neg.sum())
    out = {f"{m}_error_bound_extra": np.nan for m in ("auc", "eer", "average_precision", "ece")}
    if P + N > 0:
        width = grid.probability_width(grid.keys(values))
        out["ece_error_bound_extra"] = float(width[(pos + neg) > 0].max(initial=0.0))
    if P > 0:
        tp_at = np.cumsum(pos[::-1])[::-1]
        fp_at = np.cumsum(neg[::-1])[::-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            term = np.where(pos > 0, pos * np.maximum(pos, neg) / (tp_at + fp_at), 0.0)
        out["average_precision_error_bound_extra"] = float(term.sum() / P)
        if N > 0:
            out["auc_error_bound_extra"] = 0.5 * float(np.sum(pos * neg)) / (P * N)
            d_at = fp_at / N + tp_at / P - 1.0  # FPR - FNR with every cell from k up fake
            d_above = np.r_[d_at[1:], -1.0]
            cross = (d_above <= 0) & (d_at >= 0)
            box = np.minimum(neg / N, pos / P)[cross]
            out["eer_error_bound_extra"] = float(box.max(initial=0.0))
    return out


def _batch_entries(ranking, y, atom, w, cl, cap=None):
    """One batch's rows as exact entries (unsorted; hashing first, cheap for few scores);
    None when the batch alone has more distinct scores than ``cap``."""
    key = np.asarray(ranking, dtype=np.float64) + 0.0  # -0.0 and 0.0 are one score
    codes, uniques = pd.factorize(key)
    if cap is not None and uniques.size > cap:
        return None
    if w is not None or cl is not None:
        return _Entries(atom, y, key, w, cl, np.ones(key.size, np.int64)).collapse()
    width = 2 * (int(atom.max()) + 1)
    flat = codes.astype(np.int64) * width + atom * 2 + y
    if uniques.size * width <= 4 * key.size + 1024:
        counts = np.bincount(flat, minlength=uniques.size * width)
        flat = np.flatnonzero(counts)
        counts = counts[flat]
    else:
        flat, counts = np.unique(flat, return_counts=True)
    cell = flat % width
    return _Entries(
        cell // 2,
        (cell % 2).astype(np.int8),
        np.asarray(uniques)[flat // width],
        None,
        None,
        counts.astype(np.int64),
    )


def _local_atoms(codes, radix):
    """Distinct mixed-radix keys of a batch's attribute codes and each row's key number."""
    size = int(np.prod(radix, dtype=float))
    dtype = np.int8 if size <= 127 else np.int16 if size < 2**15 else np.int32
    key = codes[0].astype(dtype if size < 2**31 else np.int64)
    for c, r in zip(codes[1:], radix[1:]):
        key *= r
        key += c
    if size <= 32 and key.dtype == np.int8:  # a few keys: one cheap test each
        keys = np.array([k for k in range(size) if (key == k).any()], np.int64)
        number = np.zeros(size, np.int32)
        number[keys] = np.arange(keys.size)
        return keys, np.take(number, key)
    if size <= 4 * key.size + 4096:  # a small key space: counting, not sorting
        keys = np.flatnonzero(np.bincount(key, minlength=size))
        number = np.zeros(size, np.int32)
        number[keys] = np.arange(keys.size)
        return keys, number[key]
    keys, inverse = np.unique(key, return_inverse=True)
    return keys, inverse.ravel()


def _distinct_scores(e: _Entries) -> int:
    """Distinct (atom, label, key) of unsorted entries, by hashing."""
    if not len(e):
        return 0
    codes, _ = pd.factorize(e.key)
    return int(
        pd.unique(codes.astype(np.int64) * (2 * int(e.atom.max()) + 2) + e.atom * 2 + e.label).size
    )


def _check_categories(categories, attributes) -> dict:
    if categories is None:
        return {}
    if not isinstance(categories, dict) or not set(categories) <= set(attributes):
        raise bad("categories", "a dict of attribute name -> list of values", shown(categories))
    out = {}
    for a, vals in categories.items():
        vals = [str(v) for v in vals]
        if not vals or len(set(vals)) != len(vals):
            raise bad(f"categories['{a}']", "distinct values", shown(vals))
        out[a] = vals
    return out


def _as_state(part, argument) -> AuditState:
    if isinstance(part, AuditState):
        return part
    if isinstance(part, (bytes, bytearray, memoryview, np.ndarray)):
        return AuditState.from_bytes(part)
    raise bad(argument, "an AuditState or its bytes", type(part).__name__)


def _read_state(cls, data) -> AuditState:
    """Parse and check the format of :meth:`AuditState.to_bytes`."""
    what = "the bytes of AuditState.to_bytes()"
    if isinstance(data, np.ndarray):
        data = data.astype(np.uint8, copy=False).tobytes()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise bad("data", what, type(data).__name__)
    buf = bytes(data)
    if buf[: len(MAGIC)] != MAGIC or len(buf) < len(MAGIC) + 4:
        raise bad("data", what, f"{len(buf)} bytes without the fairaudit-state signature")
    size = int(np.frombuffer(buf, "<u4", 1, len(MAGIC))[0])
    start = len(MAGIC) + 4
    try:
        header = json.loads(buf[start : start + size].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad("data", what, f"an unreadable header ({exc})") from None
    if header.get("format") != "fairaudit-state" or header.get("version") != FORMAT_VERSION:
        raise bad(
            "data",
            f"format fairaudit-state version {FORMAT_VERSION}",
            f"{header.get('format')} version {header.get('version')}",
        )
    body = start + size
    arrays = {}
    for spec in header["arrays"]:
        dtype = np.dtype(spec["dtype"])
        if dtype.kind not in "iuf" or dtype.hasobject:
            raise bad("data", "numeric arrays", f"dtype {spec['dtype']}")
        lo = body + int(spec["offset"])
        if lo + int(spec["nbytes"]) > len(buf):
            raise bad("data", what, f"a truncated array '{spec['name']}'")
        count = int(np.prod(spec["shape"], dtype=np.int64))
        arrays[spec["name"]] = np.frombuffer(buf, dtype, count, lo).reshape(spec["shape"])
    cfg = dict(header["config"])
    state = cls(cfg.pop("attributes"), **cfg)
    exact = header["regime"] == "exact"
    state._exact = exact
    state._values = [{v: i for i, v in enumerate(vals)} for vals in header["values"]]
    atoms = arrays["atoms"].astype(np.int64)
    state._atom_values = [tuple(row) for row in atoms.tolist()]
    state._atoms = {combo: i for i, combo in enumerate(state._atom_values)}
    state._counters = {k: int(v) for k, v in header["counters"].items()}
    state._label_values = set(header["label_values"] or [])
    cluster = None
    if "cluster" in arrays:
        if header["cluster_ids"] == "int64":
            ids = arrays["cluster_ids"].astype(np.int64)
        else:
            text = arrays["cluster_text"].tobytes()
            ends = arrays["cluster_text_ends"].astype(np.int64)
            starts = np.r_[0, ends[:-1]]
            ids = np.array([text[a:b].decode("utf-8") for a, b in zip(starts, ends)], dtype=str)
        cluster = ids[arrays["cluster"].astype(np.int64)]
    e = _Entries(
        arrays["atom"].astype(np.int64),
        arrays["label"].astype(np.int8),
        arrays["key"].astype(np.float64 if exact else np.int64),
        arrays["weight"].astype(np.float64) if "weight" in arrays else None,
        cluster,
        arrays["count"].astype(np.int64),
    )
    if len(e) and (
        (e.count <= 0).any()
        or e.atom.min() < 0
        or e.atom.max() >= len(atoms)
        or not np.isin(e.label, (0, 1)).all()
    ):
        raise bad("data", what, "entries out of range (a damaged state)")
    state._main = e
    return state


def scores_words(config) -> str | None:
    """How an audit from a state on the grid made its point estimates, in words (None for
    exact scores), for the report's "how the numbers were made".

    >>> scores_words({"state": {"scores": "grid", "grid_bits": 14, "error_bound": {"auc": 3e-6}}})
    'point estimates: scores on the fixed grid of an AuditState (14 bits): counts and rates at \
the threshold are exact; the largest possible errors of the others, computed on the data: auc \
3e-06'
    """
    state = config.get("state") or {}
    if state.get("scores") != "grid":
        return None
    bounds = ", ".join(f"{m} {v:.2g}" for m, v in (state.get("error_bound") or {}).items())
    return (
        f"point estimates: scores on the fixed grid of an AuditState ({state.get('grid_bits')} "
        "bits): counts and rates at the threshold are exact; the largest possible errors of "
        f"the others, computed on the data: {bounds}"
    )
