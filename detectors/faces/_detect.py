"""Face detection and landmarks with dlib (the ``dlib-bin`` wheel).

Detectors:

``hog``
    dlib's frontal-face HOG detector (ships inside dlib). Fast (~0.1 s for a
    512 x 512 frame on one core), finds frontal faces of about 80 px and more.
``cnn``
    dlib's CNN (MMOD) detector, from the ``face-recognition-models`` file.
    Finds harder faces (grey, small, turned) but costs seconds per frame on a CPU.
``hog+cnn``
    HOG first; the CNN only on frames where HOG found nothing.
``auto``
    ``hog+cnn`` when the CNN file is installed, else ``hog``.

Among the faces of a frame the one with the highest detector score is kept
(not the largest box: on real photographs a false positive can be as large as
the face). Landmarks (68 points, dlib's iBUG layout) come from the shape
predictor of ``face-recognition-models`` or a file given explicitly; without
one, faces have no landmarks and are cropped by their box.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import ConfigError
from ._models import MODELS_DISTRIBUTION, find_model_file

__all__ = ["DETECTORS", "Face", "FaceDetector", "import_dlib"]

log = logging.getLogger(__name__)

DETECTORS = ("auto", "hog", "cnn", "hog+cnn")


def import_dlib():
    """``import dlib`` or a :class:`ConfigError` saying how to install it."""
    try:
        import dlib
    except ImportError:
        raise ConfigError(
            "face detection needs dlib: pip install 'fairaudit[faces]' (dlib-bin, "
            "face-recognition-models, opencv-python-headless)"
        ) from None
    return dlib


@dataclass(frozen=True)
class Face:
    """One detected face in frame pixel coordinates.

    Attributes
    ----------
    box : tuple of int
        ``(left, top, right, bottom)``.
    score : float
        The detector's score (HOG: SVM margin; CNN: MMOD confidence). Scores of
        the two detectors are not comparable with each other.
    detector : str
        ``hog`` or ``cnn``.
    landmarks : ndarray or None
        ``(K, 2)`` float32 ``(x, y)`` points (K = 68 for dlib's iBUG model).

    Examples
    --------
    >>> face = Face(box=(10, 20, 60, 80), score=1.5, detector="hog")
    >>> face.box, face.landmarks is None
    ((10, 20, 60, 80), True)
    """

    box: tuple[int, int, int, int]
    score: float
    detector: str
    landmarks: np.ndarray | None = None


def _as_uint8_rgb(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"expected an (H, W, 3) uint8 RGB image, found {image.dtype} {image.shape}"
        )
    return np.ascontiguousarray(image)


class FaceDetector:
    """dlib face detector plus landmark predictor, built once and reused for many frames.

    Parameters
    ----------
    detector : {"auto", "hog", "cnn", "hog+cnn"}
    upsample : int
        dlib's ``upsample_num_times``: each step doubles the frame before
        detection (finds faces half as large, costs four times as much).
    hog_threshold : float
        Score threshold of the HOG detector (dlib's ``adjust_threshold``, 0 by default).
    landmark_model : path, optional
        A dlib shape-predictor file (default: the 68-point file of
        ``face-recognition-models`` when installed).
    cnn_model : path, optional
        The MMOD detector file (default: the one of ``face-recognition-models``).
    landmarks : bool
        Whether to compute landmarks (a :class:`ConfigError` if asked for and no model exists).

    Examples
    --------
    >>> detector = FaceDetector("hog", landmarks=False)
    >>> detector.detect(np.zeros((64, 64, 3), dtype=np.uint8))  # no face in a black frame
    []
    """

    def __init__(
        self,
        detector: str = "auto",
        *,
        upsample: int = 0,
        hog_threshold: float = 0.0,
        landmark_model: str | Path | None = None,
        cnn_model: str | Path | None = None,
        landmarks: bool | None = None,
    ) -> None:
        if detector not in DETECTORS:
            raise ConfigError(f"--detector {detector!r}: expected one of {', '.join(DETECTORS)}")
        if upsample < 0:
            raise ConfigError(f"--upsample {upsample}: expected 0 or more")
        dlib = import_dlib()
        self.upsample, self.hog_threshold = int(upsample), float(hog_threshold)
        cnn_path = _model_path(cnn_model, "cnn", "--cnn-model")
        if detector == "auto":
            detector = "hog+cnn" if cnn_path is not None else "hog"
        if "cnn" in detector and cnn_path is None:
            raise ConfigError(
                f"--detector {detector} needs the CNN model file: pip install "
                f"{MODELS_DISTRIBUTION} or pass --cnn-model FILE"
            )
        self.detector = detector
        self.cnn_path = cnn_path if "cnn" in detector else None
        self._hog = dlib.get_frontal_face_detector() if "hog" in detector else None
        self._cnn = dlib.cnn_face_detection_model_v1(str(self.cnn_path)) if self.cnn_path else None
        landmark_path = _model_path(landmark_model, "landmarks68", "--landmark-model")
        if landmarks and landmark_path is None:
            raise ConfigError(
                f"landmarks need dlib's shape predictor file: pip install {MODELS_DISTRIBUTION} or "
                "pass --landmark-model FILE"
            )
        self.landmark_path = landmark_path if landmarks is not False else None
        self._predictor = (
            dlib.shape_predictor(str(self.landmark_path)) if self.landmark_path else None
        )
        self._dlib = dlib

    @property
    def has_landmarks(self) -> bool:
        return self._predictor is not None

    def describe(self) -> dict[str, Any]:
        """The settings, for the record written next to a prepared data set."""
        return {
            "detector": self.detector,
            "upsample": self.upsample,
            "hog_threshold": self.hog_threshold,
            "cnn_model": str(self.cnn_path) if self.cnn_path else None,
            "landmark_model": str(self.landmark_path) if self.landmark_path else None,
            "dlib": getattr(self._dlib, "__version__", "?"),
        }

    def detect(self, image: np.ndarray) -> list[Face]:
        """Every face the configured detector finds in ``image`` (RGB uint8), best score first,
        without landmarks."""
        image = _as_uint8_rgb(image)
        faces: list[Face] = []
        if self._hog is not None:
            rects, scores, _ = self._hog.run(image, self.upsample, self.hog_threshold)
            faces = [Face(_box(r), float(s), "hog") for r, s in zip(rects, scores)]
        if not faces and self._cnn is not None:
            faces = [
                Face(_box(d.rect), float(d.confidence), "cnn")
                for d in self._cnn(image, self.upsample)
            ]
        return sorted(faces, key=lambda f: -f.score)

    def landmarks(self, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray | None:
        """Landmarks of the face in ``box`` (``None`` without a landmark model)."""
        if self._predictor is None:
            return None
        shape = self._predictor(_as_uint8_rgb(image), self._dlib.rectangle(*box))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def best_face(self, image: np.ndarray) -> Face | None:
        """The face with the highest detector score, with its landmarks, or ``None``."""
        faces = self.detect(image)
        if not faces:
            return None
        best = faces[0]
        return Face(best.box, best.score, best.detector, self.landmarks(image, best.box))


def _box(rect) -> tuple[int, int, int, int]:
    return int(rect.left()), int(rect.top()), int(rect.right()), int(rect.bottom())


def _model_path(given: str | Path | None, name: str, option: str) -> Path | None:
    if given is not None:
        path = Path(given)
        if not path.is_file():
            raise ConfigError(f"{option} {given}: no such file")
        return path
    return find_model_file(name)
