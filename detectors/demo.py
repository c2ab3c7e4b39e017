"""An offline end-to-end demonstration on real faces, with synthetic demographic labels.

::

    python -m detectors.demo --out DEMO [--lfw 40] [--epochs 3] [--camera]

1. **Photos** (:func:`collect_photos`): real photographs that installed wheels
   ship - scikit-image's astronaut (Eileen Collins) and, with ``--camera``,
   its cameraman (found only by dlib's slow CNN detector), the first ``--lfw``
   faces of its LFW subset (25 x 25 grey crops, enlarged 8x and padded so the
   HOG detector sees them; their identities are unknown, so each counts as its
   own), matplotlib's Grace Hopper; a short clip made from the astronaut photo
   (a slow pan) with two cut-away frames of a coffee cup (a video in which
   some frames have no face), and the coffee photo itself (no face at all).
   Nothing is downloaded.
2. **Annotations** with **synthetic** demographic labels: gender and race are
   assigned round-robin over the eight FF++ groups, *not* the people's real
   attributes; the column ``demographics`` says ``synthetic`` in every CSV.
3. ``python -m detectors.prepare``: faces detected, aligned, cropped; frames
   without a face reported; an identity-disjoint 60/20/20 split.
4. Training from the reals alone: each real face is paired with a
   self-blended fake (:mod:`detectors.sbi`), with the ``tiny`` preset (PG-FDD,
   small CNN backbone, SAM) for a few epochs on the CPU.
5. A test set with both classes: the test reals and one fixed self-blended
   fake each (``python -m detectors.sbi``).
6. ``python -m detectors.predict`` and ``python -m fairaudit report``.

What it shows: the data path works end to end on real faces. What it does not
show: anything about detecting real deepfakes, or about fairness to real
demographic groups - the fakes are self-blended images and the groups are made up.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ._cli import run_cli, setup_logging
from ._errors import ConfigError

__all__ = [
    "collect_photos",
    "write_annotations",
    "train_sbi",
    "run_demo",
    "DemoResult",
    "SYNTHETIC_NOTE",
    "main",
]

log = logging.getLogger("detectors.demo")

SYNTHETIC_NOTE = (
    "SYNTHETIC DEMOGRAPHIC LABELS: the gender and race columns of this demo were assigned "
    "round-robin over the eight FF++ groups, not taken from the people photographed; the fakes "
    "are self-blended images, not deepfakes. The audit below exercises the pipeline; its group "
    "numbers mean nothing about real groups or real deepfake detectors."
)
_GROUPS = [(g, r) for g in ("male", "female") for r in ("asian", "white", "black", "others")]


def _skimage_data_dir() -> Path | None:
    try:
        import skimage.data
    except ImportError:
        return None
    return Path(skimage.data.__file__).parent


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def _write_clip(
    path: Path, face: np.ndarray, cutaway: np.ndarray, n: int = 8, size: int = 320
) -> None:
    """An MJPG clip: a slow pan over the top of ``face`` (``size`` x ``size`` window).

    Frames 3 and 6 are replaced by ``cutaway`` (no face)."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 8.0, (size, size))
    if not writer.isOpened():
        raise ConfigError(f"OpenCV cannot write the demo clip {path} (MJPG)")
    away = cv2.resize(cutaway, (size, size), interpolation=cv2.INTER_AREA)
    w = face.shape[1]
    try:
        for k in range(n):
            x = int((w - size) * k / max(n - 1, 1) * 0.5 + (w - size) * 0.25)
            frame = away if k in (3, 6) else face[:size, x : x + size]
            writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    finally:
        writer.release()


def collect_photos(
    folder: str | Path, *, n_lfw: int = 40, camera: bool = False, clip: bool = True
) -> pd.DataFrame:
    """Write the demo's photos (module docstring) into ``folder``.

    Returns a table with the columns ``path, identity, source``.

    Raises :class:`ConfigError` when scikit-image or matplotlib's sample data is missing.

    Examples
    --------
    >>> import tempfile
    >>> photos = collect_photos(tempfile.mkdtemp(), n_lfw=2, clip=False)
    >>> photos.columns.tolist(), len(photos)
    (['path', 'identity', 'source'], 4)
    """
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = _skimage_data_dir()
    if data is None or not (data / "astronaut.png").is_file():
        raise ConfigError(
            "the demo needs scikit-image's bundled sample photos: pip install 'fairaudit[faces]'"
        )
    from matplotlib import cbook

    hopper = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    rows = []
    shutil.copyfile(data / "astronaut.png", folder / "astronaut.png")
    rows.append(("astronaut.png", "astronaut", "scikit-image astronaut.png (Eileen Collins, NASA)"))
    shutil.copyfile(hopper, folder / "grace_hopper.jpg")
    rows.append(("grace_hopper.jpg", "grace_hopper", "matplotlib grace_hopper.jpg"))
    if camera:
        shutil.copyfile(data / "camera.png", folder / "camera.png")
        rows.append(("camera.png", "cameraman", "scikit-image camera.png (grey; CNN detector)"))
    lfw_file = data / "lfw_subset.npy"
    if n_lfw > 0 and lfw_file.is_file():
        import cv2

        faces = np.load(lfw_file)[: min(n_lfw, 100)]  # the first 100 are faces, the rest are not
        (folder / "lfw").mkdir(exist_ok=True)
        for i, face in enumerate(faces):
            big = cv2.resize(
                (face * 255).round().astype(np.uint8), (200, 200), interpolation=cv2.INTER_CUBIC
            )
            big = np.pad(big, 50, mode="edge")
            Image.fromarray(big).convert("RGB").save(folder / "lfw" / f"lfw_{i:03d}.png")
            rows.append(
                (
                    f"lfw/lfw_{i:03d}.png",
                    f"lfw_{i:03d}",
                    f"scikit-image lfw_subset.npy face {i} (identity unknown)",
                )
            )
    elif n_lfw > 0:
        log.warning("scikit-image has no lfw_subset.npy here: the demo runs without LFW faces")
    coffee = data / "coffee.png"
    if clip and coffee.is_file():
        _write_clip(
            folder / "astronaut_clip.avi", _read_rgb(data / "astronaut.png"), _read_rgb(coffee)
        )
        rows.append(
            (
                "astronaut_clip.avi",
                "astronaut",
                "clip made from astronaut.png, frames 3 and 6 a coffee cup",
            )
        )
        shutil.copyfile(coffee, folder / "coffee.png")
        rows.append(("coffee.png", "no_one", "scikit-image coffee.png (no face)"))
    return pd.DataFrame(rows, columns=["path", "identity", "source"])


def write_annotations(photos: pd.DataFrame, path: str | Path) -> Path:
    """The annotation table of the demo: every photo real, demographics synthetic (round-robin by
    identity).

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> path = write_annotations(collect_photos(folder, n_lfw=2, clip=False), f"{folder}/ann.csv")
    >>> table = pd.read_csv(path)
    >>> set(table["label"]), set(table["demographics"])
    ({0}, {'synthetic'})
    """
    identities = list(dict.fromkeys(photos["identity"]))
    group_of = {ident: _GROUPS[k % len(_GROUPS)] for k, ident in enumerate(identities)}
    table = photos.copy()
    table["label"] = 0
    table["gender"] = [group_of[i][0] for i in table["identity"]]
    table["race"] = [group_of[i][1] for i in table["identity"]]
    table["demographics"] = "synthetic"
    path = Path(path)
    table[["path", "label", "identity", "gender", "race", "demographics", "source"]].to_csv(
        path, index=False
    )
    return path


def train_sbi(
    data: str | Path, run_dir: str | Path, *, epochs: int = 3, seed: int = 0, extra: list[str] = ()
) -> Path:
    """Train the ``tiny`` preset on ``data`` with self-blended fakes; returns the run folder.

    Examples
    --------
    >>> import tempfile
    >>> train_sbi(tempfile.mkdtemp() + "/no-data", tempfile.mkdtemp())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detectors._errors.DataError: data.root .../no-data: not a folder (expected one holding ...)
    """
    from .train import main as train_main

    argv = [
        "--config",
        "tiny",
        f"data.root={data}",
        "data.fakes=sbi",
        f"run_dir={run_dir}",
        f"train.epochs={epochs}",
        f"seed={seed}",
        *extra,
        "--overwrite",
    ]
    code = train_main(argv)
    if code != 0:
        raise RuntimeError(f"training exited with {code}")
    return Path(run_dir)


@dataclass
class DemoResult:
    """Where the demo wrote each stage, and the audit's exit code and text.

    Examples
    --------
    >>> fields = DemoResult.__dataclass_fields__
    >>> list(fields)[:4], "audit_exit" in fields
    (['out', 'photos', 'annotations', 'data'], True)
    """

    out: Path
    photos: Path
    annotations: Path
    data: Path
    run: Path
    test_csv: Path
    predictions: Path
    audit: Path
    report: Path
    audit_exit: int
    audit_text: str


def _check_counts(**counts: int) -> None:
    least = {"lfw": 0, "n_boot": 0}
    for option, value in counts.items():
        if value < least.get(option, 1):
            raise ConfigError(
                f"--{option.replace('_', '-')} {value}: expected {least.get(option, 1)} or more"
            )


def run_demo(
    out: str | Path,
    *,
    n_lfw: int = 40,
    camera: bool = False,
    epochs: int = 3,
    size: int = 128,
    frames: int = 8,
    workers: int = 1,
    seed: int = 0,
    n_boot: int = 200,
    progress: bool = False,
) -> DemoResult:
    """Run every stage of the demo into ``out`` (module docstring).

    Examples
    --------
    >>> import tempfile
    >>> run_demo(tempfile.mkdtemp(), epochs=0)
    Traceback (most recent call last):
    ...
    detectors._errors.ConfigError: --epochs 0: expected 1 or more
    """
    _check_counts(epochs=epochs, frames=frames, workers=workers, lfw=n_lfw, n_boot=n_boot)
    from .prepare import PrepareSettings, prepare
    from .sbi import write_self_blended

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    photos = out / "photos"
    annotations = write_annotations(
        collect_photos(photos, n_lfw=n_lfw, camera=camera), photos / "annotations.csv"
    )
    data = out / "data"
    settings = PrepareSettings(frames=frames, size=size, detector="auto" if camera else "hog")
    prepare(annotations, data, settings=settings, workers=workers, seed=seed, progress=progress)
    run = train_sbi(data, out / "run", epochs=epochs, seed=seed)
    test_csv = write_self_blended(data / "test.csv", out / "test_sbi", seed=seed)
    predictions = out / "predictions"
    from .predict import main as predict_main

    if (
        predict_main(
            [
                "--checkpoint",
                str(run / "best.pt"),
                "--csv",
                str(test_csv),
                "--out",
                str(predictions),
                "--num-workers",
                "0",
            ]
        )
        != 0
    ):
        raise RuntimeError("prediction failed")
    audit = out / "audit"
    cmd = [
        sys.executable,
        "-m",
        "fairaudit",
        "report",
        str(predictions / "preds.npy"),
        str(predictions / "labels.npy"),
        str(predictions / "test.csv"),
        "--cluster",
        "video_id",
        "--n-boot",
        str(n_boot),
        "--seed",
        str(seed),
        "--out",
        str(audit),
        "--format",
        "markdown",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    report = out / "report.md"
    text = f"# Demo audit (synthetic demographic labels)\n\n> {SYNTHETIC_NOTE}\n\n" + proc.stdout
    if proc.returncode != 0:
        text += f"\n\nfairaudit exited with {proc.returncode}:\n\n```\n{proc.stderr}\n```\n"
    report.write_text(text, encoding="utf-8")
    return DemoResult(
        out,
        photos,
        annotations,
        data,
        run,
        test_csv,
        predictions,
        audit,
        report,
        proc.returncode,
        proc.stdout + proc.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    """The command line (module docstring); returns the exit status.

    Examples
    --------
    >>> from detectors._cli import run_cli
    >>> import tempfile
    >>> run_cli("detectors.demo", main, ["--out", tempfile.mkdtemp(), "--epochs", "0"])
    2
    """
    p = argparse.ArgumentParser(
        prog="python -m detectors.demo",
        description="Offline demo on real photos shipped by installed wheels: prepare -> "
        "self-blended training -> predict -> fairaudit report (synthetic demographic labels).",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--lfw", type=int, default=40, help="LFW-subset faces to include (0..100, default 40)"
    )
    p.add_argument(
        "--camera",
        action="store_true",
        help="include the cameraman (needs the CNN detector: several seconds)",
    )
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--size", type=int, default=128, help="side of the face crops (default 128)")
    p.add_argument("--frames", type=int, default=8, help="frames sampled from the demo clip")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap replicates of the audit")
    args = p.parse_args(argv)
    _check_counts(
        epochs=args.epochs,
        frames=args.frames,
        workers=args.workers,
        lfw=args.lfw,
        n_boot=args.n_boot,
    )
    setup_logging()
    print(SYNTHETIC_NOTE)
    result = run_demo(
        args.out,
        n_lfw=args.lfw,
        camera=args.camera,
        epochs=args.epochs,
        size=args.size,
        frames=args.frames,
        workers=args.workers,
        seed=args.seed,
        n_boot=args.n_boot,
        progress=sys.stderr.isatty(),
    )
    print(result.audit_text)
    print(f"report with the synthetic-label note: {result.report}")
    return result.audit_exit


if __name__ == "__main__":
    sys.exit(run_cli("detectors.demo", main))
