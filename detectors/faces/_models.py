"""Finding dlib's model files without importing the package that ships them.

The ``face-recognition-models`` distribution holds dlib's 68-point landmark
predictor and its CNN (MMOD) face detector as plain ``.dat`` files. Importing
that package runs ``pkg_resources`` (gone from current setuptools), so the
files are located from the distribution's file list (``importlib.metadata``)
or, failing that, by looking for ``face_recognition_models/models/<file>`` in
the site-packages folders on the import path. Nothing here imports it.
"""

from __future__ import annotations

import importlib.metadata as metadata
import site
import sys
import sysconfig
from pathlib import Path

__all__ = ["MODEL_FILES", "MODELS_DISTRIBUTION", "find_model_file"]

MODELS_DISTRIBUTION = "face-recognition-models"
_PACKAGE_DIR = "face_recognition_models/models"

#: short name -> file name inside ``face_recognition_models/models``
MODEL_FILES = {
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "cnn": "mmod_human_face_detector.dat",
}


def _from_metadata(file_name: str) -> Path | None:
    try:
        dist = metadata.distribution(MODELS_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    for entry in dist.files or ():
        if entry.as_posix().endswith(f"{_PACKAGE_DIR}/{file_name}"):
            path = Path(str(dist.locate_file(entry)))
            if path.is_file():
                return path
    return None


def _search_roots() -> list[Path]:
    roots: list[str] = []
    for key in ("purelib", "platlib"):
        try:
            roots.append(sysconfig.get_paths()[key])
        except KeyError:
            pass
    try:
        roots += site.getsitepackages()
    except AttributeError:  # some virtualenv flavours lack it
        pass
    roots += [p for p in sys.path if p]
    seen, out = set(), []
    for r in roots:
        p = Path(r)
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def find_model_file(name: str) -> Path | None:
    """The installed file of model ``name`` (a key of :data:`MODEL_FILES`), or ``None``.

    Examples
    --------
    >>> path = find_model_file("landmarks68")  # None without face-recognition-models
    >>> path is None or path.name == MODEL_FILES["landmarks68"]
    True
    """
    file_name = MODEL_FILES[name]
    found = _from_metadata(file_name)
    if found is not None:
        return found
    for root in _search_roots():
        candidate = root / _PACKAGE_DIR / file_name
        if candidate.is_file():
            return candidate
    return None
