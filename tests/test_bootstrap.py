"""Bootstrap intervals, permutation tests and paired comparisons: exact cases and simulations."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import ndtr

import fairaudit


def _data(n=600, seed=0, n_groups=3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    g = rng.integers(0, n_groups, n)
    s = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * y - 0.7 + 0.3 * g)))
    return y, s, np.array([f"g{k}" for k in g])


def test_same_seed_same_numbers_whatever_the_chunk_size():
    y, s, g = _data()
    kw = dict(n_boot=150, seed=7, ci_method="bca")
    r1 = fairaudit.audit(y, s, g, chunk_size=7, **kw)
    r2 = fairaudit.audit(y, s, g, chunk_size=64, **kw)
    pd.testing.assert_frame_equal(r1.groups_long, r2.groups_long)
    pd.testing.assert_frame_equal(r1.gaps, r2.gaps)
    r3 = fairaudit.audit(y, s, g, chunk_size=64, n_boot=150, seed=8, ci_method="bca")
    assert not np.allclose(r1.groups_long["lo"], r3.groups_long["lo"], equal_nan=True)


@pytest.mark.parametrize("scheme", ["iid", "stratified", "cluster"])
def test_every_metric_and_gap_gets_an_interval(scheme):
    y, s, g = _data(n=800, seed=1)
    # clusters sit inside one group (as videos do), which the permutation test requires
    clusters = np.char.add(g, (np.arange(y.size) // 4).astype(str)) if scheme == "cluster" else None
    r = fairaudit.audit(y, s, g, n_boot=100, bootstrap=scheme, clusters=clusters)
    assert r.config["bootstrap"] == scheme
    assert r.groups_long[["lo", "hi"]].notna().all().all()
    ok = (r.groups_long["lo"] <= r.groups_long["value"] + 1e-9) & (
        r.groups_long["value"] <= r.groups_long["hi"] + 1e-9
    )
    assert ok.mean() > 0.95
    gaps = r.gaps.set_index("name")
    assert gaps.loc["equalized_odds", ["lo", "hi", "p_value"]].notna().all()
    assert gaps[["lo", "hi", "p_value"]].notna().all().all()


def test_stratified_bootstrap_keeps_group_sizes():
    # With group sizes fixed, the selection rate of a group is Binomial(n_g, s_g) / n_g:
    # the percentile interval lies at its binomial quantiles (up to Monte-Carlo error).
    rng = np.random.default_rng(3)
    n_g = 400
    g = np.repeat(["a", "b"], n_g)
    y = rng.integers(0, 2, 2 * n_g)
    s = rng.random(2 * n_g)
    r = fairaudit.audit(
        y, s, g, n_boot=3000, n_perm=0, bootstrap="stratified", metrics=["selection_rate"]
    )
    iv = r.intervals("selection_rate").loc["group"]
    for grp in ("a", "b"):
        p = iv.loc[grp, "value"]
        lo, hi = stats.binom.ppf([0.025, 0.975], n_g, p) / n_g
        assert abs(iv.loc[grp, "lo"] - lo) <= 1.5 / n_g
        assert abs(iv.loc[grp, "hi"] - hi) <= 1.5 / n_g


def test_iid_bootstrap_matches_binomial_closed_form():
    rng = np.random.default_rng(4)
    n = 2000
    y = rng.integers(0, 2, n)
    s = rng.random(n)
    r = fairaudit.audit(
        y, s, np.zeros(n, int), n_boot=3000, n_perm=0, metrics=["selection_rate", "accuracy"]
    )
    ov = r.intervals("selection_rate").loc[("overall", "overall")]
    lo, hi = stats.binom.ppf([0.025, 0.975], n, ov["value"]) / n
    assert abs(ov["lo"] - lo) <= 2.5 / n and abs(ov["hi"] - hi) <= 2.5 / n


def test_bca_close_to_percentile_when_symmetric_and_shifted_when_skewed():
    rng = np.random.default_rng(5)
    n = 3000
    y = rng.integers(0, 2, n)
    s = rng.random(n)
    kw = dict(n_boot=2000, n_perm=0, metrics=["selection_rate"])
    rp = fairaudit.audit(y, s, np.zeros(n, int), **kw)
    rb = fairaudit.audit(y, s, np.zeros(n, int), ci_method="bca", **kw)
    a = rp.intervals("selection_rate").iloc[-1]
    b = rb.intervals("selection_rate").iloc[-1]
    assert abs(a["lo"] - b["lo"]) < 0.006 and abs(a["hi"] - b["hi"]) < 0.006
    # a rare event: the binomial is skewed right; BCa moves both limits up vs percentile
    s2 = np.where(rng.random(n) < 0.01, 0.9, 0.1)
    rp2 = fairaudit.audit(y, s2, np.zeros(n, int), **kw).intervals("selection_rate").iloc[-1]
    rb2 = (
        fairaudit.audit(y, s2, np.zeros(n, int), ci_method="bca", **kw)
        .intervals("selection_rate")
        .iloc[-1]
    )
    assert rb2["hi"] >= rp2["hi"] and rb2["lo"] >= rp2["lo"] - 1 / n


def test_replicate_distributions_agree_with_fairlearn():
    from fairlearn.metrics import MetricFrame, false_positive_rate, true_positive_rate

    y, s, g = _data(n=3000, seed=6, n_groups=2)
    pred = (s >= 0.5).astype(int)
    q = [0.16, 0.5, 0.84]
    mf = MetricFrame(
        metrics={"fpr": false_positive_rate, "tpr": true_positive_rate},
        y_true=y,
        y_pred=pred,
        sensitive_features=g,
        n_boot=100,
        ci_quantiles=q,
        random_state=1,
    )
    r = fairaudit.audit(y, s, g, n_boot=2000, n_perm=0, metrics=["fpr", "tpr"])
    from fairaudit._audit import prepare
    from fairaudit._bootstrap import Resampler

    prep = prepare(y, s, g)
    reps = Resampler(prep, metrics=("fpr", "tpr")).bootstrap(2000, "iid")
    for m in ("fpr", "tpr"):
        fl = [mf.by_group_ci[i][m] for i in range(3)]
        ours = np.quantile(reps[m][:, :2], q, axis=0)
        sd = (fl[2] - fl[0]).to_numpy() / 2
        # 100 fairlearn replicates: Monte-Carlo error of a quantile is about 0.13 sd
        assert np.all(np.abs(ours[1] - fl[1].to_numpy()) < 0.4 * sd)
        assert np.all(np.abs((ours[2] - ours[0]) / 2 - sd) < 0.3 * sd)
        # fairlearn's difference() CI vs our range replicates
        fd = [mf.difference_ci()[i][m] for i in range(3)]
        rng_reps = np.abs(reps[m][:, 0] - reps[m][:, 1])
        oq = np.quantile(rng_reps, q)
        assert abs(oq[1] - fd[1]) < 0.4 * (fd[2] - fd[0]) / 2
    assert r.gap("group", "fpr_range")["lo"] <= r.gap("group", "fpr_range")["value"]


# ------------------------------------------------------------------ simulations (slow)
def _simulate(rng, mu0, mu1, n_neg, n_pos):
    rows_y, rows_s, rows_g = [], [], []
    for k, (a, b) in enumerate(zip(mu0, mu1)):
        rows_y.append(np.r_[np.zeros(n_neg, int), np.ones(n_pos, int)])
        z = np.r_[rng.normal(a, 1, n_neg), rng.normal(b, 1, n_pos)]
        rows_s.append(1 / (1 + np.exp(-z)))
        rows_g.append(np.full(n_neg + n_pos, f"g{k}"))
    return np.concatenate(rows_y), np.concatenate(rows_s), np.concatenate(rows_g)


@pytest.mark.slow
def test_percentile_interval_coverage_by_simulation():
    rng = np.random.default_rng(11)
    mu0, mu1 = np.array([-1.0, -0.6]), np.array([1.0, 0.8])
    truth = {"fpr": ndtr(mu0), "tpr": ndtr(mu1), "auc": ndtr((mu1 - mu0) / np.sqrt(2))}
    hits = {m: [] for m in truth}
    for sim in range(500):
        y, s, g = _simulate(rng, mu0, mu1, 150, 150)
        r = fairaudit.audit(
            y, s, g, n_boot=300, n_perm=0, seed=sim, metrics=["fpr", "tpr", "auc"], min_count=1
        )
        for m in truth:
            iv = r.intervals(m).loc["group"]
            hits[m].extend((iv["lo"].to_numpy() <= truth[m]) & (truth[m] <= iv["hi"].to_numpy()))
    for m, h in hits.items():
        assert 0.93 <= np.mean(h) <= 0.97, (m, np.mean(h))


@pytest.mark.slow
def test_permutation_test_false_positive_rate():
    rng = np.random.default_rng(12)
    rejections = {"fpr_range": 0, "auc_range": 0, "equalized_odds": 0}
    n_sim = 500
    for sim in range(n_sim):
        y, s, g = _simulate(rng, [-0.8] * 3, [0.8] * 3, 120, 100)
        r = fairaudit.audit(
            y, s, g, n_boot=0, n_perm=99, seed=sim, metrics=["fpr", "tpr", "auc"], min_count=1
        )
        gaps = r.gaps.set_index("name")["p_value"]
        for k in rejections:
            rejections[k] += gaps[k] <= 0.05
    for k, v in rejections.items():
        assert 0.03 <= v / n_sim <= 0.07, (k, v / n_sim)


@pytest.mark.slow
def test_cluster_bootstrap_respects_correlated_frames():
    rng = np.random.default_rng(13)
    n_videos, frames, sd_video, sd_frame, mu = 60, 10, 1.2, 0.6, -1.0
    truth = ndtr(mu / np.sqrt(sd_video**2 + sd_frame**2))  # FPR of a random frame
    cover = {"iid": [], "cluster": []}
    for sim in range(300):
        u = np.repeat(rng.normal(mu, sd_video, n_videos), frames)
        z = u + rng.normal(0, sd_frame, u.size)
        y = np.zeros(u.size, int)
        y[:frames] = 1  # one fake video so that the class exists; FPR uses the reals
        vid = np.repeat(np.arange(n_videos), frames)
        s = 1 / (1 + np.exp(-z))
        for scheme in cover:
            r = fairaudit.audit(
                y,
                s,
                np.zeros(u.size, int),
                n_boot=300,
                n_perm=0,
                seed=sim,
                bootstrap=scheme,
                clusters=vid,
                metrics=["fpr"],
                min_count=1,
            )
            iv = r.intervals("fpr").iloc[-1]
            cover[scheme].append(iv["lo"] <= truth <= iv["hi"])
    assert 0.91 <= np.mean(cover["cluster"]) <= 0.98, np.mean(cover["cluster"])
    assert np.mean(cover["iid"]) < 0.80, np.mean(cover["iid"])


# ------------------------------------------------------------------ paired comparison
def test_compare_paired_differences():
    y, s, g = _data(n=1500, seed=8)
    rng = np.random.default_rng(1)
    s2 = np.clip(s + rng.normal(0, 0.02, s.size), 0, 1)
    c = fairaudit.compare(y, s, s2, g, n_boot=200)
    d = c.differences
    ov = d[(d.kind == "overall") & (d.name == "auc")].iloc[0]
    from sklearn.metrics import roc_auc_score

    assert ov["a"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert ov["diff"] == pytest.approx(roc_auc_score(y, s2) - roc_auc_score(y, s), abs=1e-12)
    # paired: the interval of a tiny perturbation is far narrower than either AUC's interval
    ra = fairaudit.audit(y, s, g, n_boot=200, n_perm=0, metrics=["auc"])
    width_a = np.diff(ra.intervals("auc").iloc[-1][["lo", "hi"]].to_numpy())[0]
    assert (ov["hi"] - ov["lo"]) < 0.3 * width_a
    # identical detectors: every difference is exactly 0 with p = 1
    same = fairaudit.compare(y, s, s, g, n_boot=50)
    assert np.allclose(same.differences["diff"].dropna(), 0)
    assert (same.differences["p_value"].dropna() == 1).all()


@pytest.mark.slow
def test_compare_detects_a_real_gap_reduction():
    rng = np.random.default_rng(21)
    n = 4000
    g = rng.choice(["a", "b"], n)
    y = rng.integers(0, 2, n)
    base = rng.normal(size=n) + 2 * y - 1
    unfair = 1 / (1 + np.exp(-(base + np.where((g == "b") & (y == 0), 0.8, 0))))
    fair = 1 / (1 + np.exp(-(base + rng.normal(0, 0.3, n))))
    c = fairaudit.compare(y, unfair, fair, g, n_boot=400)
    row = c.gap_differences("group").set_index("name").loc["fpr_range"]
    assert row["diff"] < 0 and row["hi"] < 0 and row["p_value"] < 0.01
