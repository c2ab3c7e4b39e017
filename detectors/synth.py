"""A procedural image data set in the research CSV schema, for tests and smoke runs.

Command line::

    python -m detectors.synth --out DATA --n 200 [--size 64] [--seed 0] [--dataset ff++]
        [--frames 2] [--groups ff++|uniform] [--artefact procedural|blend]

writes ``DATA/{faketrain,realtrain,fakeval,realval,test}.csv`` and PNG images
under ``DATA/images/``. Everything is synthetic: a face-like ellipse on a
smooth background, whose skin tone follows the (synthetic) race label and whose
shape follows the (synthetic) gender label. Fakes carry faint artefacts
inside the face: one shared by all fakes (a period-2 checkerboard) and one per
manipulation id (``spe_label`` 1..5: horizontal stripes, vertical stripes, block
quantisation, a colour-shifted inner patch with a sharp rim, blur), so a detector
can learn both - nothing about real deepfakes is claimed. With ``--artefact
blend`` fakes carry instead a faint, localised blending trace: a small disc of
the face blended in from an up-sampled copy with a faint checkerboard and a
slight colour shift (:func:`_blend_artefact`), a harder task in the spirit of
blending-based deepfakes.

Images come in pseudo-videos (``video_id``) of ``--frames`` frames of one
identity. Splits are 60/20/20 by video, stratified by label (half real, half
fake). Every group has a video in every split (with ``--n 200`` and the default
two frames, a real and a fake one); the other videos follow ``--groups``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ._cli import run_cli
from ._errors import ConfigError
from .data import GROUP_CODINGS, check_dataset

__all__ = ["generate", "main", "FFPP_GROUP_COUNTS", "ARTEFACTS"]

log = logging.getLogger("detectors.synth")

#: what marks a fake (``--artefact``)
ARTEFACTS = ("procedural", "blend")

#: FF++ training images per intersectional group (research LDAM constants, spec 2.5)
FFPP_GROUP_COUNTS = (2475, 25443, 1468, 4163, 8013, 31281, 1111, 2185)

_SKIN = {
    "asian": (0.86, 0.72, 0.56),
    "white": (0.95, 0.80, 0.70),
    "black": (0.42, 0.29, 0.20),
    "others": (0.72, 0.52, 0.36),
}
_SPLITS = (("train", 0.6), ("val", 0.2), ("test", 0.2))


def _face(rng: np.random.Generator, size: int, gender: str, race: str) -> dict:
    """Identity parameters of one pseudo-video."""
    return {
        "skin": np.clip(np.array(_SKIN[race]) + rng.normal(0, 0.03, 3), 0, 1),
        "bg": rng.uniform(0.1, 0.9, (2, 3)),
        "aspect": rng.uniform(0.95, 1.1) if gender == "male" else rng.uniform(1.2, 1.35),
        "hair": rng.uniform(0.0, 0.35, 3) * (0.6 if gender == "male" else 1.0),
        "radius": size * rng.uniform(0.26, 0.32),
    }


def _render(
    rng: np.random.Generator, size: int, face: dict
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """One frame (H, W, 3) in [0, 1], the soft face mask (H, W) and the face centre (y, x)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    ramp = (xx * 0.5 + yy * 0.5)[..., None]
    img = face["bg"][0] * (1 - ramp) + face["bg"][1] * ramp
    cy, cx = 0.5 + rng.normal(0, 0.02, 2)
    r = face["radius"] / size
    d = ((xx - cx) / r) ** 2 + ((yy - cy) / (r * face["aspect"])) ** 2
    mask = np.clip((1.0 - d) * 6, 0, 1)
    img = img * (1 - mask[..., None]) + face["skin"] * mask[..., None]
    hair = (d < 1.0) & (yy < cy - 0.6 * r * face["aspect"])
    img[hair] = face["hair"]
    for ex in (cx - 0.4 * r, cx + 0.4 * r):
        eye = ((xx - ex) ** 2 + (yy - (cy - 0.15 * r)) ** 2) < (0.1 * r) ** 2
        img[eye] = 0.1
    mouth = (np.abs(yy - (cy + 0.45 * r)) < 0.03) & (np.abs(xx - cx) < 0.3 * r)
    img[mouth] = (0.5, 0.15, 0.15)
    img = img + rng.normal(0, 0.015, img.shape)
    return np.clip(img, 0, 1), mask, (cy, cx)


def _artefact(
    rng: np.random.Generator, img: np.ndarray, mask: np.ndarray, method: int
) -> np.ndarray:
    """Add manipulation ``method``'s trace, then the trace all fakes share, inside the face mask.

    Specific traces: 1 horizontal stripes, 2 vertical stripes, 3 4x4 block quantisation,
    4 a colour-shifted inner patch with a sharp rim, 5 a blurred face. Shared trace: a faint
    period-2 checkerboard (the footprint of up-sampling layers).
    """
    size = img.shape[0]
    yy, xx = np.mgrid[0:size, 0:size]
    amp = rng.uniform(0.04, 0.08)
    m = mask[..., None]
    if method == 1:
        img = img + (yy % 2 * 2 - 1)[..., None] * amp * m
    elif method == 2:
        img = img + (xx % 2 * 2 - 1)[..., None] * amp * m
    elif method == 3:
        block = img[::4, ::4].repeat(4, 0).repeat(4, 1)[:size, :size]
        img = img * (1 - m) + block * m
    elif method == 4:
        inner = (mask > 0.999).astype(float)
        img = img + np.array([amp, amp, -amp]) * inner[..., None]
    else:
        blurred = (
            img
            + np.roll(img, 1, 0)
            + np.roll(img, -1, 0)
            + np.roll(img, 1, 1)
            + np.roll(img, -1, 1)
        ) / 5
        img = img * (1 - m) + blurred * m
    shared = rng.uniform(0.05, 0.09)
    img = img + ((yy + xx) % 2 * 2 - 1)[..., None] * shared * m
    return np.clip(img, 0, 1)


#: where the blended region of ``artefact="blend"`` is centred, per manipulation id, as
#: (dy, dx) in face radii from the face centre: eyes, nose, mouth, left cheek, right cheek
_BLEND_ANCHORS = {1: (-0.15, 0.0), 2: (0.1, 0.0), 3: (0.45, 0.0), 4: (0.2, -0.45), 5: (0.2, 0.45)}


def _blend_artefact(
    rng: np.random.Generator, img: np.ndarray, face: dict, centre: tuple[float, float], method: int
) -> np.ndarray:
    """A faint, localised blending trace (``artefact="blend"``).

    A soft disc of the face (about a third of the face's radius, centred on the eyes, nose,
    mouth or a cheek by manipulation id) is replaced by a copy of the image that went through a
    2x down-sampling and a nearest-neighbour up-sampling, with a faint period-2 checkerboard of
    amplitude 4-6 % (the trace up-sampling layers leave) and a colour shift of 3-5 % of the
    intensity range, blended in with a peak ratio of 0.7-1. The disc covers 3-6 % of the image.
    """
    size = img.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    r = face["radius"] / size
    dy, dx = _BLEND_ANCHORS[method]
    cy = centre[0] + dy * r * face["aspect"] + rng.normal(0, 0.1 * r)
    cx = centre[1] + dx * r + rng.normal(0, 0.1 * r)
    radius = r * rng.uniform(0.5, 0.7)
    d = ((yy - cy) ** 2 + (xx - cx) ** 2) / radius**2
    region = np.clip(1.0 - d, 0.0, 1.0) ** 0.5 * rng.uniform(0.7, 1.0)
    half = size // 2
    small = img[: 2 * half, : 2 * half].reshape(half, 2, half, 2, 3).mean(axis=(1, 3))
    up = img.copy()
    up[: 2 * half, : 2 * half] = small.repeat(2, 0).repeat(2, 1)
    shift = rng.normal(0.0, 1.0, 3)
    shift *= rng.uniform(0.03, 0.05) / np.linalg.norm(shift) * np.sqrt(3)
    yi, xi = np.mgrid[0:size, 0:size]
    checker = ((yi + xi) % 2 * 2 - 1)[..., None] * rng.uniform(0.04, 0.06)
    m = region[..., None]
    return np.clip(img * (1 - m) + (up + shift + checker) * m, 0, 1)


def _group_probabilities(n_groups: int, scheme: str) -> np.ndarray:
    if scheme == "uniform":
        return np.full(n_groups, 1.0 / n_groups)
    counts = np.array(FFPP_GROUP_COUNTS, dtype=float)
    if n_groups == 6:
        counts = counts[[1, 2, 3, 5, 6, 7]]  # drop the Asian groups
    return counts / counts.sum()


def _assign_groups(rng: np.random.Generator, videos: pd.DataFrame, probs: np.ndarray) -> np.ndarray:
    """Group of each video: every group once in each split (reals first, then fakes starting
    where the reals stopped, so a split with as many videos as groups holds them all; with
    as many per label, both labels of every group), the remaining videos by ``probs``."""
    n_groups = len(probs)
    group = np.empty(len(videos), dtype=np.int64)
    for name, _ in _SPLITS:
        order = rng.permutation(n_groups)
        start = 0
        for label in (0, 1):
            members = np.flatnonzero(
                (videos["split"].to_numpy() == name) & (videos["label"].to_numpy() == label)
            )
            first = min(len(members), n_groups)
            group[members[:first]] = order[(start + np.arange(first)) % n_groups]
            group[members[first:]] = rng.choice(n_groups, size=len(members) - first, p=probs)
            start += first
        missing = [g for g in range(n_groups) if g not in group[videos["split"] == name]]
        if missing:
            log.warning(
                "split %s has no video of group(s) %s: raise --n (or lower --frames) for every "
                "group in every split",
                name,
                ", ".join(map(str, missing)),
            )
    return group


def _attribute_columns(dataset: str, group: int) -> dict[str, int]:
    gender, race = GROUP_CODINGS[dataset][group]
    races = ("asian", "white", "black") if len(GROUP_CODINGS[dataset]) == 8 else ("white", "black")
    cols = {"ismale": 1 if gender == "male" else -1}
    cols.update({f"is{r}": 1 if race == r else -1 for r in races})
    return cols


def generate(
    out: str | Path,
    n: int = 200,
    *,
    size: int = 64,
    seed: int = 0,
    dataset: str = "ff++",
    groups: str = "ff++",
    frames: int = 2,
    artefact: str = "procedural",
) -> dict[str, int]:
    """Write the synthetic data set (module docstring); returns the number of images per CSV.

    Examples
    --------
    >>> import tempfile
    >>> generate(tempfile.mkdtemp(), 40, size=32, artefact="blend")
    {'faketrain.csv': 12, 'realtrain.csv': 12, 'fakeval.csv': 4, 'realval.csv': 4, 'test.csv': 8}
    """
    check_dataset(dataset)
    if n < 20 or size < 32 or frames < 1:
        raise ConfigError(
            f"need --n >= 20, --size >= 32, --frames >= 1 (found n={n}, size={size}, "
            f"frames={frames})"
        )
    if groups not in ("ff++", "uniform"):
        raise ConfigError(f"--groups: expected ff++ or uniform, found {groups!r}")
    if artefact not in ARTEFACTS:
        raise ConfigError(f"--artefact: expected one of {', '.join(ARTEFACTS)}, found {artefact!r}")
    rng = np.random.default_rng(seed)
    out = Path(out)
    n_groups = len(GROUP_CODINGS[dataset])
    probs = _group_probabilities(n_groups, groups)
    n_videos = max(10, -(-n // frames))
    videos = pd.DataFrame(
        {
            "video_id": [f"v{i:05d}" for i in range(n_videos)],
            "label": np.arange(n_videos) % 2,
            "method": rng.integers(1, 6, size=n_videos),
        }
    )
    split_of = np.empty(n_videos, dtype=object)
    for label in (0, 1):  # stratified: each split gets the same share of reals and fakes
        members = rng.permutation(np.flatnonzero(videos["label"].to_numpy() == label))
        bounds = np.cumsum(
            [0] + [round(f * len(members)) for _, f in _SPLITS[:-1]] + [len(members)]
        )
        for (name, _), lo, hi in zip(_SPLITS, bounds[:-1], bounds[1:]):
            split_of[members[lo:hi]] = name
    videos["split"] = split_of
    videos["group"] = _assign_groups(rng, videos, probs)
    rows: list[dict] = []
    for v in videos.itertuples():
        gender, race = GROUP_CODINGS[dataset][v.group]
        face = _face(rng, size, gender, race)
        for f in range(frames):
            img, mask, centre = _render(rng, size, face)
            if v.label == 1 and artefact == "blend":
                img = _blend_artefact(rng, img, face, centre, int(v.method))
            elif v.label == 1:
                img = _artefact(rng, img, mask, int(v.method))
            rel = (
                Path("images")
                / v.split
                / ("fake" if v.label else "real")
                / f"{v.video_id}_{f:02d}.png"
            )
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray((img * 255).round().astype(np.uint8)).save(out / rel)
            row = {
                "img_path": rel.as_posix(),
                "label": int(v.label),
                **_attribute_columns(dataset, int(v.group)),
                "intersec_label": int(v.group),
            }
            if v.label == 1:
                row["spe_label"] = int(v.method)
            row.update({"video_id": v.video_id, "split": v.split})
            rows.append(row)
    table = pd.DataFrame(rows)
    first = [c for c in table.columns if c not in ("spe_label", "video_id", "split")]
    table = table[first + ["spe_label", "video_id", "split"]]
    counts = {}
    files = {
        "faketrain.csv": ("train", 1),
        "realtrain.csv": ("train", 0),
        "fakeval.csv": ("val", 1),
        "realval.csv": ("val", 0),
        "test.csv": ("test", None),
    }
    for name, (split, label) in files.items():
        part = table[
            (table["split"] == split) & ((table["label"] == label) if label is not None else True)
        ]
        part = part.drop(columns=["split"])
        if label != 1:
            part = part.drop(columns=["spe_label"], errors="ignore")
        else:
            part = part.astype({"spe_label": int})
        part.to_csv(out / name, index=False)
        counts[name] = len(part)
    (out / "README.txt").write_text(
        "Synthetic data set written by `python -m detectors.synth`: procedural face-like images,\n"
        "synthetic demographic labels, and 'fakes' marked by a procedural artefact. Not real "
        "faces,\nnot real deepfakes. "
        f"seed={seed} n={n} size={size} dataset={dataset} groups={groups} frames={frames}\n",
        encoding="utf-8",
    )
    return counts


def main(argv: list[str] | None = None) -> int:
    """The command line (module docstring): write the data set; returns the exit status.

    Examples
    --------
    >>> import tempfile
    >>> main(["--out", tempfile.mkdtemp(), "--n", "40", "--size", "32", "--artefact", "blend"])
    faketrain.csv: 12, realtrain.csv: 12, fakeval.csv: 4, realval.csv: 4, test.csv: 8
    0
    """
    p = argparse.ArgumentParser(
        prog="python -m detectors.synth",
        description="Write a synthetic data set in the research CSV schema.",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n", type=int, default=200, help="number of images (about; whole videos)")
    p.add_argument("--size", type=int, default=64, help="image side in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--dataset",
        default="ff++",
        help="group coding: ff++, dfdc (8 groups), celebdf, dfd (6 groups)",
    )
    p.add_argument(
        "--groups", default="ff++", choices=("ff++", "uniform"), help="group proportions"
    )
    p.add_argument("--frames", type=int, default=2, help="frames per pseudo-video")
    p.add_argument(
        "--artefact",
        default="procedural",
        choices=ARTEFACTS,
        help="procedural: shared checkerboard + one trace per method over the face; blend: a "
        "faint blended disc with an up-sampling trace",
    )
    args = p.parse_args(argv)
    counts = generate(
        args.out,
        args.n,
        size=args.size,
        seed=args.seed,
        dataset=args.dataset,
        groups=args.groups,
        frames=args.frames,
        artefact=args.artefact,
    )
    print(", ".join(f"{k}: {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("detectors.synth", main))
