"""Opening images (always as RGB) and the resize / normalise / augment transforms."""

from __future__ import annotations

import io
from typing import Callable, Mapping, Sequence

import torch
from PIL import Image, ImageFilter
from torchvision import transforms as T

from .._errors import DataError

__all__ = ["open_rgb", "build_transform", "AUGMENTATIONS"]

#: optional augmentations, all off by default (the paper trains without any)
AUGMENTATIONS = ("flip", "color", "jpeg", "blur")


def open_rgb(path: str, where: str) -> Image.Image:
    """Open ``path`` as an RGB image, or raise :class:`DataError` naming the file and ``where``."""
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


def build_transform(
    input_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    augment: Mapping[str, bool] | None = None,
) -> Callable[[Image.Image], torch.Tensor]:
    """PIL image -> normalised tensor ``(3, S, S)``.

    Resize to ``input_size`` x ``input_size`` (bilinear), optional augmentation,
    then ``x = (v / 255 - mean) / std`` per channel. With mean = std = 0.5
    (Xception, the research setting) values lie in [-1, 1].

    Parameters
    ----------
    augment : mapping of str to bool, optional
        Keys among :data:`AUGMENTATIONS`; all off by default.
    """
    augment = dict(augment or {})
    unknown = set(augment) - set(AUGMENTATIONS)
    if unknown:
        raise DataError(f"unknown augmentation(s) {', '.join(sorted(unknown))} (known: {', '.join(AUGMENTATIONS)})")
    steps: list[Callable] = [T.Resize((input_size, input_size), interpolation=T.InterpolationMode.BILINEAR)]
    if augment.get("flip"):
        steps.append(T.RandomHorizontalFlip())
    if augment.get("color"):
        steps.append(T.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02))
    if augment.get("jpeg"):
        steps.append(_RandomJPEG())
    if augment.get("blur"):
        steps.append(_RandomBlur())
    steps += [T.ToTensor(), T.Normalize(list(mean), list(std))]
    return T.Compose(steps)
