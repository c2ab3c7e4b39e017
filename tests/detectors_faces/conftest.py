"""Fixtures of the real-face tests: the photos installed wheels ship, one detector, one small
prepared set.

Skipped as a whole where the ``faces`` extra (dlib-bin, face-recognition-models,
opencv-python-headless, scikit-image) or the detectors extra (torch) is missing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

_NEEDED = ("torch", "dlib", "cv2", "skimage")
_missing = []
for _name in _NEEDED:
    try:
        __import__(_name)
    except ImportError:
        _missing.append(_name)
if _missing:
    collect_ignore_glob = ["test_*.py"]
else:
    import torch

    torch.set_num_threads(1)  # two cores shared with other processes

REPO = Path(__file__).resolve().parents[2]


def faces_cli_env() -> dict[str, str]:
    """Environment for ``python -m detectors...`` subprocesses run from the repository root."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    return env


@pytest.fixture(scope="session")
def cli_runner():
    import subprocess

    def run(*args, timeout=300):
        return subprocess.run(
            [sys.executable, "-m", *args],
            cwd=REPO,
            env=faces_cli_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture(scope="session")
def photo_paths() -> dict[str, Path]:
    """Real photographs shipped inside installed wheels (nothing downloaded)."""
    import skimage.data
    from matplotlib import cbook

    data = Path(skimage.data.__file__).parent
    paths = {
        "astronaut": data / "astronaut.png",
        "camera": data / "camera.png",
        "coffee": data / "coffee.png",
        "lfw": data / "lfw_subset.npy",
        "grace_hopper": Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)),
    }
    missing = [k for k, p in paths.items() if not p.is_file()]
    if missing:
        pytest.skip(f"sample photos not installed: {', '.join(missing)}")
    return paths


@pytest.fixture(scope="session")
def detector():
    """dlib's HOG detector with the 68-point landmark model (loaded once)."""
    from detectors.faces import FaceDetector

    det = FaceDetector("hog")
    if not det.has_landmarks:
        pytest.skip("face-recognition-models (68-point landmark model) not installed")
    return det


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, detector):
    """The demo's photos with 12 LFW faces, prepared at 128 px (8 frames of the clip), HOG only."""
    from detectors.demo import collect_photos, write_annotations
    from detectors.prepare import PrepareSettings, prepare

    root = tmp_path_factory.mktemp("prepared")
    photos = collect_photos(root / "photos", n_lfw=12)
    annotations = write_annotations(photos, root / "photos" / "annotations.csv")
    settings = PrepareSettings(frames=8, size=128, detector="hog")
    result = prepare(
        annotations, root / "data", settings=settings, workers=1, seed=0, progress=False
    )
    return {
        "root": root,
        "annotations": annotations,
        "data": root / "data",
        "result": result,
        "settings": settings,
    }
