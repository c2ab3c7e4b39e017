"""Self-blended images: fakes made from real faces alone (Shiohara & Yamasaki, CVPR 2022).

Written from the paper's description. A self-blended fake is a real face
blended with an altered copy of itself:

1. *source and target*: two copies of the face; one of them (50/50) gets an
   appearance change - colour (RGB shift, hue/saturation/value shift,
   brightness and contrast) and one frequency change (down-scaling by 2 or 4
   and back, or sharpening);
2. *geometry*: the source and the mask are moved by a small random affine map
   (translation up to 3 % horizontally and 1.5 % vertically, scale 0.95 to
   1/0.95), which mismatches the source's landmarks; the mask alone is then
   deformed by a smooth elastic deformation (the paper deforms the mask, not
   the face: ``BlendOptions.elastic_source`` deforms the source too);
3. *mask*: the convex hull of the landmarks, moved as above, resized to a
   random smaller size and back, blurred by the larger of two random
   Gaussian kernels and *eroded* - only the pixels the blur left at its peak
   are kept, those whose whole kernel lay inside the hull - then blurred by
   the smaller kernel, scaled to a peak of 1 and multiplied by a blend ratio
   drawn from {0.25, 0.5, 0.75, 1, 1, 1}. The final blur cannot reach past
   the eroded edge, so the soft mask stays inside the hull
   (``BlendOptions.erode_mask`` False blurs twice without eroding, and the
   mask spills outside the hull);
4. *blend*: ``fake = mask * source + (1 - mask) * target``; the paired real is
   the target, so the pair differs only where the mask is positive: near the
   face, never in the background (:func:`blend_radius` bounds how far from the
   hull);
5. *post-blend augmentation* (training only, :func:`paper_augment`): the real
   and its fake get the same colour change (RGB shift, hue/saturation/value
   shift, brightness and contrast, each with probability 0.3) and, with
   probability 1/2, the same JPEG compression (quality 40 to 100).

Landmarks: the paper uses dlib's 81-point model (the 68 points plus 13 on the
forehead, so the hull covers the forehead). That model is not available
offline; ``python -m detectors.prepare`` writes dlib's 68 points, whose hull
stops at the eyebrows (the paper itself uses the first 68 points for a quarter
of its fakes).

:class:`SelfBlendedPairDataset` pairs every real face with its self-blended
fake, drawn afresh each epoch from ``(seed, epoch, index)``, in the item form
of :class:`detectors.data.PairDataset`, so :func:`detectors.data.collate_pairs`
lays batches out as ``[reals; fakes]``. Landmarks are read from the ``.npy``
file next to each image (written by ``python -m detectors.prepare``); an image
without one gets a centred ellipse as its mask (counted and logged).

Command line: ``python -m detectors.sbi --csv DATA/test.csv --out DIR`` writes
one fixed self-blended fake per real row (a test or validation set with both
classes) to ``DIR`` and ``DIR/<name>.csv``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from ._errors import DataError
from .faces._frames import landmark_path

__all__ = [
    "BlendOptions",
    "SelfBlend",
    "SBI_METHOD",
    "self_blend",
    "hull_mask",
    "ellipse_mask",
    "blend_radius",
    "shared_augment",
    "paper_augment",
    "load_landmarks",
    "SelfBlendedPairDataset",
    "read_sbi_tables",
    "write_self_blended",
    "main",
]

log = logging.getLogger("detectors.sbi")

#: ``spe_label`` (manipulation id) of self-blended fakes
SBI_METHOD = 1
_REFERENCE_SIZE = 256  # pixel-sized options below are for a 256 x 256 face and scale with the image


@dataclass(frozen=True)
class BlendOptions:
    """Random ranges of the self-blending steps (pixel sizes for a 256 x 256 image).

    Examples
    --------
    >>> BlendOptions().blend_ratios, BlendOptions().erode_mask, BlendOptions().elastic_source
    ((0.25, 0.5, 0.75, 1.0, 1.0, 1.0), True, False)
    """

    p_rgb_shift: float = 0.3
    rgb_shift: float = 20.0
    p_hsv_shift: float = 0.3
    hue_shift: float = 10.0  # OpenCV hue units (0..180)
    sat_shift: float = 30.0
    val_shift: float = 20.0
    brightness: float = 0.1
    contrast: float = 0.1
    downscale_factors: tuple[int, ...] = (2, 4)
    p_sharpen: float = 1 / 3  # else down-scale and back
    translate: tuple[float, float] = (0.03, 0.015)  # fraction of width, height
    scale: tuple[float, float] = (0.95, 1 / 0.95)
    elastic_alpha: float = 50.0
    elastic_sigma: float = 7.0
    elastic_max: float = 4.0  # displacement cap (pixels) that keeps the blend region bounded
    elastic_source: bool = False  # the paper deforms the mask only
    erode_mask: bool = True  # keep what the first blur leaves at its peak, then blur again
    mask_shrink: tuple[float, float] = (0.75, 1.0)  # random size of the mask before resizing back
    blur_kernel: tuple[int, int] = (5, 25)  # odd Gaussian kernel sizes
    blend_ratios: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


@dataclass
class SelfBlend:
    """A real face and its self-blended fake.

    Attributes
    ----------
    real, fake : ndarray
        ``(H, W, 3)`` uint8 RGB; ``real`` is the target of the blend.
    mask : ndarray
        ``(H, W)`` float32 in [0, 1]: the blend weight of the source.
    hull : ndarray
        ``(H, W)`` float32 0/1: the landmark hull (or the ellipse) before warping and blurring.
    params : dict
        The random draws (which copy was altered, affine, kernels, ratio).
    region : ndarray
        ``(H, W)`` float32 in [0, 1]: the hull after the affine map and the elastic deformation,
        before it is softened into ``mask`` (with ``erode_mask``, ``mask`` stays inside it).

    Examples
    --------
    >>> t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    >>> landmarks = np.stack([32 + 14 * np.cos(t), 34 + 18 * np.sin(t)], 1)  # 68 points on an oval
    >>> image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    >>> blend = self_blend(image, landmarks, np.random.default_rng(1))
    >>> blend.real.shape == blend.fake.shape == image.shape, blend.mask.shape, blend.params["mask"]
    (True, (64, 64), 'hull')
    """

    real: np.ndarray
    fake: np.ndarray
    mask: np.ndarray
    hull: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)
    region: np.ndarray | None = None


# ---- masks ---------------------------------------------------------------------------------------


def hull_mask(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` float32: 1 inside the convex hull of ``landmarks`` (``(K, 2)`` x, y), else 0.

    Examples
    --------
    >>> square = np.array([[2, 2], [6, 2], [6, 6], [2, 6]])
    >>> int(hull_mask(square, (10, 10)).sum())  # 5 x 5 pixels, borders included
    25
    """
    pts = np.round(np.asarray(landmarks, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)
    mask = np.zeros(shape, dtype=np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(pts), 1)
    return mask.astype(np.float32)


def ellipse_mask(shape: tuple[int, int]) -> np.ndarray:
    """A centred ellipse (60 % of the width, 76 % of the height): the mask of faces without
    landmarks.

    Examples
    --------
    >>> mask = ellipse_mask((100, 100))
    >>> mask[50, 50], mask[2, 2]
    (np.float32(1.0), np.float32(0.0))
    """
    h, w = shape
    mask = np.zeros(shape, dtype=np.uint8)
    cv2.ellipse(mask, (w // 2, h // 2), (int(0.30 * w), int(0.38 * h)), 0, 0, 360, 1, -1)
    return mask.astype(np.float32)


def _odd(k: float) -> int:
    k = max(3, int(round(k)))
    return k if k % 2 else k + 1


def blend_radius(size: int, options: BlendOptions = BlendOptions()) -> int:
    """Pixels beyond the hull at which a fake of a ``size`` x ``size`` face can differ from its
    real.

    The sum of the largest shift of the warp (translation, scaling about the
    centre, elastic cap), one pixel of each resampling, and the radii of the
    two largest blur kernels.

    Examples
    --------
    >>> blend_radius(256), blend_radius(64)
    (49, 15)
    """
    s = size / _REFERENCE_SIZE
    shift = max(options.translate) * size + (
        max(options.scale[1] - 1, 1 - options.scale[0])
    ) * size / 2 * np.sqrt(2)
    blur = 2 * (_odd(options.blur_kernel[1] * s) // 2)
    return int(np.ceil(shift + options.elastic_max * s + 3 + blur))


# ---- the blend -----------------------------------------------------------------------------------


def _colour_draws(rng: np.random.Generator, o: BlendOptions, p_contrast: float) -> dict[str, Any]:
    """Random colour change: RGB shift, HSV shift (each with its probability), brightness and
    contrast (with probability ``p_contrast``)."""
    draws: dict[str, Any] = {}
    if rng.random() < o.p_rgb_shift:
        draws["rgb_shift"] = rng.uniform(-o.rgb_shift, o.rgb_shift, 3).round(1).tolist()
    if rng.random() < o.p_hsv_shift:
        dh, ds, dv = rng.uniform(-1, 1, 3) * (o.hue_shift, o.sat_shift, o.val_shift)
        draws["hsv_shift"] = [round(float(v), 1) for v in (dh, ds, dv)]
    if rng.random() < p_contrast:
        alpha = 1 + rng.uniform(-o.contrast, o.contrast)
        beta = rng.uniform(-o.brightness, o.brightness) * 255
        draws["contrast_brightness"] = [round(float(alpha), 3), round(float(beta), 1)]
    return draws


def _apply_colour(img: np.ndarray, draws: dict[str, Any]) -> np.ndarray:
    """The colour change ``draws`` on a float32 RGB image in [0, 255]."""
    if "rgb_shift" in draws:
        img = img + np.asarray(draws["rgb_shift"], dtype=np.float32)
    if "hsv_shift" in draws:
        hsv = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(
            np.float32
        )
        dh, ds, dv = draws["hsv_shift"]
        hsv[..., 0] = (hsv[..., 0] + dh) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] + ds, 0, 255)
        hsv[..., 2] = np.clip(hsv[..., 2] + dv, 0, 255)
        img = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    if "contrast_brightness" in draws:
        alpha, beta = draws["contrast_brightness"]
        img = (img - 127.5) * alpha + 127.5 + beta
    return np.clip(img, 0, 255).astype(np.float32)


def _appearance(
    img: np.ndarray, rng: np.random.Generator, o: BlendOptions
) -> tuple[np.ndarray, dict[str, Any]]:
    """Colour then frequency change of a float32 RGB image in [0, 255]."""
    info = _colour_draws(rng, o, p_contrast=1.0)
    img = _apply_colour(img, info)
    h, w = img.shape[:2]
    if rng.random() < o.p_sharpen:
        amount = rng.uniform(0.3, 1.0)
        img = np.clip(img + amount * (img - cv2.GaussianBlur(img, (0, 0), 1.0)), 0, 255)
        info["frequency"] = f"sharpen {amount:.2f}"
    else:
        f = int(rng.choice(o.downscale_factors))
        small = cv2.resize(img, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        info["frequency"] = f"downscale x{f}"
    return img.astype(np.float32), info


def _warp_maps(
    shape: tuple[int, int], rng: np.random.Generator, o: BlendOptions
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], dict[str, Any]]:
    """Sampling maps ``(map_x, map_y)`` of a random affine map, and of the same map composed
    with a capped elastic deformation."""
    h, w = shape
    s = w / _REFERENCE_SIZE
    scale = rng.uniform(*o.scale)
    tx, ty = (
        rng.uniform(-o.translate[0], o.translate[0]) * w,
        rng.uniform(-o.translate[1], o.translate[1]) * h,
    )
    cx, cy = (w - 1) / 2, (h - 1) / 2
    sigma = o.elastic_sigma * s
    cap = o.elastic_max * s
    noise = rng.uniform(-1, 1, (2, h, w)).astype(np.float32)
    dx = np.clip(cv2.GaussianBlur(noise[0], (0, 0), sigma) * o.elastic_alpha * s, -cap, cap)
    dy = np.clip(cv2.GaussianBlur(noise[1], (0, 0), sigma) * o.elastic_alpha * s, -cap, cap)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def maps(ex: np.ndarray | float, ey: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        # output pixel p takes the input at A^-1(p + d): it moves by A, then wobbles by d
        return (
            ((xx + ex - tx - cx) / scale + cx).astype(np.float32),
            ((yy + ey - ty - cy) / scale + cy).astype(np.float32),
        )

    info = {
        "scale": round(float(scale), 4),
        "translate": [round(float(tx), 2), round(float(ty), 2)],
    }
    return maps(0.0, 0.0), maps(dx, dy), info


def _soften(
    mask: np.ndarray, rng: np.random.Generator, o: BlendOptions
) -> tuple[np.ndarray, dict[str, Any]]:
    h, w = mask.shape
    s = w / _REFERENCE_SIZE
    f = rng.uniform(*o.mask_shrink)
    small = cv2.resize(
        mask, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_LINEAR
    )
    mask = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    lo, hi = o.blur_kernel
    k1, k2 = (_odd(rng.integers(lo, hi + 1) * s) for _ in range(2))
    if o.erode_mask:
        k1, k2 = max(k1, k2), min(k1, k2)  # the final blur cannot reach past the eroded edge
    mask = cv2.GaussianBlur(mask, (k1, k1), 0)
    if o.erode_mask and mask.max() > 0:
        # the pixels whose whole first kernel lay inside the mask: an erosion by its radius
        core = (mask >= mask.max() * (1 - 1e-4)).astype(np.float32)
        mask = core if core.sum() >= 1 else mask
    mask = cv2.GaussianBlur(mask, (k2, k2), 0)
    peak = float(mask.max())
    ratio = float(rng.choice(o.blend_ratios))
    if peak > 0:
        mask = mask / peak
    return np.clip(mask * ratio, 0, 1).astype(np.float32), {
        "mask_shrink": round(float(f), 3),
        "blur": [k1, k2],
        "ratio": ratio,
    }


def self_blend(
    image: np.ndarray,
    landmarks: np.ndarray | None,
    rng: np.random.Generator,
    options: BlendOptions = BlendOptions(),
) -> SelfBlend:
    """Blend ``image`` (``(H, W, 3)`` uint8 RGB) with an altered copy of itself.

    See the module docstring. ``landmarks`` (``(K, 2)`` x, y in image pixels) give the hull;
    ``None`` uses :func:`ellipse_mask`.

    Examples
    --------
    >>> t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    >>> landmarks = np.stack([32 + 14 * np.cos(t), 34 + 18 * np.sin(t)], 1)  # 68 points on an oval
    >>> image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    >>> blend = self_blend(image, landmarks, np.random.default_rng(1))
    >>> changed = (blend.fake != blend.real).any(axis=2)
    >>> bool(changed[blend.mask == 0].any()), bool(changed[blend.hull > 0].any())
    (False, True)
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"expected an (H, W, 3) uint8 RGB image, found {image.dtype} {image.shape}"
        )
    shape = image.shape[:2]
    hull = hull_mask(landmarks, shape) if landmarks is not None else ellipse_mask(shape)
    base = image.astype(np.float32)
    source, target = base, base
    altered = "source" if rng.random() < 0.5 else "target"
    changed, info = _appearance(base, rng, options)
    if altered == "source":
        source = changed
    else:
        target = changed
    affine, deformed, warp = _warp_maps(shape, rng, options)
    source_maps = deformed if options.elastic_source else affine
    source = cv2.remap(source, *source_maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    moved = cv2.remap(
        hull, *deformed, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    mask, soft = _soften(moved, rng, options)
    fake = mask[..., None] * source + (1 - mask[..., None]) * target
    real_u8 = np.clip(np.round(target), 0, 255).astype(np.uint8)
    fake_u8 = np.clip(np.round(fake), 0, 255).astype(np.uint8)
    params = {
        "altered": altered,
        **info,
        **warp,
        **soft,
        "mask": "hull" if landmarks is not None else "ellipse",
    }
    return SelfBlend(real_u8, fake_u8, mask, hull, params, moved)


# ---- augmentation shared by a real and its fake --------------------------------------------------


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(
        ".jpg", np.ascontiguousarray(image[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:
        return image
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])


def shared_augment(
    real: np.ndarray, fake: np.ndarray, rng: np.random.Generator, augment: dict[str, bool]
) -> tuple[np.ndarray, np.ndarray]:
    """The training augmentations of ``data.augment`` (:data:`detectors.data.AUGMENTATIONS`) applied
    with the same random draws to a real and its fake, pixel by pixel, so the pair still differs
    only near the face.

    ``color``: brightness and contrast factors in [0.8, 1.2] (contrast about mid-grey, not about
    each image's own mean, which would differ between the two), saturation factor in [0.8, 1.2],
    hue shift of up to 0.02 turns; ``jpeg``: with probability 1/2, the same quality in [40, 100];
    ``blur``: with probability 0.3, the same Gaussian radius in [0.1, 1.5] px. ``flip`` is applied
    before blending (the landmarks are mirrored with the face).

    Examples
    --------
    >>> real = np.full((32, 32, 3), 120, dtype=np.uint8)
    >>> fake = real.copy(); fake[8:24, 8:24] = 140
    >>> a, b = shared_augment(real, fake, np.random.default_rng(0), {"color": True})
    >>> bool((a[:, :4] == b[:, :4]).all()), bool((a != real).any())  # same change outside the face
    (True, True)
    """
    pair = [real.astype(np.float32), fake.astype(np.float32)]
    if augment.get("color"):
        b, c, sat = rng.uniform(0.8, 1.2, 3)
        hue = rng.uniform(-0.02, 0.02) * 180
        out = []
        for img in pair:
            img = np.clip((img * b - 127.5) * c + 127.5, 0, 255)
            hsv = cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
            hsv[..., 0] = (hsv[..., 0] + hue) % 180
            hsv[..., 1] = np.clip(hsv[..., 1] * sat, 0, 255)
            out.append(cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32))
        pair = out
    pair = [np.clip(np.round(img), 0, 255).astype(np.uint8) for img in pair]
    if augment.get("jpeg") and rng.random() < 0.5:
        quality = int(rng.integers(40, 101))
        pair = [_jpeg(img, quality) for img in pair]
    if augment.get("blur") and rng.random() < 0.3:
        radius = float(rng.uniform(0.1, 1.5))
        pair = [cv2.GaussianBlur(img, (0, 0), radius) for img in pair]
    return pair[0], pair[1]


def paper_augment(
    real: np.ndarray,
    fake: np.ndarray,
    rng: np.random.Generator,
    options: BlendOptions = BlendOptions(),
) -> tuple[np.ndarray, np.ndarray]:
    """The SBI paper's post-blend augmentation, with the same draws for a real and its fake.

    A colour change (RGB shift, hue/saturation/value shift, brightness and contrast about
    mid-grey, each with probability 0.3, ranges of ``options``) and, with probability 1/2, a
    JPEG compression of quality 40 to 100. Both images change alike, so the pair still differs
    only where the blend mask is positive (up to JPEG's 8 x 8 blocks).

    Examples
    --------
    >>> real = np.full((32, 32, 3), 120, dtype=np.uint8)
    >>> fake = real.copy(); fake[8:24, 8:24] = 140
    >>> a, b = paper_augment(real, fake, np.random.default_rng(1))
    >>> bool((a[:, :4] == b[:, :4]).all()), a.dtype.name
    (True, 'uint8')
    """
    draws = _colour_draws(rng, options, p_contrast=0.3)
    pair = [
        np.clip(np.round(_apply_colour(img.astype(np.float32), draws)), 0, 255).astype(np.uint8)
        for img in (real, fake)
    ]
    if rng.random() < 0.5:
        quality = int(rng.integers(40, 101))
        pair = [_jpeg(img, quality) for img in pair]
    return pair[0], pair[1]


# ---- data ----------------------------------------------------------------------------------------


def load_landmarks(image_path: str | os.PathLike) -> np.ndarray | None:
    """The landmarks saved next to a face crop (``.npy``, ``(K, 2)``), or ``None`` when there is no
    file.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> np.save(folder / "000.npy", np.zeros((68, 2)))
    >>> load_landmarks(folder / "000.png").shape, load_landmarks(folder / "001.png")
    ((68, 2), None)
    """
    path = landmark_path(image_path)
    if not path.is_file():
        return None
    try:
        points = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read landmarks {path}: {exc}") from None
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3:
        raise DataError(f"landmarks {path}: expected a (K, 2) array, found shape {points.shape}")
    return points.astype(np.float32)


def _read_rgb(path: str, where: str) -> np.ndarray:
    from .data import open_rgb

    return np.asarray(open_rgb(path, where))


class SelfBlendedPairDataset:
    """Each real face with its self-blended fake.

    Items have the form of :class:`detectors.data.PairDataset`'s.

    Item ``i`` is ``{"real": sample, "fake": sample}`` where both samples hold
    ``image`` (the transform's tensor), ``label`` (0 / 1), ``label_specific``
    (0 / ``method``), ``group`` (the real's ``intersec_label``) and ``index``
    (``i``). :func:`detectors.data.collate_pairs` stacks them ``[reals; fakes]``.
    The random draws of item ``i`` in epoch ``e`` come from
    ``numpy.random.default_rng([seed, e, i])`` (one fixed epoch when ``fixed``),
    so they do not depend on workers or resumption. Training augmentations are
    drawn once per pair and applied to both (:func:`shared_augment`); should
    ``transform`` itself be random, its draws are replayed identically on the
    fake (global operations such as contrast about the image mean could still
    differ slightly, which is why ``augment`` is the way to augment pairs).

    Parameters
    ----------
    reals : ImageTable
        Real faces (``label`` 0), e.g. ``realtrain.csv`` read by :func:`detectors.data.read_table`.
    transform : callable
        PIL image -> tensor, e.g. ``detectors.data.build_transform(input_size)`` (resize only).
    seed : int
    fixed : bool
        The same fakes every epoch (validation).
    skip_bad : bool
        An unreadable image gives ``None`` samples (dropped and counted by the collate) instead
        of raising.
    augment : mapping of str to bool, optional
        ``data.augment`` of the training configuration (keys of
        :data:`detectors.data.AUGMENTATIONS`).
    method : int
        ``label_specific`` of the fakes.
    flip : bool
        Mirror the face (and its landmarks) with probability 1/2 before blending.
    options : BlendOptions
    post_augment : bool
        Apply :func:`paper_augment` to each training pair (not when ``fixed``), as the paper does.

    Examples
    --------
    >>> import tempfile
    >>> from detectors.synth import generate
    >>> root = tempfile.mkdtemp()
    >>> _ = generate(root, 40, size=32)
    >>> from detectors.data import build_transform, read_table
    >>> reals = read_table(f"{root}/realtrain.csv", role="real")
    >>> pairs = SelfBlendedPairDataset(reals, build_transform(32), seed=0)  # no landmarks: ellipses
    >>> item = pairs[0]
    >>> item["real"]["label"], item["fake"]["label"], item["fake"]["group"] == item["real"]["group"]
    (0, 1, True)
    """

    def __init__(
        self,
        reals,
        transform: Callable,
        *,
        seed: int,
        fixed: bool = False,
        skip_bad: bool = False,
        augment: dict[str, bool] | None = None,
        method: int = SBI_METHOD,
        flip: bool = True,
        options: BlendOptions = BlendOptions(),
        post_augment: bool = True,
    ) -> None:
        from .data import AUGMENTATIONS

        self.augment = dict(augment or {})
        unknown = set(self.augment) - set(AUGMENTATIONS)
        if unknown:
            raise DataError(
                f"unknown augmentation(s) {', '.join(sorted(unknown))} (known: "
                f"{', '.join(AUGMENTATIONS)})"
            )
        if len(reals) == 0:
            raise DataError(f"{reals.csv_path}: no real images to blend")
        if (np.asarray(reals.labels) != 0).any():
            row = int(np.flatnonzero(np.asarray(reals.labels) != 0)[0])
            raise DataError(
                f"self-blended fakes are made from reals; {reals.describe_row(row)} has label "
                f"{reals.labels[row]}"
            )
        self.reals, self.transform = reals, transform
        self.seed, self.fixed, self.skip_bad = int(seed), bool(fixed), bool(skip_bad)
        self.method, self.options = int(method), options
        self.post_augment = bool(post_augment) and not self.fixed
        self.flip = bool(flip) or bool(self.augment.get("flip"))
        self.epoch = 0
        missing = [p for p in reals.paths if not landmark_path(p).is_file()]
        self.without_landmarks = len(missing)
        if missing:
            log.warning(
                "%s: %d of %d image(s) have no landmark file (first: %s): their fakes use an "
                "elliptical mask",
                reals.csv_path,
                len(missing),
                len(reals),
                landmark_path(missing[0]),
            )

    def set_epoch(self, epoch: int) -> None:
        """Draw the fakes of ``epoch`` (ignored when ``fixed``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.reals)

    def pair(self, i: int) -> SelfBlend:
        """The real face ``i`` (flipped or not) and its fake of the current epoch, as arrays
        (before the shared augmentation)."""
        return self._pair(i)[0]

    def _pair(self, i: int) -> tuple[SelfBlend, np.random.Generator]:
        t = self.reals
        rng = np.random.default_rng([self.seed, 2**31 - 1 if self.fixed else self.epoch, i])
        image = _read_rgb(t.paths[i], t.describe_row(i))
        landmarks = load_landmarks(t.paths[i])
        if self.flip and rng.random() < 0.5:
            image = np.ascontiguousarray(image[:, ::-1])
            if landmarks is not None:
                landmarks = landmarks.copy()
                landmarks[:, 0] = image.shape[1] - 1 - landmarks[:, 0]
        return self_blend(
            image, landmarks, rng, self.options
        ), rng  # the augmentation continues this stream

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch
        from PIL import Image

        try:
            blend, rng = self._pair(i)
        except DataError:
            if self.skip_bad:
                return {"real": None, "fake": None}
            raise
        real_img, fake_img = blend.real, blend.fake
        if self.post_augment:
            real_img, fake_img = paper_augment(real_img, fake_img, rng, self.options)
        if any(self.augment.values()):
            real_img, fake_img = shared_augment(real_img, fake_img, rng, self.augment)
        state = torch.get_rng_state()
        real = self.transform(Image.fromarray(real_img))
        torch.set_rng_state(state)  # the same random augmentation for the fake
        fake = self.transform(Image.fromarray(fake_img))
        group = int(self.reals.groups[i])
        return {
            "real": {"image": real, "label": 0, "label_specific": 0, "group": group, "index": i},
            "fake": {
                "image": fake,
                "label": 1,
                "label_specific": self.method,
                "group": group,
                "index": i,
            },
        }


def read_sbi_tables(root: str | os.PathLike, split: str, *, dataset: str, skip_missing: bool):
    """``(reals, reals)`` of ``split``.

    The real table of :func:`detectors.data.read_training_tables` in both places, since each
    real is paired with its own fake (so per-group counts of the pair are twice the reals', as
    in the batches).

    Examples
    --------
    >>> import tempfile
    >>> from detectors.synth import generate
    >>> root = tempfile.mkdtemp()
    >>> _ = generate(root, 40, size=32)
    >>> reals, again = read_sbi_tables(root, "train", dataset="ff++", skip_missing=False)
    >>> reals is again, len(reals)
    (True, 12)
    """
    from .data import TRAINING_FILES, read_table

    root = Path(root)
    if not root.is_dir():
        raise DataError(
            f"data.root {root}: not a folder (expected one holding {TRAINING_FILES[split][1]})"
        )
    reals = read_table(
        root / TRAINING_FILES[split][1], dataset=dataset, role="real", skip_missing=skip_missing
    )
    return reals, reals


def write_self_blended(
    csv: str | os.PathLike,
    out: str | os.PathLike,
    *,
    seed: int = 0,
    dataset: str = "ff++",
    method: int = SBI_METHOD,
) -> Path:
    """Write one fixed self-blended fake per real row of ``csv``; returns ``out/<csv name>``.

    The new CSV holds the rows of ``csv`` (image paths made relative to
    ``out``) and then one fake per real row: ``label`` 1, ``img_path`` of the
    fake PNG under ``out/images/``, ``video_id`` suffixed ``-sbi`` (so frame
    scores of a real video and of its fakes are never averaged together), the
    other columns copied; ``spe_label`` is set to ``method`` where the file has
    that column. Fakes are drawn from ``numpy.random.default_rng([seed, row])``.

    Examples
    --------
    >>> import tempfile
    >>> from detectors.synth import generate
    >>> root = tempfile.mkdtemp()
    >>> _ = generate(root, 40, size=32)
    >>> target = write_self_blended(f"{root}/test.csv", f"{root}/sbi")
    >>> import pandas as pd
    >>> pd.read_csv(target)["label"].value_counts().sort_index().tolist()  # 4 reals, 4 + 4 fakes
    [4, 8]
    """
    import pandas as pd

    from .data import read_table

    csv, out = Path(csv), Path(out)
    table = read_table(csv, dataset=dataset, role="any", require_groups=False)
    out.mkdir(parents=True, exist_ok=True)
    frame = table.frame.copy()
    frame["img_path"] = [os.path.relpath(p, out) for p in table.paths]
    fakes = []
    for i in np.flatnonzero(table.labels == 0):
        image = _read_rgb(table.paths[i], table.describe_row(i))
        blend = self_blend(
            image, load_landmarks(table.paths[i]), np.random.default_rng([seed, int(table.rows[i])])
        )
        rel = Path("images") / f"{int(table.rows[i]):06d}_{Path(table.paths[i]).stem}.png"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(out / rel), np.ascontiguousarray(blend.fake[:, :, ::-1])):
            raise DataError(f"cannot write {out / rel}")
        row = frame.iloc[int(i)].copy()
        row["img_path"], row["label"] = rel.as_posix(), 1
        if "video_id" in row.index:
            row["video_id"] = f"{row['video_id']}-sbi"
        if "spe_label" in row.index:
            row["spe_label"] = method
        fakes.append(row)
    if not fakes:
        raise DataError(f"{csv}: no real rows (label 0) to blend")
    result = pd.concat([frame, pd.DataFrame(fakes)], ignore_index=True)
    target = out / csv.name
    result.to_csv(target, index=False)
    return target


def main(argv: list[str] | None = None) -> int:
    """The command line (module docstring): write fixed self-blended fakes; returns 0.

    Examples
    --------
    >>> import tempfile
    >>> from detectors.synth import generate
    >>> root = tempfile.mkdtemp()
    >>> _ = generate(root, 40, size=32)
    >>> main(["--csv", f"{root}/test.csv", "--out", f"{root}/sbi"])  # doctest: +ELLIPSIS
    wrote .../sbi/test.csv
    0
    """
    from ._cli import setup_logging

    p = argparse.ArgumentParser(
        prog="python -m detectors.sbi",
        description="Write fixed self-blended fakes of the real faces of a CSV (a test or "
        "validation set with both classes).",
    )
    p.add_argument(
        "--csv", required=True, help="CSV of the research schema (its label-0 rows are blended)"
    )
    p.add_argument(
        "--out",
        required=True,
        help="output folder: images/ and a CSV of the same name with reals and fakes",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", default="ff++", help="group coding of intersec_label")
    args = p.parse_args(argv)
    setup_logging()
    target = write_self_blended(args.csv, args.out, seed=args.seed, dataset=args.dataset)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    from ._cli import run_cli

    sys.exit(run_cli("detectors.sbi", main))
