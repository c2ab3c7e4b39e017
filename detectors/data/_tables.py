"""Reading the research code's CSV files into validated image tables (spec section 3.1).

Files: ``faketrain.csv``, ``realtrain.csv``, ``fakeval.csv``, ``realval.csv``
and ``test.csv``, each with a header ``img_path,label,ismale,...,intersec_label``
(plus ``spe_label`` in fake training files). Columns are read by name, not by
position, so the 8-group and 6-group layouts are both accepted. Image paths are
absolute or relative to the CSV file's folder.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import DataError
from ._groups import num_groups

__all__ = [
    "ImageTable",
    "read_table",
    "read_training_tables",
    "check_data_root",
    "TRAINING_FILES",
    "group_counts",
]

log = logging.getLogger(__name__)

TRAINING_FILES = {
    "train": ("faketrain.csv", "realtrain.csv"),
    "val": ("fakeval.csv", "realval.csv"),
}
_REQUIRED = ("img_path",)


@dataclass
class ImageTable:
    """Rows of one CSV file with resolved paths and integer labels.

    Attributes
    ----------
    csv_path : Path
        The file the rows come from (named in error messages).
    frame : pandas.DataFrame
        The CSV as read (all columns, original order), restricted to kept rows.
    paths : list of str
        Absolute image paths, one per kept row.
    labels : ndarray of int64
        0 = real, 1 = fake (-1 where the file has no ``label`` column).
    groups : ndarray of int64
        ``intersec_label`` (-1 where the file has no such column).
    specific : ndarray of int64
        Manipulation id: 0 for reals, ``spe_label`` for fakes.
    rows : ndarray of int64
        0-based data-row numbers in the file (line = row + 2).
    skipped : int
        Rows dropped because their image file is missing (``skip_bad_images``).

    Examples
    --------
    >>> import tempfile
    >>> from detectors.synth import generate
    >>> root = tempfile.mkdtemp()
    >>> _ = generate(root, 40, size=32)
    >>> table = read_table(f"{root}/faketrain.csv", role="fake")
    >>> len(table), set(table.labels.tolist()), table.describe_row(0).split(" of ")[0]
    (12, {1}, 'row 0 (line 2)')
    """

    csv_path: Path
    frame: pd.DataFrame
    paths: list[str]
    labels: np.ndarray
    groups: np.ndarray
    specific: np.ndarray
    rows: np.ndarray
    skipped: int = 0
    skipped_rows: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def describe_row(self, i: int) -> str:
        """``row R (line L) of FILE`` for the i-th kept row."""
        row = int(self.rows[i])
        return f"row {row} (line {row + 2}) of {self.csv_path}"


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"CSV file not found: {path}")
    try:
        frame = pd.read_csv(path, dtype={"img_path": str}, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read CSV {path}: {str(exc).splitlines()[0]}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(
            f"CSV {path}: missing column(s) {', '.join(missing)} (found: "
            f"{', '.join(frame.columns)})"
        )
    if len(frame) == 0:
        raise DataError(f"CSV {path}: no data rows")
    return frame


def _int_column(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy() | (values.to_numpy() % 1 != 0))
    if bad.size:
        row = int(bad[0])
        raise DataError(
            f"CSV {path}: column {column} must hold integers; row {row} (line {row + 2}) has "
            f"{frame[column].iloc[row]!r} ({bad.size} bad row(s))"
        )
    return values.to_numpy().astype(np.int64)


def _check_range(
    values: np.ndarray, allowed: range | tuple, column: str, path: Path, why: str
) -> None:
    bad = np.flatnonzero(~np.isin(values, list(allowed)))
    if bad.size:
        row = int(bad[0])
        raise DataError(
            f"CSV {path}: {column} must be {why}; row {row} (line {row + 2}) has {values[row]} "
            f"({bad.size} bad row(s))"
        )


def _resolve(paths: pd.Series, csv_dir: Path, csv_path: Path) -> list[str]:
    out = []
    for row, p in enumerate(paths.tolist()):
        if not isinstance(p, str) or not p.strip():
            raise DataError(f"CSV {csv_path}: empty img_path in row {row} (line {row + 2})")
        p = p.strip()
        out.append(p if os.path.isabs(p) else os.path.normpath(os.path.join(csv_dir, p)))
    return out


def read_table(
    csv_path: str | os.PathLike,
    *,
    dataset: str = "ff++",
    role: str = "any",
    require_groups: bool = True,
    require_labels: bool = True,
    skip_missing: bool = False,
) -> ImageTable:
    """Read and validate one CSV of the research schema.

    Parameters
    ----------
    csv_path : path
        The CSV file.
    dataset : str
        Group coding used to check ``intersec_label`` (``ff++``, ``dfdc``, ``celebdf``, ``dfd``).
    role : {"fake", "real", "any"}
        ``fake`` and ``real`` require every label to be 1 or 0 respectively.
    require_groups : bool
        Whether the ``intersec_label`` column must be present.
    require_labels : bool
        Whether the ``label`` column must be present (always, for ``fake`` and ``real`` files).
    skip_missing : bool
        Drop rows whose image file does not exist (counted in ``skipped``) instead of failing.

    Raises
    ------
    DataError
        Naming the file, the row and the offending value.

    Examples
    --------
    >>> import tempfile
    >>> from detectors.synth import generate
    >>> root = tempfile.mkdtemp()
    >>> _ = generate(root, 40, size=32)
    >>> table = read_table(f"{root}/test.csv")
    >>> len(table), sorted(set(table.labels.tolist()))
    (8, [0, 1])
    """
    path = Path(csv_path)
    frame = _read_csv(path)
    if "label" in frame.columns:
        labels = _int_column(frame, "label", path)
        _check_range(labels, (0, 1), "label", path, "0 (real) or 1 (fake)")
    elif require_labels or role in ("fake", "real"):
        raise DataError(f"CSV {path}: missing column label (found: {', '.join(frame.columns)})")
    else:
        labels = np.full(len(frame), -1, dtype=np.int64)
    if role in ("fake", "real"):
        want = 1 if role == "fake" else 0
        _check_range(labels, (want,), "label", path, f"{want} in a {role} file")
    if "intersec_label" in frame.columns:
        groups = _int_column(frame, "intersec_label", path)
        _check_range(
            groups,
            range(num_groups(dataset)),
            "intersec_label",
            path,
            f"a {dataset} group id 0..{num_groups(dataset) - 1}",
        )
    elif require_groups:
        raise DataError(
            f"CSV {path}: missing column intersec_label (found: {', '.join(frame.columns)})"
        )
    else:
        groups = np.full(len(frame), -1, dtype=np.int64)
    specific = np.zeros(len(frame), dtype=np.int64)
    if "spe_label" in frame.columns and role == "fake":
        specific = _int_column(frame, "spe_label", path)
        _check_range(
            specific, range(1, 1000), "spe_label", path, "a manipulation id >= 1 in a fake file"
        )
    elif role == "fake":
        log.warning("%s has no spe_label column: every fake gets manipulation id 1", path)
        specific = np.ones(len(frame), dtype=np.int64)
    paths = _resolve(frame["img_path"], path.parent, path)
    table = ImageTable(
        path, frame, paths, labels, groups, specific, np.arange(len(frame), dtype=np.int64)
    )
    return _drop_missing(table, skip_missing)


def _drop_missing(table: ImageTable, skip: bool) -> ImageTable:
    exists = np.fromiter(
        (os.path.isfile(p) for p in table.paths), dtype=bool, count=len(table.paths)
    )
    if exists.all():
        return table
    missing = np.flatnonzero(~exists)
    if not skip:
        i = int(missing[0])
        raise DataError(
            f"image not found: {table.paths[i]} ({table.describe_row(i)}); {missing.size} "
            "missing in this file; pass --skip-bad-images (data.skip_bad_images=true) to skip them"
        )
    log.warning(
        "%s: skipping %d row(s) whose image is missing (first: %s)",
        table.csv_path,
        missing.size,
        table.paths[int(missing[0])],
    )
    keep = np.flatnonzero(exists)
    if keep.size == 0:
        raise DataError(
            f"CSV {table.csv_path}: no readable images left after skipping {missing.size} missing"
        )
    return ImageTable(
        table.csv_path,
        table.frame.iloc[keep].reset_index(drop=True),
        [table.paths[i] for i in keep],
        table.labels[keep],
        table.groups[keep],
        table.specific[keep],
        table.rows[keep],
        skipped=int(missing.size),
        skipped_rows=[int(table.rows[i]) for i in missing],
    )


def check_data_root(root: str | os.PathLike) -> Path:
    """``root`` as a path, or a :class:`DataError` if it is not a folder.

    Examples
    --------
    >>> check_data_root("no/such/folder")
    Traceback (most recent call last):
    ...
    detectors._errors.DataError: data.root no/such/folder: not a folder (expected one holding \
faketrain.csv, realtrain.csv, fakeval.csv, realval.csv)
    """
    path = Path(root)
    if not path.is_dir():
        raise DataError(
            f"data.root {path}: not a folder (expected one holding "
            f"{', '.join(sum(TRAINING_FILES.values(), ()))})"
        )
    return path


def read_training_tables(
    root: str | os.PathLike, split: str, *, dataset: str, skip_missing: bool
) -> tuple[ImageTable, ImageTable]:
    """The (fakes, reals) tables of ``split`` (``train`` or ``val``) under ``root``.

    Examples
    --------
    >>> import tempfile
    >>> from detectors.synth import generate
    >>> root = tempfile.mkdtemp()
    >>> _ = generate(root, 40, size=32)
    >>> fakes, reals = read_training_tables(root, "val", dataset="ff++", skip_missing=False)
    >>> len(fakes), len(reals)
    (4, 4)
    """
    root = check_data_root(root)
    fake_name, real_name = TRAINING_FILES[split]
    fakes = read_table(root / fake_name, dataset=dataset, role="fake", skip_missing=skip_missing)
    reals = read_table(root / real_name, dataset=dataset, role="real", skip_missing=skip_missing)
    return fakes, reals


def group_counts(tables: list[ImageTable], n_groups: int) -> list[int]:
    """Number of rows per intersectional group over ``tables`` (LDAM's class counts).

    Examples
    --------
    >>> import tempfile
    >>> from detectors.synth import generate
    >>> root = tempfile.mkdtemp()
    >>> _ = generate(root, 40, size=32)
    >>> counts = group_counts(list(read_training_tables(root, "train", dataset="ff++",
    ...                                                 skip_missing=False)), 8)
    >>> len(counts), sum(counts)
    (8, 24)
    """
    counts = np.zeros(n_groups, dtype=np.int64)
    for table in tables:
        counts += np.bincount(table.groups[table.groups >= 0], minlength=n_groups)[:n_groups]
    return counts.tolist()
