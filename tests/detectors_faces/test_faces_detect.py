"""Detection, landmarks and alignment on real photographs; model files found without importing their
package."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from detectors.faces import (
    FaceDetector,
    align_face,
    anchor_points,
    eye_centers,
    similarity_transform,
    template_points,
    transform_points,
)

SIZE, MARGIN = 256, 0.2
EYE_TOLERANCE_PX = 5.0  # 2 % of the crop side


def _rgb(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def test_model_files_are_found_without_importing_their_package():
    code = (
        "import sys, detectors.faces as f\n"
        "paths = [f.find_model_file(k) for k in ('landmarks68', 'cnn')]\n"
        "assert all(p is not None and p.is_file() for p in paths), paths\n"
        "assert 'face_recognition_models' not in sys.modules\n"
        "print(paths[0].name)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0 and "None" in proc.stderr:
        pytest.skip("face-recognition-models not installed")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "shape_predictor_68_face_landmarks.dat"


def test_model_files_are_found_by_the_site_packages_scan_too(monkeypatch):
    from detectors.faces import _models

    expected = _models.find_model_file("landmarks68")
    if expected is None:
        pytest.skip("face-recognition-models not installed")
    monkeypatch.setattr(_models, "_from_metadata", lambda name: None)
    assert _models.find_model_file("landmarks68") == expected


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_face_is_found_and_its_eyes_land_on_the_template(name, photo_paths, detector):
    image = _rgb(photo_paths[name])
    face = detector.best_face(image)
    assert face is not None and face.detector == "hog" and face.landmarks.shape == (68, 2)
    aligned = align_face(image, face, size=SIZE, margin=MARGIN)
    assert (
        aligned.method == "landmarks"
        and aligned.image.shape == (SIZE, SIZE, 3)
        and aligned.image.dtype == np.uint8
    )
    target = template_points(SIZE, MARGIN)
    # the landmarks carried into the crop: every anchor near its template point
    assert np.abs(anchor_points(aligned.landmarks) - target).max() < 12
    # independent check: detect again in the crop; the eyes found there sit on the template
    again = detector.best_face(aligned.image)
    assert again is not None
    err = np.linalg.norm(eye_centers(again.landmarks) - target[:2], axis=1)
    assert (err < EYE_TOLERANCE_PX).all(), err


def test_the_face_is_chosen_by_detector_score_not_box_size(photo_paths):
    image = _rgb(photo_paths["astronaut"])
    lenient = FaceDetector("hog", hog_threshold=-0.3, landmarks=False)
    faces = lenient.detect(image)
    assert len(faces) >= 2  # the face and a patch of the space suit
    largest = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    best = lenient.best_face(image)
    assert best.box == faces[0].box and best.score == max(f.score for f in faces)
    assert largest.box != best.box  # the larger box is the false positive
    left, top, right, bottom = best.box
    assert (
        top < 150 and 150 < (left + right) / 2 < 300
    )  # Eileen Collins' face, top middle of the photo


def test_without_landmarks_the_face_is_cropped_by_its_box(photo_paths):
    image = _rgb(photo_paths["grace_hopper"])
    face = FaceDetector("hog", landmarks=False).best_face(image)
    assert face.landmarks is None
    aligned = align_face(image, face, size=64, margin=0.2)
    assert (
        aligned.method == "box" and aligned.landmarks is None and aligned.image.shape == (64, 64, 3)
    )
    left, top, right, bottom = face.box
    centre = transform_points(aligned.matrix, np.array([[(left + right) / 2, (top + bottom) / 2]]))[
        0
    ]
    assert np.allclose(centre, 32, atol=0.5)


def test_similarity_fit_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = scale * src @ rot.T + shift
    matrix = similarity_transform(src, dst, np.array([2, 2, 1, 1, 1.0]))
    assert np.allclose(matrix, np.hstack([scale * rot, shift[:, None]]))
    assert np.allclose(transform_points(matrix, src), dst)


def test_no_face_in_a_photo_without_one(photo_paths, detector):
    assert detector.best_face(_rgb(photo_paths["coffee"])) is None


@pytest.mark.slow
def test_the_cnn_detector_finds_the_grey_cameraman_hog_misses(photo_paths, detector):
    image = _rgb(photo_paths["camera"])
    assert detector.best_face(image) is None
    auto = FaceDetector("auto")
    if auto.detector != "hog+cnn":
        pytest.skip("CNN model file not installed")
    face = auto.best_face(image)
    assert face is not None and face.detector == "cnn" and face.landmarks.shape == (68, 2)
    left, top, right, bottom = face.box
    assert 150 < (left + right) / 2 < 300 and top < 200  # the cameraman's head
