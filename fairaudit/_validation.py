"""Input validation, done once at the boundary; the inside trusts what comes out of here.

Every error names the argument, the expected form and what was found. Where an input is
probably a mistake (percentages read as logits, the labels given as scores, a third label
value), it is refused with what probably happened, before anything is computed.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._errors import bad, opt, shown
from ._options import SCORE_RULES, check_options

__all__ = [
    "ScoreRule",
    "as_scores",
    "as_labels",
    "as_weights",
    "as_groups",
    "check_finite",
    "check_scores_not_labels",
    "from_table",
    "SCORE_RULES",
]

_RULE_TEXT = {
    "prob": "scores are probabilities p(fake); predicted fake when p >= threshold",
    "percent": "scores are percentages; p(fake) = score / 100; predicted fake when p >= threshold",
    "logit": "scores are logits z; p(fake) = sigmoid(z); predicted fake when p >= threshold",
    "logits2": "scores are 2-column logits (real, fake); p(fake) = softmax class 1 = "
    "sigmoid(z1 - z0); predicted fake when p >= threshold",
}

#: Under ``scores="auto"``, 1-D values outside [0, 1] are read as logits only when they look
#: like logits: both signs among the central 98% (1st and 99th percentiles), and the smaller
#: side at least this fraction of the larger one.
LOGIT_SYMMETRY = 0.1


def _sigmoid(z):
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def _identity(p):
    return np.asarray(p, dtype=float)


@dataclass(frozen=True)
class ScoreRule:
    """How raw scores become a ranking score, probabilities and decisions.

    The ranking score keeps the full resolution of the input (logits are not squashed, so
    distinct large logits stay distinct); ``threshold`` is expressed on the ranking score.
    Percentages are ranked as probabilities (score / 100).
    """

    name: str
    description: str
    threshold: float  # on the ranking score
    threshold_probability: float

    def to_probability(self, ranking_score):
        if self.name in ("prob", "percent"):
            return _identity(ranking_score)
        return _sigmoid(ranking_score)


def _numeric_array(x, argument):
    if isinstance(x, (pd.Series, pd.DataFrame)):
        x = x.to_numpy()
    arr = np.asarray(x)
    if arr.dtype == object:
        raise bad(argument, "a numeric array", "an object array (mixed or non-numeric values)")
    if arr.dtype.kind not in "biuf":
        raise bad(argument, "a numeric array", f"dtype {arr.dtype}")
    return arr


def _range_text(finite) -> str:
    lo, hi = float(finite.min()), float(finite.max())
    if lo >= 0 and 10 < hi <= 100:
        return f"values from {lo:.4g} to {hi:.4g} (percentages?)"
    if lo >= 0:
        return f"non-negative values from {lo:.4g} to {hi:.4g} (not probabilities)"
    if hi <= 0:
        return f"only negative values, from {lo:.4g} to {hi:.4g} (log-probabilities?)"
    return f"values from {lo:.4g} to {hi:.4g}, mostly on one side of 0 (not like logits)"


def looks_like_logits(finite) -> bool:
    """Both signs and a roughly symmetric range (see :data:`LOGIT_SYMMETRY`).

    >>> looks_like_logits(np.array([-4.0, -1.0, 0.5, 3.0])), looks_like_logits(np.r_[0:100.0])
    (True, False)
    """
    lo, hi = (
        np.quantile(finite, [0.01, 0.99]) if finite.size > 100 else (finite.min(), finite.max())
    )
    if not lo < 0 < hi:
        return False
    small, large = sorted((-float(lo), float(hi)))
    return small >= LOGIT_SYMMETRY * large


def _auto_rule(arr, argument) -> str:
    if arr.ndim == 2:
        rows = arr[np.isfinite(arr).all(axis=1)]
        if rows.size and rows.min() >= 0 and rows.max() <= 1:
            if np.allclose(rows.sum(axis=1), 1.0, atol=1e-6):
                raise bad(
                    argument,
                    f"two columns of logits (real, fake) under {opt('scores', 'auto')}",
                    "two columns of probabilities, each row summing to 1 (predict_proba "
                    "output?): give the fake column alone (y_score[:, 1], FILE.csv:COLUMN)",
                )
        return "logits2"
    finite = arr[np.isfinite(arr)]
    if finite.size == 0 or (finite.min() >= 0 and finite.max() <= 1):
        return "prob"
    if looks_like_logits(finite):
        return "logit"
    raise bad(
        argument,
        f"probabilities in [0, 1] or logits (both signs) under {opt('scores', 'auto')}",
        f"{_range_text(finite)}: pass {opt('scores', 'percent')} (p = score / 100) or "
        f"{opt('scores', 'logit')} (p = sigmoid(score)) if that is what they are, "
        "or rescale them to [0, 1]",
    )


def as_scores(y_score, rule: str = "auto", threshold: float = 0.5, *, argument="y_score"):
    """Validate scores; return (ranking score 1-D float, ScoreRule).

    ``auto`` takes ``logits2`` for two columns, ``prob`` when every value lies in [0, 1],
    ``logit`` when the values look like logits (:func:`looks_like_logits`), and refuses
    anything else (percentages, one-sided decision values) naming the rules to choose from.

    >>> ranking, rule = as_scores([10.0, 90.0, 55.0], "percent")
    >>> ranking.tolist(), rule.name
    ([0.1, 0.9, 0.55], 'percent')
    >>> as_scores([10.0, 90.0, 55.0])
    Traceback (most recent call last):
    ...
    fairaudit._errors.FairauditError: y_score: expected probabilities in [0, 1] or logits \
(both signs) under scores="auto", found values from 10 to 90 (percentages?): pass \
scores="percent" (p = score / 100) or scores="logit" (p = sigmoid(score)) if that is what \
they are, or rescale them to [0, 1]
    """
    opts = check_options(scores=rule, threshold=threshold)
    rule, thr = opts["scores"], opts["threshold"]
    arr = _numeric_array(y_score, argument).astype(float, copy=False)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape[1] != 2):
        raise bad(argument, "a 1-D array or an N x 2 array of logits", f"shape {arr.shape}")
    if arr.shape[0] == 0:
        raise bad(argument, "at least one row", "an empty array")
    if rule == "auto":
        rule = _auto_rule(arr, argument)
    if rule == "logits2":
        if arr.ndim != 2:
            raise bad(opt("scores", "logits2"), "an N x 2 array", f"shape {arr.shape}")
        ranking = arr[:, 1] - arr[:, 0]
    else:
        if arr.ndim != 1:
            raise bad(opt("scores", rule), "a 1-D array", f"shape {arr.shape} (use logits2)")
        ranking = arr
        top = {"prob": 1.0, "percent": 100.0}.get(rule)
        finite = ranking[np.isfinite(ranking)]
        if top is not None and finite.size and (finite.min() < 0 or finite.max() > top):
            raise bad(
                opt("scores", rule),
                f"values in [0, {top:g}]",
                f"values from {finite.min():.4g} to {finite.max():.4g}",
            )
        if rule == "percent":
            ranking = ranking / 100.0
    thr_rank = thr if rule in ("prob", "percent") else float(np.log(thr / (1.0 - thr)))
    desc = _RULE_TEXT[rule] + f" (threshold {thr:g})"
    return np.ascontiguousarray(ranking, dtype=float), ScoreRule(rule, desc, thr_rank, thr)


def check_scores_not_labels(ranking, y, *, argument="y_score", allow=False):
    """Refuse scores that are the labels themselves: two values that separate the classes on
    every row (``compare A.npy labels.npy test.csv``: the second score file left out).

    Hard 0/1 predictions that differ from the labels somewhere are valid; a classifier that
    really is perfect passes ``allow_perfect_scores=True``.

    >>> check_scores_not_labels(np.array([1.0, 0.0, 0.0]), np.array([1, 0, 1]))  # valid
    >>> check_scores_not_labels(np.array([1.0, 0.0]), np.array([1, 0]))
    Traceback (most recent call last):
    ...
    fairaudit._errors.FairauditError: y_score: expected a classifier's scores, found the \
labels themselves (1 on every fake, 0 on every real): were the labels given as scores, or a \
score file left out? A classifier that really is this perfect needs allow_perfect_scores=True
    """
    if allow or y.size == 0 or y.min() == y.max():
        return
    fakes, reals = ranking[y == 1], ranking[y == 0]
    if fakes.min() != fakes.max() or reals.min() != reals.max() or fakes[0] == reals[0]:
        return
    how = "the labels themselves" if fakes[0] > reals[0] else "the labels inverted"
    raise bad(
        argument,
        "a classifier's scores",
        f"{how} ({shown(fakes[0])} on every fake, {shown(reals[0])} on every real): were the "
        "labels given as scores, or a score file left out? A classifier that really is this "
        f"perfect needs {opt('allow_perfect_scores', True)}",
    )


def check_finite(score, *, drop_nan: bool, argument="y_score"):
    """Return a boolean keep-mask; raise on NaN/inf unless ``drop_nan``.

    >>> check_finite(np.array([0.2, np.nan]), drop_nan=True).tolist()
    [True, False]
    """
    bad_rows = ~np.isfinite(score)
    if bad_rows.any() and not drop_nan:
        first = np.flatnonzero(bad_rows)[:5].tolist()
        raise bad(
            argument,
            f"finite values (or {opt('drop_nan', True)} to drop those rows)",
            f"{int(bad_rows.sum())} NaN/inf values, first at rows {first}",
        )
    return ~bad_rows


# ---------------------------------------------------------------------------- labels
def _missing_mask(arr) -> np.ndarray:
    if arr.dtype.kind == "f":
        return np.isnan(arr)
    if arr.dtype == object:
        return np.asarray(pd.isna(arr), dtype=bool)
    return np.zeros(arr.shape, dtype=bool)


def _parse_pos_label(pos_label, arr, argument):
    """The positive value in the labels' own type; text from the command line is parsed."""
    kind = arr.dtype.kind
    text = str(pos_label).strip() if isinstance(pos_label, (str, np.str_)) else None
    if kind == "b":
        if isinstance(pos_label, (bool, np.bool_)) or (
            isinstance(pos_label, numbers.Integral) and pos_label in (0, 1)
        ):
            return bool(pos_label)
        if text is not None and text.lower() in ("true", "false", "1", "0"):
            return text.lower() in ("true", "1")
        raise bad(argument, "True or False (the labels are boolean)", shown(pos_label))
    if kind in "iuf":
        value = pos_label
        if text is not None:
            try:
                value = float(text)
            except ValueError:
                value = None
        if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
            value = float(value)
            if kind == "f" or value.is_integer():
                return value
        what = "an integer" if kind in "iu" else "a number"
        raise bad(argument, f"{what} (the labels are numbers)", shown(pos_label))
    return str(pos_label)


def as_labels(y_true, n: int | None = None, *, pos_label=None, argument="y_true"):
    """Validate labels; return int8 0/1 (1 = fake / positive).

    Without ``pos_label``: 0/1 or boolean. With it: exactly two values (or only the positive
    one), none missing; ``pos_label`` is read in the labels' type (``"False"`` on boolean
    labels means False, ``"7"`` on integer labels means 7).

    >>> as_labels(np.array(["fake", "real", "fake"]), pos_label="fake").tolist()
    [1, 0, 1]
    >>> as_labels(np.array([True, False]), pos_label="False").tolist()
    [0, 1]
    """
    if isinstance(y_true, (pd.Series, pd.DataFrame)):
        y_true = y_true.to_numpy()
    arr = np.asarray(y_true)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise bad(argument, "a 1-D array", f"shape {arr.shape}")
    if arr.shape[0] == 0:
        raise bad(argument, "at least one row", "an empty array")
    if n is not None and arr.shape[0] != n:
        raise bad(argument, f"{n} rows (as many as the scores)", f"{arr.shape[0]} rows")
    missing = _missing_mask(arr)
    if missing.any():
        raise bad(
            argument,
            "a label on every row",
            f"{int(missing.sum())} missing values (NaN/None), first at rows "
            f"{np.flatnonzero(missing)[:5].tolist()}",
        )
    arr = _typed_labels(arr)
    if pos_label is not None:
        return _labels_with_positive(arr, pos_label, argument)
    if arr.dtype == bool:
        return arr.astype(np.int8)
    if arr.dtype.kind == "U":
        values = np.unique(arr)
        raise bad(
            argument,
            f"0/1 or boolean labels (or {opt('pos_label')} naming the fake value)",
            f"text labels {shown(values[:6].tolist())}",
        )
    if arr.dtype.kind not in "biuf":
        raise bad(argument, "0/1 labels, 1 = fake", f"dtype {arr.dtype}")
    if not np.isin(arr, [0, 1]).all():
        raise bad(
            argument,
            f"0/1 labels, 1 = fake (or {opt('pos_label')} to name the positive value)",
            _label_values_text(arr),
        )
    return arr.astype(np.int8)


def _typed_labels(arr):
    """Object arrays (pandas columns, lists) as booleans, numbers or text."""
    if arr.dtype.kind in "US":
        return arr.astype(str)
    if arr.dtype != object:
        return arr
    kind = pd.api.types.infer_dtype(arr, skipna=False)
    if kind == "boolean":
        return arr.astype(bool)
    if kind in ("integer", "floating", "mixed-integer-float"):
        return arr.astype(float)
    return arr.astype(str)


def _label_values_text(arr) -> str:
    values = np.unique(arr)
    if arr.dtype.kind == "f" and values.size > 2 and not np.all(values == np.round(values)):
        return (
            f"{values.size} distinct values from {values[0]:.4g} to {values[-1]:.4g}: "
            "scores, not labels (the files in the wrong order?)"
        )
    return f"values {shown(values[:6].tolist())}"


def _labels_with_positive(arr, pos_label, argument):
    target = _parse_pos_label(pos_label, arr, opt("pos_label"))
    values = np.unique(arr)
    if not np.any(values == target):
        raise bad(
            opt("pos_label"),
            "a value that occurs in the labels",
            f"{shown(pos_label)} (labels hold {shown(values[:6].tolist())})",
        )
    if values.size > 2:
        raise bad(
            argument,
            f"two label values (the positive {shown(pos_label)} and one other)",
            f"{values.size} values {shown(values[:6].tolist())}",
        )
    return (arr == target).astype(np.int8)


def as_weights(sample_weight, n: int, *, argument="sample_weight"):
    """Validate row weights (ones when None).

    >>> as_weights(None, 2).tolist()
    [1.0, 1.0]
    """
    if sample_weight is None:
        return np.ones(n)
    arr = _numeric_array(sample_weight, argument).astype(float)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise bad(argument, f"a 1-D array of {n} weights", f"shape {arr.shape}")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise bad(
            argument,
            "finite non-negative weights",
            f"{int((~np.isfinite(arr) | (arr < 0)).sum())} negative or non-finite values",
        )
    return arr


# ---------------------------------------------------------------------------- groups
def as_groups(groups, n: int, *, argument="groups", missing="error") -> pd.DataFrame:
    """Accept a DataFrame, a dict of columns, a Series, a list of named Series or a 1-D
    array; return a DataFrame of Categoricals.

    ``missing``: ``"error"`` refuses missing values, ``"keep"`` audits them as a group
    ``unknown``, ``"drop"`` leaves them missing for the caller to drop.

    >>> list(as_groups([pd.Series(["a", "b"], name="x"), pd.Series([1, 2], name="y")], 2))
    ['x', 'y']
    >>> as_groups({"race": ["a", None]}, 2, missing="keep")["race"].tolist()
    ['a', 'unknown']
    """
    if isinstance(groups, pd.DataFrame):
        cols = {str(c): groups[c].reset_index(drop=True) for c in groups.columns}
    elif isinstance(groups, pd.Series):
        cols = {
            str(groups.name if groups.name is not None else "group"): groups.reset_index(drop=True)
        }
    elif isinstance(groups, dict):
        cols = {str(k): _column(v, f"{argument}['{k}']") for k, v in groups.items()}
    elif (
        isinstance(groups, (list, tuple))
        and groups
        and all(isinstance(g, pd.Series) for g in groups)
    ):
        cols = _series_columns(groups, argument)
    else:
        expected = "a DataFrame, a dict of columns, a list of named Series or a 1-D array"
        try:
            arr = np.asarray(groups)
        except ValueError:  # ragged sequences
            raise bad(argument, expected, f"a {type(groups).__name__} of unequal parts") from None
        if arr.ndim != 1:
            raise bad(argument, expected, f"an array of shape {arr.shape}")
        cols = {"group": arr}
    if not cols:
        raise bad(argument, "at least one attribute column", "none")
    lengths = {len(v) for v in cols.values()}
    if len(lengths) > 1:
        raise bad(argument, "columns of equal length", f"lengths {sorted(lengths)}")
    if lengths.pop() != n:
        raise bad(
            argument, f"{n} rows (as many as the scores)", f"{len(next(iter(cols.values())))} rows"
        )
    return _categorical_frame(cols, missing)


def _column(v, argument):
    arr = v if isinstance(v, (pd.Series, pd.Categorical)) else np.asarray(v)
    if getattr(arr, "ndim", 1) != 1:
        raise bad(argument, "a 1-D column", f"shape {arr.shape}")
    return arr.reset_index(drop=True) if isinstance(arr, pd.Series) else arr


def _series_columns(series, argument) -> dict:
    cols = {}
    for i, s in enumerate(series):
        if s.name is None:
            raise bad(f"{argument}[{i}]", "a Series with a name (the attribute's name)", "no name")
        if str(s.name) in cols:
            raise bad(f"{argument}[{i}]", "Series with distinct names", f"'{s.name}' twice")
        cols[str(s.name)] = s.reset_index(drop=True)
    return cols


def _categorical_frame(columns: dict, missing="error") -> pd.DataFrame:
    """Attribute columns as Categoricals in display order: cheap to filter, group and plot
    (pandas' text dtype would cost more than the whole audit at 1e6 rows)."""
    from ._groups import as_categorical

    return pd.DataFrame({k: as_categorical(k, v, missing=missing) for k, v in columns.items()})


# ---------------------------------------------------------------------------- tables
def from_table(data, **columns) -> dict:
    """Resolve arguments given as column names of ``data`` (a DataFrame); others pass through.

    A name is text; ``groups`` may be a list of names, ``y_score`` two names (two-column
    logits). Without ``data``, a name is an error naming the argument.

    >>> df = pd.DataFrame({"label": [0, 1], "prob": [0.2, 0.9], "race": ["a", "b"]})
    >>> r = from_table(df, y_true="label", y_score="prob", groups=["race"], clusters=None)
    >>> r["y_true"].tolist(), list(r["groups"].columns), r["clusters"]
    ([0, 1], ['race'], None)
    """
    names = {
        k: v
        for k, v in columns.items()
        if _is_name(v) or (data is not None and k in ("groups", "y_score") and _is_name_list(v))
    }
    if not names:
        return dict(columns)
    if data is None:
        k, v = next(iter(names.items()))
        raise bad(
            k,
            f"an array (or pass {opt('data')} as a DataFrame to name its columns)",
            f"the column name {shown(v)}",
        )
    if isinstance(data, dict):
        data = pd.DataFrame(data)
    if not isinstance(data, pd.DataFrame):
        raise bad("data", "a DataFrame whose columns the other arguments name", type(data).__name__)
    out = dict(columns)
    for k, v in names.items():
        wanted = [v] if _is_name(v) else list(v)
        unknown = [c for c in wanted if c not in data.columns]
        if unknown:
            raise bad(
                k,
                "column names of data",
                f"{', '.join(map(repr, unknown))} "
                f"(columns: {', '.join(map(str, data.columns[:15]))})",
            )
        if k == "groups":
            out[k] = data[wanted].reset_index(drop=True)
        else:
            out[k] = data[v].to_numpy() if _is_name(v) else data[wanted].to_numpy()
    return out


def _is_name(v) -> bool:
    return isinstance(v, str)


def _is_name_list(v) -> bool:
    return _is_name(v) or (
        isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(c, str) for c in v)
    )


def table_arguments(data, *, y_true, **columns) -> dict:
    """The data arguments of ``audit``/``compare`` as arrays, whichever way they were given.

    ``y_true=None``: ``data`` is the labels (``audit(y_true, y_score, groups)``); otherwise
    ``data`` is a table whose columns the arguments may name (:func:`from_table`).

    >>> table_arguments([0, 1], y_true=None, y_score=[0.1, 0.9], groups=["a", "b"])["y_true"]
    [0, 1]
    """
    if y_true is None:
        named = [k for k, v in columns.items() if _is_name(v) or k == "groups" and _is_name_list(v)]
        if isinstance(data, pd.DataFrame) and named:
            raise bad("y_true", "the name of the label column of data", "none")
        out = {"y_true": data, **from_table(None, **columns)}
    else:
        out = from_table(data, y_true=y_true, **columns)
    for k in ("y_true", "y_score", "score_a", "score_b", "groups"):
        if k in out and out[k] is None:
            raise bad(k, "an array (or a column name of data)", "none")
    return out
