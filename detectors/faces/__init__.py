"""Real faces for the detectors: detection (dlib), landmarks, alignment, frames, identity-disjoint
splits.

``python -m detectors.prepare`` turns a folder of videos and images plus an
annotation table into the research CSV schema with these parts:

* :class:`FaceDetector` - dlib's HOG and CNN detectors, 68-point landmarks,
  the face with the best detector score;
* :func:`align_face` - a similarity warp onto a fixed five-point template
  (:data:`TEMPLATE`), cropped with a margin;
* :func:`read_frames` - frames sampled evenly over a video, a folder of
  frames or a single image;
* :func:`split_identities` - a seeded 60/20/20 split in which no identity
  is in two splits, balanced per label and group.

dlib and OpenCV are imported only when a face is detected or a frame read.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ._models import MODEL_FILES, find_model_file
from ._split import SPLITS, identity_components, split_identities

_LAZY = {
    "DETECTORS": "._detect",
    "Face": "._detect",
    "FaceDetector": "._detect",
    "TEMPLATE": "._align",
    "AlignedFace": "._align",
    "align_face": "._align",
    "anchor_points": "._align",
    "eye_centers": "._align",
    "template_points": "._align",
    "transform_points": "._align",
    "similarity_transform": "._align",
    "IMAGE_EXTENSIONS": "._frames",
    "VIDEO_EXTENSIONS": "._frames",
    "FrameSet": "._frames",
    "read_frames": "._frames",
    "sample_indices": "._frames",
    "landmark_path": "._frames",
}

__all__ = [
    "MODEL_FILES",
    "SPLITS",
    "find_model_file",
    "identity_components",
    "split_identities",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'detectors.faces' has no attribute {name!r}")
