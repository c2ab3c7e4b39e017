"""The replicate engine: bounded memory, identical numbers whatever the budget, per-group bins,
compare on the ranking scale, depth control and small groups left out of resampling."""

import tracemalloc

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

import fairaudit
from fairaudit._audit import prepare
from fairaudit._bootstrap import Resampler
from fairaudit._cli import main
from fairaudit._stats import group_point_metrics, sort_rows


def _attrs(n, levels, seed=0):
    rng = np.random.default_rng(seed)
    cols = {f"a{j}": rng.choice([f"v{i}" for i in range(k)], n) for j, k in enumerate(levels)}
    y = rng.integers(0, 2, n)
    shift = sum(
        rng.normal(0, 0.3, k)[np.char.lstrip(c, "v").astype(int)]
        for c, k in zip(cols.values(), levels)
    )
    s = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * y - 0.5 + shift * (y == 0))))
    return y, s, cols


def _exact_replicate(prep, mult, metrics):
    """Exact per-group metrics of rows weighted by ``mult`` (input order): the point code."""
    d = prep.data
    w = d.w * _per_entry(d, mult)
    keep = w > 0
    data = sort_rows(d.score[keep], d.y[keep], w[keep], d.atom[keep])
    return group_point_metrics(
        data, prep.structure, prep.rule.threshold, prep.rule.to_probability, which=metrics
    )


def _binned_replicate(res, mult):
    """The engine's metrics of rows weighted by ``mult`` (input order)."""
    d = res.prep.data
    flat = res._entry_cell()
    counts = np.bincount(flat, weights=d.w * _per_entry(d, mult), minlength=2 * res.cells.n_cells)
    return res.cell_metrics(counts.reshape(1, 2, -1))


def _per_entry(d, mult):
    """Row multiplicities (input order) summed over each entry's rows."""
    return np.bincount(d.row_entry, weights=mult, minlength=d.score.size)


# ------------------------------------------------------------------ budget and chunking
@pytest.mark.parametrize(
    "kw",
    [
        dict(bootstrap="iid", ci_method="bca"),
        dict(bootstrap="stratified"),
        dict(bootstrap="cluster"),
        dict(bootstrap="iid", weighted=True),
    ],
)
def test_same_numbers_whatever_the_memory_budget(kw):
    kw = dict(kw)
    y, s, cols = _attrs(1500, [2, 3, 2], seed=1)
    clusters = np.char.add(
        np.char.add(cols["a0"], cols["a1"]), (np.arange(y.size) // 3).astype(str)
    )
    clusters = np.char.add(clusters, cols["a2"])
    if kw.pop("weighted", False):
        kw["sample_weight"] = np.random.default_rng(2).uniform(0.5, 2.0, y.size)
    common = dict(n_boot=60, n_perm=40, seed=3, clusters=clusters, min_count=1, **kw)
    big = fairaudit.audit(y, s, cols, **common)
    tiny = fairaudit.audit(y, s, cols, memory_budget=0.01, **common)  # one replicate a chunk
    pd.testing.assert_frame_equal(big.groups_long, tiny.groups_long)
    pd.testing.assert_frame_equal(big.gaps, tiny.gaps)
    assert big.gaps["p_value"].notna().all()


@pytest.mark.parametrize("scheme", ["iid", "stratified", "cluster"])
def test_compare_same_numbers_whatever_the_memory_budget(scheme):
    y, s, cols = _attrs(1200, [2, 3], seed=4)
    s2 = np.clip(s + np.random.default_rng(5).normal(0, 0.05, s.size), 0, 1)
    kw = dict(n_boot=50, seed=2, bootstrap=scheme, clusters=np.arange(y.size) // 4)
    a = fairaudit.compare(y, s, s2, cols, **kw)
    b = fairaudit.compare(y, s, s2, cols, memory_budget=0.01, **kw)
    pd.testing.assert_frame_equal(a.differences, b.differences)
    assert a.differences["lo"].notna().any()


def test_memory_stays_within_the_budget_with_many_groups():
    # 4 attributes, 299 groups, 12,000 cells: unchunked, 256 replicates of the cell counts
    # and their family bins alone would take ~100 MB per thread.
    y, s, cols = _attrs(12_000, [2, 4, 3, 4], seed=6)
    prep = prepare(y, s, cols)
    res = Resampler(prep, memory_budget=8, metrics=("fpr", "auc"))
    res.cells, res.table  # built outside the measurement
    tracemalloc.start()
    reps = res.bootstrap(24, "iid")
    boot_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    res.permutation_gaps(12, prep.structure)
    perm_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # the process already holds more than 8 MB, so the engine works in an eighth of it (1 MB)
    # per call, one replicate a chunk at least; outputs and one replicate's arrays come on top
    one_replicate = res._cell_bytes() + 16 * y.size
    assert boot_peak < 2 * (reps["auc"].nbytes * 2 + one_replicate) + 2 * 2**20
    assert perm_peak < 12 * 2**20
    assert reps["auc"].shape == (24, prep.structure.n_groups + 1)


# ------------------------------------------------------------------ the cells are right
def test_exact_cells_reproduce_point_estimates_with_ties_across_atoms():
    rng = np.random.default_rng(7)
    n = 2500
    y = rng.integers(0, 2, n)
    s = np.round(rng.random(n), 2)  # 101 values shared by every atom: ties across atoms
    cols = {"a": rng.choice(["x", "y", "z"], n), "b": rng.choice(["u", "v"], n)}
    prep = prepare(y, s, cols)
    res = Resampler(prep)
    assert res.bins_exact
    got = res.cell_metrics(res.cells.counts[None])
    want = group_point_metrics(
        prep.data, prep.structure, prep.rule.threshold, prep.rule.to_probability
    )
    for m in res.metrics:
        np.testing.assert_array_equal(got[m][0], want[m])


def test_replicate_metrics_match_scikit_learn_with_weights():
    y, s, cols = _attrs(1500, [2, 3], seed=8)
    s = np.round(s, 3)
    prep = prepare(y, s, cols)
    res = Resampler(prep)
    assert res.bins_exact
    mult = np.random.default_rng(9).multinomial(y.size, np.full(y.size, 1 / y.size))
    got = _binned_replicate(res, mult)
    st = prep.structure
    for j, (fam, name) in enumerate(zip(st.group_family, st.group_name)):
        rows = np.all([cols[a] == v for a, v in zip(fam.split("+"), name.split("+"))], axis=0)
        r = rows & (mult > 0)
        assert got["auc"][0, j] == pytest.approx(
            roc_auc_score(y[r], s[r], sample_weight=mult[r]), abs=1e-12
        )
        assert got["average_precision"][0, j] == pytest.approx(
            average_precision_score(y[r], s[r], sample_weight=mult[r]), abs=1e-12
        )


def test_bin_count_is_the_option():
    y, s, cols = _attrs(20_000, [2], seed=10)
    r = fairaudit.audit(y, s, cols, n_boot=5, n_perm=5, max_bins=1024)
    bins = r.config["bootstrap_bins"]
    assert bins["n_bins"] == 1024 and bins["exact"] is False
    # the binning error of the data itself, taken off the replicates, is recorded
    assert 0 < bins["shift"]["auc"] < 1e-3 and bins["shift_sd"]["auc"] < 0.25
    res = Resampler(prepare(y, s, cols), max_bins=1024)
    assert res.table.counts.shape[-1] == 1024
    assert max(int(f.n_bins.max()) for f in res.cells.families) == 1024
    res = Resampler(prepare(y, s, cols), max_bins=16)  # threshold + 14 calibration edges
    assert res.table.counts.shape[-1] == 16 and res.n_bins == 16


def _narrow_group_data(n, seed=0):
    """Group 'narrow' lives in [0.70, 0.7001] where its fakes sit above its reals; the other
    groups spread over [0, 1]. On bins shared by all groups it gets only a handful."""
    rng = np.random.default_rng(seed)
    g = np.where(rng.random(n) < 0.05, "narrow", rng.choice(["a", "b"], n))
    y = rng.integers(0, 2, n)
    wide = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * y - 0.5)))
    narrow = 0.7 + 1e-4 * np.clip(rng.normal(0.5 + 0.25 * (2 * y - 1), 0.2, n), 0, 1)
    return y, np.where(g == "narrow", narrow, wide), g


@pytest.mark.parametrize("max_bins", [64, 1024])
def test_binned_replicates_stay_close_to_exact_ones(max_bins):
    y, s, g = _narrow_group_data(40_000)
    prep = prepare(y, s, {"group": g})
    res = Resampler(prep, max_bins=max_bins)
    assert not res.bins_exact
    ms = ("auc", "eer", "average_precision")
    rng = np.random.default_rng(1)
    err = {m: [] for m in ms}
    ap_raw, ap_shifted = [], []
    for _ in range(5):
        mult = rng.multinomial(y.size, np.full(y.size, 1 / y.size)).astype(float)
        raw, exact = _binned_replicate(res, mult), _exact_replicate(prep, mult, ms)
        ap_raw.append(raw["average_precision"][0] - exact["average_precision"])
        binned = res._shift({m: v.copy() for m, v in raw.items()})  # as the bootstrap returns
        ap_shifted.append(binned["average_precision"][0] - exact["average_precision"])
        for m in ms:
            err[m].append(np.max(np.abs(binned[m][0] - exact[m])))
    # the bound stated in the README: below 1 / max_bins for AUC, EER and AP
    for m in ms:
        assert max(err[m]) < 1.0 / max_bins, (m, max(err[m]))
    # ties always lower AP; the shift by the data's own binning error takes most of it off
    ap_raw, ap_shifted = np.array(ap_raw), np.array(ap_shifted)
    assert (ap_raw[:, :2] < 0).all()  # the two wide groups
    assert np.abs(ap_shifted.mean(axis=0)).max() < 0.2 * np.abs(ap_raw.mean(axis=0)).max()
    # shared quantile bins (the permutation grid) resolve the narrow group poorly
    shared = res.table.bin_of_row[prep.data.atom == prep.structure.atom_names.index("narrow")]
    assert np.unique(shared).size < 0.2 * max_bins


# ------------------------------------------------------------------ compare, ranking scale
def test_compare_ranks_logits_as_logits():
    rng = np.random.default_rng(3)
    n = 3000
    y = rng.integers(0, 2, n)
    g = rng.choice(["a", "b"], n)
    za = 45 + rng.normal(size=n) + 1.0 * y  # sigmoid(z) rounds to 1.0 for every row
    zb = rng.normal(size=n) + 0.8 * y
    c = fairaudit.compare(y, za, zb, g, scores="logit", n_boot=300)
    d = c.differences
    row = d[(d.kind == "overall") & (d.name == "auc")].iloc[0]
    assert row["a"] == pytest.approx(roc_auc_score(y, za), abs=1e-12)
    assert row["diff"] < 0
    assert row["lo"] <= row["diff"] <= row["hi"] and row["hi"] < 0  # before: [+0.207, +0.242]


def test_compare_threshold_on_the_ranking_scale():
    # logits just below logit(0.99) whose rounded sigmoid is >= 0.99: not fake (as the point
    # estimate says), in every replicate too
    thr = np.log(0.99 / (1 - 0.99))  # as the score rule computes it
    below = np.nextafter(thr, -np.inf)
    assert 1 / (1 + np.exp(-below)) >= 0.99
    rng = np.random.default_rng(4)
    n = 2000
    y = np.ones(n, int)
    y[:500] = 0
    z = np.where(rng.random(n) < 0.5, below, thr + 1.0)
    c = fairaudit.compare(
        y, z, z + 0.0, rng.choice(["a", "b"], n), scores="logit", threshold=0.99, n_boot=100
    )
    a = fairaudit.audit(y, z, np.zeros(n), scores="logit", threshold=0.99, n_boot=100)
    tpr = a.intervals("tpr").iloc[-1]
    assert tpr["lo"] <= tpr["value"] <= tpr["hi"]
    assert tpr["value"] == pytest.approx(np.mean(z[y == 1] >= thr))
    assert (c.differences["diff"].dropna() == 0).all()


# ------------------------------------------------------------------ depth and small groups
def test_skip_small_groups_reports_them_without_resampling():
    y, s, cols = _attrs(3000, [2, 3], seed=11)
    cols["a1"] = cols["a1"].astype("<U4")
    cols["a1"][:12] = "rare"
    r = fairaudit.audit(y, s, cols, n_boot=50, min_count=30, skip_small_groups=True)
    t = r.intervals("fpr")
    rare = t.loc[("a1", "rare")]
    assert (
        np.isfinite(rare["value"])
        or r.counts.set_index(["family", "group"]).loc[("a1", "rare"), "n_neg"] == 0
    )
    assert np.isnan(rare["lo"]) and np.isnan(rare["hi"])
    assert np.isfinite(t.loc[("a1", "v0"), "lo"])
    assert "a1=rare" in r.config["not_resampled"] and r.config["skip_small_groups"]
    assert any("not resampled" in w for w in r.warnings)
    gap = r.gap("a1", "fpr_range")
    assert "rare" in gap["skipped"] and np.isfinite(gap["lo"]) and np.isfinite(gap["p_value"])
    keep = [v for v in ("v0", "v1", "v2")]
    fpr = t.loc["a1"].loc[keep, "value"]
    assert gap["value"] == pytest.approx(fpr.max() - fpr.min())
    full = fairaudit.audit(y, s, cols, n_boot=0, min_count=30)
    assert full.config["skip_small_groups"] is False and "not_resampled" not in full.config


def test_max_order_limits_the_intersections():
    y, s, cols = _attrs(800, [2, 3, 2], seed=12)
    r = fairaudit.audit(y, s, cols, max_order=2)
    assert r.config["max_order"] == 2
    assert "a0+a1+a2" not in r.families and "a0+a2" in r.families
    assert fairaudit.audit(y, s, cols).config["max_order"] == 3
    with pytest.raises(fairaudit.FairauditError, match="--max-order"):
        fairaudit.audit(y, s, cols, max_order=0)
    with pytest.raises(fairaudit.FairauditError, match="--memory-budget"):
        fairaudit.audit(y, s, cols, memory_budget=-1)


def _write_inputs(tmp_path, n=600):
    y, s, cols = _attrs(n, [2, 3, 2], seed=13)
    np.save(tmp_path / "p.npy", s)
    np.save(tmp_path / "y.npy", y)
    pd.DataFrame(cols).to_csv(tmp_path / "d.csv", index=False)
    return [str(tmp_path / f) for f in ("p.npy", "y.npy", "d.csv")]


def test_cli_depth_budget_and_small_groups(tmp_path, capsys):
    files = _write_inputs(tmp_path)
    args = ["report", *files, "--attributes", "a0,a1,a2", "--n-boot", "20", "--quiet"]
    assert main(args + ["--max-order", "1", "--format", "json"]) == 0
    doc = __import__("json").loads(capsys.readouterr().out)
    assert doc["config"]["families"] == ["a0", "a1", "a2"] and doc["config"]["max_order"] == 1
    assert (
        main(
            args
            + [
                "--memory-budget",
                "16",
                "--skip-small-groups",
                "--min-count",
                "60",
                "--format",
                "json",
            ]
        )
        == 0
    )
    doc = __import__("json").loads(capsys.readouterr().out)
    assert doc["config"]["skip_small_groups"] is True and doc["config"]["not_resampled"]
    for bad_args, name in (
        (["--max-order", "0"], "--max-order"),
        (["--memory-budget", "0"], "--memory-budget"),
    ):
        assert main(args + bad_args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"fairaudit: error: {name}")


# ------------------------------------------------------------------ the report, many groups
def test_report_figures_stay_legible_with_many_groups():
    from fairaudit import plots
    from fairaudit._html import _figures_note, build_figures

    y, s, cols = _attrs(3000, [2, 4, 3, 4, 3], seed=14)
    r = fairaudit.audit(y, s, cols, n_boot=0)
    assert len(r.families) == 31
    shown = plots.readable_families(r, max_rows=60)
    assert shown[:5] == ["a0", "a1", "a2", "a3", "a4"]
    assert all(len(r.counts[r.counts["family"] == f]) <= 12 for f in shown[5:])
    figs = build_figures(r)
    for name, _, _, fig in figs:
        assert fig.get_size_inches()[1] < 16, name  # at most a page or two tall
    heatmaps = [n for n, *_ in figs if n.startswith("heatmap_")]
    assert heatmaps and all(n[len("heatmap_") :].replace("_", "+") in shown for n in heatmaps)
    note = _figures_note(r)
    assert f"other {31 - len(shown)} families" in note
    html = r.to_html(figures=False)
    assert len(html) < 5 * 2**20
    assert "a0+a1+a2+a3+a4" in html  # every family is still in the tables


@pytest.mark.parametrize(
    "rows, how", [(600, "draw_rows_per_atom"), (200_000, "draw_per_atom")]
)  # rows drawn within atoms, or one multinomial per atom over its cells
def test_stratified_replicates_keep_every_atom_size(rows, how):
    y, s, cols = _attrs(rows, [2, 3], seed=15)
    res = Resampler(prepare(y, s, cols))
    draw = res._boot_drawer("stratified")
    assert draw.__name__ == how
    atom_of_cell = res.cells.cell_atom
    want = np.bincount(atom_of_cell, weights=res.cells.counts.sum(axis=0))
    for b in range(3):
        got = draw(b)
        assert np.array_equal(np.bincount(atom_of_cell, weights=got.sum(axis=0)), want)
        assert (got[res.cells.counts == 0] == 0).all()  # only observed cells
    assert not np.array_equal(draw(0), draw(1))
