"""The identity-disjoint split: no identity in two splits, 60/20/20, balanced per label and group,
seeded."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest

from detectors.faces import identity_components, split_identities


def _population(seed=1, people=300, swaps=0.3):
    """Rows of a FF++-like set: each person has 1-3 real videos; fakes name the target and sometimes
    a source person."""
    rng = np.random.default_rng(seed)
    ids, strata = [], []
    for p in range(people):
        group = int(rng.integers(0, 8))
        for _ in range(int(rng.integers(1, 4))):
            label = int(rng.random() < 0.5)
            if label and rng.random() < swaps:
                ids.append(f"p{p}+p{int(rng.integers(0, people))}")
            else:
                ids.append(f"p{p}")
            strata.append((label, group))
    return ids, strata


def _splits_of_each_identity(ids, split):
    where = defaultdict(set)
    for value, s in zip(ids, split):
        for name in value.split("+"):
            where[name].add(s)
    return where


def test_no_identity_is_in_two_splits_even_through_face_swaps():
    ids, strata = _population()
    split = split_identities(ids, strata, seed=0)
    assert all(len(s) == 1 for s in _splits_of_each_identity(ids, split).values())


def test_split_sizes_follow_the_fractions():
    ids, strata = _population(swaps=0.0)
    split = split_identities(ids, strata, seed=0)
    share = {k: v / len(ids) for k, v in Counter(split).items()}
    assert share["train"] == pytest.approx(0.6, abs=0.02)
    assert share["val"] == pytest.approx(0.2, abs=0.02)
    assert share["test"] == pytest.approx(0.2, abs=0.02)


def test_each_label_and_group_is_split_like_the_whole():
    ids, strata = _population(swaps=0.0)
    split = split_identities(ids, strata, seed=0)
    for stratum in set(strata):
        rows = [s for s, k in zip(split, strata) if k == stratum]
        share = Counter(rows)
        assert share["train"] / len(rows) == pytest.approx(0.6, abs=0.08), stratum
        assert share["test"] / len(rows) == pytest.approx(0.2, abs=0.08), stratum


def test_split_is_seeded():
    ids, strata = _population()
    a = split_identities(ids, strata, seed=3)
    assert (a == split_identities(ids, strata, seed=3)).all()
    assert (a != split_identities(ids, strata, seed=4)).any()


def test_components_join_identities_named_together():
    comp = identity_components(["a", "b", "a+c", "d", "c+b", "e"])
    assert comp[0] == comp[1] == comp[2] == comp[4] and len({comp[0], comp[3], comp[5]}) == 3


def test_few_identities_still_fill_every_split():
    assert sorted(split_identities(["x", "y", "z"])) == ["test", "train", "val"]
    assert list(split_identities(["x", "x"])) == [
        "train",
        "train",
    ]  # one identity cannot be divided
    assert Counter(split_identities(list("abcde")))["train"] >= 2


def test_bad_fractions_are_refused():
    with pytest.raises(ValueError, match="summing to 1"):
        split_identities(["a"], fractions=(0.5, 0.2, 0.2))
