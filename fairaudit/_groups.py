"""Groups: attribute families, their intersections, and the atoms they are made of.

Rows are partitioned once into *atoms*: the observed combinations of all attribute values
(e.g. ``male+asian``). Every group of every family (``gender``: male, female; ``race``;
``gender+race``) is a union of atoms, recorded in a boolean membership matrix. All statistics
are gathered per atom and summed per group, so nothing is re-read per family or replicate.
Intersection cells that no row falls into are still listed (with n = 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations, product

import numpy as np
import pandas as pd

from ._errors import bad, opt

__all__ = ["GroupStructure", "build_groups", "KNOWN_ORDERS"]

#: Display order of the seed schema's values; other values follow in sorted order.
KNOWN_ORDERS = {"gender": ["male", "female"], "race": ["asian", "white", "black", "others"]}

SEP = "+"
#: The group of rows without a value, with ``missing_groups="keep"``.
UNKNOWN = "unknown"
#: The whole set's name in result tables (family and group); no attribute may take it.
OVERALL = "overall"


@dataclass(frozen=True)
class GroupStructure:
    """The partition of rows into atoms and the groups built from them.

    Attributes
    ----------
    attributes : list of str
        Attribute column names, in order.
    families : list of str
        Family names: each attribute, then the intersections (``gender+race``).
    group_family, group_name : list of str
        Family and name of each group (the overall set is not a group).
    membership : ndarray of bool, shape (n_groups, n_atoms)
        ``membership[g, a]``: atom ``a`` belongs to group ``g``.
    atom : ndarray of int, shape (n_rows,)
        Atom index of each row.
    atom_names : list of str
        ``male+asian``-style name of each atom.
    """

    attributes: list
    families: list
    group_family: list
    group_name: list
    membership: np.ndarray
    atom: np.ndarray
    atom_names: list

    @property
    def n_groups(self) -> int:
        return len(self.group_name)

    @property
    def n_atoms(self) -> int:
        return len(self.atom_names)

    def family_slice(self, family: str) -> np.ndarray:
        """Indices of the groups of ``family``, in display order."""
        return np.array([i for i, f in enumerate(self.group_family) if f == family], dtype=int)


def factorize(values) -> tuple:
    """Codes and distinct values (as text) of one attribute column, in order of appearance.

    Fixed-width numpy text is hashed as integers (a polynomial hash of each row's code points),
    then checked against the original strings, so the result is exact; on a hash collision it
    falls back to hashing Python objects.
    """
    arr = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if arr.dtype.kind == "U" and arr.size and arr.dtype.itemsize:
        width = arr.dtype.itemsize // 4
        points = np.ascontiguousarray(arr).view(np.uint32).reshape(arr.size, width)
        key = np.zeros(arr.size, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(width):  # polynomial hash of the code points, one column at a time
                key *= np.uint64(1_000_003)
                key += points[:, j]
        codes, _ = pd.factorize(key.view(np.int64))
        # codes number values by first appearance: code k first occurs where the running
        # maximum of the codes steps up to k
        firsts = np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1) > 0)
        if np.array_equal(arr[firsts][codes], arr):
            return codes.astype(np.int64), [str(v) for v in arr[firsts]]
    if arr.dtype.kind in "US":
        arr = arr.astype(object)
    codes, uniques = pd.factorize(arr, sort=False)
    return codes.astype(np.int64), [str(u) for u in uniques]


def as_categorical(name: str, values, *, missing: str = "error") -> pd.Categorical:
    """One attribute column as a Categorical in display order (seed-schema order first, then
    sorted, then ``unknown``); a user's own Categorical keeps its categories.

    Missing values (None, NaN) are an error, or with ``missing="keep"`` the value
    :data:`UNKNOWN` (joining an existing ``unknown`` value), or with ``missing="drop"`` stay
    missing for the caller to drop.

    >>> list(as_categorical("race", ["white", None, "asian"], missing="keep"))
    ['white', 'unknown', 'asian']
    """
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        values = values.array
    if isinstance(values, pd.Categorical):
        values = values.rename_categories([str(c) for c in values.categories])
        absent = np.asarray(values.isna())
        if absent.any():
            if missing == "error":
                _missing(name, absent)
            if missing == "keep":
                if UNKNOWN not in values.categories:
                    values = values.add_categories([UNKNOWN])
                values = values.fillna(UNKNOWN)
        return values
    codes, uniques = factorize(values)
    absent = codes < 0
    if absent.any():
        if missing == "error":
            _missing(name, absent)
        if missing == "keep":
            if UNKNOWN not in uniques:
                uniques = uniques + [UNKNOWN]
            codes = np.where(absent, uniques.index(UNKNOWN), codes)
    order = _value_order(name, uniques)
    position = np.array([order.index(u) for u in uniques] + [-1], dtype=np.int64)
    return pd.Categorical.from_codes(position[codes], categories=order)


def _missing(name, mask):
    first = np.flatnonzero(mask)[:5].tolist()
    raise bad(
        f"attribute '{name}'",
        f"a value on every row (or {opt('missing_groups', 'drop')} to leave those rows out, "
        f"{opt('missing_groups', 'keep')} to audit them as a group '{UNKNOWN}')",
        f"{int(mask.sum())} missing values (first rows {first})",
    )


def _value_order(name: str, values) -> list:
    present = sorted({str(v) for v in values} - {UNKNOWN})
    known = KNOWN_ORDERS.get(name, [])
    last = [UNKNOWN] if UNKNOWN in values else []
    return [v for v in known if v in present] + [v for v in present if v not in known] + last


def build_groups(attrs: pd.DataFrame, *, max_order: int | None = None) -> GroupStructure:
    """Build families and atoms from a table of attribute columns.

    Parameters
    ----------
    attrs : DataFrame
        One column per attribute (e.g. ``gender``, ``race``), one row per sample; values are
        converted to strings. Missing values are an error.
    max_order : int, optional
        Largest intersection order (default: all attributes together, plus every smaller
        combination of at least two attributes).

    Returns
    -------
    GroupStructure
    """
    if attrs.shape[1] == 0:
        raise bad("groups", "at least one attribute column", "none")
    names = [str(c) for c in attrs.columns]
    if OVERALL in names:
        raise bad(
            "groups",
            f"attribute names other than '{OVERALL}' (the whole set's name)",
            f"a column '{OVERALL}'",
        )
    codes, orders = [], []
    for name in names:
        cat = as_categorical(name, attrs[name])
        codes.append(np.asarray(cat.codes, dtype=np.int64))
        orders.append(list(cat.categories))

    # Atoms: observed combinations of all attribute codes (mixed-radix key, then compressed).
    key = np.zeros(len(attrs), dtype=np.int64)
    for c, order in zip(codes, orders):
        key = key * len(order) + c
    n_keys = int(np.prod([len(o) for o in orders], dtype=float))
    if n_keys <= 4 * len(key) + 1024:  # small key space: O(n) lookup instead of a sort
        present = np.flatnonzero(np.bincount(key, minlength=n_keys))
        lookup = np.full(n_keys, -1, dtype=np.int64)
        lookup[present] = np.arange(present.size)
        atom_keys, atom = present, lookup[key]
    else:
        atom_keys, atom = np.unique(key, return_inverse=True)
    atom_values = []
    for k in atom_keys:
        vals = []
        for order in reversed(orders):
            k, r = divmod(int(k), len(order))
            vals.append(r)
        atom_values.append(tuple(reversed(vals)))
    atom_values_arr = np.array(atom_values, dtype=np.int64).reshape(len(atom_keys), len(names))

    top = len(names) if max_order is None else max(1, min(max_order, len(names)))
    family_attrs = [(i,) for i in range(len(names))]
    for order_k in range(2, top + 1):
        family_attrs += list(combinations(range(len(names)), order_k))

    families, group_family, group_name, rows = [], [], [], []
    made_from = {}  # family name -> attributes, to refuse two families of one name
    for fa in family_attrs:
        fam = SEP.join(names[i] for i in fa)
        _check_unique(made_from, fam, [names[i] for i in fa], "attribute names", "columns")
        families.append(fam)
        made_of = {}
        for combo in product(*(range(len(orders[i])) for i in fa)):
            values = [orders[i][v] for i, v in zip(fa, combo)]
            name = SEP.join(values)
            _check_unique(made_of, name, values, f"values in family '{fam}'", "values")
            group_family.append(fam)
            group_name.append(name)
            rows.append(np.all(atom_values_arr[:, list(fa)] == np.array(combo), axis=1))
    membership = np.array(rows, dtype=bool).reshape(len(rows), len(atom_keys))
    atom_names = [SEP.join(orders[i][v] for i, v in enumerate(vals)) for vals in atom_values]
    return GroupStructure(
        names, families, group_family, group_name, membership, atom.astype(np.int64), atom_names
    )


def _check_unique(seen: dict, name: str, parts: list, what: str, kind: str):
    """Names join parts with '+': refuse two different part lists that give one name."""
    if name in seen and seen[name] != parts:
        raise bad(
            "groups",
            f"{what} that stay unambiguous when joined with '{SEP}' (it names intersections)",
            f"'{name}' made both from {kind} {' & '.join(map(repr, seen[name]))} and from "
            f"{' & '.join(map(repr, parts))}: rename {kind} containing '{SEP}'",
        )
    seen[name] = parts
