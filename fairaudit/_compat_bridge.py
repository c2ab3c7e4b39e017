"""From fairaudit's inputs to the research script's per-set arrays (``--compat pg-fdd``).

The research script reads, per ``gender,race`` set, the labels and the *saved value* z (the raw
class-1 logit) and applies a sigmoid. We hand it the value it would have seen:

* ``logits2`` scores: column 1 (the class-1 logit, exactly what the research test script saves);
* ``logit`` scores: the logits as given;
* ``prob`` scores: logit(p), so that sigmoid(z) = p (p clipped to [1e-15, 1 - 1e-15] so that z
  is finite; this only matters for the logit-based F_COV); ``percent`` scores: p = score / 100.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._errors import bad
from ._validation import as_groups, as_labels

__all__ = ["compat_from_arrays", "saved_values", "script_sets"]

MODES = ("pg-fdd",)


def saved_values(y_score, rule: str) -> np.ndarray:
    arr = np.asarray(y_score, dtype=float)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if rule == "logits2":
        return arr[:, 1]
    if rule in ("prob", "percent"):
        p = np.clip(arr / 100.0 if rule == "percent" else arr, 1e-15, 1 - 1e-15)
        return np.log(p) - np.log1p(-p)
    return arr


def script_sets(y, z, gender, race) -> dict:
    """{"male,asian": (labels, z), ...} in the script's naming (female -> nonmale)."""
    sets = {}
    g_names = np.where(
        np.asarray(gender).astype(str) == "female", "nonmale", np.asarray(gender).astype(str)
    )
    r_names = np.asarray(race).astype(str)
    keys = pd.Series(g_names).str.cat(pd.Series(r_names), sep=",").to_numpy()
    for key in dict.fromkeys(keys):
        m = keys == key
        sets[str(key)] = (y[m].astype(int), z[m])
    return sets


def compat_from_arrays(
    y_true, y_score, groups, *, rule, mode, dataset, drop_nan=False, pos_label=None
) -> dict:
    """The research script's quantities for validated-or-raw arrays (score ``rule`` in force)."""
    from ._compat import PGFDD_FAMILIES, pgfdd_metrics

    if mode not in MODES:
        raise bad("--compat", "one of " + ", ".join(MODES), repr(mode))
    n = np.asarray(y_score).shape[0]
    attrs = as_groups(groups, n)
    if not {"gender", "race"} <= set(map(str, attrs.columns)):
        raise bad(
            "--compat pg-fdd",
            "attributes named gender and race (the research schema)",
            f"attributes {', '.join(map(str, attrs.columns))}",
        )
    y = as_labels(y_true, n, pos_label=pos_label)
    z = saved_values(y_score, rule)
    keep = np.isfinite(z)
    if not keep.all() and not drop_nan:
        raise bad("scores", "finite values (or --drop-nan)", f"{int((~keep).sum())} NaN/inf")
    dataset = dataset or "ff++"
    genders, races = PGFDD_FAMILIES[dataset]
    g = attrs["gender"].astype(str).to_numpy()[keep]
    r = attrs["race"].astype(str).to_numpy()[keep]
    unknown = sorted(set(r) - set(races))
    if unknown:
        raise bad(
            "--dataset", f"a dataset whose race list covers {unknown}", f"{dataset} (races {races})"
        )
    out = pgfdd_metrics(script_sets(y[keep], z[keep], g, r), genders, races)
    out["input"] = {
        "saved_value": {
            "logits2": "column 1 of the 2-column logits",
            "logit": "the logits as given",
            "prob": "logit(p)",
            "percent": "logit(score / 100)",
        }[rule],
        "dataset": dataset,
    }
    return out
