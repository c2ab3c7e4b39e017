"""Frame sampling from videos, folders and images; unreadable sources fail with a message naming
them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from detectors import DataError
from detectors.faces import read_frames, sample_indices


def _clip(path, n, size=64):
    """An MJPG clip whose frame k is uniformly grey at level 20 k (the frame says its own index)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (size, size))
    assert writer.isOpened()
    for k in range(n):
        writer.write(np.full((size, size, 3), 20 * k, np.uint8))
    writer.release()
    return path


def test_sample_indices_are_even_and_never_invent_frames():
    assert sample_indices(100, frames=4) == [12, 37, 62, 87]  # centres of four equal segments
    assert sample_indices(3, frames=8) == [0, 1, 2]  # fewer frames: what there is
    assert sample_indices(10, stride=4) == [0, 4, 8]
    assert sample_indices(0, frames=8) == []
    idx = sample_indices(301, frames=32)
    assert len(idx) == 32 == len(set(idx)) and idx == sorted(idx) and idx[-1] < 301


def test_video_frames_are_the_sampled_ones(tmp_path):
    frames = read_frames(_clip(tmp_path / "v.avi", 10), frames=4)
    got = list(frames.frames())
    assert frames.kind == "video" and frames.total == 10
    assert [i for i, _ in got] == frames.delivered == [1, 3, 6, 8]
    for index, image in got:
        assert image.shape == (64, 64, 3) and abs(float(image.mean()) - 20 * index) < 3


def test_a_short_video_gives_what_it_has(tmp_path):
    frames = read_frames(_clip(tmp_path / "short.avi", 3), frames=8)
    assert [i for i, _ in frames.frames()] == [0, 1, 2] and frames.total == 3


def test_a_folder_of_frames_is_a_video(tmp_path):
    for k in range(6):
        Image.fromarray(np.full((8, 8, 3), 10 * k, np.uint8)).save(tmp_path / f"f{k:02d}.png")
    frames = read_frames(tmp_path, stride=2)
    got = list(frames.frames())
    assert frames.kind == "folder" and [i for i, _ in got] == [0, 2, 4] and got[1][1][0, 0, 0] == 20


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("broken.mp4", b"not a video at all", "cannot open video"),
        ("broken.png", b"not an image", "cannot read image"),
        ("notes.txt", b"hello", "unknown file type"),
    ],
)
def test_unreadable_sources_name_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        list(read_frames(path).frames())
    assert name in str(info.value) and "\n" not in str(info.value)


def test_a_missing_source_is_named(tmp_path):
    with pytest.raises(DataError, match="no such file or folder: .*gone.mp4"):
        read_frames(tmp_path / "gone.mp4")
