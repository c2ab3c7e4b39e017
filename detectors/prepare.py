"""Command line: faces from videos and images to the research CSV schema, offline.

::

    python -m detectors.prepare --annotations ANNOTATIONS.csv --out DATA [--input MEDIA_DIR]
        [--frames 32 | --stride S] [--size 256] [--margin 0.2] [--detector auto]
        [--workers N] [--seed 0] [--split 0.6,0.2,0.2] [--dataset ff++]

The annotation table has one row per video, image or folder of frames:

``path`` (required)
    the file or folder, relative to ``--input`` (default: the table's folder) or absolute;
``label`` (required)
    ``0``/``real`` or ``1``/``fake``;
``identity`` (required)
    who is in it; a fake made from two people is ``A+B`` (both identities are
    then kept in one split);
``method`` (or ``spe_label``; fakes)
    the manipulation id ``1..`` or an FF++ name (Deepfakes=1, Face2Face=2,
    FaceSwap=3, NeuralTextures=4, FaceShifter=5); 1 when absent;
demographics
    ``gender`` (male / female) and ``race`` (asian / white / black / others),
    or the research flags ``ismale,isasian,iswhite,isblack`` (+1 / -1), or
    ``intersec_label`` in the ``--dataset`` coding;
``video_id`` (optional)
    a unique name (default: the path without its extension);

other columns are copied to the output CSVs unchanged.

For each row, frames are sampled evenly (``--frames``, or every ``--stride``-th),
dlib finds the faces (:mod:`detectors.faces`), the one with the best detector
score is aligned to the template, cropped with the margin, resized and saved as
``DATA/faces/<video_id>/<frame>.png`` with its landmarks (crop pixels) in
``<frame>.npy``. A frame without a face is counted and listed, never replaced.
Videos already done (``faces.json`` written with the same settings) are
skipped, so an interrupted run resumes. The rows are split 60/20/20 by identity
(:func:`detectors.faces.split_identities`, seeded, balanced by label and group)
and written as ``faketrain.csv``, ``realtrain.csv``, ``fakeval.csv``,
``realval.csv`` and ``test.csv`` (image paths relative to ``DATA``), with
``report.csv`` (one row per video: frames sampled, faces found, frames without
a face and which) and ``prepare.json`` (settings and counts).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import time
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._cli import run_cli, setup_logging
from ._errors import ConfigError, DataError
from .faces._split import SPLITS, split_identities

__all__ = ["PrepareSettings", "prepare", "read_annotations", "main", "FFPP_METHODS", "OUTPUT_FILES"]

log = logging.getLogger("detectors.prepare")

#: FF++ manipulation names -> ``spe_label`` (spec section 3.1)
FFPP_METHODS = {
    "deepfakes": 1,
    "face2face": 2,
    "faceswap": 3,
    "neuraltextures": 4,
    "faceshifter": 5,
}
#: output file -> (split, label or None for both)
OUTPUT_FILES = {
    "faketrain.csv": ("train", 1),
    "realtrain.csv": ("train", 0),
    "fakeval.csv": ("val", 1),
    "realval.csv": ("val", 0),
    "test.csv": ("test", None),
}
_GENDERS = {
    "male": "male",
    "m": "male",
    "man": "male",
    "female": "nonmale",
    "f": "nonmale",
    "woman": "nonmale",
    "nonmale": "nonmale",
}
_RACES = {
    "asian": "asian",
    "white": "white",
    "black": "black",
    "others": "others",
    "other": "others",
}
_CONSUMED = {
    "ann_row",
    "media",
    "path",
    "label",
    "identity",
    "method",
    "spe_label",
    "gender",
    "race",
    "ismale",
    "isasian",
    "iswhite",
    "isblack",
    "intersec_label",
    "video_id",
}
_OUTPUT_NAMES = {"img_path", "frame", "split"}
_DONE = "faces.json"
_FORMAT = 1


# ---- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrepareSettings:
    """What decides the faces of a video (the resume check compares all but the last three).

    Examples
    --------
    >>> settings = PrepareSettings(frames=8, size=128)
    >>> settings.detector, settings.margin
    ('auto', 0.2)
    >>> PrepareSettings(size=8).check()
    Traceback (most recent call last):
    ...
    detectors._errors.ConfigError: --size 8: expected at least 16 pixels
    """

    frames: int | None = 32
    stride: int | None = None
    size: int = 256
    margin: float = 0.2
    detector: str = "auto"
    upsample: int = 0
    hog_threshold: float = 0.0
    landmark_model: str | None = None
    cnn_model: str | None = None
    landmarks: bool | None = None  # None: when a model is found

    def check(self) -> None:
        if self.stride is not None and self.stride < 1:
            raise ConfigError(f"--stride {self.stride}: expected 1 or more")
        if self.stride is None and (self.frames is None or self.frames < 1):
            raise ConfigError(f"--frames {self.frames}: expected 1 or more")
        if self.size < 16:
            raise ConfigError(f"--size {self.size}: expected at least 16 pixels")
        if not 0 <= self.margin <= 2:
            raise ConfigError(
                f"--margin {self.margin}: expected a fraction of the face size per side in [0, 2]"
            )

    def fingerprint(self, detector: dict[str, Any]) -> dict[str, Any]:
        """Everything that changes the saved faces (model files by name, not path)."""
        return {
            "format": _FORMAT,
            "frames": None if self.stride is not None else self.frames,
            "stride": self.stride,
            "size": self.size,
            "margin": self.margin,
            "detector": detector["detector"],
            "upsample": self.upsample,
            "hog_threshold": self.hog_threshold,
            "landmark_model": Path(detector["landmark_model"]).name
            if detector["landmark_model"]
            else None,
        }


# ---- annotations ------------------------------------------------------------------------------


def _where(path: Path, row: int) -> str:
    return f"row {row} (line {row + 2}) of {path}"


def _parse_label(value: Any, where: str) -> int:
    text = str(value).strip().lower()
    if text in ("0", "real", "0.0"):
        return 0
    if text in ("1", "fake", "1.0"):
        return 1
    raise DataError(f"label must be 0/real or 1/fake; {where} has {value!r}")


def _parse_method(value: Any, where: str) -> int:
    text = str(value).strip()
    if text.lower() in FFPP_METHODS:
        return FFPP_METHODS[text.lower()]
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if number != number or number < 1 or number % 1:
        raise DataError(
            f"method must be an id >= 1 or one of {', '.join(n.title() for n in FFPP_METHODS)}; "
            f"{where} has {value!r}"
        )
    return int(number)


def _flag(value: Any, column: str, where: str) -> bool:
    text = str(value).strip()
    if text in ("1", "1.0", "+1"):
        return True
    if text in ("-1", "-1.0", "0", "0.0"):
        return False
    raise DataError(f"{column} must be 1 or -1; {where} has {value!r}")


def _gender_race(
    rec: dict[str, Any], columns: set[str], coding: tuple, dataset: str, where: str
) -> tuple[str, str]:
    if "gender" in columns and "race" in columns:
        g, r = str(rec["gender"]).strip().lower(), str(rec["race"]).strip().lower()
        if g not in _GENDERS:
            raise DataError(f"gender must be male or female; {where} has {rec['gender']!r}")
        if r not in _RACES:
            raise DataError(
                f"race must be one of asian, white, black, others; {where} has {rec['race']!r}"
            )
        gender, race = _GENDERS[g], _RACES[r]
    elif "ismale" in columns:
        gender = "male" if _flag(rec["ismale"], "ismale", where) else "nonmale"
        flagged = [
            r
            for r in ("asian", "white", "black")
            if f"is{r}" in columns and _flag(rec[f"is{r}"], f"is{r}", where)
        ]
        if len(flagged) > 1:
            raise DataError(
                f"at most one of isasian, iswhite, isblack may be 1; {where} has "
                f"{', '.join('is' + r for r in flagged)}"
            )
        race = flagged[0] if flagged else "others"
    else:
        text = str(rec["intersec_label"]).strip()
        if not re.fullmatch(r"\d+(\.0)?", text) or int(float(text)) >= len(coding):
            raise DataError(
                f"intersec_label must be a {dataset} group id 0..{len(coding) - 1}; {where} has "
                f"{rec['intersec_label']!r}"
            )
        gender, race = coding[int(float(text))]
    if (gender, race) not in coding:
        raise DataError(
            f"{where}: group {gender},{race} does not exist in the {dataset} coding "
            f"({', '.join(f'{g},{r}' for g, r in coding)})"
        )
    return gender, race


def _video_key(value: str) -> str:
    key = re.sub(r"[^A-Za-z0-9._-]+", "_", value.strip()).strip("._")
    return key or "video"


def read_annotations(
    path: str | os.PathLike, *, input_root: str | os.PathLike | None = None, dataset: str = "ff++"
) -> pd.DataFrame:
    """Read and validate the annotation table (module docstring).

    Returns
    -------
    pandas.DataFrame
        One row per source: ``ann_row`` (0-based data row), ``path`` (as
        given), ``media`` (absolute path), ``video_id``, ``label``, ``spe_label`` (0 for reals),
        ``identity``, the research columns of ``dataset``
        (``ismale``, ``isasian``, ``iswhite``, ``isblack``, ``intersec_label``)
        and the extra columns.

    Raises
    ------
    DataError
        Naming the file and the first bad row.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> (folder / "a.png").touch()
    >>> header = "path,label,identity,gender,race\\n"
    >>> _ = (folder / "ann.csv").write_text(header + "a.png,real,p1,female,asian\\n")
    >>> ann = read_annotations(folder / "ann.csv")
    >>> ann[["video_id", "label", "intersec_label"]].values.tolist()
    [['a', 0, 4]]
    """
    from .data import (
        GROUP_CODINGS,
        check_dataset,
    )  # (imports torch: kept out of the worker processes)

    path = Path(path)
    check_dataset(dataset)
    if not path.is_file():
        raise DataError(f"annotation file not found: {path}")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read annotations {path}: {str(exc).splitlines()[0]}") from None
    table.columns = [str(c).strip() for c in table.columns]
    columns = set(table.columns)
    missing = [c for c in ("path", "label", "identity") if c not in columns]
    has_demo = {"gender", "race"} <= columns or "ismale" in columns or "intersec_label" in columns
    if missing or not has_demo:
        need = ", ".join(
            missing
            + (
                []
                if has_demo
                else [
                    "demographics (gender and race, or ismale/isasian/iswhite/isblack, or "
                    "intersec_label)"
                ]
            )
        )
        raise DataError(
            f"annotations {path}: missing column(s) {need} (found: "
            f"{', '.join(table.columns) or 'none'})"
        )
    if len(table) == 0:
        raise DataError(f"annotations {path}: no data rows")
    root = Path(input_root) if input_root is not None else path.parent
    if not root.is_dir():
        raise DataError(f"--input {root}: not a folder")
    coding = GROUP_CODINGS[dataset]
    races = ("asian", "white", "black") if len(coding) == 8 else ("white", "black")
    method_col = (
        "method" if "method" in columns else ("spe_label" if "spe_label" in columns else None)
    )
    extras = [c for c in table.columns if c not in _CONSUMED and c not in _OUTPUT_NAMES]
    dropped = [c for c in table.columns if c in _OUTPUT_NAMES]
    if dropped:
        log.warning(
            "annotations %s: ignoring column(s) %s (written by prepare itself)",
            path,
            ", ".join(dropped),
        )
    records = []
    keys: dict[str, int] = {}
    no_method = 0
    for i, rec in enumerate(table.to_dict("records")):
        where = _where(path, i)
        source = str(rec["path"]).strip()
        if not source:
            raise DataError(f"empty path in {where}")
        identity = str(rec["identity"]).strip()
        if not identity or not identity.strip("+ "):
            raise DataError(f"empty identity in {where}")
        label = _parse_label(rec["label"], where)
        if label == 1 and method_col and str(rec[method_col]).strip():
            spe = _parse_method(rec[method_col], where)
        else:
            spe = 1 if label == 1 else 0
            no_method += label == 1
        gender, race = _gender_race(rec, columns, coding, dataset, where)
        key = (
            _video_key(str(rec["video_id"]))
            if "video_id" in columns and str(rec["video_id"]).strip()
            else _video_key(os.path.splitext(source)[0].replace("/", "__").replace("\\", "__"))
        )
        if key in keys:
            raise DataError(
                f"video_id {key!r} of {where} is also the one of row {keys[key]}: give each row a "
                "unique video_id (or path)"
            )
        keys[key] = i
        out = {
            "ann_row": i,
            "path": source,
            "media": str(Path(source) if os.path.isabs(source) else (root / source)),
            "video_id": key,
            "label": label,
            "spe_label": spe,
            "identity": identity,
            "ismale": 1 if gender == "male" else -1,
            **{f"is{r}": 1 if race == r else -1 for r in races},
            "intersec_label": coding.index((gender, race)),
        }
        out.update({c: rec[c] for c in extras})
        records.append(out)
    if no_method:
        log.warning("annotations %s: %d fake row(s) without a method: spe_label 1", path, no_method)
    frame = pd.DataFrame.from_records(records)
    frame.attrs["extras"] = extras
    frame.attrs["annotations"] = str(path)
    return frame


# ---- one video (runs in a worker process) -----------------------------------------------------

_DETECTOR: tuple[tuple, Any] | None = None  # (settings key, FaceDetector): one per process


def _detector(settings: PrepareSettings):
    global _DETECTOR
    key = (
        settings.detector,
        settings.upsample,
        settings.hog_threshold,
        settings.landmark_model,
        settings.cnn_model,
        settings.landmarks,
    )
    if _DETECTOR is None or _DETECTOR[0] != key:
        from .faces._detect import FaceDetector

        detector = FaceDetector(
            settings.detector,
            upsample=settings.upsample,
            hog_threshold=settings.hog_threshold,
            landmark_model=settings.landmark_model,
            cnn_model=settings.cnn_model,
            landmarks=settings.landmarks,
        )
        _DETECTOR = (key, detector)
    return _DETECTOR[1]


def _init_worker(settings: PrepareSettings) -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core; OpenCV's own threads would compete
    _detector(settings)


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _save_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1])):
        raise DataError(f"cannot write {path}")


def process_source(
    source: str, folder: str, settings: PrepareSettings, fingerprint: dict[str, Any], path: str = ""
) -> dict[str, Any]:
    """Faces of one video/image/folder into ``folder``; returns the record.

    Writes PNG crops, landmarks and ``faces.json``.

    Raises :class:`DataError` when the source cannot be read.
    """
    from .faces._align import align_face
    from .faces._frames import read_frames

    out = Path(folder)
    if out.exists():
        shutil.rmtree(out)  # an interrupted earlier attempt: start the video again
    out.mkdir(parents=True)
    detector = _detector(settings)
    frameset = read_frames(source, frames=settings.frames, stride=settings.stride)
    faces, no_face = [], []
    for index, image in frameset.frames():
        face = detector.best_face(image)
        if face is None:
            no_face.append(index)
            continue
        aligned = align_face(image, face, size=settings.size, margin=settings.margin)
        name = f"{index:06d}.png"
        _save_png(out / name, aligned.image)
        if aligned.landmarks is not None:
            np.save(out / f"{index:06d}.npy", aligned.landmarks)
        faces.append(
            {
                "frame": index,
                "file": name,
                "score": round(face.score, 4),
                "detector": face.detector,
                "box": list(face.box),
                "aligned_by": aligned.method,
            }
        )
    record = {
        "fingerprint": fingerprint,
        "path": path or source,
        "source": source,
        "kind": frameset.kind,
        "total_frames": frameset.total,
        "sampled": frameset.wanted,
        "read": frameset.delivered,
        "faces": faces,
        "no_face": no_face,
    }
    _write_json(out / _DONE, record)
    return record


def _run_job(job: tuple[str, str, PrepareSettings, dict[str, Any], str]) -> dict[str, Any]:
    source, folder, settings, fingerprint, path = job
    try:
        return {"ok": True, "record": process_source(source, folder, settings, fingerprint, path)}
    except DataError as exc:
        return {"ok": False, "error": str(exc)}


# ---- the whole data set -----------------------------------------------------------------------


@dataclass
class PrepareResult:
    """What :func:`prepare` wrote: the output folder, per-file row counts, the per-video report."""

    out: Path
    counts: dict[str, int]
    report: pd.DataFrame
    summary: dict[str, Any]


def _load_done(
    folder: Path, path: str, fingerprint: dict[str, Any], overwrite: bool
) -> dict[str, Any] | None:
    done = folder / _DONE
    if not done.is_file():
        return None
    try:
        record = json.loads(done.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("fingerprint") != fingerprint:
        if overwrite:
            return None
        theirs = record.get("fingerprint", {})
        diff = ", ".join(
            f"{k} {theirs.get(k)!r} -> {v!r}" for k, v in fingerprint.items() if theirs.get(k) != v
        )
        raise ConfigError(
            f"{folder} was prepared with other settings ({diff}): pass --overwrite to redo it, or "
            "another --out"
        )
    if record.get("path") != path:
        if overwrite:
            return None
        raise ConfigError(
            f"{folder} holds the faces of {record.get('path')}, not {path}: the video_id now names "
            "another source; pass --overwrite or another --out"
        )
    return record


def _check_sources(ann: pd.DataFrame, path: str, skip_bad: bool) -> dict[int, str]:
    """Rows whose source is missing (error unless ``skip_bad``)."""
    bad = {}
    for rec in ann.itertuples():
        if not os.path.exists(rec.media):
            if not skip_bad:
                raise DataError(
                    f"no such file or folder: {rec.media} ({_where(Path(path), rec.ann_row)}); "
                    "pass --skip-bad to skip such rows"
                )
            bad[rec.ann_row] = f"missing: {rec.media}"
    return bad


def _face_rows(
    ann: pd.DataFrame, records: dict[int, dict[str, Any]], split: np.ndarray
) -> pd.DataFrame:
    research = [c for c in ("ismale", "isasian", "iswhite", "isblack") if c in ann.columns]
    extras = list(ann.attrs.get("extras", []))
    rows = []
    for i, rec in enumerate(ann.to_dict("records")):
        record = records.get(rec["ann_row"])
        if record is None:
            continue
        for face in record["faces"]:
            row = {"img_path": f"faces/{rec['video_id']}/{face['file']}", "label": rec["label"]}
            row.update({c: rec[c] for c in research})
            row["intersec_label"] = rec["intersec_label"]
            row["spe_label"] = rec["spe_label"]
            row.update(
                {"video_id": rec["video_id"], "identity": rec["identity"], "frame": face["frame"]}
            )
            row.update({c: rec[c] for c in extras})
            row["split"] = split[i]
            rows.append(row)
    columns = [
        "img_path",
        "label",
        *research,
        "intersec_label",
        "spe_label",
        "video_id",
        "identity",
        "frame",
        *extras,
        "split",
    ]
    return pd.DataFrame(rows, columns=columns)


def _write_csvs(faces: pd.DataFrame, out: Path) -> dict[str, int]:
    counts = {}
    for name, (split, label) in OUTPUT_FILES.items():
        part = faces[
            (faces["split"] == split) & ((faces["label"] == label) if label is not None else True)
        ]
        part = part.drop(columns=["split"] if label == 1 else ["split", "spe_label"])
        tmp = out / f".{name}.tmp"
        part.to_csv(tmp, index=False)
        os.replace(tmp, out / name)
        counts[name] = len(part)
    return counts


def _report(
    ann: pd.DataFrame, records: dict[int, dict[str, Any]], errors: dict[int, str], split: np.ndarray
) -> pd.DataFrame:
    rows = []
    for i, rec in enumerate(ann.to_dict("records")):
        record = records.get(rec["ann_row"])
        row = {
            "row": rec["ann_row"],
            "video_id": rec["video_id"],
            "path": rec["path"],
            "label": rec["label"],
            "identity": rec["identity"],
            "split": split[i],
        }
        if record is None:
            row.update(
                {
                    "kind": "",
                    "total_frames": 0,
                    "sampled": 0,
                    "read": 0,
                    "faces": 0,
                    "no_face": 0,
                    "no_face_frames": "",
                    "status": errors.get(rec["ann_row"], "not processed"),
                }
            )
        else:
            n_faces, n_none = len(record["faces"]), len(record["no_face"])
            status = (
                "ok" if n_none == 0 else ("no face" if n_faces == 0 else "frames without a face")
            )
            if len(record["read"]) < len(record["sampled"]):
                unread = len(record["sampled"]) - len(record["read"])
                status += f"; {unread} sampled frame(s) could not be decoded"
            row.update(
                {
                    "kind": record["kind"],
                    "total_frames": record["total_frames"],
                    "sampled": len(record["sampled"]),
                    "read": len(record["read"]),
                    "faces": n_faces,
                    "no_face": n_none,
                    "no_face_frames": " ".join(map(str, record["no_face"])),
                    "status": status,
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _parse_fractions(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or any(p < 0 for p in parts) or not np.isclose(sum(parts), 1.0):
        raise ConfigError(
            f"--split {text!r}: expected three non-negative fractions summing to 1, e.g. "
            "0.6,0.2,0.2"
        )
    return parts  # type: ignore[return-value]


def prepare(
    annotations: str | os.PathLike,
    out: str | os.PathLike,
    *,
    input_root: str | os.PathLike | None = None,
    dataset: str = "ff++",
    settings: PrepareSettings | None = None,
    workers: int = 1,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    skip_bad: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> PrepareResult:
    """Run the whole preparation (module docstring) and return what was written.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> header = "path,label,identity,gender,race\\n"
    >>> _ = (folder / "ann.csv").write_text(header + "v.mp4,0,p1,male,white\\n")
    >>> prepare(folder / "ann.csv", folder / "out")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detectors._errors.DataError: no such file or folder: ...v.mp4 (row 0 (line 2) of ...
    """
    settings = settings or PrepareSettings()
    settings.check()
    if workers < 1:
        raise ConfigError(f"--workers {workers}: expected 1 or more")
    t0 = time.time()
    ann = read_annotations(annotations, input_root=input_root, dataset=dataset)
    out = Path(out)
    errors = _check_sources(ann, str(annotations), skip_bad)
    detector = _detector(settings)  # fails early on a missing dlib or model file
    described = detector.describe()
    fingerprint = settings.fingerprint(described)
    if not detector.has_landmarks:
        log.warning(
            "no landmark model (pip install face-recognition-models, or --landmark-model FILE): "
            "faces are cropped by their box, not aligned, and no landmarks are saved"
        )
    faces_dir = out / "faces"
    faces_dir.mkdir(parents=True, exist_ok=True)
    records: dict[int, dict[str, Any]] = {}
    jobs = []
    for rec in ann.itertuples():
        if rec.ann_row in errors:
            continue
        folder = faces_dir / rec.video_id
        done = _load_done(folder, rec.path, fingerprint, overwrite)
        if done is not None:
            records[rec.ann_row] = done
        else:
            jobs.append((rec.ann_row, (rec.media, str(folder), settings, fingerprint, rec.path)))
    if records:
        log.info("resuming: %d of %d source(s) already done", len(records), len(ann))
    _run_jobs(jobs, records, errors, workers, settings, str(annotations), skip_bad, progress)
    split = split_identities(
        ann["identity"].tolist(),
        list(zip(ann["label"], ann["intersec_label"])),
        fractions=fractions,
        seed=seed,
    )
    faces = _face_rows(ann, records, split)
    report = _report(ann, records, errors, split)
    sampled = int(report["read"].sum())
    if len(faces) == 0:
        raise DataError(
            f"no face found in any of the {sampled} frame(s) read from {len(records)} source(s) of "
            f"{annotations} (detector {described['detector']}, upsample {settings.upsample}): "
            f"see {out / 'report.csv'}; "
            "small faces need --upsample 1, hard ones --detector cnn"
        )
    counts = _write_csvs(faces, out)
    report.to_csv(out / "report.csv", index=False)
    summary = _summary(
        ann,
        report,
        counts,
        split,
        described,
        settings,
        fractions,
        seed,
        dataset,
        annotations,
        time.time() - t0,
    )
    _write_json(out / "prepare.json", summary)
    return PrepareResult(out, counts, report, summary)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _run_jobs(jobs, records, errors, workers, settings, annotations, skip_bad, progress) -> None:
    if progress and jobs:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="faces", unit="video", dynamic_ncols=True)
    else:
        bar = _NoBar()

    def take(row: int, result: dict[str, Any], source: str) -> None:
        bar.update(1)
        if result["ok"]:
            records[row] = result["record"]
            return
        message = f"{result['error']} ({_where(Path(annotations), row)})"
        if not skip_bad:
            raise DataError(f"{message}; pass --skip-bad to skip unreadable sources")
        log.warning("skipping %s", message)
        errors[row] = f"unreadable: {result['error']}"

    try:
        if workers == 1 or len(jobs) <= 1:
            for row, job in jobs:
                take(row, _run_job(job), job[0])
            return
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # no fork of a parent holding threads
        with ProcessPoolExecutor(
            max_workers=min(workers, len(jobs)),
            mp_context=context,
            initializer=_init_worker,
            initargs=(settings,),
        ) as pool:
            pending = {pool.submit(_run_job, job): (row, job[0]) for row, job in jobs}
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_EXCEPTION)
                    for fut in done:
                        row, source = pending.pop(fut)
                        take(row, fut.result(), source)
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise
    finally:
        bar.close()


def _summary(
    ann, report, counts, split, described, settings, fractions, seed, dataset, annotations, seconds
) -> dict[str, Any]:
    identities = {}
    for name in SPLITS:
        identities[name] = int(ann.loc[split == name, "identity"].nunique())
    return {
        "annotations": str(annotations),
        "dataset": dataset,
        "settings": asdict(settings),
        "detector": described,
        "split": {
            "fractions": list(fractions),
            "seed": seed,
            "sources": {s: int((split == s).sum()) for s in SPLITS},
            "identity_values": identities,
        },
        "files": counts,
        "sources": len(ann),
        "frames_read": int(report["read"].sum()),
        "faces": int(report["faces"].sum()),
        "frames_without_face": int(report["no_face"].sum()),
        "sources_with_frames_without_face": int((report["no_face"] > 0).sum()),
        "sources_without_any_face": int(((report["faces"] == 0) & (report["read"] > 0)).sum()),
        "sources_skipped": int((report["read"] == 0).sum()),
        "seconds": round(seconds, 2),
    }


# ---- command line -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m detectors.prepare",
        description="Detect, align and crop faces from videos and images; split by identity; "
        "write the research CSVs.",
    )
    p.add_argument(
        "--annotations",
        required=True,
        help="CSV: path, label, identity, demographics (gender,race or ismale,...), "
        "[method, video_id]",
    )
    p.add_argument(
        "--out",
        required=True,
        help="output folder (faces/, the five CSVs, report.csv, prepare.json)",
    )
    p.add_argument(
        "--input",
        default=None,
        help="folder the annotation paths are relative to (default: the annotation file's folder)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--frames",
        type=int,
        default=32,
        help="frames sampled evenly per video (default 32; fewer if the video has fewer)",
    )
    g.add_argument("--stride", type=int, default=None, help="keep every S-th frame instead")
    p.add_argument(
        "--size", type=int, default=256, help="side of the saved face crops in pixels (default 256)"
    )
    p.add_argument(
        "--margin",
        type=float,
        default=0.2,
        help="margin around the face per side, as a fraction of the face size (default 0.2)",
    )
    p.add_argument(
        "--detector",
        default="auto",
        choices=("auto", "hog", "cnn", "hog+cnn"),
        help="auto: HOG, then the CNN on frames where HOG finds nothing, when the CNN file is "
        "installed",
    )
    p.add_argument(
        "--upsample",
        type=int,
        default=0,
        help="double the frame this many times before detection (small faces)",
    )
    p.add_argument(
        "--hog-threshold",
        type=float,
        default=0.0,
        help="HOG score threshold (lower finds more, and more false faces)",
    )
    p.add_argument(
        "--landmark-model",
        default=None,
        help="dlib shape-predictor file (default: face-recognition-models' 68-point model)",
    )
    p.add_argument(
        "--cnn-model",
        default=None,
        help="dlib MMOD detector file (default: face-recognition-models' one)",
    )
    p.add_argument(
        "--no-landmarks",
        action="store_true",
        help="crop by the detector box (no alignment, no landmark files)",
    )
    p.add_argument(
        "--dataset",
        default="ff++",
        help="group coding of intersec_label: ff++ / dfdc (8 groups), celebdf / dfd (6)",
    )
    p.add_argument(
        "--split", default="0.6,0.2,0.2", help="train,val,test fractions (default 0.6,0.2,0.2)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split")
    p.add_argument(
        "--workers",
        type=int,
        default=max(1, min(4, os.cpu_count() or 1)),
        help="processes, one video each at a time",
    )
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip (and report) missing or unreadable sources instead of stopping",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="redo sources prepared earlier with other settings"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _print_summary(result: PrepareResult) -> None:
    s = result.summary
    print(
        f"prepared {s['sources']} source(s): {s['faces']} face(s) from {s['frames_read']} frame(s) "
        "read"
    )
    if s["frames_without_face"]:
        print(
            f"{s['frames_without_face']} frame(s) without a face in "
            f"{s['sources_with_frames_without_face']} source(s) "
            f"({s['sources_without_any_face']} with no face at all): see "
            f"{result.out / 'report.csv'}"
        )
    if s["sources_skipped"]:
        print(
            f"{s['sources_skipped']} source(s) skipped (missing or unreadable): see "
            f"{result.out / 'report.csv'}"
        )
    split = s["split"]
    print(
        "split by identity: "
        + ", ".join(
            f"{k} {split['sources'][k]} source(s) / {split['identity_values'][k]} identity value(s)"
            for k in SPLITS
        )
    )
    print(
        "wrote " + ", ".join(f"{k} ({v})" for k, v in result.counts.items()) + f" in {result.out}"
    )
    empty = [k for k, v in result.counts.items() if v == 0]
    if empty:
        print(
            f"empty: {', '.join(empty)}"
            + (
                " - without fakes, train with self-blended ones (data.fakes=sbi)"
                if "faketrain.csv" in empty
                else ""
            )
        )


def main(argv: list[str] | None = None) -> int:
    """The command line (module docstring); returns the exit status.

    Examples
    --------
    >>> import tempfile
    >>> from detectors._cli import run_cli
    >>> folder = Path(tempfile.mkdtemp())
    >>> run_cli("detectors.prepare", main, ["--annotations", str(folder / "none.csv"),
    ...                                      "--out", str(folder / "out")])
    2
    """
    args = _parser().parse_args(argv)
    setup_logging()
    settings = PrepareSettings(
        frames=None if args.stride is not None else args.frames,
        stride=args.stride,
        size=args.size,
        margin=args.margin,
        detector=args.detector,
        upsample=args.upsample,
        hog_threshold=args.hog_threshold,
        landmark_model=args.landmark_model,
        cnn_model=args.cnn_model,
        landmarks=False if args.no_landmarks else None,
    )
    result = prepare(
        args.annotations,
        args.out,
        input_root=args.input,
        dataset=args.dataset,
        settings=settings,
        workers=args.workers,
        seed=args.seed,
        fractions=_parse_fractions(args.split),
        skip_bad=args.skip_bad,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    _print_summary(result)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("detectors.prepare", main))
