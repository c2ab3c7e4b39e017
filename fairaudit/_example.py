"""Synthetic example audit data shipped with the package, and its generator.

The shipped files under ``fairaudit/data/example/`` are exactly what
``python -m fairaudit._example --out fairaudit/data/example --seed 0`` writes.
Nothing here is real: no faces, no detector. The data imitate the layout of the
FF++ test CSV of the PG-FDD code (8 gender x race groups, frames grouped in
videos, ~80 % fakes) and two detectors whose errors differ by group:
detector A (``preds.npy``) and a "fairness-trained" detector B
(``preds_fair.npy``) with about half of A's group gaps and a slightly lower AUC.

Only numpy, pandas and the standard library are used, so importing this module
never pulls in the heavier parts of the package.
"""

from __future__ import annotations

import argparse
import functools
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["make_example", "write_example", "example_paths"]

DEFAULT_N_ROWS = 10_000
DEFAULT_SEED = 0

# FF++ coding of ``intersec_label`` (seed spec section 7): gender-major, race-minor.
GROUPS = (
    "male+asian",
    "male+white",
    "male+black",
    "male+others",
    "female+asian",
    "female+white",
    "female+black",
    "female+others",
)
# FF++ training-set group sizes (the LDAM counts of the seed code), ids 0..7.
FFPP_TRAIN_COUNTS = (2475, 25443, 1468, 4163, 8013, 31281, 1111, 2185)
# Every group gets at least this share of the identities, so that even the
# smallest group has several real videos (>= 60 real frames in the 10k set).
MIN_GROUP_SHARE = 0.06

# spe_label 1..5 (seed spec section 3.1); reals are spe_label 0 in folder "original".
METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
REAL_FOLDER = "original"
FAKES_PER_IDENTITY = (4, 5)  # FF++: 4-5 manipulations of every real video
FRAMES_PER_VIDEO = (8, 24)  # inclusive range, uniform

# --- score model, in logit units ------------------------------------------
# logit = class mean + method effect (fakes) + group shift[class]
#         + group scale * (video effect + frame noise)
REAL_MEAN = -1.45
FAKE_MEAN = 1.3
METHOD_EFFECT = (0.5, 0.0, 0.3, -0.6, -0.2)  # Deepfakes ... FaceShifter
VIDEO_SD = 0.6  # video random effect, shared by every frame of a video
FRAME_SD = 0.95  # frame-level noise
# Detector A's group-dependent shifts (added to the logit) and noise scales.
#                  m+asian m+white m+black m+others f+asian f+white f+black f+others
REAL_SHIFT_A = (0.00, -0.10, 0.55, 0.20, 0.00, 0.00, 0.65, 0.50)
FAKE_SHIFT_A = (-0.60, 0.10, 0.00, -0.10, -0.70, 0.05, -0.10, -0.20)
GROUP_SCALE_A = (1.05, 0.95, 1.10, 1.05, 1.05, 1.00, 1.15, 1.10)
# Detector B ("fairness-trained"): every group shift and every excess of the
# scale over 1 multiplied by GAP_SHRINK_B (its rate gaps come out at about half
# of A's in a large sample); its class means are pulled together by
# SEPARATION_LOSS_B (reals up, fakes down), which costs ~0.01-0.02 AUC.
GAP_SHRINK_B = 0.4
SEPARATION_LOSS_B = (0.1, 0.25)  # (reals, fakes)
# Both detectors see the same videos, so they share the video effect (a hard
# video is hard for both); their frame noise is correlated, not equal:
# B's frame noise = SHARED_FRAME_NOISE_B * A's + sqrt(1 - SHARED_FRAME_NOISE_B**2) * fresh noise.
SHARED_FRAME_NOISE_B = 0.8

CSV_COLUMNS = (
    "img_path",
    "label",
    "ismale",
    "isasian",
    "iswhite",
    "isblack",
    "intersec_label",
    "spe_label",
    "video_id",
)
FILES = {
    "csv": "test.csv",
    "labels": "labels.npy",
    "preds": "preds.npy",
    "preds_fair": "preds_fair.npy",
}
README_NAME = "README.md"


def _group_shares() -> np.ndarray:
    """FF++ training shares with every group raised to at least MIN_GROUP_SHARE."""
    share = np.asarray(FFPP_TRAIN_COUNTS, float) / sum(FFPP_TRAIN_COUNTS)
    floored = share < MIN_GROUP_SHARE
    # Raising the small groups is taken from the large ones in proportion to
    # their FF++ share (one pass suffices: the large groups stay large).
    out = np.where(floored, MIN_GROUP_SHARE, 0.0)
    rest = 1.0 - out.sum()
    out[~floored] = share[~floored] / share[~floored].sum() * rest
    return out


def _allocate(total: int, shares: np.ndarray, minimum: int) -> np.ndarray:
    """Integer split of ``total`` by ``shares`` (largest remainder), each >= minimum."""
    raw = shares * total
    counts = np.maximum(np.floor(raw).astype(int), minimum)
    order = np.argsort(-(raw - np.floor(raw)), kind="stable")
    i = 0
    while counts.sum() < total:
        counts[order[i % len(order)]] += 1
        i += 1
    return counts


def _frame_counts(rng: np.random.Generator, n_videos: int, n_rows: int) -> np.ndarray:
    """Frames per video in FRAMES_PER_VIDEO, adjusted so they sum to ``n_rows``."""
    lo, hi = FRAMES_PER_VIDEO
    if not lo * n_videos <= n_rows <= hi * n_videos:
        raise ValueError(f"cannot split {n_rows} frames over {n_videos} videos of {lo}-{hi} frames")
    counts = rng.integers(lo, hi + 1, size=n_videos)
    diff = n_rows - int(counts.sum())
    step = 1 if diff > 0 else -1
    # Spread the correction over the videos in a random order, one frame at a time.
    order = rng.permutation(n_videos)
    i = 0
    while diff != 0:
        v = order[i % n_videos]
        if lo <= counts[v] + step <= hi:
            counts[v] += step
            diff -= step
        i += 1
    return counts


def _flags(group: np.ndarray) -> dict[str, np.ndarray]:
    """1/-1 attribute flags of the research schema from intersec_label 0..7."""
    race = group % 4  # 0 asian, 1 white, 2 black, 3 others
    one = np.int8(1)
    minus = np.int8(-1)
    return {
        "ismale": np.where(group < 4, one, minus),
        "isasian": np.where(race == 0, one, minus),
        "iswhite": np.where(race == 1, one, minus),
        "isblack": np.where(race == 2, one, minus),
    }


def _videos(rng: np.random.Generator, n_rows: int) -> pd.DataFrame:
    """One row per video: identity, group, label, method, name, frame count."""
    lo, hi = FRAMES_PER_VIDEO
    mean_videos_per_identity = 1 + np.mean(FAKES_PER_IDENTITY)
    n_identities = max(8 * 2, round(n_rows / (mean_videos_per_identity * (lo + hi) / 2)))
    per_group = _allocate(n_identities, _group_shares(), minimum=2)
    n_identities = int(per_group.sum())  # the minimum may add a few
    identity_group = np.repeat(np.arange(8), per_group)
    identity_group = identity_group[rng.permutation(n_identities)]
    width = max(3, len(str(n_identities - 1)))
    # FF++ names a fake "<target>_<source>": the face of another identity.
    partner = (np.arange(n_identities) + rng.integers(1, n_identities, n_identities)) % n_identities

    rows = []
    for ident in range(n_identities):
        target = f"{ident:0{width}d}"
        group = int(identity_group[ident])
        rows.append((ident, group, 0, 0, REAL_FOLDER, target))
        k = int(rng.choice(FAKES_PER_IDENTITY))
        methods = np.sort(rng.choice(len(METHODS), size=k, replace=False)) + 1
        fake_name = f"{target}_{partner[ident]:0{width}d}"
        rows.extend((ident, group, 1, int(m), METHODS[m - 1], fake_name) for m in methods)
    videos = pd.DataFrame(rows, columns=["identity", "group", "label", "spe", "folder", "name"])
    videos["frames"] = _frame_counts(rng, len(videos), n_rows)
    return videos


def _logits(
    rng: np.random.Generator, frames: pd.DataFrame, video_of_frame: np.ndarray, n_videos: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame logits of detector A and detector B (see the module constants)."""
    label = frames["label"].to_numpy()
    group = frames["intersec_label"].to_numpy()
    spe = frames["spe_label"].to_numpy()
    n = len(frames)
    method = np.where(spe > 0, np.asarray((0.0,) + METHOD_EFFECT)[spe], 0.0)

    video_effect = VIDEO_SD * rng.standard_normal(n_videos)[video_of_frame]
    frame_a = FRAME_SD * rng.standard_normal(n)
    frame_fresh = FRAME_SD * rng.standard_normal(n)
    frame_b = SHARED_FRAME_NOISE_B * frame_a + np.sqrt(1 - SHARED_FRAME_NOISE_B**2) * frame_fresh
    noise_a = video_effect + frame_a
    noise_b = video_effect + frame_b

    def detector(
        shrink: float, separation_loss: tuple[float, float], noise: np.ndarray
    ) -> np.ndarray:
        shift = np.where(
            label == 1, np.asarray(FAKE_SHIFT_A)[group], np.asarray(REAL_SHIFT_A)[group]
        )
        scale = 1 + shrink * (np.asarray(GROUP_SCALE_A)[group] - 1)
        mean = np.where(label == 1, FAKE_MEAN - separation_loss[1], REAL_MEAN + separation_loss[0])
        return mean + method + shrink * shift + scale * noise

    return detector(1.0, (0.0, 0.0), noise_a), detector(GAP_SHRINK_B, SEPARATION_LOSS_B, noise_b)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def make_example(
    n_rows: int = DEFAULT_N_ROWS, seed: int = DEFAULT_SEED
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Generate the synthetic example audit data.

    Parameters
    ----------
    n_rows : int, default 10_000
        Number of frames (rows); at least 1_000.
    seed : int, default 0
        Seed of the ``numpy.random.Generator``; the output is a pure function
        of ``(n_rows, seed)``.

    Returns
    -------
    test_df : pandas.DataFrame
        The research CSV schema: ``img_path, label, ismale, isasian, iswhite,
        isblack, intersec_label, spe_label, video_id`` (flags 1/-1,
        intersec_label 0..7 in the FF++ coding, spe_label 0 for reals).
    labels : numpy.ndarray of int8
        1 = fake, 0 = real (equal to ``test_df["label"]``).
    scores_a, scores_b : numpy.ndarray of float64
        p(fake) of detector A and of the fairness-trained detector B.
    """
    if isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)) or n_rows < 1_000:
        raise ValueError(f"n_rows must be an integer >= 1000, got {n_rows!r}")
    rng = np.random.default_rng(seed)
    videos = _videos(rng, int(n_rows))
    video_of_frame = np.repeat(np.arange(len(videos)), videos["frames"].to_numpy())
    frame_no = np.concatenate([np.arange(k) for k in videos["frames"].to_numpy()])
    per_frame = videos.iloc[video_of_frame].reset_index(drop=True)
    video_id = per_frame["folder"] + "/" + per_frame["name"]
    group = per_frame["group"].to_numpy(np.int8)

    test_df = pd.DataFrame(
        {
            "img_path": "frames/" + video_id + "/" + pd.Series(frame_no).map("{:03d}.png".format),
            "label": per_frame["label"].to_numpy(np.int8),
            **_flags(group),
            "intersec_label": group,
            "spe_label": per_frame["spe"].to_numpy(np.int8),
            "video_id": video_id,
        },
        columns=list(CSV_COLUMNS),
    )
    logit_a, logit_b = _logits(rng, test_df, video_of_frame, len(videos))
    labels = test_df["label"].to_numpy(np.int8)
    return test_df, labels, _sigmoid(logit_a), _sigmoid(logit_b)


def _fmt(values) -> str:
    return ", ".join(f"{v:g}" for v in values)


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC by the rank-sum (Mann-Whitney) formula, ties counted half."""
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    return float((ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _measured_rows(test_df: pd.DataFrame, labels: np.ndarray, scores: dict) -> list[list]:
    """Per-group and overall FPR, TPR at threshold 0.5 and AUC of each detector."""
    group = test_df["intersec_label"].to_numpy()
    selections = [(GROUPS[g], group == g) for g in range(8)] + [("all", np.ones(len(group), bool))]
    rows = []
    for name, sel in selections:
        row = [name]
        for p in scores.values():
            y, hat = labels[sel], p[sel] >= 0.5
            row += [
                f"{hat[y == 0].mean():.3f}",
                f"{hat[y == 1].mean():.3f}",
                f"{_auc(y, p[sel]):.3f}",
            ]
        rows.append(row)
    return rows


def _readme(
    test_df: pd.DataFrame, labels: np.ndarray, scores_a, scores_b, n_rows: int, seed: int
) -> str:
    n_videos = test_df["video_id"].nunique()
    n_real = int((labels == 0).sum())
    counts = test_df.groupby("intersec_label")["label"].agg(["size", "sum"])
    count_rows = [
        [
            g,
            GROUPS[g],
            FFPP_TRAIN_COUNTS[g],
            int(row["size"]),
            int(row["size"] - row["sum"]),
            int(row["sum"]),
        ]
        for g, row in counts.iterrows()
    ]
    param_rows = [
        ["shift (reals)", *(f"{v:g}" for v in REAL_SHIFT_A)],
        ["shift (fakes)", *(f"{v:g}" for v in FAKE_SHIFT_A)],
        ["scale", *(f"{v:g}" for v in GROUP_SCALE_A)],
    ]
    measured = _measured_rows(test_df, labels, {"A": scores_a, "B": scores_b})
    icc = VIDEO_SD**2 / (VIDEO_SD**2 + FRAME_SD**2)
    frames_mean = len(test_df) / n_videos
    fresh = np.sqrt(1 - SHARED_FRAME_NOISE_B**2)
    lines = [
        "# fairaudit example data: SYNTHETIC",
        "",
        "**These data are synthetic.** There are no real faces, no real videos and no real",
        "deepfake detector behind them. Every number was drawn from the simple random model",
        "described below, so that an audit has something realistic to show: an FF++-like test",
        'set and two "detectors" whose errors differ by demographic group. Do not cite them as',
        "measurements of anything.",
        "",
        "## Files",
        "",
        f"- `test.csv`: one row per frame in the research CSV schema `{','.join(CSV_COLUMNS)}`;",
        f"  {len(test_df)} rows, {n_videos} videos, {n_real} real frames "
        f"({n_real / len(test_df):.1%}).",
        "  `ismale`, `isasian`, `iswhite`, `isblack` are 1/-1 flags (race `others` when all three",
        "  race flags are -1); `intersec_label` uses the FF++ coding 0 male-asian, 1 male-white,",
        "  2 male-black, 3 male-others, 4 female-asian, 5 female-white, 6 female-black,",
        f"  7 female-others; `spe_label` is 0 for reals and 1..5 for {', '.join(METHODS)};",
        "  `img_path` is `frames/<method>/<video>/<frame>.png` (no such files exist);",
        f"  `video_id` is `<method>/<video>` (method `{REAL_FOLDER}` for reals).",
        "- `labels.npy`: int8, 1 = fake, 0 = real, in the row order of `test.csv`.",
        "- `preds.npy`: float64 p(fake) of detector A.",
        '- `preds_fair.npy`: float64 p(fake) of detector B, a "fairness-trained" detector with',
        "  smaller group gaps and a slightly lower overall AUC.",
        "",
        "## How they were generated",
        "",
        f"Generator: `fairaudit/_example.py`, `make_example(n_rows={n_rows}, seed={seed})`; every",
        f"draw comes from one `numpy.random.default_rng({seed})`. Regenerate these files with",
        "",
        f"    python -m fairaudit._example --out fairaudit/data/example --seed {seed}"
        + ("" if n_rows == DEFAULT_N_ROWS else f" --n-rows {n_rows}"),
        "",
        "### Identities, videos, frames",
        "",
        "Identities are split over the 8 groups in proportion to the FF++ training counts",
        f"({', '.join(map(str, FFPP_TRAIN_COUNTS))}), with every group raised to at least",
        f"{MIN_GROUP_SHARE:.0%} of the identities (taken from the large groups in "
        f"proportion) so that the",
        "smallest groups still hold several real videos. Each identity has one real video and",
        f"{FAKES_PER_IDENTITY[0]} or {FAKES_PER_IDENTITY[1]} (equally likely) fake videos "
        f"made with distinct,"
        " randomly chosen methods",
        "(about 82 % fakes, as in FF++); fake videos are named `<target>_<source>` as in FF++.",
        f"Every video has {FRAMES_PER_VIDEO[0]}-{FRAMES_PER_VIDEO[1]} frames (uniform), "
        f"adjusted one frame at a"
        f" time so that the total is {n_rows}.",
        "All frames of a video share label, group and method.",
        "",
        *_table(["id", "group", "FF++ train count", "rows", "real", "fake"], count_rows),
        "",
        "### Scores",
        "",
        "For frame f of video v, group g, label y and manipulation method m (fakes only):",
        "",
        "    logit   = mean[y] + method[m] + shift_y[g] + scale[g] * (u_v + e_f)",
        f"    u_v     ~ N(0, {VIDEO_SD:g}^2)   video random effect, shared by all frames "
        f"of video v",
        f"    e_f     ~ N(0, {FRAME_SD:g}^2)  frame noise",
        "    p(fake) = 1 / (1 + exp(-logit))",
        "",
        f"- mean[real] = {REAL_MEAN:g}, mean[fake] = {FAKE_MEAN:g}",
        f"- method effect for {', '.join(METHODS)}: {_fmt(METHOD_EFFECT)}",
        f"- intra-video correlation of the noise: {icc:.2f} on the logit scale; with"
        f" {frames_mean:.0f} frames a video",
        f"  carries about as much information as {frames_mean / (1 + (frames_mean - 1) * icc):.0f}"
        " independent frames, so resample videos, not",
        "  frames, when bootstrapping.",
        "",
        "Detector A, per group (positive shifts for reals raise the false-positive rate: black and",
        "female-others; negative shifts for fakes lower the true-positive rate: asian; "
        "scales above 1",
        "widen the score spread of the smaller groups):",
        "",
        *_table(["", *GROUPS], param_rows),
        "",
        f"Detector B, on the same frames: every shift multiplied by {GAP_SHRINK_B:g}, "
        f"every scale moved",
        f"towards 1 (scale_B = 1 + {GAP_SHRINK_B:g} * (scale_A - 1)), mean[real] raised by"
        f" {SEPARATION_LOSS_B[0]:g} and mean[fake]",
        f"lowered by {SEPARATION_LOSS_B[1]:g} (the price in AUC). B shares A's video "
        f"effects u_v (a hard"
        " video is hard",
        f"for both); its frame noise is {SHARED_FRAME_NOISE_B:g} * e_f + {fresh:.1f} * e'_f with a"
        " fresh e'_f of the same variance.",
        "",
        "### What the audit should find (measured on these files, threshold 0.5)",
        "",
        *_table(["group", "FPR A", "TPR A", "AUC A", "FPR B", "TPR B", "AUC B"], measured),
        "",
        "The smallest groups hold only a handful of real videos, so their rates are noisy: the",
        "measured gaps differ from the designed ones (B's designed gaps are"
        f" {GAP_SHRINK_B:g} of A's on the logit scale),",
        "and a cluster (video) bootstrap shows how wide their confidence intervals are.",
        "",
    ]
    return "\n".join(lines)


def write_example(out_dir, n_rows: int = DEFAULT_N_ROWS, seed: int = DEFAULT_SEED) -> dict:
    """Generate the example and write test.csv, labels.npy, preds.npy, preds_fair.npy, README.md.

    Returns the written paths (keys as in :func:`example_paths`).
    """
    test_df, labels, scores_a, scores_b = make_example(n_rows=n_rows, seed=seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {key: out / name for key, name in FILES.items()}
    test_df.to_csv(paths["csv"], index=False, lineterminator="\n")
    np.save(paths["labels"], labels)
    np.save(paths["preds"], scores_a)
    np.save(paths["preds_fair"], scores_b)
    readme = _readme(test_df, labels, scores_a, scores_b, int(n_rows), seed)
    (out / README_NAME).write_text(readme, encoding="utf-8", newline="\n")
    paths["dir"] = out
    return paths


def _example_dir() -> Path:
    root = resources.files(__package__ or "fairaudit")
    # A regular installed package gives a pathlib.Path; anything else (a
    # namespace package while the package is being assembled, a zip import)
    # falls back to the folder next to this module when that exists.
    folder = root / "data" / "example" if isinstance(root, Path) else None
    if folder is None or not folder.is_dir():
        folder = Path(__file__).resolve().parent / "data" / "example"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"the fairaudit example data folder was not found (package resources at {root!r}); "
            "reinstall fairaudit from a wheel or source tree that includes fairaudit/data/example"
        )
    return folder


def example_paths() -> dict:
    """Paths of the installed example files.

    Returns
    -------
    dict
        ``{"preds", "preds_fair", "labels", "csv", "dir"}`` to ``pathlib.Path``:
        detector A's scores, detector B's scores, the labels, ``test.csv`` and
        the folder holding them (with a README.md that describes the data).

    Examples
    --------
    >>> import numpy as np
    >>> paths = example_paths()
    >>> np.load(paths["preds"]).shape, sorted(paths)[:2]
    ((10000,), ['csv', 'dir'])
    """
    folder = _example_dir()
    paths = {key: folder / name for key, name in FILES.items()}
    paths["dir"] = folder
    return paths


@functools.lru_cache(maxsize=4)
def _demo(kind="audit"):
    """The example's audit (or comparison) with few replicates, shared by the docstring
    examples (one computation per test session)."""
    import fairaudit
    from ._io import read_demographics

    paths = example_paths()
    demo = read_demographics(str(paths["csv"]))
    y = np.load(paths["labels"])
    common = dict(n_boot=50, clusters=demo.table["video_id"].to_numpy(), seed=0)
    if kind == "audit":
        return fairaudit.audit(y, np.load(paths["preds"]), demo.attributes, **common)
    return fairaudit.compare(
        y,
        np.load(paths["preds"]),
        np.load(paths["preds_fair"]),
        demo.attributes,
        names=("A", "B"),
        **common,
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m fairaudit._example",
        description="Write the synthetic fairaudit example (test.csv, labels.npy, preds.npy, "
        "preds_fair.npy, README.md).",
    )
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--n-rows", type=int, default=DEFAULT_N_ROWS)
    args = parser.parse_args(argv)
    paths = write_example(args.out, n_rows=args.n_rows, seed=args.seed)
    print(
        f"wrote {', '.join(p.name for k, p in paths.items() if k != 'dir')} and README.md "
        f"to {paths['dir']}"
    )


if __name__ == "__main__":
    main()
