"""Reading the inputs: score and label arrays, demographic CSVs, the research result layout.

Group codings of the research code (spec §7) live in :data:`DATASETS`, one table.
Arrays are read with ``np.load(allow_pickle=False)``: a pickled or object array is refused.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._errors import bad

__all__ = [
    "DATASETS",
    "load_array",
    "read_demographics",
    "sha256",
    "Demographics",
    "seed_attributes",
]

#: Intersectional id -> (gender, race) per dataset; the research CSV's ``intersec_label``.
DATASETS = {
    "ff++": {
        "ids": [
            ("male", "asian"),
            ("male", "white"),
            ("male", "black"),
            ("male", "others"),
            ("female", "asian"),
            ("female", "white"),
            ("female", "black"),
            ("female", "others"),
        ],
        "races": ["asian", "white", "black", "others"],
    },
    "celebdf": {
        "ids": [
            ("male", "white"),
            ("male", "black"),
            ("male", "others"),
            ("female", "white"),
            ("female", "black"),
            ("female", "others"),
        ],
        "races": ["white", "black", "others"],
    },
}
DATASETS["dfdc"] = DATASETS["ff++"]
DATASETS["dfd"] = DATASETS["celebdf"]

GENDER_ALIASES = {"nonmale": "female", "non-male": "female", "m": "male", "f": "female"}
RACE_FLAGS = [("isasian", "asian"), ("iswhite", "white"), ("isblack", "black")]


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_file(path, argument):
    if not os.path.exists(path):
        raise bad(argument, "an existing file", f"no file at '{path}'")
    if os.path.isdir(path):
        raise bad(argument, "a file", f"'{path}' is a directory")
    if not os.access(path, os.R_OK):
        raise bad(argument, "a readable file", f"'{path}' cannot be read")


def load_array(
    spec: str, argument: str, *, csv_column: str | None = None, text: bool = False
) -> np.ndarray:
    """Load a numeric array from ``FILE.npy``, ``FILE.csv:COLUMN`` or ``FILE.csv``.

    A CSV needs a column: ``FILE.csv:COLUMN`` or ``csv_column``; ``COL1,COL2`` gives an N x 2
    array (two-column logits). ``text=True`` also accepts text values (labels such as
    ``fake``/``real``, read with ``--pos-label``).

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "y.npy")
    >>> np.save(path, np.array(["fake", "real"]))
    >>> load_array(path, "labels", text=True).tolist()
    ['fake', 'real']
    """
    path, column = spec, csv_column
    if not os.path.exists(spec) and ":" in spec:
        path, column = spec.rsplit(":", 1)
    _check_file(path, argument)
    if path.lower().endswith(".npy"):
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as exc:
            msg = str(exc)
            found = (
                "a pickled/object array (refused: pickles can run code)"
                if "pickle" in msg.lower()
                else f"an unreadable .npy file ({msg})"
            )
            raise bad(argument, "a numeric .npy array", found) from None
        except (OSError, EOFError) as exc:
            raise bad(argument, "a readable .npy file", f"'{path}': {exc}") from None
        if arr.dtype.kind == "S" and text:
            arr = arr.astype(str)
        if arr.dtype == object or arr.dtype.kind not in ("biufU" if text else "biuf"):
            raise bad(argument, "a numeric array", f"dtype {arr.dtype} in '{path}'")
        if arr.ndim == 0:
            raise bad(argument, "a 1-D or N x 2 array", f"a scalar in '{path}'")
        if arr.ndim > 2:
            raise bad(argument, "a 1-D or N x 2 array", f"shape {arr.shape} in '{path}'")
        if arr.shape[0] == 0:
            raise bad(argument, "at least one row", f"an empty array in '{path}'")
        return arr
    if path.lower().endswith((".csv", ".csv.gz", ".tsv")):
        df = _read_csv(path, argument)
        if column is None:
            raise bad(
                argument,
                "FILE.csv:COLUMN naming the score column",
                f"no column given (columns: {', '.join(map(str, df.columns[:12]))})",
            )
        cols = column.split(",")
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise bad(
                argument,
                f"column(s) {', '.join(cols)} in '{path}'",
                f"columns {', '.join(map(str, df.columns[:12]))}",
            )
        sub = df[cols]
        for c in cols:
            if text:
                break
            if not pd.api.types.is_numeric_dtype(sub[c]) and not pd.api.types.is_bool_dtype(sub[c]):
                raise bad(argument, f"numeric values in column '{c}'", f"dtype {sub[c].dtype}")
        arr = sub.to_numpy()
        return arr[:, 0] if len(cols) == 1 else arr
    raise bad(argument, "a .npy file or a .csv file with :COLUMN", f"'{path}'")


def _read_csv(path, argument):
    try:
        df = pd.read_csv(path, sep="\t" if path.endswith(".tsv") else ",")
    except pd.errors.EmptyDataError:
        raise bad(argument, "a CSV with a header and rows", f"an empty file '{path}'") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        if _is_npy(path):
            raise bad(argument, "a CSV file", f"a .npy array '{path}'{ORDER_HINT}") from None
        raise bad(argument, "a readable CSV", f"'{path}': {str(exc).splitlines()[0]}") from None
    if len(df) == 0:
        raise bad(argument, "a CSV with at least one row", f"only a header in '{path}'")
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _attribute_text(col: pd.Series) -> pd.Series:
    """Attribute values as text, empty cells kept missing (whole numbers read as ``1``, not
    ``1.0``, when empty cells made pandas read the column as floats)."""
    if pd.api.types.is_float_dtype(col) and (col.dropna() % 1 == 0).all():
        col = col.astype("Int64")
    return col.astype(str).where(col.notna(), None)


@dataclass(frozen=True)
class Demographics:
    attributes: pd.DataFrame  # one column per attribute, string values
    table: pd.DataFrame  # the whole CSV (weights, cluster columns, label)
    source: str  # "seed schema (ff++)" or "columns age_group, skin_tone"


def seed_attributes(df: pd.DataFrame, dataset: str, argument: str = "csv") -> pd.DataFrame:
    """gender and race from the research schema (1/-1 flags; intersec_label as fallback)."""
    coding = DATASETS[dataset]
    has_flags = "ismale" in df.columns
    out = None
    if has_flags:
        flags = {c: df[c] for c in ["ismale"] + [f for f, _ in RACE_FLAGS] if c in df.columns}
        for c, v in flags.items():
            ok = v.isin([1, -1])
            if not ok.all():
                rows = np.flatnonzero(~ok.to_numpy())[:5].tolist()
                raise bad(
                    f"{argument} column '{c}'",
                    "flags 1 or -1",
                    f"{sorted(map(str, v[~ok].unique()))[:5]} at rows {rows}",
                )
        gender = np.where(df["ismale"].to_numpy() == 1, "male", "female")
        race = np.full(len(df), "others", dtype=object)
        n_set = np.zeros(len(df), dtype=int)
        for flag, name in RACE_FLAGS:
            if flag in df.columns:
                on = df[flag].to_numpy() == 1
                race[on] = name
                n_set += on
        if (n_set > 1).any():
            rows = np.flatnonzero(n_set > 1)[:5].tolist()
            raise bad(
                f"{argument} race flags",
                "at most one of isasian/iswhite/isblack = 1",
                f"several at rows {rows}",
            )
        out = pd.DataFrame({"gender": gender, "race": race.astype(str)})
    if "intersec_label" in df.columns:
        ids = df["intersec_label"]
        valid = ids.isin(range(len(coding["ids"])))
        if not valid.all():
            rows = np.flatnonzero(~valid.to_numpy())[:5].tolist()
            raise bad(
                f"{argument} column 'intersec_label'",
                f"ids 0..{len(coding['ids']) - 1} (--dataset {dataset})",
                f"{sorted(map(str, ids[~valid].unique()))[:5]} at rows {rows}",
            )
        pairs = np.array(coding["ids"], dtype=object)[ids.to_numpy().astype(int)]
        decoded = pd.DataFrame({"gender": [p[0] for p in pairs], "race": [p[1] for p in pairs]})
        if out is None:
            out = decoded
        else:
            differ = (out["gender"] != decoded["gender"]) | (out["race"] != decoded["race"])
            if differ.any():
                rows = np.flatnonzero(differ.to_numpy())[:5].tolist()
                r = rows[0]
                raise bad(
                    f"{argument} column 'intersec_label'",
                    f"ids agreeing with the 1/-1 flags under the {dataset} coding",
                    f"{int(differ.sum())} disagreeing rows, first {rows} (row {r}: flags say "
                    f"{out['gender'][r]}+{out['race'][r]}, id {int(ids.iloc[r])} means "
                    f"{decoded['gender'][r]}+{decoded['race'][r]}); check --dataset",
                )
    if out is None:
        raise bad(
            argument,
            "the research schema (ismale, isasian, iswhite, isblack flags or "
            "intersec_label) or --attributes COLUMNS",
            "neither",
        )
    unknown_race = set(out["race"]) - set(coding["races"])
    if unknown_race:
        raise bad(
            "--dataset",
            f"a coding whose races include {sorted(unknown_race)}",
            f"{dataset} (races {coding['races']})",
        )
    out["gender"] = pd.Categorical(out["gender"], categories=["male", "female"])
    out["race"] = pd.Categorical(out["race"], categories=coding["races"])
    return out


def read_demographics(
    path: str, *, dataset: str = "ff++", attributes=None, argument: str = "csv"
) -> Demographics:
    """Read the demographic CSV: the research schema, or named attribute columns."""
    if dataset not in DATASETS:
        raise bad("--dataset", "one of " + ", ".join(DATASETS), repr(dataset))
    _check_file(path, argument)
    df = _read_csv(path, argument)
    if attributes:
        cols = (
            [c.strip() for c in attributes.split(",")]
            if isinstance(attributes, str)
            else list(attributes)
        )
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise bad(
                "--attributes",
                f"columns of '{path}'",
                f"unknown {', '.join(missing)} (columns: {', '.join(map(str, df.columns[:15]))})",
            )
        attrs = df[cols].copy()
        for c in cols:
            # empty cells stay missing: --missing-groups decides what becomes of them
            attrs[c] = _attribute_text(attrs[c])
            if c.lower() == "gender":
                attrs[c] = attrs[c].str.lower().replace(GENDER_ALIASES)
        return Demographics(attrs, df, "columns " + ", ".join(cols))
    attrs = seed_attributes(df, dataset, argument)
    return Demographics(attrs, df, f"research schema (--dataset {dataset})")


def check_label_column(table: pd.DataFrame, labels: np.ndarray, argument: str = "csv"):
    """When the CSV has a ``label`` column it must agree with the labels."""
    if "label" not in table.columns:
        return
    col = table["label"].to_numpy()
    if col.shape[0] != labels.shape[0]:
        return  # the row-count check reports this
    differ = col != labels
    if differ.any():
        rows = np.flatnonzero(differ)[:5].tolist()
        raise bad(
            f"{argument} column 'label'",
            "the same labels as the labels file",
            f"{int(differ.sum())} disagreeing rows, first {rows} "
            f"(row {rows[0]}: csv {col[rows[0]]}, labels file {labels[rows[0]]})",
        )


# ---------------------------------------------------------------------------- input roles
ORDER_HINT = " (the files in the wrong order? the demographics CSV goes last)"
_NPY_MAGIC = b"\x93NUMPY"


def _is_npy(path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(_NPY_MAGIC)) == _NPY_MAGIC
    except OSError:
        return False


def input_kind(spec: str) -> str:
    """What a positional input is: ``dir``, ``npy``, ``csv``, ``csv-column`` (``FILE.csv:COL``),
    ``missing`` or ``other``.

    >>> input_kind("no/such/file.npy")
    'missing'
    """
    if os.path.isdir(spec):
        return "dir"
    path, column = spec, None
    if not os.path.exists(spec) and ":" in spec:
        path, column = spec.rsplit(":", 1)
    if not os.path.exists(path):
        return "missing"
    if os.path.isdir(path):
        return "dir"
    if path.lower().endswith(".npy") or _is_npy(path):
        return "npy"
    if path.lower().endswith((".csv", ".csv.gz", ".tsv")):
        return "csv-column" if column else "csv"
    return "other"


def check_input_roles(inputs: list, roles: list, usage: str):
    """Refuse a positional input that cannot play its role, naming the likely cause (a file
    missing or out of order, a ``.npy`` where the CSV goes), before anything is read.

    ``roles`` holds, per input, ``"scores"`` / ``"scores A"`` / ``"scores B"``, ``"labels"``
    or ``"csv"``.

    >>> check_input_roles(["nope.npy"], ["csv"], "SCORES [LABELS] CSV")
    Traceback (most recent call last):
    ...
    fairaudit._errors.FairauditError: csv ('nope.npy'): expected an existing file, found no \
file at 'nope.npy'
    """
    kinds = [input_kind(s) for s in inputs]
    for spec, role, kind in zip(inputs, roles, kinds):
        if kind == "missing":
            path = spec if os.path.exists(spec) or ":" not in spec else spec.rsplit(":", 1)[0]
            raise bad(f"{role} ('{spec}')", "an existing file", f"no file at '{path}'")
        if kind == "dir":
            raise bad(
                f"{role} ('{spec}')",
                "a file",
                f"'{spec}' is a directory (a folder of research result files goes alone: "
                "report RESULTS_DIR)",
            )
    csv_at = [i for i, k in enumerate(kinds) if k == "csv"]
    for i, (spec, role, kind) in enumerate(zip(inputs, roles, kinds)):
        order = f": the order is {usage}"
        if role == "csv" and kind == "npy":
            elsewhere = (
                f"; '{inputs[csv_at[0]]}' looks like the CSV"
                if csv_at
                else " (the demographics CSV left out?)"
            )
            raise bad(
                f"csv ('{spec}')",
                "the demographics CSV as the last input",
                f"a .npy array{elsewhere}{order}",
            )
        if role == "csv" and kind == "csv-column":
            raise bad(f"csv ('{spec}')", "the demographics CSV without :COLUMN", f"'{spec}'")
        if role != "csv" and kind == "csv":
            raise bad(
                f"{role} ('{spec}')",
                "FILE.npy or FILE.csv:COLUMN",
                f"the CSV '{spec}' without a column"
                + (order if i == 0 and kinds[-1] != "csv" else " (add :COLUMN)"),
            )


def read_results_dir(path: str, dataset: str) -> dict:
    """The research code's per-group result folder, strictly: every file must be
    ``<gender>,<race>labels.npy`` or ``<gender>,<race>predictions.npy`` with a gender of
    ``male``, ``nonmale`` or ``female`` (both spellings of the second gender are accepted) and
    a race of the dataset's coding; anything else is an error naming the file.

    Returns ``{"male,asian": (labels, saved), "nonmale,asian": ...}`` in the research
    script's naming (``female`` read as ``nonmale``).

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> np.save(os.path.join(folder, "female,whitelabels.npy"), np.array([0, 1]))
    >>> np.save(os.path.join(folder, "female,whitepredictions.npy"), np.array([-1.0, 2.0]))
    >>> list(read_results_dir(folder, "celebdf"))
    ['nonmale,white']
    """
    from ._compat import PGFDD_FAMILIES, read_seed_results_dir

    if not os.path.isdir(path):
        raise bad("RESULTS_DIR", "an existing folder of research result files", f"'{path}'")
    genders, races = PGFDD_FAMILIES[dataset]
    second = genders[1]  # "nonmale", as the research script spells it
    spelling = {genders[0]: genders[0], second: second, "female": second}
    layout = (
        f"only files '<gender>,<race>labels.npy' and '<gender>,<race>predictions.npy' (gender "
        f"male, nonmale or female; race {', '.join(races)} under --dataset {dataset})"
    )
    used = {}  # research key -> spelling of its gender in the folder
    for entry in sorted(os.listdir(path)):
        if entry.startswith("."):
            continue  # hidden files (.DS_Store) are not results
        gender, race = _result_key(entry)
        if gender not in spelling or race not in races:
            hint = _other_dataset_hint(race, dataset) if gender in spelling else ""
            raise bad("RESULTS_DIR", layout, f"'{entry}' in '{path}'{hint}")
        key = f"{spelling[gender]},{race}"
        if used.setdefault(key, gender) != gender:
            raise bad(
                "RESULTS_DIR",
                f"one spelling of the second gender per race ({second} or female)",
                f"both '{used[key]},{race}...' and '{gender},{race}...' in '{path}'",
            )
    spelt = sorted(set(used.values()), key=list(spelling).index)
    if not used:
        raise bad("RESULTS_DIR", layout, f"no files in '{path}'")
    raw = read_seed_results_dir(path, spelt, races)
    sets = {}
    for g in genders:
        for r in races:
            key = f"{g},{r}"
            if key in used:
                sets[key] = raw[f"{used[key]},{r}"]
    return sets


def _result_key(entry: str) -> tuple:
    for suffix in ("labels.npy", "predictions.npy"):
        if entry.endswith(suffix) and entry.count(",") == 1:
            gender, race = entry[: -len(suffix)].split(",")
            return gender, race
    return None, None


def _other_dataset_hint(race, dataset) -> str:
    others = [d for d, c in DATASETS.items() if race in c["races"] and d != dataset]
    return f" (a race of --dataset {others[0]}: check --dataset)" if others else ""
