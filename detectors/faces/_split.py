"""A seeded train/val/test split in which no identity is in two splits.

Rows (videos or images) are grouped into *components*: rows that share an
identity are in one component, and a row naming several identities (a face
swap made from persons ``A`` and ``B``, written ``A+B``) joins their
components. Components are then assigned whole, largest first (ties in a
seeded random order), each to the split where it most reduces the squared
gap between what the splits hold and their targets - per stratum (label x
demographic group, each stratum's gap relative to its size) and in total -
and then moved one at a time while a move lowers that sum. So the fractions
and the label/group mix of each split are met as closely as indivisible
identities allow. If a split would stay empty although there are
enough components, the smallest component of the split with the most is moved
there.
"""

from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np

__all__ = ["SPLITS", "identity_components", "split_identities"]

SPLITS = ("train", "val", "test")


def _names(value: str, sep: str) -> list[str]:
    return [n.strip() for n in str(value).split(sep) if n.strip()]


def identity_components(identities: Sequence[str], *, sep: str = "+") -> np.ndarray:
    """Component id (0..C-1, in order of first appearance) of each row; see the module docstring.

    Examples
    --------
    >>> identity_components(["ann", "bob", "cid+ann", "dan", "bob"]).tolist()  # a face swap joins
    [0, 1, 0, 2, 1]
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    rows = []
    for value in identities:
        names = _names(value, sep)
        if not names:
            raise ValueError(f"empty identity {value!r}")
        for n in names:
            parent.setdefault(n, n)
        for n in names[1:]:
            a, b = find(names[0]), find(n)
            if a != b:
                parent[b] = a
        rows.append(names[0])
    ids: dict[str, int] = {}
    return np.array([ids.setdefault(find(r), len(ids)) for r in rows], dtype=np.int64)


def split_identities(
    identities: Sequence[str],
    strata: Sequence[Hashable] | None = None,
    *,
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    sep: str = "+",
) -> np.ndarray:
    """The split (``train``, ``val`` or ``test``) of each row.

    Parameters
    ----------
    identities : sequence of str
        The identity of each row; ``A+B`` names several.
    strata : sequence of hashable, optional
        The stratum of each row, e.g. ``(label, intersec_label)``.
    fractions : three floats
        Target shares of train, val and test (non-negative, summing to 1).
    seed : int
        Orders components of equal size.

    Returns
    -------
    ndarray of str

    Examples
    --------
    >>> people = [f"p{i}" for i in range(10)]
    >>> splits = split_identities(people, seed=0)
    >>> sorted(splits.tolist().count(s) for s in ("train", "val", "test"))
    [2, 2, 6]
    """
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.shape != (3,) or (fr < 0).any() or not np.isclose(fr.sum(), 1.0):
        raise ValueError(
            f"fractions must be three non-negative numbers summing to 1, found {list(fractions)}"
        )
    comp = identity_components(identities, sep=sep)
    n_rows, n_comp = len(comp), int(comp.max()) + 1 if len(comp) else 0
    if n_rows == 0:
        return np.array([], dtype=object)
    keys = list(strata) if strata is not None else [0] * n_rows
    codes: dict[Hashable, int] = {}
    stratum = np.array([codes.setdefault(k, len(codes)) for k in keys], dtype=np.int64)
    counts = np.zeros((n_comp, len(codes)))
    np.add.at(counts, (comp, stratum), 1.0)
    totals = counts.sum(0)
    target = fr[:, None] * totals[None, :]  # (split, stratum)
    size_target = fr * n_rows
    sizes = counts.sum(1)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(n_comp), -sizes))
    held = np.zeros((3, len(codes)))
    held_size = np.zeros(3)
    assigned = np.empty(n_comp, dtype=np.int64)

    def gain(c: int, s: int, sign: float) -> float:
        """Change of the cost when component c joins (sign +1) or leaves (-1) split s."""
        stratum_term = (
            ((held[s] + sign * counts[c] - target[s]) / totals) ** 2
            - ((held[s] - target[s]) / totals) ** 2
        ).sum()
        size_term = ((held_size[s] + sign * sizes[c] - size_target[s]) / n_rows) ** 2 - (
            (held_size[s] - size_target[s]) / n_rows
        ) ** 2
        return float(stratum_term + size_term)

    open_splits = [s for s in range(3) if fr[s] > 0]
    for c in order:
        deficit = size_target - held_size
        best = min(open_splits, key=lambda s: (round(gain(c, s, 1.0), 12), -deficit[s], s))
        assigned[c] = best
        held[best] += counts[c]
        held_size[best] += sizes[c]
    for _ in range(20):  # then move single components while that lowers the cost
        moved = False
        for c in order:
            here = assigned[c]
            leave = gain(c, here, -1.0)
            held[here] -= counts[c]
            held_size[here] -= sizes[c]
            costs = {s: (0.0 if s == here else leave + gain(c, s, 1.0)) for s in open_splits}
            held[here] += counts[c]
            held_size[here] += sizes[c]
            best = min(open_splits, key=lambda s: (round(costs[s], 12), s != here, s))
            if best != here:
                held[here] -= counts[c]
                held_size[here] -= sizes[c]
                held[best] += counts[c]
                held_size[best] += sizes[c]
                assigned[c] = best
                moved = True
        if not moved:
            break
    _fill_empty(assigned, sizes, fr)
    return np.array(SPLITS, dtype=object)[assigned[comp]]


def _fill_empty(assigned: np.ndarray, sizes: np.ndarray, fr: np.ndarray) -> None:
    """Give every split with a positive share at least one component, where there are enough."""
    wanted = [s for s in range(3) if fr[s] > 0]
    if len(assigned) < len(wanted):
        return
    for s in wanted:
        if (assigned == s).any():
            continue
        per_split = np.bincount(assigned, minlength=3)
        donor = int(np.argmax(per_split))
        members = np.flatnonzero(assigned == donor)
        assigned[members[np.argmin(sizes[members])]] = s
