"""Opening images (always as RGB), resize / augment transforms, and batched normalisation."""

from __future__ import annotations

import io
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from PIL import Image, ImageFilter
from torchvision import transforms as T

from .._errors import DataError

__all__ = ["open_rgb", "build_transform", "normalize_images", "AUGMENTATIONS"]

#: optional augmentations, all off by default (the paper trains without any)
AUGMENTATIONS = ("flip", "color", "jpeg", "blur")


def open_rgb(path: str, where: str) -> Image.Image:
    """Open ``path`` as an RGB image, or raise :class:`DataError` naming the file and ``where``.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "grey.png")
    >>> Image.new("L", (4, 4)).save(path)
    >>> open_rgb(path, "an example").mode
    'RGB'
    """
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {path} ({where}): {exc}") from None


class _RandomJPEG:
    """Re-encode as JPEG with a random quality in ``[low, high]`` with probability ``p``."""

    def __init__(self, p: float = 0.5, low: int = 40, high: int = 100) -> None:
        self.p, self.low, self.high = p, low, high

    def __call__(self, img: Image.Image) -> Image.Image:
        if torch.rand(()) >= self.p:
            return img
        quality = int(torch.randint(self.low, self.high + 1, ()))
        buffer = io.BytesIO()
        img.save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as out:
            return out.convert("RGB")


class _RandomBlur:
    """Gaussian blur with a random radius in ``[0.1, max_radius]`` with probability ``p``."""

    def __init__(self, p: float = 0.3, max_radius: float = 1.5) -> None:
        self.p, self.max_radius = p, max_radius

    def __call__(self, img: Image.Image) -> Image.Image:
        if torch.rand(()) >= self.p:
            return img
        radius = 0.1 + float(torch.rand(())) * (self.max_radius - 0.1)
        return img.filter(ImageFilter.GaussianBlur(radius))


class _ResizeIfNeeded:
    """Bilinear resize to ``size`` x ``size`` unless the image already has that size."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.resize = T.Resize((size, size), interpolation=T.InterpolationMode.BILINEAR)

    def __call__(self, img: Image.Image) -> Image.Image:
        return img if img.size == (self.size, self.size) else self.resize(img)


def _to_uint8_tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(img, dtype=np.uint8, copy=True)).permute(2, 0, 1).contiguous()


def build_transform(
    input_size: int, augment: Mapping[str, bool] | None = None
) -> Callable[[Image.Image], torch.Tensor]:
    """PIL RGB image -> uint8 tensor ``(3, S, S)``: resize (bilinear) and optional augmentation.

    Normalisation happens on the device, batched (:func:`normalize_images`), so the
    loader moves 1 byte per value instead of 4.

    Parameters
    ----------
    augment : mapping of str to bool, optional
        Keys among :data:`AUGMENTATIONS`; all off by default (the paper trains without any).

    Examples
    --------
    >>> transform = build_transform(32)
    >>> image = transform(Image.new("RGB", (64, 48)))
    >>> image.shape, image.dtype
    (torch.Size([3, 32, 32]), torch.uint8)
    """
    augment = dict(augment or {})
    unknown = set(augment) - set(AUGMENTATIONS)
    if unknown:
        raise DataError(
            f"unknown augmentation(s) {', '.join(sorted(unknown))} (known: "
            f"{', '.join(AUGMENTATIONS)})"
        )
    steps: list[Callable] = [_ResizeIfNeeded(input_size)]
    if augment.get("flip"):
        steps.append(T.RandomHorizontalFlip())
    if augment.get("color"):
        steps.append(T.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02))
    if augment.get("jpeg"):
        steps.append(_RandomJPEG())
    if augment.get("blur"):
        steps.append(_RandomBlur())
    steps.append(_to_uint8_tensor)
    return T.Compose(steps)


def normalize_images(
    images: torch.Tensor, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """uint8 ``(B, 3, S, S)`` -> float ``x = (v / 255 - mean) / std`` per channel.

    With mean = std = 0.5 (Xception, the research setting) values lie in [-1, 1].
    Float input is returned unchanged (already normalised).

    Examples
    --------
    >>> images = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    >>> normalize_images(images, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)).unique()
    tensor([1.])
    """
    if images.is_floating_point():
        return images
    m = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    return (images.float().div_(255.0) - m).div_(s)
