"""Per-group metrics and gaps against independent oracles (fairlearn, scikit-learn, by hand)."""

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score

import fairaudit

TOL = 1e-12


@st.composite
def datasets(draw):
    n = draw(st.integers(20, 300))
    seed = draw(st.integers(0, 2**31 - 1))
    n_groups = draw(st.integers(2, 5))
    ties = draw(st.booleans())
    weighted = draw(st.booleans())
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = rng.random(n)
    if ties:
        s = np.round(s, 1)
    g = rng.integers(0, n_groups, n)
    # every group gets both classes so that all metrics are defined
    for k in range(n_groups):
        g[2 * k] = k
        y[2 * k] = 0
        g[2 * k + 1] = k
        y[2 * k + 1] = 1
    w = rng.uniform(0.2, 3.0, n) if weighted else None
    return y, s, np.array([f"g{k}" for k in g]), w


def _fl(y, s, g, w, thr=0.5):
    pred = (s >= thr).astype(int)
    params = None if w is None else {"sample_weight": w}
    sp = {k: params for k in ("tpr", "fpr", "sel", "acc")} if w is not None else None
    return MetricFrame(
        metrics={
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "sel": selection_rate,
            "acc": accuracy_score,
        },
        y_true=y,
        y_pred=pred,
        sensitive_features=g,
        sample_params=sp,
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_group_rates_match_fairlearn(data):
    y, s, g, w = data
    r = fairaudit.audit(y, s, g, sample_weight=w, n_boot=0)
    mf = _fl(y, s, g, w)
    G = r.groups.loc["group"]
    for ours, theirs in (
        ("tpr", "tpr"),
        ("fpr", "fpr"),
        ("selection_rate", "sel"),
        ("accuracy", "acc"),
    ):
        np.testing.assert_allclose(
            G[ours].to_numpy(), mf.by_group[theirs].loc[G.index].to_numpy(), rtol=0, atol=TOL
        )
        assert abs(r.overall[ours] - mf.overall[theirs]) < TOL


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_gaps_match_fairlearn(data):
    y, s, g, w = data
    r = fairaudit.audit(y, s, g, sample_weight=w, n_boot=0)
    pred = (s >= 0.5).astype(int)
    gap = r.gaps.set_index("name")["value"]
    for agg, ours in (("worst_case", "equalized_odds"), ("mean", "equalized_odds_mean")):
        ref = equalized_odds_difference(y, pred, sensitive_features=g, sample_weight=w, agg=agg)
        assert abs(gap[ours] - ref) < TOL
    assert (
        abs(
            gap["demographic_parity"]
            - demographic_parity_difference(y, pred, sensitive_features=g, sample_weight=w)
        )
        < TOL
    )
    assert (
        abs(
            gap["demographic_parity_ratio"]
            - demographic_parity_ratio(y, pred, sensitive_features=g, sample_weight=w)
        )
        < TOL
    )
    mf = _fl(y, s, g, w)
    for ours, theirs in (("fpr", "fpr"), ("tpr", "tpr"), ("accuracy", "acc")):
        assert abs(gap[f"{ours}_range"] - mf.difference()[theirs]) < TOL
        assert abs(gap[f"{ours}_max_to_overall"] - mf.difference(method="to_overall")[theirs]) < TOL
        ratio = mf.ratio()[theirs]
        assert (np.isnan(ratio) and np.isnan(gap[f"{ours}_ratio"])) or abs(
            gap[f"{ours}_ratio"] - ratio
        ) < TOL
        by = mf.by_group[theirs]
        assert abs(gap[f"{ours}_sum_to_overall"] - np.abs(by - mf.overall[theirs]).sum()) < TOL


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_ranking_metrics_match_sklearn(data):
    y, s, g, w = data
    r = fairaudit.audit(y, s, g, sample_weight=w, n_boot=0)
    for k in np.unique(g):
        m = g == k
        ww = None if w is None else w[m]
        assert (
            abs(r.groups.loc[("group", k), "auc"] - roc_auc_score(y[m], s[m], sample_weight=ww))
            < TOL
        )
        assert (
            abs(
                r.groups.loc[("group", k), "average_precision"]
                - average_precision_score(y[m], s[m], sample_weight=ww)
            )
            < TOL
        )
    assert abs(r.overall["auc"] - roc_auc_score(y, s, sample_weight=w)) < TOL


def test_hand_computed_small_case():
    # group a: reals 0.2, 0.6 ; fakes 0.7, 0.4 -> at 0.5: TP 1 (0.7), FN 1, FP 1 (0.6), TN 1
    # group b: reals 0.1 ; fakes 0.9, 0.8 -> TP 2, TN 1
    y = np.array([0, 0, 1, 1, 0, 1, 1])
    s = np.array([0.2, 0.6, 0.7, 0.4, 0.1, 0.9, 0.8])
    g = np.array(["a", "a", "a", "a", "b", "b", "b"])
    r = fairaudit.audit(y, s, g, min_count=1, n_boot=0)
    a, b = r.groups.loc[("group", "a")], r.groups.loc[("group", "b")]
    assert (a.n, a.n_pos, a.n_neg) == (4, 2, 2)
    assert a.tpr == 0.5 and a.fpr == 0.5 and a.accuracy == 0.5 and a.ppv == 0.5
    # AUC a: pairs (fake, real): (0.7>0.2), (0.7>0.6), (0.4>0.2), (0.4<0.6) -> 3/4
    assert a.auc == 0.75
    # EER a: ROC points (0,0) (0,.5) (.5,.5) (.5,1) (1,1) -> crossing at FPR = 0.5
    assert a.eer == pytest.approx(0.5)
    # AP a: thresholds 0.7 (P=1,R=.5), 0.6 (P=.5), 0.4 (P=2/3, R=1) -> .5*1 + .5*2/3
    assert a.average_precision == pytest.approx(0.5 + 1 / 3)
    assert b.tpr == 1.0 and b.fpr == 0.0 and b.auc == 1.0 and b.eer == 0.0
    # ECE b: bins 0.1 -> |0.1-0|, 0.9 and 0.8 in bins 13 and 12 -> |0.9-1|, |0.8-1|; /3
    assert b.ece == pytest.approx((0.1 + 0.1 + 0.2) / 3)
    gap = r.gaps[r.gaps.family == "group"].set_index("name")["value"]
    assert gap["tpr_range"] == 0.5 and gap["fpr_range"] == 0.5
    assert gap["equalized_odds"] == 0.5 and gap["equalized_odds_mean"] == 0.5
    assert gap["auc_range"] == 0.25 and gap["auc_ratio"] == 0.75
    # overall selection rate 4/7; a: 2/4, b: 2/3
    assert gap["selection_rate_max_to_overall"] == pytest.approx(
        max(abs(0.5 - 4 / 7), abs(2 / 3 - 4 / 7))
    )
    assert gap["selection_rate_sum_to_overall"] == pytest.approx(
        abs(0.5 - 4 / 7) + abs(2 / 3 - 4 / 7)
    )
    assert gap["demographic_parity"] == pytest.approx(2 / 3 - 0.5)


def test_eer_interpolates_between_roc_points():
    # reals 0.1 0.2 0.3 0.8; fakes 0.25 0.7 0.9: ROC from the top:
    # (0,1/3) (.25,1/3) (.25,2/3) (.5,2/3) (.5,1) ... d = FPR+TPR-1 crosses 0 between
    # (.25,2/3) [d=-1/12] and (.5,2/3) [d=1/6]: t = (1/12)/(1/4) = 1/3 -> EER = .25 + .25/3
    y = np.array([0, 0, 0, 0, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.8, 0.25, 0.7, 0.9])
    r = fairaudit.audit(y, s, np.zeros(7, int), min_count=1, n_boot=0)
    assert r.overall["eer"] == pytest.approx(0.25 + 0.25 / 3)
    # at the EER point FPR = FNR: FNR there is 1 - 2/3 = 1/3 = 0.25 + 0.25/3
    assert r.overall["eer"] == pytest.approx(1 / 3)


def test_undefined_metrics_are_explicit():
    y = np.array([0, 1, 0, 1, 1, 1, 0, 0])
    s = np.array([0.1, 0.9, 0.2, 0.8, 0.7, 0.6, 0.3, 0.4])
    g = np.array(["a", "a", "a", "a", "onlyfake", "onlyfake", "onlyreal", "onlyreal"])
    r = fairaudit.audit(y, s, g, min_count=1, n_boot=0)
    G = r.groups.loc["group"]
    assert np.isnan(G.loc["onlyfake", "auc"]) and np.isnan(G.loc["onlyfake", "fpr"])
    assert G.loc["onlyfake", "tpr"] == 1.0
    assert np.isnan(G.loc["onlyreal", "tpr"]) and G.loc["onlyreal", "fpr"] == 0.0
    reasons = r.undefined.set_index(["group", "metric"])["reason"]
    assert "no negative rows" in reasons[("onlyfake", "fpr")]
    assert "no positive rows" in reasons[("onlyreal", "auc")]
    gap = r.gaps.set_index("name")
    assert gap.loc["auc_range", "skipped"] == ["onlyfake", "onlyreal"]
    assert np.isnan(gap.loc["auc_range", "value"])  # only group a is left: no gap
    assert gap.loc["tpr_range", "skipped"] == ["onlyreal"]
    assert gap.loc["tpr_range", "value"] == pytest.approx(0.0)  # a: 1.0, onlyfake: 1.0
    assert any("onlyfake" in w and "undefined" in w for w in r.warnings)


def test_single_defined_group_gives_nan_gap():
    y = np.array([0, 1, 1, 1])
    s = np.array([0.1, 0.9, 0.7, 0.6])
    r = fairaudit.audit(y, s, np.array(["a", "a", "b", "b"]), min_count=1, n_boot=0)
    assert np.isnan(r.gap("group", "auc_range")["value"])
    assert r.gap("group", "auc_range")["skipped"] == ["b"]


def test_empty_intersection_cell_listed_with_zero():
    g = pd.DataFrame(
        {
            "gender": ["male", "male", "female", "female"] * 3,
            "race": ["asian", "white", "white", "white"] * 3,
        }
    )
    y = np.array([0, 1] * 6)
    s = np.linspace(0.05, 0.95, 12)
    r = fairaudit.audit(y, s, g, min_count=1, n_boot=0)
    cell = r.groups.loc[("gender+race", "female+asian")]
    assert cell.n == 0 and np.isnan(cell.auc) and np.isnan(cell.fpr)
    assert (
        r.undefined.set_index(["group", "metric"]).loc[("female+asian", "fpr"), "reason"]
        == "empty group"
    )
    assert "female+asian" in r.gap("gender+race", "fpr_range")["skipped"]


def test_small_group_warning():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    g = np.where(np.arange(400) < 40, "small", "big")
    r = fairaudit.audit(y, rng.random(400), g, n_boot=0)
    assert r.group_warnings[("group", "small")]
    assert ("group", "big") not in r.group_warnings
    assert any("small" in w and "< 30" in w for w in r.warnings)


def test_row_order_invariance_and_monotone_transform():
    rng = np.random.default_rng(3)
    n = 500
    y = rng.integers(0, 2, n)
    s = rng.random(n)
    g = {"gender": rng.choice(["male", "female"], n), "race": rng.choice(["asian", "white"], n)}
    r1 = fairaudit.audit(y, s, g, n_boot=0)
    perm = rng.permutation(n)
    r2 = fairaudit.audit(y[perm], s[perm], {k: v[perm] for k, v in g.items()}, n_boot=0)
    pd.testing.assert_frame_equal(r1.groups, r2.groups, check_exact=False, rtol=1e-12)
    # logits of the same probabilities: identical decisions and ranking metrics
    z = np.log(s) - np.log1p(-s)
    r3 = fairaudit.audit(y, z, g, scores="logit", n_boot=0)
    for m in ("auc", "average_precision", "fpr", "tpr", "eer"):
        np.testing.assert_allclose(r1.groups[m], r3.groups[m], atol=1e-12)
    # AUC is invariant to any monotone transform of the scores (cubing keeps ranks)
    r4 = fairaudit.audit(y, s**3, g, threshold=0.125, n_boot=0)
    np.testing.assert_allclose(r1.groups["auc"], r4.groups["auc"], atol=1e-12)
    np.testing.assert_allclose(r1.groups["fpr"], r4.groups["fpr"], atol=1e-12)


def test_two_column_logits_use_softmax():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(300, 2))
    y = rng.integers(0, 2, 300)
    r = fairaudit.audit(y, z, np.zeros(300, int), n_boot=0)
    assert r.config["score_rule"] == "logits2"
    p = np.exp(z[:, 1]) / np.exp(z).sum(axis=1)
    assert r.overall["auc"] == pytest.approx(roc_auc_score(y, p), abs=TOL)
    assert r.overall["tpr"] == pytest.approx(np.mean(p[y == 1] >= 0.5), abs=TOL)


def test_reference_group_differences():
    rng = np.random.default_rng(1)
    n = 600
    y = rng.integers(0, 2, n)
    s = rng.random(n)
    race = rng.choice(["asian", "white", "black"], n)
    r = fairaudit.audit(y, s, {"race": race}, reference="white", n_boot=0)
    ref = r.reference.set_index(["group", "metric"])
    G = r.groups.loc["race"]
    assert ref.loc[("black", "fpr"), "diff"] == pytest.approx(
        G.loc["black", "fpr"] - G.loc["white", "fpr"]
    )
    assert ref.loc[("asian", "tpr"), "ratio"] == pytest.approx(
        G.loc["asian", "tpr"] / G.loc["white", "tpr"]
    )
    assert "white" not in ref.index.get_level_values("group")  # the reference is not compared
    with pytest.raises(fairaudit.FairauditError, match="reference"):
        fairaudit.audit(y, s, {"race": race}, reference="martian", n_boot=0)


def test_json_schema_and_nan_as_null():
    y = np.array([0, 1, 1, 1, 0, 1])
    s = np.array([0.2, 0.8, 0.6, 0.9, 0.4, 0.3])
    r = fairaudit.audit(y, s, np.array(["a", "a", "b", "b", "a", "a"]), min_count=1, n_boot=0)
    import json

    doc = json.loads(r.to_json())
    assert doc["version"] == 1
    assert {"threshold", "score_rule", "n_boot", "ci", "seed"} <= set(doc["config"])
    b = [g for g in doc["groups"] if g["group"] == "b"][0]
    assert b["metrics"]["fpr"]["value"] is None and b["metrics"]["fpr"]["lo"] is None
    assert b["undefined"]["fpr"].startswith("no negative rows")
    gap = [x for x in doc["gaps"] if x["name"] == "fpr_range"][0]
    assert gap["value"] is None and gap["skipped"] == ["b"] and gap["p_value"] is None
