"""Aligning a face to a fixed template and cropping it with a margin.

The template places five anchor points of a frontal face - the two eye
centres, the nose tip and the two mouth corners - in a unit square that is
the tight box of the 68 landmarks (brows to chin, jaw side to jaw side). The
crop of side ``size`` holds that square scaled by ``1 / (1 + 2 margin)`` at
its centre, i.e. ``margin`` of the face size on each side. A similarity
transform (rotation, uniform scale, translation; no shear, no reflection) is
fitted by weighted least squares (Umeyama) from the face's anchor points to
the template's, and the frame is warped with it, so eyes, nose and mouth land
at the same pixels in every crop.

Without landmarks the detector's box is mapped to the template's square
(translation and scale only): the face is cropped, not aligned.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ._detect import Face

__all__ = [
    "TEMPLATE",
    "ANCHOR_WEIGHTS",
    "AlignedFace",
    "align_face",
    "anchor_points",
    "template_points",
    "similarity_transform",
    "transform_points",
    "eye_centers",
]

#: anchor points in the unit square (x right, y down): eye centres (image left, image right),
#: nose tip, mouth corners (image left, image right)
TEMPLATE = np.array(
    [[0.295, 0.190], [0.705, 0.190], [0.500, 0.420], [0.320, 0.635], [0.680, 0.635]],
    dtype=np.float64,
)
#: the eyes count double: they fix the crop's rotation and are what users check
ANCHOR_WEIGHTS = np.array([2.0, 2.0, 1.0, 1.0, 1.0])

_LEFT_EYE = slice(36, 42)  # iBUG 68-point layout (dlib): the subject's right eye, image left
_RIGHT_EYE = slice(42, 48)
_NOSE_TIP, _MOUTH_LEFT, _MOUTH_RIGHT = 30, 48, 54


def eye_centers(landmarks: np.ndarray) -> np.ndarray:
    """``(2, 2)``: centres of the image-left and image-right eye of a 68-point shape.

    Examples
    --------
    >>> points = np.zeros((68, 2)); points[36:42] = (10, 20); points[42:48] = (30, 22)
    >>> eye_centers(points).tolist()
    [[10.0, 20.0], [30.0, 22.0]]
    """
    pts = np.asarray(landmarks, dtype=np.float64)
    return np.stack([pts[_LEFT_EYE].mean(0), pts[_RIGHT_EYE].mean(0)])


def anchor_points(landmarks: np.ndarray) -> np.ndarray:
    """The five template anchors of a 68-point (or 81-point) shape, ``(5, 2)``.

    Examples
    --------
    >>> points = np.zeros((68, 2)); points[36:42] = (10, 20); points[42:48] = (30, 20)
    >>> points[30], points[48], points[54] = (20, 30), (12, 40), (28, 40)
    >>> anchor_points(points).tolist()  # eyes, nose tip, mouth corners
    [[10.0, 20.0], [30.0, 20.0], [20.0, 30.0], [12.0, 40.0], [28.0, 40.0]]
    """
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[0] < 68 or pts.shape[1] != 2:
        raise ValueError(f"expected (68+, 2) landmarks in dlib's iBUG layout, found {pts.shape}")
    return np.vstack([eye_centers(pts), pts[[_NOSE_TIP, _MOUTH_LEFT, _MOUTH_RIGHT]]])


def template_points(size: int, margin: float) -> np.ndarray:
    """The template anchors in the pixels of a ``size`` x ``size`` crop with ``margin`` per side.

    Examples
    --------
    >>> template_points(100, 0.0)[:2].tolist()  # the eyes at 29.5 % and 70.5 % of the width
    [[29.5, 19.0], [70.5, 19.0]]
    """
    return size * (0.5 + (TEMPLATE - 0.5) / (1.0 + 2.0 * margin))


def similarity_transform(
    src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """The 2 x 3 similarity ``x -> s R x + t`` minimising ``sum_i w_i |s R src_i + t - dst_i|^2``.

    Umeyama's closed form: SVD of the weighted cross-covariance, with the sign
    of the last singular vector fixed so ``R`` is a rotation.

    Examples
    --------
    >>> src = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> similarity_transform(src, 2 * src + 1).round(6).tolist()
    [[2.0, 0.0, 1.0], [0.0, 2.0, 1.0]]
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    s_c, d_c = src - mu_s, dst - mu_d
    var_s = float(w @ (s_c**2).sum(1))
    cov = (d_c * w[:, None]).T @ s_c
    u, sig, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    fix = np.diag([1.0, d])
    rot = u @ fix @ vt
    scale = float(np.sum(sig * np.diag(fix))) / var_s
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2 x 3 affine matrix to ``(N, 2)`` points.

    Examples
    --------
    >>> transform_points(np.array([[2.0, 0, 1], [0, 2.0, 1]]), np.array([[1.0, 1.0]])).tolist()
    [[3.0, 3.0]]
    """
    pts = np.asarray(points, np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


@dataclass(frozen=True)
class AlignedFace:
    """A face crop and where it came from.

    Attributes
    ----------
    image : ndarray
        ``(size, size, 3)`` uint8 RGB.
    landmarks : ndarray or None
        The face's landmarks in crop pixels, ``(K, 2)`` float32.
    matrix : ndarray
        2 x 3 affine map from frame pixels to crop pixels.
    method : str
        ``landmarks`` (aligned to the template) or ``box`` (cropped by the detector box).

    Examples
    --------
    >>> from detectors.faces import Face
    >>> black = np.zeros((100, 100, 3), np.uint8)
    >>> crop = align_face(black, Face((20, 20, 80, 80), 1.0, "hog"), size=64)
    >>> crop.image.shape, crop.method, crop.landmarks is None
    ((64, 64, 3), 'box', True)
    """

    image: np.ndarray
    landmarks: np.ndarray | None
    matrix: np.ndarray
    method: str


def _box_transform(box: tuple[int, int, int, int], size: int, margin: float) -> np.ndarray:
    left, top, right, bottom = box
    side = max(right - left, bottom - top, 1)
    scale = size / ((1.0 + 2.0 * margin) * side)
    cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
    return np.array([[scale, 0.0, size / 2.0 - scale * cx], [0.0, scale, size / 2.0 - scale * cy]])


def _warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:
        # shrink the frame first with area averaging: warpAffine alone would alias
        factor = scale * 1.5
        small = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        matrix = matrix.copy()
        matrix[:, :2] /= factor
        image = small
    return cv2.warpAffine(
        image,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def align_face(
    image: np.ndarray, face: Face, *, size: int = 256, margin: float = 0.2
) -> AlignedFace:
    """Warp ``face`` of ``image`` (RGB uint8) onto the template; see the module docstring.

    Examples
    --------
    >>> from detectors.faces import Face
    >>> t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    >>> points = np.stack([50 + 20 * np.cos(t), 50 + 25 * np.sin(t)], 1)  # 68 points, no face
    >>> face = Face((25, 20, 75, 80), 1.0, "hog", landmarks=points.astype(np.float32))
    >>> crop = align_face(np.zeros((100, 100, 3), np.uint8), face, size=64)
    >>> crop.method, crop.landmarks.shape
    ('landmarks', (68, 2))
    """
    if face.landmarks is not None and len(face.landmarks) >= 68:
        matrix = similarity_transform(
            anchor_points(face.landmarks), template_points(size, margin), ANCHOR_WEIGHTS
        )
        method = "landmarks"
    else:
        matrix = _box_transform(face.box, size, margin)
        method = "box"
    crop = _warp(image, matrix, size)
    landmarks = (
        None
        if face.landmarks is None
        else transform_points(matrix, face.landmarks).astype(np.float32)
    )
    return AlignedFace(crop, landmarks, matrix, method)
