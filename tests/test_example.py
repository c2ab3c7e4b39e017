"""The synthetic example shipped in fairaudit/data/example and its generator."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from fairaudit import _example
from fairaudit._example import example_paths, make_example, write_example

COLUMNS = [
    "img_path",
    "label",
    "ismale",
    "isasian",
    "iswhite",
    "isblack",
    "intersec_label",
    "spe_label",
    "video_id",
]
FLAGS = ["ismale", "isasian", "iswhite", "isblack"]


@pytest.fixture(scope="module")
def shipped():
    paths = example_paths()
    df = pd.read_csv(paths["csv"], dtype={"video_id": str})
    return {
        "df": df,
        "labels": np.load(paths["labels"]),
        "a": np.load(paths["preds"]),
        "b": np.load(paths["preds_fair"]),
    }


def _rates(df, labels, scores):
    """Per-group (FPR, TPR) at threshold 0.5, groups 0..7."""
    group = df["intersec_label"].to_numpy()
    hat = scores >= 0.5
    fpr = np.array([hat[(group == g) & (labels == 0)].mean() for g in range(8)])
    tpr = np.array([hat[(group == g) & (labels == 1)].mean() for g in range(8)])
    return fpr, tpr


def test_example_paths_exist():
    paths = example_paths()
    assert set(paths) == {"preds", "preds_fair", "labels", "csv", "dir"}
    assert paths["dir"].is_dir()
    for key in ("preds", "preds_fair", "labels", "csv"):
        assert paths[key].is_file(), key
        assert paths[key].parent == paths["dir"]
    assert (paths["dir"] / "README.md").is_file()


def test_shipped_files_equal_fresh_generation(tmp_path):
    fresh = write_example(tmp_path)  # default n_rows and seed
    shipped = example_paths()
    assert fresh["csv"].read_bytes() == shipped["csv"].read_bytes()
    np.testing.assert_array_equal(np.load(fresh["labels"]), np.load(shipped["labels"]))
    for key in ("preds", "preds_fair"):
        new, old = np.load(fresh[key]), np.load(shipped[key])
        assert new.dtype == old.dtype == np.float64 and new.shape == old.shape
        # Equal up to last-bit differences of exp() between numpy builds.
        np.testing.assert_allclose(new, old, rtol=1e-13, atol=0)
    readme = (shipped["dir"] / "README.md").read_text(encoding="utf-8")
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == readme


def test_readme_says_synthetic_and_how_to_regenerate():
    readme = (example_paths()["dir"] / "README.md").read_text(encoding="utf-8")
    assert "SYNTHETIC" in readme
    assert "python -m fairaudit._example --out fairaudit/data/example --seed 0" in readme
    assert "default_rng(0)" in readme


def test_arrays_match_csv(shipped):
    df, labels = shipped["df"], shipped["labels"]
    assert labels.dtype == np.int8 and labels.ndim == 1
    np.testing.assert_array_equal(labels, df["label"].to_numpy())
    for key in ("a", "b"):
        p = shipped[key]
        assert p.dtype == np.float64 and p.shape == labels.shape
        assert np.all((p > 0) & (p < 1))
    assert shipped["a"].shape == (10_000,)


def test_schema(shipped):
    df = shipped["df"]
    assert list(df.columns) == COLUMNS
    assert len(df) == 10_000
    assert set(df["label"].unique()) == {0, 1}
    for col in FLAGS:
        assert set(df[col].unique()) <= {1, -1}, col
    race_flags = df[["isasian", "iswhite", "isblack"]].to_numpy()
    assert ((race_flags == 1).sum(axis=1) <= 1).all()  # others = all three -1
    race = np.select(
        [df["isasian"] == 1, df["iswhite"] == 1, df["isblack"] == 1], [0, 1, 2], default=3
    )
    expected = np.where(df["ismale"] == 1, 0, 4) + race
    np.testing.assert_array_equal(df["intersec_label"].to_numpy(), expected)
    # spe_label: 0 for reals, 1..5 for fakes
    assert (df.loc[df["label"] == 0, "spe_label"] == 0).all()
    assert set(df.loc[df["label"] == 1, "spe_label"].unique()) == {1, 2, 3, 4, 5}
    assert df["img_path"].str.fullmatch(r"frames/[A-Za-z0-9]+/[0-9_]+/[0-9]+\.png").all()
    assert (df["img_path"].str.split("/").str[1:3].str.join("/") == df["video_id"]).all()
    assert 0.75 <= df["label"].mean() <= 0.86  # FF++-like fake share


def test_groups_all_present_with_both_labels(shipped):
    counts = shipped["df"].groupby(["intersec_label", "label"]).size().unstack(fill_value=0)
    assert list(counts.index) == list(range(8))
    assert (counts[[0, 1]] >= 60).all().all(), counts
    # FF++-like imbalance: white groups dominate, female-black is not larger than them
    size = counts.sum(axis=1)
    assert size[5] == size.max() and size[1] > size.drop([1, 5]).max()


def test_frames_of_a_video_share_label_group_method(shipped):
    df = shipped["df"]
    per_video = df.groupby("video_id")[["label", "intersec_label", "spe_label", *FLAGS]].nunique()
    assert (per_video == 1).all().all()
    frames = df.groupby("video_id").size()
    assert frames.between(*_example.FRAMES_PER_VIDEO).all()
    assert len(frames) >= 300  # enough clusters for a video bootstrap


def test_frames_of_a_video_are_correlated(shipped):
    # The video random effect: the between-video spread of the mean logit,
    # within one cell (real, female+white), clearly exceeds what frame noise gives.
    df, a = shipped["df"], shipped["a"]
    cell = ((df["label"] == 0) & (df["intersec_label"] == 5)).to_numpy()
    logit = np.log(a[cell] / (1 - a[cell]))
    video = df.loc[cell, "video_id"].to_numpy()
    means = pd.Series(logit).groupby(video).mean()
    sizes = pd.Series(logit).groupby(video).size()
    within = pd.Series(logit).groupby(video).var().mean()
    assert means.var() > 2 * within / sizes.mean()


def test_designed_properties(shipped):
    df, labels, a, b = shipped["df"], shipped["labels"], shipped["a"], shipped["b"]
    auc_a, auc_b = roc_auc_score(labels, a), roc_auc_score(labels, b)
    assert 0.88 <= auc_a <= 0.97
    assert 0.005 <= auc_a - auc_b <= 0.03
    fpr_a, tpr_a = _rates(df, labels, a)
    fpr_b, tpr_b = _rates(df, labels, b)
    assert np.ptp(fpr_a) > np.ptp(fpr_b)
    assert np.ptp(tpr_a) > np.ptp(tpr_b)
    assert 0.10 <= np.ptp(fpr_a) <= 0.30
    # who is hurt: black reals flagged more often than white reals; asian fakes missed more
    assert min(fpr_a[2], fpr_a[6]) > max(fpr_a[1], fpr_a[5])
    assert max(tpr_a[0], tpr_a[4]) < min(tpr_a[1], tpr_a[5])


def test_make_example_is_deterministic_and_sized():
    df1, y1, a1, b1 = make_example(n_rows=2_000, seed=3)
    df2, y2, a2, b2 = make_example(n_rows=2_000, seed=3)
    pd.testing.assert_frame_equal(df1, df2)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)
    assert len(df1) == len(y1) == len(a1) == len(b1) == 2_000
    assert y1.dtype == np.int8
    _, _, a3, _ = make_example(n_rows=2_000, seed=4)
    assert not np.array_equal(a1, a3)


@pytest.mark.parametrize("bad", [10, 999, 2.5, "10000", True])
def test_make_example_rejects_bad_n_rows(bad):
    with pytest.raises(ValueError, match="n_rows"):
        make_example(n_rows=bad)


def test_command_line_entry_point(tmp_path, capsys):
    _example.main(["--out", str(tmp_path / "ex"), "--seed", "1", "--n-rows", "1500"])
    out = tmp_path / "ex"
    for name in ("test.csv", "labels.npy", "preds.npy", "preds_fair.npy", "README.md"):
        assert (out / name).is_file(), name
    assert len(pd.read_csv(out / "test.csv")) == 1500
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "--seed 1 --n-rows 1500" in readme
    assert "wrote" in capsys.readouterr().out
