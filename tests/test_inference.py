"""The inference layer: gap intervals that hold at equality, paired changes, exact p-value
inversion, multiplicity adjustment, tolerance verdicts, reference groups, confusion counts."""

import importlib.util
import json
import os

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import confusion_matrix, precision_score

import fairaudit
from fairaudit._cli import main
from fairaudit._inference import (
    adjust_p,
    family_gap_intervals,
    inversion_p_value,
    quantile,
    stepdown_maxt,
    upper_tail,
    verdict,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _coverage_module():
    spec = importlib.util.spec_from_file_location(
        "coverage_bench", os.path.join(ROOT, "benchmarks", "coverage.py")
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def three_groups(fpr, tpr, n=300, seed=0):
    rng = np.random.default_rng(seed)
    a, b = norm.ppf(fpr), norm.ppf(tpr)
    g = np.repeat(np.arange(len(fpr)), 2 * n)
    y = np.tile(np.r_[np.zeros(n), np.ones(n)], len(fpr)).astype(int)
    z = np.where(y == 1, b[g], a[g]) + rng.normal(size=y.size)
    return y, z, {"group": np.array(["a", "b", "c", "d", "e", "f", "g", "h"])[g]}


# ---------------------------------------------------------------------------- primitives
def test_order_statistic_quantiles_and_exact_inversion():
    rng = np.random.default_rng(0)
    for _ in range(300):
        B = int(rng.integers(20, 400))
        reps = rng.normal(rng.normal(0, 1), 1, B).round(int(rng.integers(0, 3)))  # ties too
        for ci in (0.9, 0.95, 0.99):
            a = 1 - ci
            lo, hi = quantile(reps, a / 2), upper_tail(reps, a / 2)
            excludes = lo > 0 or hi < 0
            p = inversion_p_value(0.0, reps)
            if a > 1 / B:
                assert (p < a) == excludes, (B, ci, p, lo, hi)


def test_adjustments_by_hand():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.2])
    # Holm: sorted 0.01, 0.03, 0.04, 0.2 times 4, 3, 2, 1, running max
    assert np.allclose(adjust_p(p, "holm")[[0, 2, 1, 4]], [0.04, 0.09, 0.09, 0.2])
    assert np.isnan(adjust_p(p, "holm")[3])
    # BH: 0.2*4/4, 0.04*4/3, 0.03*4/2, 0.01*4/1, running min from the top
    assert np.allclose(adjust_p(p, "bh")[[4, 1, 2, 0]], [0.2, 0.0533333, 0.0533333, 0.04])
    assert np.array_equal(adjust_p(p, "none")[[0, 1]], p[[0, 1]])


def test_stepdown_maxt_single_statistic_is_the_permutation_p_value():
    rng = np.random.default_rng(3)
    null = rng.normal(size=(999, 1))
    for obs in (-1.0, 0.3, 1.7, 2.5):
        expect = (1 + np.sum(null[:, 0] >= obs - 1e-12)) / 1000
        assert stepdown_maxt(np.array([obs]), null)[0] == pytest.approx(expect)


def test_stepdown_maxt_never_below_raw_and_monotone():
    rng = np.random.default_rng(4)
    null = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6))  # dependent statistics
    obs = null[0] + rng.normal(0, 2, 6)
    adj = stepdown_maxt(obs, null[1:])
    z_null = (null[1:] - null[1:].mean(0)) / null[1:].std(0)
    z = (obs - null[1:].mean(0)) / null[1:].std(0)
    raw = (1 + (z_null >= z).sum(0)) / (1 + 499)
    assert np.all(adj >= raw - 1e-12)
    order = np.argsort(-z)
    assert np.all(np.diff(adj[order]) >= -1e-12)


def test_verdicts():
    assert verdict(0.01, 0.04, 0.05) == "within"
    assert verdict(0.06, 0.1, 0.05) == "exceeds"
    assert verdict(0.04, 0.06, 0.05) == "inconclusive"
    assert verdict(0.85, 0.99, 0.8, higher_is_worse=False) == "within"
    assert verdict(0.5, 0.7, 0.8, higher_is_worse=False) == "exceeds"
    assert verdict(np.nan, 0.7, 0.8) is None and verdict(0.1, 0.2, None) is None


# ---------------------------------------------------------------------------- gap intervals
def test_equal_groups_range_lower_limit_zero_and_ratio_upper_one():
    rng = np.random.default_rng(0)
    reps = {"fpr": 0.2 + 0.02 * rng.normal(size=(1000, 4))}
    out = family_gap_intervals(
        {"fpr": np.array([0.2, 0.201, 0.199, 0.2])},
        {"fpr": 0.2},
        reps,
        {"fpr": reps["fpr"].mean(1)},
        ["fpr"],
        0.05,
    )
    assert out["fpr_range"][0] == 0.0 and out["fpr_range"][1] > 0.05
    assert out["fpr_ratio"][1] == 1.0
    assert out["fpr_max_to_overall"][0] == 0.0


def test_far_apart_groups_interval_close_to_the_pair_percentile():
    """One pair decides the range: the interval is that pair's percentile interval."""
    rng = np.random.default_rng(1)
    B = 4000
    reps = np.column_stack([0.1 + 0.01 * rng.normal(size=B), 0.5 + 0.01 * rng.normal(size=B)])
    out = family_gap_intervals(
        {"fpr": np.array([0.1, 0.5])},
        {"fpr": 0.3},
        {"fpr": reps},
        {"fpr": reps.mean(1)},
        ["fpr"],
        0.05,
    )
    d = reps[:, 1] - reps[:, 0]
    lo, hi = np.quantile(d, [0.025, 0.975])
    assert out["fpr_range"][0] == pytest.approx(0.4 - (0.4 - lo), abs=2e-3)
    assert out["fpr_range"][1] == pytest.approx(hi, abs=2e-3)


def test_every_gap_interval_holds_its_estimate():
    y, z, g = three_groups([0.2, 0.2, 0.21], [0.8, 0.79, 0.8], n=150)
    for seed in range(3):
        r = fairaudit.audit(y, z, g, scores="logit", n_boot=300, n_perm=0, seed=seed)
        gaps = r.gaps.dropna(subset=["lo"])
        inside = (gaps["lo"] <= gaps["value"] + 1e-12) & (gaps["value"] <= gaps["hi"] + 1e-12)
        assert inside.all(), gaps.loc[~inside, ["name", "value", "lo", "hi"]]


def test_example_estimates_inside_their_intervals():
    p = fairaudit.example_paths()
    r = fairaudit.audit(
        np.load(p["labels"]), np.load(p["preds"]), _example_groups(p), n_boot=300, n_perm=0
    )
    g = r.gaps.dropna(subset=["lo"])
    assert ((g["lo"] <= g["value"] + 1e-12) & (g["value"] <= g["hi"] + 1e-12)).all()
    eer = r.gap("gender", "eer_range")
    assert eer["lo"] == 0.0 <= eer["value"]


def _example_groups(p):
    from fairaudit._io import read_demographics

    return read_demographics(str(p["csv"])).attributes


def test_undefined_replicates_use_the_point_estimates_groups():
    """A group with two fakes has no fakes in some replicates: those replicates are left out
    (counted, warned about) instead of silently computing the gap over the other groups."""
    rng = np.random.default_rng(2)
    n = 400
    group = np.r_[np.repeat(["big1", "big2"], n), ["tiny"] * 60]
    y = np.r_[rng.integers(0, 2, 2 * n), np.ones(2, int), np.zeros(58, int)]
    s = np.where(y == 1, 0.9, 0.1) + rng.normal(0, 0.1, y.size)
    s[2 * n : 2 * n + 2] = 0.05  # the tiny group's fakes are both missed: TPR 0
    s = np.clip(s, 0, 1)
    r = fairaudit.audit(y, s, {"g": group}, n_boot=400, n_perm=0, seed=1)
    gap = r.gap("g", "tpr_range")
    assert gap["value"] > 0.9
    assert gap["n_unusable"] > 0.01 * 400  # P(no fake drawn) is about (1 - 2/860)^860 = 13%
    assert gap["lo"] > 0.8, gap  # mixing in replicates without the tiny group gave lo 0.02
    assert any("undefined" in w and "tpr_range" in w or "replicates" in w for w in r.warnings)
    fpr = r.gap("g", "fpr_range")
    assert fpr["n_unusable"] == 0  # every group has reals in every replicate


# ---------------------------------------------------------------------------- reference groups
def test_reference_table_intervals_follow_ci_method_and_p_values():
    y, z, g = three_groups([0.1, 0.2, 0.4], [0.8, 0.8, 0.8], n=200)
    common = dict(scores="logit", n_boot=400, n_perm=0, reference="group=a", seed=3)
    pct = fairaudit.audit(y, z, g, ci_method="percentile", **common).reference
    bca = fairaudit.audit(y, z, g, ci_method="bca", **common).reference
    assert set(pct["group"]) == {"b", "c"} and (pct["reference"] == "a").all()
    key = ["group", "metric"]
    pct, bca = pct.set_index(key), bca.set_index(key)
    assert not np.allclose(pct["diff_lo"], bca["diff_lo"])  # the method is used
    row = pct.loc[("c", "fpr")]
    assert row["diff"] == pytest.approx(row["value"] - row["reference_value"])
    assert row["ratio"] == pytest.approx(row["value"] / row["reference_value"])
    assert row["diff_lo"] > 0 and row["p_value"] < 0.05 and row["ratio_lo"] > 1
    tpr = pct.loc[("b", "tpr")]
    assert tpr["diff_lo"] < 0 < tpr["diff_hi"] and tpr["p_value"] > 0.05
    assert (pct["p_adjusted"] >= pct["p_value"] - 1e-12).all()


def test_several_references_and_bad_ones():
    y, z, g = three_groups([0.1, 0.2, 0.4], [0.8, 0.8, 0.8], n=100)
    g["sex"] = np.where(np.arange(y.size) % 2, "m", "f")
    r = fairaudit.audit(y, z, g, scores="logit", n_boot=0, reference="group=a,sex=m")
    assert set(zip(r.reference["family"], r.reference["reference"])) == {
        ("group", "a"),
        ("sex", "m"),
    }
    with pytest.raises(fairaudit.FairauditError, match="reference"):
        fairaudit.audit(y, z, g, scores="logit", n_boot=0, reference="group=zz")
    with pytest.raises(fairaudit.FairauditError, match="one reference group per family"):
        fairaudit.audit(y, z, g, scores="logit", n_boot=0, reference="group=a,group=b")


# ---------------------------------------------------------------------------- verdicts, counts
def test_tolerance_verdicts_and_json(tmp_path):
    y, z, g = three_groups([0.1, 0.2, 0.4], [0.8, 0.8, 0.8], n=200)
    r = fairaudit.audit(
        y,
        z,
        g,
        scores="logit",
        n_boot=300,
        n_perm=100,
        tolerance="fpr_range=0.05,tpr_range=0.5,four-fifths",
    )
    gaps = r.gaps.set_index("name")
    assert gaps.loc["fpr_range", "verdict"] == "exceeds"  # 0.3 with a tight interval
    assert gaps.loc["tpr_range", "verdict"] == "within"
    assert (
        gaps.loc["fpr_ratio", "tolerance"] == 0.8 and gaps.loc["fpr_ratio", "verdict"] == "exceeds"
    )
    assert gaps["verdict"].notna().sum() == 1 + 1 + sum(n.endswith("ratio") for n in gaps.index)
    doc = json.loads(r.to_json())
    entry = [e for e in doc["gaps"] if e["name"] == "fpr_range"][0]
    assert entry["verdict"] == "exceeds" and entry["tolerance"] == 0.05
    assert {"p_value", "p_adjusted", "n_unusable"} <= set(entry)
    assert "verdict" not in [e for e in doc["gaps"] if e["name"] == "auc_range"][0]
    with pytest.raises(fairaudit.FairauditError, match="tolerance"):
        fairaudit.audit(y, z, g, scores="logit", n_boot=0, tolerance="fpr_range=0.05")
    with pytest.raises(fairaudit.FairauditError, match="tolerance"):
        fairaudit.audit(y, z, g, scores="logit", n_boot=10, tolerance="fpr_rnage=0.05")


def test_confusion_counts_and_new_metrics_against_sklearn():
    rng = np.random.default_rng(5)
    n = 500
    y = rng.integers(0, 2, n)
    s = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
    grp = rng.choice(["u", "v"], n)
    w = rng.uniform(0.5, 2, n)
    r = fairaudit.audit(y, s, {"g": grp}, n_boot=0, sample_weight=w)
    pred = (s >= 0.5).astype(int)
    for name in ("u", "v"):
        m = grp == name
        tn, fp, fn, tp = confusion_matrix(y[m], pred[m], sample_weight=w[m]).ravel()
        row = r.groups.loc[("g", name)]
        assert np.allclose([row.tp, row.fp, row.tn, row.fn], [tp, fp, tn, fn])
        npv = precision_score(y[m], pred[m], pos_label=0, sample_weight=w[m])
        assert row.npv == pytest.approx(npv)
        assert row["for"] == pytest.approx(1 - npv)
        assert row.fdr == pytest.approx(1 - precision_score(y[m], pred[m], sample_weight=w[m]))
    doc = json.loads(r.to_json())
    assert {"tp", "fp", "tn", "fn"} <= set(doc["groups"][0]) and "tp" in doc["overall"]


def test_fail_on_exit_codes(tmp_path, capsys):
    y, z, g = three_groups([0.1, 0.2, 0.4], [0.8, 0.8, 0.8], n=200)
    import pandas as pd

    pd.DataFrame({"group": g["group"], "label": y}).to_csv(tmp_path / "t.csv", index=False)
    np.save(tmp_path / "s.npy", 1 / (1 + np.exp(-z)))
    base = [
        "report",
        str(tmp_path / "s.npy"),
        str(tmp_path / "t.csv"),
        "--attributes",
        "group",
        "--n-boot",
        "200",
        "--n-perm",
        "50",
        "--quiet",
    ]
    assert main(base + ["--tolerance", "fpr_range=0.05", "--fail-on", "exceeds"]) == 1
    assert "fpr_range exceeds" in capsys.readouterr().err
    assert main(base + ["--tolerance", "tpr_range=0.5", "--fail-on", "exceeds"]) == 0
    assert main(base + ["--tolerance", "auc_range=0.04", "--fail-on", "exceeds"]) == 0
    assert main(base + ["--tolerance", "auc_range=0.04", "--fail-on", "inconclusive"]) == 1
    assert main(base + ["--fail-on", "exceeds"]) == 0  # no tolerance: nothing to fail on
    capsys.readouterr()
    assert main(["compare", "--example", "--tolerance", "fpr_range=0.1"]) == 2


# ---------------------------------------------------------------------------- compare
def test_compare_p_value_agrees_with_its_interval():
    """p < 1 - ci exactly when the interval excludes 0, for every difference of many runs."""
    checked = 0
    for seed in range(4):
        y, za, g = three_groups([0.2, 0.25, 0.3], [0.8, 0.78, 0.75], n=80, seed=seed)
        zb = za + np.random.default_rng(seed + 10).normal(0, 0.8, za.size)
        c = fairaudit.compare(
            y,
            za,
            zb,
            g,
            scores="logit",
            n_boot=200,
            seed=seed,
            metrics=["fpr", "tpr", "auc", "eer"],
        )
        d = c.differences.dropna(subset=["p_value", "lo"])
        excludes = (d["lo"] > 0) | (d["hi"] < 0)
        a = 1 - 0.95  # the level as the code computes it (0.05 + 4e-17)
        assert ((d["p_value"] < a) == excludes).all(), d[(d["p_value"] < a) != excludes]
        checked += len(d)
    assert checked > 100


def test_gap_change_in_chunks_equals_the_whole_array(monkeypatch):
    """The change of a gap is computed in bounded chunks with the same numbers as all at once;
    only beyond the time cap does it fall back (wider, no p-value)."""
    import fairaudit._inference as inf

    rng = np.random.default_rng(3)
    B, n_b, n_a = 300, 37, 29
    est_a, est_b = rng.normal(0.2, 0.05, n_a), rng.normal(0.1, 0.05, n_b)
    reps_a = est_a + rng.normal(0, 0.03, (B, n_a))
    reps_b = est_b + rng.normal(0, 0.03, (B, n_b))
    no = lambda alpha: (0.0, 1.0)  # noqa: E731
    ga = inf._Gap("max", est_a, reps_a, no, inf.RANGE_CLIP)
    gb = inf._Gap("max", est_b, reps_b, no, inf.RANGE_CLIP)
    whole = inf.gap_change(ga, gb, 0.05)
    assert np.isfinite(whole).all() and whole[0] <= np.max(est_b) - np.max(est_a) <= whole[1]
    monkeypatch.setattr(inf, "MAX_CANDIDATE_VALUES", n_a * B * 3)  # 13 chunks of 3 rows
    assert inf.gap_change(ga, gb, 0.05) == pytest.approx(whole, rel=0, abs=0)
    monkeypatch.setattr(inf, "MAX_CANDIDATE_VALUES", 1)  # one row per chunk
    assert inf.gap_change(ga, gb, 0.05) == pytest.approx(whole, rel=0, abs=0)
    monkeypatch.setattr(inf, "MAX_CHANGE_VALUES", n_b * n_a * B - 1)
    lo, hi, p = inf.gap_change(ga, gb, 0.05)
    assert np.isnan(p) and lo <= whole[0] and hi >= whole[1]


def test_compare_groups_table_has_intervals():
    p = fairaudit.example_paths()
    c = fairaudit.compare(
        np.load(p["labels"]),
        np.load(p["preds"]),
        np.load(p["preds_fair"]),
        _example_groups(p),
        n_boot=100,
        metrics=["fpr", "auc"],
    )
    t = c.groups_table()
    assert {"fpr_lo", "fpr_hi", "detector"} <= set(t.columns)
    assert t["fpr_lo"].notna().all()
    assert (t["fpr_lo"] <= t["fpr"] + 1e-9).all() or (t["fpr_hi"] >= t["fpr"] - 1e-9).all()


# ---------------------------------------------------------------------------- coverage (slow)
@pytest.mark.slow
def test_gap_interval_coverage_at_equality_and_far_apart():
    cov = _coverage_module()
    eq = cov.audit_coverage(
        cov.Design(fpr=[0.2] * 3, tpr=[0.8] * 3, n_neg=300, n_pos=300),
        "iid",
        80,
        400,
        ["max-t", "percentile"],
    )
    for k in ("fpr_range", "fpr_ratio", "tpr_range", "auc_range", "eer_range", "equalized_odds"):
        assert eq["max-t"][k][0] >= 0.9, (k, eq["max-t"][k])
        assert eq["percentile"][k][0] <= 0.2, (k, eq["percentile"][k])  # the known bias
    far = cov.audit_coverage(
        cov.Design(fpr=[0.1, 0.2, 0.4], tpr=[0.9, 0.75, 0.6], n_neg=300, n_pos=300),
        "stratified",
        80,
        400,
        ["max-t", "percentile"],
    )
    for k in ("fpr_range", "tpr_range", "auc_range", "fpr_ratio"):
        assert far["max-t"][k][0] >= 0.88, (k, far["max-t"][k])
        assert far["max-t"][k][1] <= 1.5 * far["percentile"][k][1], (k, far)


@pytest.mark.slow
def test_compare_change_coverage_when_b_is_fair():
    """The issue's case: A's FPRs 0.2/0.3/0.4, B's all 0.2; the change of fpr_range is -0.2."""
    cov = _coverage_module()
    res = cov.compare_coverage(
        cov.Design(fpr=[0.2, 0.3, 0.4], tpr=[0.8] * 3, n_neg=300, n_pos=300),
        cov.Design(fpr=[0.2] * 3, tpr=[0.8] * 3, n_neg=300, n_pos=300),
        60,
        400,
        ["max-t"],
    )
    assert res["max-t"]["fpr_range"][0] >= 0.9, res
    assert res["max-t"]["fpr_max_to_overall"][0] >= 0.9, res


@pytest.mark.slow
def test_maxt_adjustment_controls_familywise_error():
    """Equal groups: the share of data sets with any gap adjusted p < 0.05 stays near 0.05."""
    hits = 0
    n_sim = 60
    for s in range(n_sim):
        y, z, g = three_groups([0.2] * 3, [0.8] * 3, n=100, seed=100 + s)
        r = fairaudit.audit(
            y, z, g, scores="logit", n_boot=0, n_perm=200, seed=s, metrics=["fpr", "tpr", "auc"]
        )
        hits += bool((r.gaps["p_adjusted"] < 0.05).any())
    assert hits / n_sim <= 0.12
