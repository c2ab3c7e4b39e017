"""Input validation, done once at the boundary; the inside trusts what comes out of here.

Every error names the argument, the expected form and what was found.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._errors import bad

__all__ = [
    "ScoreRule",
    "as_scores",
    "as_labels",
    "as_weights",
    "as_groups",
    "check_finite",
    "SCORE_RULES",
]

SCORE_RULES = ("auto", "prob", "logit", "logits2")

_RULE_TEXT = {
    "prob": "scores are probabilities p(fake); predicted fake when p >= threshold",
    "logit": "scores are logits z; p(fake) = sigmoid(z); predicted fake when p >= threshold",
    "logits2": "scores are 2-column logits (real, fake); p(fake) = softmax class 1 = "
    "sigmoid(z1 - z0); predicted fake when p >= threshold",
}


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
    """

    name: str
    description: str
    threshold: float  # on the ranking score
    threshold_probability: float

    def to_probability(self, ranking_score):
        return _identity(ranking_score) if self.name == "prob" else _sigmoid(ranking_score)


def _numeric_array(x, argument):
    if isinstance(x, (pd.Series, pd.DataFrame)):
        x = x.to_numpy()
    arr = np.asarray(x)
    if arr.dtype == object:
        raise bad(argument, "a numeric array", "an object array (mixed or non-numeric values)")
    if arr.dtype.kind not in "biuf":
        raise bad(argument, "a numeric array", f"dtype {arr.dtype}")
    return arr


def as_scores(y_score, rule: str = "auto", threshold: float = 0.5, *, argument="scores"):
    """Validate scores; return (ranking score 1-D float, ScoreRule)."""
    if rule not in SCORE_RULES:
        raise bad("--scores", "one of " + ", ".join(SCORE_RULES), repr(rule))
    if not (isinstance(threshold, (int, float)) and 0.0 < float(threshold) < 1.0):
        raise bad("--threshold", "a probability strictly between 0 and 1", repr(threshold))
    arr = _numeric_array(y_score, argument).astype(float, copy=False)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape[1] != 2):
        raise bad(argument, "a 1-D array or an N x 2 array of logits", f"shape {arr.shape}")
    if arr.shape[0] == 0:
        raise bad(argument, "at least one row", "an empty array")
    if rule == "auto":
        if arr.ndim == 2:
            rule = "logits2"
        else:
            finite = arr[np.isfinite(arr)]
            rule = "prob" if finite.size and finite.min() >= 0 and finite.max() <= 1 else "logit"
    if rule == "logits2":
        if arr.ndim != 2:
            raise bad("--scores logits2", "an N x 2 array", f"shape {arr.shape}")
        ranking = arr[:, 1] - arr[:, 0]
    else:
        if arr.ndim != 1:
            raise bad(f"--scores {rule}", "a 1-D array", f"shape {arr.shape} (use logits2)")
        ranking = arr
        if rule == "prob":
            finite = ranking[np.isfinite(ranking)]
            if finite.size and (finite.min() < 0 or finite.max() > 1):
                raise bad(
                    "--scores prob",
                    "values in [0, 1]",
                    f"values from {finite.min():.4g} to {finite.max():.4g}",
                )
    thr = float(threshold)
    thr_rank = thr if rule == "prob" else float(np.log(thr / (1.0 - thr)))
    desc = _RULE_TEXT[rule] + f" (threshold {thr:g})"
    return np.ascontiguousarray(ranking, dtype=float), ScoreRule(rule, desc, thr_rank, thr)


def check_finite(score, *, drop_nan: bool, argument="scores"):
    """Return a boolean keep-mask; raise on NaN/inf unless ``drop_nan``."""
    bad_rows = ~np.isfinite(score)
    if bad_rows.any() and not drop_nan:
        first = np.flatnonzero(bad_rows)[:5].tolist()
        raise bad(
            argument,
            "finite values (or pass --drop-nan to drop those rows)",
            f"{int(bad_rows.sum())} NaN/inf values, first at rows {first}",
        )
    return ~bad_rows


def as_labels(y_true, n: int | None = None, *, pos_label=None, argument="labels"):
    """Validate labels; return int8 0/1 (1 = fake / positive)."""
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
    if pos_label is not None:
        values = arr.astype(str) if arr.dtype == object else arr
        target = type(values.flat[0])(pos_label) if values.dtype.kind in "biuf" else str(pos_label)
        if not np.any(values == target):
            raise bad(
                "--pos-label",
                "a value that occurs in the labels",
                f"{pos_label!r} (labels hold {sorted(map(str, np.unique(values)))[:6]})",
            )
        return (values == target).astype(np.int8)
    if arr.dtype == bool:
        return arr.astype(np.int8)
    if arr.dtype == object:
        raise bad(argument, "0/1 or boolean labels (or --pos-label)", "an object array")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        first = np.flatnonzero(np.isnan(arr))[:5].tolist()
        raise bad(argument, "0/1 labels", f"NaN at rows {first}")
    if arr.dtype.kind not in "biuf" or not np.isin(arr, [0, 1]).all():
        found = np.unique(arr)[:6] if arr.dtype.kind in "biuf" else f"dtype {arr.dtype}"
        raise bad(
            argument,
            "0/1 labels, 1 = fake (or --pos-label to name the positive value)",
            f"values {list(found) if not isinstance(found, str) else found}",
        )
    return arr.astype(np.int8)


def as_weights(sample_weight, n: int, *, argument="sample_weight"):
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


def as_groups(groups, n: int, *, argument="groups") -> pd.DataFrame:
    """Accept a DataFrame, a dict of columns, a Series or a 1-D array; return a DataFrame."""
    if isinstance(groups, pd.DataFrame):
        df = _categorical_frame({str(c): groups[c].reset_index(drop=True) for c in groups.columns})
    elif isinstance(groups, pd.Series):
        df = _categorical_frame({str(groups.name or "group"): groups.reset_index(drop=True)})
    elif isinstance(groups, dict):
        cols = {}
        for k, v in groups.items():
            arr = v if isinstance(v, (pd.Series, pd.Categorical)) else np.asarray(v)
            if getattr(arr, "ndim", 1) != 1:
                raise bad(f"{argument}['{k}']", "a 1-D column", f"shape {arr.shape}")
            cols[str(k)] = arr
        df = _categorical_frame(cols)
    else:
        arr = np.asarray(groups)
        if arr.ndim != 1:
            raise bad(
                argument,
                "a DataFrame, a dict of columns or a 1-D array",
                f"an array of shape {arr.shape}",
            )
        df = _categorical_frame({"group": arr})
    if df.shape[1] == 0:
        raise bad(argument, "at least one attribute column", "none")
    if len(df) != n:
        raise bad(argument, f"{n} rows (as many as the scores)", f"{len(df)} rows")
    return df


def _categorical_frame(columns: dict) -> pd.DataFrame:
    """Attribute columns as Categoricals in display order: cheap to filter, group and plot
    (pandas' text dtype would cost more than the whole audit at 1e6 rows)."""
    from ._groups import as_categorical

    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise bad("groups", "columns of equal length", f"lengths {sorted(lengths)}")
    return pd.DataFrame({k: as_categorical(k, v) for k, v in columns.items()})
