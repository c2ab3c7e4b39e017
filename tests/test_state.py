"""The mergeable audit state (issue 12): any split and merge order gives the same state and
the same audit; a state audit equals the in-memory audit of the same rows (exact regime) and
stays within its stated bounds on the grid; the byte format is versioned and pickle-free."""

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fairaudit
from fairaudit import AuditState, FairauditError
from fairaudit._state import MAGIC

ATTRS = ["gender", "race"]


def _rows(n, seed=0, decimals=2, n_races=3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    z = rng.normal(size=n) + 1.5 * y - 0.5
    p = 1 / (1 + np.exp(-z))
    p = np.round(p, decimals) if decimals is not None else p
    g = rng.choice(["male", "female"], n)
    r = rng.choice(["asian", "white", "black", "others"][:n_races], n)
    video = np.char.add(np.char.add(g, r), (np.arange(n) // 6).astype(str))  # inside an atom
    w = rng.choice([0.5, 1.0, 3.0], n)
    return y, p, g, r, video, w


def _filled(y, p, g, r, video=None, w=None, batches=1, **kw):
    state = AuditState(ATTRS, clustered=video is not None, weighted=w is not None, **kw)
    for part in np.array_split(np.arange(y.size), batches):
        state.update(
            y[part],
            p[part],
            {"gender": g[part], "race": r[part]},
            clusters=None if video is None else video[part],
            weights=None if w is None else w[part],
        )
    return state


def _same_audit(a, b):
    pd.testing.assert_frame_equal(a.groups_long, b.groups_long)
    pd.testing.assert_frame_equal(a.counts, b.counts)
    pd.testing.assert_frame_equal(a.gaps, b.gaps)
    assert a.warnings == b.warnings
    if a.reference is not None or b.reference is not None:
        pd.testing.assert_frame_equal(a.reference, b.reference)


# ------------------------------------------------------------------ merging: any split, any order
@st.composite
def _splits(draw):
    n = draw(st.integers(8, 120))
    seed = draw(st.integers(0, 2**16))
    cuts = sorted(draw(st.lists(st.integers(1, n - 1), max_size=5, unique=True)))
    order = draw(st.permutations(range(len(cuts) + 1)))
    tree_seed = draw(st.integers(0, 2**16))
    mode = draw(st.sampled_from(["plain", "clusters", "weights"]))
    cap = draw(st.sampled_from([None, 0, 12, 40]))  # exact throughout, grid, or crossing
    return n, seed, cuts, order, tree_seed, mode, cap


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_splits())
def test_any_split_merged_in_any_order_gives_the_same_state_and_audit(case):
    n, seed, cuts, order, tree_seed, mode, cap = case
    y, p, g, r, video, w = _rows(n, seed, decimals=2)
    video = video if mode == "clusters" else None
    w = w if mode == "weights" else None
    kw = dict(exact_cap=cap, grid_bits=8)
    whole = _filled(y, p, g, r, video, w, **kw)
    pieces = np.split(np.arange(n), cuts)
    states = []
    for i in order:  # pieces filled in a shuffled order, then merged along a random tree
        idx = pieces[i]
        states.append(
            _filled(
                y[idx],
                p[idx],
                g[idx],
                r[idx],
                None if video is None else video[idx],
                None if w is None else w[idx],
                **kw,
            )
        )
    rng = np.random.default_rng(tree_seed)
    while len(states) > 1:
        i, j = sorted(rng.choice(len(states), 2, replace=False))
        b, a = states.pop(j), states.pop(i)
        merged = a.merge(b) if rng.random() < 0.5 else b.merge(a)
        if rng.random() < 0.3:
            merged = AuditState.from_bytes(merged.to_bytes())
        states.append(merged)
    assert states[0].to_bytes() == whole.to_bytes()
    if len(pieces) > 1 and rng.random() < 0.3:  # audits too (bytes equal makes them equal)
        opts = dict(n_boot=15, n_perm=15, min_count=1, bootstrap="iid" if w is None else None)
        _same_audit(states[0].audit(**opts), whole.audit(**opts))


def test_merge_is_associative_and_commutative_across_the_exact_cap():
    y, p, g, r, *_ = _rows(900, seed=3, decimals=None)
    parts = [_filled(y[i::3], p[i::3], g[i::3], r[i::3], exact_cap=400) for i in range(3)]
    assert all(s.exact for s in parts)  # each part alone stays exact (300 rows)
    left = parts[0].merge(parts[1]).merge(parts[2])
    right = parts[2].merge(parts[1].merge(parts[0]))
    assert left.to_bytes() == right.to_bytes()
    assert not left.exact  # together they pass the cap: on the grid, as one state of all rows
    assert left.to_bytes() == _filled(y, p, g, r, exact_cap=400).to_bytes()


def test_merge_all_takes_gathered_bytes_in_any_form():
    y, p, g, r, *_ = _rows(300, seed=4)
    parts = [_filled(y[i::4], p[i::4], g[i::4], r[i::4]) for i in range(4)]
    blobs = [
        parts[0].to_bytes(),
        bytearray(parts[1].to_bytes()),
        memoryview(parts[2].to_bytes()),
        np.frombuffer(parts[3].to_bytes(), np.uint8),
    ]
    assert AuditState.merge_all(blobs).to_bytes() == _filled(y, p, g, r).to_bytes()
    assert AuditState.merge_all(parts[::-1]).n_rows == 300


def test_merge_refuses_states_made_differently():
    a = AuditState(ATTRS, threshold=0.5)
    b = AuditState(ATTRS, threshold=0.7)
    with pytest.raises(FairauditError, match="threshold 0.7 \\(here 0.5\\)"):
        a.merge(b)
    with pytest.raises(FairauditError, match="grid_bits"):
        a.merge(AuditState(ATTRS, grid_bits=10))
    with pytest.raises(FairauditError, match="an AuditState or its bytes"):
        AuditState.merge_all([a, "not a state"])


# ------------------------------------------------------------------ the same numbers as in memory
@pytest.mark.parametrize(
    "case",
    [
        dict(),
        dict(bootstrap="stratified"),
        dict(clusters=True),
        dict(weights=True),
        dict(weights=True, bootstrap="stratified", ci_method="bca"),
        dict(clusters=True, ci_method="bca", reference="race=white", tolerance="four-fifths"),
        dict(skip_small_groups=True, min_count=60, max_order=1),
    ],
)
def test_state_audit_equals_the_in_memory_audit(case):
    case = dict(case)
    y, p, g, r, video, w = _rows(3000, seed=5)
    video = video if case.pop("clusters", False) else None
    w = w if case.pop("weights", False) else None
    opts = dict(n_boot=80, n_perm=60, seed=11, **case)
    mem = fairaudit.audit(y, p, {"gender": g, "race": r}, clusters=video, sample_weight=w, **opts)
    state = AuditState.from_bytes(_filled(y, p, g, r, video, w, batches=5).to_bytes())
    res = state.audit(**opts)
    _same_audit(mem, res)
    assert res.config["state"]["scores"] == "exact" and res.config["state"]["rows"] == 3000
    assert res.config["bootstrap"] == mem.config["bootstrap"]


@pytest.mark.parametrize("rule", ["logit", "logits2", "percent"])
def test_state_audit_equals_the_in_memory_audit_under_every_score_rule(rule):
    y, p, g, r, *_ = _rows(1500, seed=6, decimals=3)
    z = np.log(np.clip(p, 1e-3, 1 - 1e-3) / (1 - np.clip(p, 1e-3, 1 - 1e-3)))
    scores = {"logit": z, "logits2": np.c_[-z / 2, z / 2], "percent": 100 * p}[rule]
    mem = fairaudit.audit(
        y, scores, {"gender": g, "race": r}, scores=rule, threshold=0.3, n_boot=40
    )
    state = AuditState(ATTRS, scores=rule, threshold=0.3)
    for part in np.array_split(np.arange(y.size), 3):
        state.update(y[part], scores[part], {"gender": g[part], "race": r[part]})
    _same_audit(mem, state.audit(n_boot=40))


def test_labels_named_by_pos_label_arrive_in_batches_with_one_value():
    y, p, g, r, *_ = _rows(600, seed=7)
    text = np.where(y == 1, "fake", "real")
    order = np.argsort(y, kind="stable")  # first batch only real, second only fake
    state = AuditState(ATTRS, pos_label="fake")
    for part in np.array_split(order, 2):
        state.update(text[part], p[part], {"gender": g[part], "race": r[part]})
    mem = fairaudit.audit(text, p, {"gender": g, "race": r}, pos_label="fake", n_boot=30)
    _same_audit(mem, state.audit(n_boot=30))
    with pytest.raises(FairauditError, match="two label values overall"):
        state.update(np.array(["unsure"]), [0.5], {"gender": ["male"], "race": ["white"]})
    only_real = AuditState(ATTRS, pos_label="fake").update(
        text[y == 0], p[y == 0], {"gender": g[y == 0], "race": r[y == 0]}
    )
    with pytest.raises(FairauditError, match="a value that occurs in the labels"):
        only_real.audit(n_boot=0)


def test_missing_groups_and_nan_scores_are_counted_as_in_memory():
    y, p, g, r, *_ = _rows(800, seed=8)
    g = g.astype(object)
    g[::37] = None
    p = p.copy()
    p[5::41] = np.nan
    for policy in ("drop", "keep"):
        mem = fairaudit.audit(
            y, p, {"gender": g, "race": r}, missing_groups=policy, drop_nan=True, n_boot=20
        )
        state = AuditState(ATTRS, missing_groups=policy, drop_nan=True)
        for part in np.array_split(np.arange(y.size), 4):
            state.update(y[part], p[part], {"gender": g[part], "race": r[part]})
        res = state.audit(n_boot=20)
        _same_audit(mem, res)
        assert res.config["n_dropped"] == mem.config["n_dropped"] > 0
        assert res.config["n_dropped_missing_groups"] == mem.config["n_dropped_missing_groups"]
    with pytest.raises(FairauditError, match="attribute 'gender'"):
        AuditState(ATTRS).update(y, np.nan_to_num(p), {"gender": g, "race": r})
    with pytest.raises(FairauditError, match="NaN/inf"):
        AuditState(ATTRS).update(y, p, {"gender": np.where(g == None, "x", g), "race": r})  # noqa: E711


def test_declared_categories_are_listed_even_without_rows():
    y, p, g, r, *_ = _rows(400, seed=9, n_races=2)  # asian and white only
    races = ["asian", "white", "black", "others"]
    mem = fairaudit.audit(
        y, p, {"gender": g, "race": pd.Categorical(r, categories=races)}, n_boot=0
    )
    state = AuditState(ATTRS, categories={"race": races}).update(y, p, {"gender": g, "race": r})
    res = state.audit(n_boot=0)
    _same_audit(mem, res)
    assert res.groups.loc[("race", "black"), "n"] == 0
    with pytest.raises(FairauditError, match="declared categories"):
        state.update([1], [0.5], {"gender": ["male"], "race": ["martian"]})


# ------------------------------------------------------------------ the grid regime
@pytest.mark.parametrize("rule", ["prob", "logit"])
def test_grid_regime_stays_within_its_stated_bounds(rule):
    y, p, g, r, *_ = _rows(60_000, seed=10, decimals=None)
    scores = p if rule == "prob" else np.log(p / (1 - p))
    mem = fairaudit.audit(y, scores, {"gender": g, "race": r}, scores=rule, n_boot=0)
    state = AuditState(ATTRS, scores=rule, exact_cap=1000)
    for part in np.array_split(np.arange(y.size), 6):
        state.update(y[part], scores[part], {"gender": g[part], "race": r[part]})
    assert not state.exact
    res = state.audit(n_boot=0)
    info = res.config["state"]
    assert info["scores"] == "grid" and info["grid_bits"] == 14
    pd.testing.assert_frame_equal(res.counts, mem.counts)  # counts at the threshold: exact
    diff = (
        (
            res.groups_long.set_index(["family", "group", "metric"])["value"]
            - mem.groups_long.set_index(["family", "group", "metric"])["value"]
        )
        .abs()
        .unstack("metric")
    )
    bounded = list(info["error_bound"])
    assert sorted(bounded) == ["auc", "average_precision", "ece", "eer"]
    assert (diff.drop(columns=bounded).to_numpy() == 0).all()  # every rate at the threshold
    for m in bounded:
        assert diff[m].max() <= info["error_bound"][m], m
    # how fine the grid is on this data: errors far below a replicate's noise
    assert info["error_bound"]["auc"] < 2e-5 and diff["auc"].max() < 1e-6
    text = fairaudit._format.format_text(res)
    assert "scores on the fixed grid of an AuditState (14 bits)" in text


def test_more_grid_bits_shrink_the_bounds():
    y, p, g, r, *_ = _rows(20_000, seed=12, decimals=None)
    bound = {}
    for bits in (10, 12, 14):
        s = _filled(y, p, g, r, exact_cap=0, grid_bits=bits)
        bound[bits] = s.audit(n_boot=0).config["state"]["error_bound"]["auc"]
    assert bound[10] > 3 * bound[12] > 9 * bound[14] > 0


def test_grid_state_size_stays_bounded_by_its_cells():
    y, p, g, r, *_ = _rows(400_000, seed=13, decimals=None)
    n = 50_000
    small = _filled(y[:n], p[:n], g[:n], r[:n], exact_cap=0, grid_bits=8)
    large = _filled(y, p, g, r, exact_cap=0, grid_bits=8, batches=4)
    # 8x the rows: only cells of rarer, more extreme scores are added (the grid is finite)
    assert len(large.to_bytes()) < 1.6 * len(small.to_bytes())
    entries = large.prepared().data.score.size
    assert entries <= 2 * 6 * large.grid.n_dense and large.n_rows == 400_000


# ------------------------------------------------------------------ the byte format
def test_bytes_follow_the_documented_layout():
    y, p, g, r, video, w = _rows(200, seed=14)
    s = _filled(y, p, g, r, video, w)
    data = s.to_bytes()
    assert data[:16] == MAGIC
    size = int(np.frombuffer(data, "<u4", 1, 16)[0])
    header = json.loads(data[20 : 20 + size])
    assert header["format"] == "fairaudit-state" and header["version"] == 1
    assert header["config"]["attributes"] == ATTRS and header["regime"] == "exact"
    assert header["values"] == [["male", "female"], ["asian", "white", "black"]]
    names = [a["name"] for a in header["arrays"]]
    assert names == [
        "atoms",
        "atom",
        "label",
        "key",
        "count",
        "weight",
        "cluster",
        "cluster_text",
        "cluster_text_ends",
    ]
    start = 20 + size
    assert start % 8 == 0
    counts = next(a for a in header["arrays"] if a["name"] == "count")
    got = np.frombuffer(data, counts["dtype"], counts["shape"][0], start + counts["offset"])
    assert counts["dtype"] == "<i8" and got.sum() == 200
    assert header["counters"] == {"rows": 200, "dropped_nan": 0, "dropped_missing": 0}


def test_damaged_or_foreign_bytes_are_refused():
    s = _filled(*_rows(100, seed=15)[:4])
    data = s.to_bytes()
    for bad_data, found in [
        (pickle.dumps(s.config()), "without the fairaudit-state signature"),
        (data[:40], "unreadable header"),
        (data[:-8], "truncated"),
        (data.replace(b'"version":1', b'"version":9'), "version 9"),
        ("text", "str"),
    ]:
        with pytest.raises(FairauditError, match=found):
            AuditState.from_bytes(bad_data)


def test_bad_batches_are_refused_naming_the_argument():
    s = AuditState(ATTRS)
    with pytest.raises(FairauditError, match="groups: expected the state's attributes"):
        s.update([0, 1], [0.1, 0.9], {"gender": ["male", "female"]})
    with pytest.raises(FairauditError, match="clusters: expected none"):
        s.update([0, 1], [0.1, 0.9], {"gender": ["m", "f"], "race": ["a", "b"]}, clusters=[1, 2])
    with pytest.raises(FairauditError, match="values in \\[0, 1\\]"):
        s.update([0, 1], [10.0, 90.0], {"gender": ["m", "f"], "race": ["a", "b"]})
    with pytest.raises(FairauditError, match="auto needs every row"):
        AuditState(ATTRS, scores="auto")
    with pytest.raises(FairauditError, match="weights: expected one value per row"):
        AuditState(ATTRS, weighted=True).update([0], [0.5], {"gender": ["m"], "race": ["a"]})
    with pytest.raises(FairauditError, match="at least one row"):
        AuditState(ATTRS).audit(n_boot=0)
    with pytest.raises(FairauditError, match="labels themselves"):
        AuditState(["g"]).update([0, 1, 0, 1], [0.2, 0.9, 0.2, 0.9], {"g": list("aabb")}).audit()


def test_the_audit_checks_its_options_like_audit():
    s = _filled(*_rows(100, seed=16)[:4])
    with pytest.raises(FairauditError, match="n_boot: expected a non-negative integer"):
        s.audit(n_boot=-1)
    with pytest.raises(FairauditError, match='bootstrap="cluster"'):
        s.audit(bootstrap="cluster")


def test_dense_counts_give_way_to_sparse_entries_with_many_groups(monkeypatch):
    import fairaudit._state as state_module

    rng = np.random.default_rng(17)
    n = 30_000
    y, p = rng.integers(0, 2, n), rng.random(n)
    a = rng.choice([f"v{i}" for i in range(40)], n)
    kw = dict(exact_cap=0, grid_bits=10)  # 1.3 MB of dense counts per atom
    whole = AuditState(["a"], **kw).update(y, p, {"a": a})
    assert whole._dense is not None  # 40 atoms fit
    monkeypatch.setattr(state_module, "DENSE_LIMIT", 10 * 2**20)  # about 7 atoms fit
    batched = AuditState(["a"], **kw)
    for part in np.array_split(np.arange(n), 10):
        batched.update(y[part], p[part], {"a": a[part]})
    assert batched._dense is None and batched._sparse_grid  # went sparse on the way
    assert batched.to_bytes() == whole.to_bytes()
