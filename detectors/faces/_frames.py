"""Reading frames: sampled evenly over a video or a folder of frames, or a single image.

Frame ``k`` of ``n`` sampled from a source of ``total`` frames is the one in
the middle of the k-th of ``n`` equal segments,
``floor((k + 1/2) total / n)``; a source with fewer frames than asked for
gives all it has. With a stride ``s`` the frames are ``0, s, 2s, ...``.
Videos are decoded in order (``grab`` for the frames that are skipped), so the
indices are exact even where a container's frame count is wrong; a video that
ends early gives the frames it has, and the count is reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageOps

from .._errors import DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "FrameSet",
    "read_frames",
    "sample_indices",
    "landmark_path",
    "media_kind",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (
    ".mp4",
    ".avi",
    ".mov",
    ".mkv",
    ".webm",
    ".mpg",
    ".mpeg",
    ".m4v",
    ".wmv",
    ".flv",
)


def landmark_path(image_path: str | os.PathLike) -> Path:
    """Where the landmarks of a face crop are saved: the same name with ``.npy``.

    Examples
    --------
    >>> landmark_path("faces/v1/000.png").as_posix()
    'faces/v1/000.npy'
    """
    return Path(image_path).with_suffix(".npy")


def sample_indices(total: int, *, frames: int | None = 32, stride: int | None = None) -> list[int]:
    """Indices of the frames to keep out of ``total`` (see the module docstring).

    Examples
    --------
    >>> sample_indices(100, frames=4)  # the middle frame of four equal segments
    [12, 37, 62, 87]
    >>> sample_indices(10, frames=None, stride=4)
    [0, 4, 8]
    """
    if total <= 0:
        return []
    if stride is not None:
        return list(range(0, total, int(stride)))
    if frames is None or frames >= total:
        return list(range(total))
    return [int((k + 0.5) * total / frames) for k in range(frames)]


def media_kind(path: Path) -> str:
    """``image``, ``video`` or ``folder`` (of frames), or ``unknown``."""
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    return "unknown"


def _open_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


@dataclass
class FrameSet:
    """The frames of one source to process.

    Attributes
    ----------
    path : Path
    kind : str
        ``image``, ``video`` or ``folder``.
    total : int
        Frames in the source (as decoded for a video: known after :meth:`frames` has run).
    wanted : list of int
        The indices asked for.
    delivered : list of int
        The indices actually read (filled by :meth:`frames`).

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> path = Path(tempfile.mkdtemp()) / "face.png"
    >>> Image.new("RGB", (8, 8)).save(path)
    >>> frames = read_frames(path)
    >>> frames.kind, [(i, image.shape) for i, image in frames.frames()]
    ('image', [(0, (8, 8, 3))])
    """

    path: Path
    kind: str
    total: int
    wanted: list[int]
    frames_arg: int | None = None
    stride_arg: int | None = None
    delivered: list[int] = field(default_factory=list)
    _files: list[Path] = field(default_factory=list, repr=False)

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(frame index, RGB uint8 array)`` in order."""
        if self.kind == "image":
            yield from self._yield(0, _open_image(self.path))
        elif self.kind == "folder":
            for i in self.wanted:
                yield from self._yield(i, _open_image(self._files[i]))
        else:
            yield from self._video_frames()

    def _yield(self, index: int, image: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        self.delivered.append(index)
        yield index, image

    def _video_frames(self) -> Iterator[tuple[int, np.ndarray]]:
        import cv2

        cap = cv2.VideoCapture(str(self.path))
        try:
            if not cap.isOpened():
                raise DataError(
                    f"cannot open video {self.path} (not a video, or a codec OpenCV lacks)"
                )
            wanted = self.wanted
            if self.total <= 0:  # unknown length: count the frames first
                n = 0
                while cap.grab():
                    n += 1
                cap.release()
                cap = cv2.VideoCapture(str(self.path))
                self.total = n
                wanted = self.wanted = sample_indices(
                    n, frames=self.frames_arg, stride=self.stride_arg
                )
            keep = set(wanted)
            last = max(wanted) if wanted else -1
            index, decoded = 0, 0
            while index <= last:
                if not cap.grab():
                    break
                decoded = index + 1
                if index in keep:
                    ok, bgr = cap.retrieve()
                    if ok and bgr is not None:
                        yield from self._yield(index, np.ascontiguousarray(bgr[:, :, ::-1]))
                index += 1
            if decoded < last + 1:  # the container promised more frames than it holds
                self.total = decoded
            if not self.delivered:
                raise DataError(f"cannot decode any frame of video {self.path}")
        finally:
            cap.release()


def read_frames(
    path: str | os.PathLike, *, frames: int | None = 32, stride: int | None = None
) -> FrameSet:
    """The frames of ``path`` (a video, an image or a folder of images) to process.

    Raises
    ------
    DataError
        When the path does not exist, has an unknown type, or a folder holds no image.

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> folder = Path(tempfile.mkdtemp())
    >>> for i in range(10):
    ...     Image.new("RGB", (8, 8)).save(folder / f"{i:03d}.png")
    >>> frames = read_frames(folder, frames=3)
    >>> frames.kind, frames.total, frames.wanted
    ('folder', 10, [1, 5, 8])
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"no such file or folder: {path}")
    kind = media_kind(path)
    if kind == "image":
        return FrameSet(path, kind, 1, [0], frames, stride)
    if kind == "folder":
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise DataError(f"folder {path} holds no image ({', '.join(IMAGE_EXTENSIONS)})")
        return FrameSet(
            path,
            kind,
            len(files),
            sample_indices(len(files), frames=frames, stride=stride),
            frames,
            stride,
            _files=files,
        )
    if kind == "video":
        import cv2

        cap = cv2.VideoCapture(str(path))
        try:
            if not cap.isOpened():
                raise DataError(f"cannot open video {path} (not a video, or a codec OpenCV lacks)")
            total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        finally:
            cap.release()
        return FrameSet(
            path,
            kind,
            max(total, 0),
            sample_indices(total, frames=frames, stride=stride),
            frames,
            stride,
        )
    raise DataError(
        f"{path}: unknown file type {path.suffix!r} (images: {', '.join(IMAGE_EXTENSIONS)}; "
        f"videos: {', '.join(VIDEO_EXTENSIONS)})"
    )
