"""Compatibility with the PG-FDD research code's fairness-metrics script (``--compat pg-fdd``).

The paper "Preserving Fairness Generalization in Deepfake Detection" (CVPR 2024) reports numbers
made by a script of its research code (``training/fairness_metrics.py``). This module recomputes
every quantity that script prints, with the script's own rules and quirks, so that our numbers
can be set beside the paper's. It is self-contained: numpy only (plus fairaudit's error class).
The clean, documented metrics of fairaudit live elsewhere; the paper's names live only here.
Source of the definitions: ``shared/spec/seed_method.md`` sections 5.1-5.3 and 7.

Input
-----
One entry per intersectional set ``"<gender>,<race>"`` (e.g. ``"male,asian"``, ``"nonmale,white"``,
the research test script's file-name keys), each a pair ``(labels, saved)``: labels 0/1
(1 = fake) and ``saved`` = the value the research test script saves, the raw pre-softmax logit z
of the "fake" class. Nothing else is read.

Score rule and per-set metrics
------------------------------
``p = 1 / (1 + exp(-z))`` (computed in the saved array's floating dtype, as the script does), and
the hard prediction is ``yhat = [p >= 0.5]`` (= ``[z >= 0]``). For every set S with both classes,
with TP, FP, TN, FN the 2x2 counts of ``yhat`` against the labels and n = |S|:

* ``auc``: trapezoidal area under the ROC curve of p (scikit-learn ``roc_auc_score``). It ranks
  by p, not z, so logits where the sigmoid saturates (|z| > ~37 in float64, ~17 in float32) tie.
* ``eer``: nearest-point EER: FPR at the first point of scikit-learn's ``roc_curve`` (default
  ``drop_intermediate=True``, which removes collinear interior points, and the extra point (0, 0)
  it prepends) that minimises |FNR - FPR|, with FNR = 1 - TPR. No interpolation: on a tied or
  collinear stretch of the curve this can differ from the crossing point by a lot.
* ``acc`` = (TP + TN) / n; ``precision`` = TP / (TP + FP), 0.0 when nothing is predicted fake
  (scikit-learn's ``zero_division`` default);
* ``FPR`` = FP / (FP + TN), ``TPR`` = TP / (TP + FN), ``FNR`` = FN / (FN + TP),
  ``TNR`` = TN / (TN + FP);
* ``F_G`` = ``positive_rate`` = (TP + FP) / n; ``negative_rate`` = (TN + FN) / n;
* ``ErrorRate`` = 1 - (TPR + (1 - FPR)) / 2 (the balanced error rate, in the script's order of
  operations).

Sets
----
The intersections in list order, gender-major (``for a in genders for b in races``); each
single attribute a, pooled from the intersections that contain it (samples appended in that
order); and the overall pool = all loaded samples. The script keeps two identical overall pools
(``group_1`` for the gender family, ``group_2`` for the race family); here there is one,
``overall``. Samples of groups not listed are not in the overall pool.

A set with no samples is skipped (the script prints "is empty"). A set with one class only makes
the script's metric call raise; the script swallows the exception and leaves the set without
metrics, so it drops out of every aggregate. Both are listed in ``skipped`` with the reason.

Aggregates (fractions)
----------------------
I = intersectional sets with metrics, A_gender / A_race = single attributes with metrics in list
order, ``all`` = the overall pool, PR = positive rate:

* ``F_S`` = max over pairs i, j in I of |PR_i - PR_j| (= max PR - min PR over I);
* ``F_G_inter`` = max over I of |PR_i - PR_all|;
* ``F_EFPR_inter`` = sum over I of |FPR_i - FPR_all|;
* ``F_EO_inter`` = sum over I of (|FPR_i - FPR_all| + |TPR_i - TPR_all|);
* ``F_A_inter`` = (F_S + F_G_inter) / 2;
* per family k: ``F_G``, ``F_EFPR``, ``F_EO`` as above over A_k; ``F_A`` = (F_G_k + F_S) / 2
  -- quirk: the *intersectional* F_S, not the family's own spread;
* per family k: ``F_COV`` = sum over the family's attributes a_m (m = 0-based list position) of
  |(1/N) * sum_{i in a_m} m z_i - (m n_{a_m} / N) * mean_all(z)|, on the raw saved values z,
  N = size of the overall pool. Without the weight the term is the population covariance of z
  and the indicator of a_m; the weight m means the first attribute (male; asian or white) always
  counts 0. It is computed from the data, not from the metrics, so attributes without metrics
  (one class) still count. The script's "m times a Python list" (list repetition) is reproduced
  literally, including its float32 arithmetic when the saved values are float32.

The sums grow with the number of sets: they are not comparable between the 8-group (FF++, DFDC)
and 6-group (Celeb-DF, DFD) layouts; the x100 ranges below are.

Gaps x 100 (``gaps_x100``), for the sets I ("inter"), A_gender ("gender"), A_race ("race")
--------------------------------------------------------------------------------------------------
``FPR``, ``AUC``, ``ErrorRate``, ``OAE`` (accuracy) = 100 * (max - min);
``DP`` = 100 * max(range of PR, range of negative rate);
``MEO`` = 100 * max(range FPR, range FNR, range TNR, range TPR).
The paper's F_FPR, F_OAE, F_DP, F_MEO are the "inter" FPR, OAE, DP and MEO lines (spec §5.2;
issue #4 of the research repository confirms the paper used this script), and its AUC is the
overall AUC (a fraction here). The sum-style ``F_EFPR_inter`` is reported separately.

Edge cases: what the script does and what we do
-----------------------------------------------
The script stops with ``ValueError: max() arg is an empty sequence`` when one of the three set
lists (I, A_gender, A_race) is empty (e.g. every intersection has one class), and with a
``KeyError`` when the overall pool has no metrics; before that it prints its accumulators'
initial value 0.0 for max- and sum-type aggregates over an empty list. We never crash and never
print such placeholders: a quantity over an empty list (or relative to an overall pool without
metrics) is ``None``, and ``skipped`` holds the reason under the quantity's dotted path (e.g.
``"gaps_x100.race.DP"``, ``"families.gender.F_G"``, ``"overall"``); where the script would not
have finished, ``skipped["_script"]`` says so and why. Every ``None`` in the result has an entry
at its own path. F_S over a single set is 0.0 (its range), as the script prints. A set absent
from the input is treated as empty (the script itself would stop with ``FileNotFoundError`` on its
missing files). An input without any sample is an error.

Files
-----
:func:`read_seed_results_dir` / :func:`write_seed_results_dir` read and write the research test
script's result directory: ``<gender>,<race>labels.npy`` and ``<gender>,<race>predictions.npy``
(plain string concatenation, e.g. ``male,asianlabels.npy``), loaded without pickles.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

try:  # the package's shared error class, so that the CLI turns these into exit code 2
    from ._errors import FairauditError as _ErrorBase
    from ._errors import FairauditWarning as _WarningBase
except ImportError:  # pragma: no cover - only while the package is being assembled
    _ErrorBase, _WarningBase = ValueError, UserWarning

__all__ = [
    "PGFDD_FAMILIES",
    "CompatInputError",
    "CompatWarning",
    "pgfdd_metrics",
    "read_seed_results_dir",
    "write_seed_results_dir",
    "format_compat",
]

PGFDD_FAMILIES: dict[str, tuple[list[str], list[str]]] = {
    "ff++": (["male", "nonmale"], ["asian", "white", "black", "others"]),
    "dfdc": (["male", "nonmale"], ["asian", "white", "black", "others"]),
    "celebdf": (["male", "nonmale"], ["white", "black", "others"]),
    "dfd": (["male", "nonmale"], ["white", "black", "others"]),
}
"""Dataset name -> (gender list, race list), in the order the research script is configured."""

# The output schema (key names are the research script's).
SET_KEYS = (
    "auc",
    "ErrorRate",
    "FPR",
    "TPR",
    "acc",
    "precision",
    "F_G",
    "eer",
    "positive_rate",
    "negative_rate",
    "FNR",
    "TNR",
    "n",
)
AGGREGATE_KEYS = ("F_S", "F_G_inter", "F_EFPR_inter", "F_EO_inter", "F_A_inter")
FAMILY_KEYS = ("F_G", "F_EFPR", "F_EO", "F_A", "F_COV")
GAP_KEYS = ("FPR", "AUC", "ErrorRate", "OAE", "DP", "MEO")
PAPER_KEYS = ("F_FPR", "F_OAE", "F_DP", "F_MEO", "AUC")

_RESERVED = {"group_1", "group_2", "overall"}

NOTES = (
    "Research-script compatibility (PG-FDD training/fairness_metrics.py): the saved value is the "
    "raw class-1 logit z; p = sigmoid(z) in the saved dtype and a sample is called fake when "
    "p >= 0.5 (z >= 0), which is not the 2-class model's argmax rule; AUC is the ROC area of p "
    "(saturated sigmoids tie); EER is the FPR at the first scikit-learn roc_curve point "
    "(drop_intermediate=True) minimising |FNR - FPR|, without interpolation. Sets are the "
    "gender x race intersections, the single attributes pooled from them and the overall pool of "
    "all listed samples; empty and one-class sets are left out of every aggregate. F_S, F_G, "
    "F_EFPR, F_EO, F_A, F_COV are fractions; the F_EFPR/F_EO sums grow with the number of sets. "
    "F_A uses the intersectional F_S in every family; F_COV weights attribute m by its 0-based "
    "list index, takes |.| per attribute and uses the raw logits with N = overall size. "
    "gaps_x100 are 100 x (max - min) over sets with metrics; DP = 100 max(PR range, NR range); "
    "MEO = 100 max(FPR, FNR, TNR, TPR ranges). The paper's F_FPR, F_OAE, F_DP, F_MEO are "
    "gaps_x100.inter FPR, OAE, DP, MEO and its AUC the overall AUC. Where the script would crash "
    "(max of an empty list) the value is null and skipped says why."
)


class CompatInputError(_ErrorBase):
    """Bad input to the compatibility layer; the message names the argument or file, what was
    expected and what was found."""


class CompatWarning(_WarningBase):
    """A non-fatal oddity of the input that the research script would silently ignore."""


def _bad(where: str, expected: str, found: str) -> CompatInputError:
    return CompatInputError(f"{where}: expected {expected}, found {found}")


# ----------------------------------------------------------------------------- validation
def _check_names(genders, races) -> tuple[list[str], list[str]]:
    out = []
    for arg, names in (("genders", genders), ("races", races)):
        if isinstance(names, str) or not hasattr(names, "__iter__"):
            raise _bad(arg, "a list of attribute names", repr(names))
        names = list(names)
        if not names:
            raise _bad(arg, "at least one attribute name", "an empty list")
        for name in names:
            if (
                not isinstance(name, str)
                or not name
                or name.startswith("_")
                or any(c in name for c in ",./\\")
                or name != name.strip()
                or name in _RESERVED
            ):
                raise _bad(
                    arg,
                    "names without ',', '.', '/', surrounding spaces or a leading "
                    "'_', other than group_1, group_2, overall",
                    repr(name),
                )
        if len(set(names)) != len(names):
            raise _bad(arg, "distinct names", repr(names))
        out.append(names)
    both = sorted(set(out[0]) & set(out[1]))
    if both:
        raise _bad("genders, races", "two lists without a common name", f"{both} in both")
    return out[0], out[1]


def _first_indices(mask: np.ndarray, k: int = 5) -> str:
    idx = np.flatnonzero(mask)
    more = ", ..." if idx.size > k else ""
    return f"{idx.size} at indices {', '.join(map(str, idx[:k].tolist()))}{more}"


def _check_labels(labels, where: str) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1:
        raise _bad(where, "a 1-D array of 0/1 labels", f"shape {y.shape}")
    if y.dtype.kind not in "biuf":
        raise _bad(where, "0/1 labels (bool, integer or float)", f"dtype {y.dtype}")
    if y.size:
        bad = ~((y == 0) | (y == 1))
        if bad.any():
            shown = np.unique(y[bad])[:5].tolist()
            raise _bad(
                where, "labels 0 (real) or 1 (fake)", f"values {shown} ({_first_indices(bad)})"
            )
    return y.astype(np.int64)


def _check_saved(saved, where: str) -> np.ndarray:
    z = np.asarray(saved)
    if z.ndim != 1:
        raise _bad(where, "a 1-D array of saved class-1 logits", f"shape {z.shape}")
    if z.dtype.kind in "iu":
        z = z.astype(np.float64)  # the script's sigmoid would give float64 for these too
    elif z.dtype.kind != "f":
        raise _bad(where, "real-valued logits (float or integer)", f"dtype {z.dtype}")
    bad = ~np.isfinite(z)
    if bad.any():
        raise _bad(where, "finite values", f"NaN or inf: {_first_indices(bad)}")
    return z


def _check_pair(pair, where: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise _bad(where, "a pair (labels, saved)", f"{type(pair).__name__}")
    y = _check_labels(pair[0], f"{where} labels")
    z = _check_saved(pair[1], f"{where} saved")
    if y.shape[0] != z.shape[0]:
        raise _bad(
            where,
            "labels and saved values of the same length",
            f"{y.shape[0]} labels and {z.shape[0]} saved values",
        )
    return y, z


def _check_sets(sets, genders, races) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if not isinstance(sets, dict):
        raise _bad("sets", "a dict {'<gender>,<race>': (labels, saved)}", type(sets).__name__)
    allowed = [f"{a},{b}" for a in genders for b in races]
    unknown = [k for k in sets if k not in allowed]
    if unknown:
        raise _bad("sets", f"keys among {allowed}", f"{unknown}")
    checked = {k: _check_pair(sets[k], f"sets[{k!r}]") for k in allowed if k in sets}
    if sum(y.shape[0] for y, _ in checked.values()) == 0:
        raise _bad("sets", "at least one sample in the listed groups", "none")
    return checked


# ----------------------------------------------------------------------------- per set
def _sigmoid(z: np.ndarray) -> np.ndarray:
    """The script's sigmoid, in z's dtype; exp overflow for very negative z gives p = 0."""
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-1 * z))


def _roc(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) exactly at the points scikit-learn's ``roc_curve`` returns by default."""
    order = np.argsort(p, kind="stable")[::-1]
    ps, ys = p[order], y[order]
    last = np.r_[np.flatnonzero(ps[1:] != ps[:-1]), ps.size - 1]
    tps = np.cumsum(ys, dtype=np.float64)[last]
    fps = (last + 1).astype(np.float64) - tps
    if fps.size > 2:  # drop_intermediate: interior points collinear with their neighbours
        corner = (np.diff(fps, 2) != 0) | (np.diff(tps, 2) != 0)
        keep = np.r_[True, corner, True]
        fps, tps = fps[keep], tps[keep]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    return fps / fps[-1], tps / tps[-1]


def _set_metrics(y: np.ndarray, p: np.ndarray) -> dict:
    """The script's per-set metrics; the caller guarantees both classes are present."""
    fpr_c, tpr_c = _roc(y, p)
    eer = fpr_c[int(np.argmin(np.abs((1 - tpr_c) - fpr_c)))]
    auc = np.sum(np.diff(fpr_c) * (tpr_c[1:] + tpr_c[:-1]) / 2.0)
    yhat = p >= 0.5
    pos = y == 1
    tp = int(np.count_nonzero(yhat & pos))
    fp = int(np.count_nonzero(yhat & ~pos))
    fn = int(np.count_nonzero(~yhat & pos))
    tn = int(np.count_nonzero(~yhat & ~pos))
    n = y.shape[0]
    fpr, tpr = fp / (fp + tn), tp / (tp + fn)
    pr = (tp + fp) / n
    return {
        "auc": float(auc),
        "ErrorRate": 1 - ((tpr + (1 - fpr)) / 2),
        "FPR": fpr,
        "TPR": tpr,
        "acc": (tp + tn) / n,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "F_G": pr,
        "eer": float(eer),
        "positive_rate": pr,
        "negative_rate": (tn + fn) / n,
        "FNR": fn / (fn + tp),
        "TNR": tn / (tn + fp),
        "n": n,
    }


def _one_class_reason(y: np.ndarray) -> str:
    n_pos = int(y.sum())
    return (
        f"one class only (n = {y.size}, n_fake = {n_pos}, n_real = {y.size - n_pos}): "
        "ROC, AUC and EER are undefined, the research script's exception is swallowed and "
        "the set is left out of every aggregate"
    )


def _empty_reason(name: str, sets: dict) -> str:
    why = "no samples"
    if "," in name:
        why = (
            "not in the input (for a results directory: neither of its two files exists; "
            "the research script itself would stop with FileNotFoundError)"
            if name not in sets
            else "a zero-length entry"
        )
    return (
        f"empty (n = 0): {why}; the research script prints 'is empty' and leaves the set "
        "out of every aggregate"
    )


# ----------------------------------------------------------------------------- pools
class _Pool:
    """Samples of one set: labels, saved values z and p = sigmoid(z), appended chunk by chunk."""

    def __init__(self):
        self.chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._joined = None

    def add(self, y, z, p):
        self.chunks.append((y, z, p))
        self._joined = None

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(labels, z, p) of all chunks in order; concatenation keeps numpy's common dtype."""
        if self._joined is None:
            if not self.chunks:
                self._joined = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
            else:
                self._joined = tuple(np.concatenate(parts) for parts in zip(*self.chunks))
        return self._joined


def _build_pools(sets, genders, races):
    """Intersections (gender-major), single attributes and the overall pool, as the script
    fills them: each non-empty intersection is appended to its gender, its race and overall."""
    inter, attr, overall = {}, {a: _Pool() for a in genders + races}, _Pool()
    for a in genders:
        for b in races:
            key = f"{a},{b}"
            if key not in sets or sets[key][0].shape[0] == 0:
                continue
            y, z = sets[key]
            p = _sigmoid(z)  # per file, in the file's dtype, as the script does
            inter[key] = _Pool()
            for pool in (inter[key], attr[a], attr[b], overall):
                pool.add(y, z, p)
    return inter, attr, overall


# ----------------------------------------------------------------------------- aggregates
class _Result:
    """Collects values and the reasons for undefined ones, keyed by dotted path."""

    def __init__(self):
        self.skipped: dict[str, str] = {}

    def undefined(self, path: str, reason: str):
        self.skipped[path] = reason
        return None


def _to_overall(res, path, members, ref, fn, reduce_kind, what):
    """max (``reduce_kind='max'``) or running sum of fn(member, ref) over the members."""
    if ref is None:
        return res.undefined(
            path,
            "the overall pool has no metrics (one class only); the "
            "research script stops with KeyError",
        )
    if not members:
        return res.undefined(
            path,
            f"no {what} set has metrics; the research script prints "
            "0.0 here and then stops at max() of an empty list",
        )
    if reduce_kind == "max":
        return max(fn(m, ref) for m in members)
    total = 0.0
    for m in members:
        total += fn(m, ref)
    return total


def _abs_pr(m, ref):
    return abs(m["F_G"] - ref["F_G"])


def _abs_fpr(m, ref):
    return abs(m["FPR"] - ref["FPR"])


def _abs_eo(m, ref):
    return abs(m["FPR"] - ref["FPR"]) + abs(m["TPR"] - ref["TPR"])


def _half_sum(res, path, a, b, names):
    if a is None or b is None:
        return res.undefined(path, f"(F_S + F_G) / 2 with {names} undefined")
    return (a + b) / 2


def _f_cov(attr_pools, overall_z, n_all):
    """Index-weighted sum of |per-attribute covariance terms|, as the script writes it.

    ``np.sum(m * list(z))`` of the script is list repetition; ``np.sum([])`` is a float64 zero.
    The arithmetic (and its dtype) follows the script's expression term by term.
    """
    mean_all = np.mean(overall_z)
    cov = 0.0
    for m, z_a in enumerate(attr_pools):
        if m == 0 or z_a.size == 0:
            first = np.sum([]) / n_all
        else:
            first = np.sum(np.tile(z_a, m)) / n_all
        second = np.multiply(m * z_a.size / n_all, mean_all)
        cov += np.abs(first - second)
    return float(cov)


def _range(values):
    return max(values) - min(values)


def _gaps(res, family, members):
    path = f"gaps_x100.{family}"
    if not members:
        what = "intersectional" if family == "inter" else family
        reason = (
            f"no {what} set has metrics; the research script stops here with "
            "ValueError: max() arg is an empty sequence"
        )
        return {k: res.undefined(f"{path}.{k}", reason) for k in GAP_KEYS}

    def col(key):
        return [m[key] for m in members]

    return {
        "FPR": 100 * _range(col("FPR")),
        "AUC": 100 * _range(col("auc")),
        "ErrorRate": 100 * _range(col("ErrorRate")),
        "OAE": 100 * _range(col("acc")),
        "DP": 100 * max(_range(col("positive_rate")), _range(col("negative_rate"))),
        "MEO": 100
        * max(_range(col("FPR")), _range(col("FNR")), _range(col("TNR")), _range(col("TPR"))),
    }


def _all_set_metrics(res, sets, genders, races, inter_p, attr_p, overall_p) -> dict:
    """Metrics of every set with both classes; the others go to ``skipped`` with the reason.
    Order: attributes (genders, races), intersections gender-major, then ``overall``."""
    groups: dict[str, dict] = {}
    order = [(a, attr_p[a]) for a in genders + races]
    order += [(f"{a},{b}", inter_p.get(f"{a},{b}", _Pool())) for a in genders for b in races]
    for name, pool in order + [("overall", overall_p)]:
        y, _, p = pool.arrays()
        if y.size == 0:
            res.undefined(name, _empty_reason(name, sets))
        elif y.min() == y.max():
            res.undefined(name, _one_class_reason(y))
        else:
            groups[name] = _set_metrics(y, p)
    return groups


def _inter_aggregates(res, inter_m, ref) -> dict:
    out = {}
    if not inter_m:
        out["F_S"] = res.undefined(
            "F_S",
            "no intersectional set has metrics; the research "
            "script prints 0.0 here and then stops at max() of an empty "
            "list",
        )
    else:  # the largest pairwise |PR_i - PR_j| is max - min (rounding is monotone)
        out["F_S"] = _range([m["F_G"] for m in inter_m])
    what = "intersectional"
    out["F_G_inter"] = _to_overall(res, "F_G_inter", inter_m, ref, _abs_pr, "max", what)
    out["F_EFPR_inter"] = _to_overall(res, "F_EFPR_inter", inter_m, ref, _abs_fpr, "sum", what)
    out["F_EO_inter"] = _to_overall(res, "F_EO_inter", inter_m, ref, _abs_eo, "sum", what)
    out["F_A_inter"] = _half_sum(res, "F_A_inter", out["F_S"], out["F_G_inter"], "F_S or F_G_inter")
    return out


def _family(res, family, members, ref, f_s, attr_z, overall_z) -> dict:
    path = f"families.{family}"
    fam = {
        "F_G": _to_overall(res, f"{path}.F_G", members, ref, _abs_pr, "max", family),
        "F_EFPR": _to_overall(res, f"{path}.F_EFPR", members, ref, _abs_fpr, "sum", family),
        "F_EO": _to_overall(res, f"{path}.F_EO", members, ref, _abs_eo, "sum", family),
    }
    # the script's quirk: the intersectional F_S, not this family's own spread
    fam["F_A"] = _half_sum(
        res, f"{path}.F_A", fam["F_G"], f_s, f"the intersectional F_S or {path}.F_G"
    )
    fam["F_COV"] = _f_cov(attr_z, overall_z, overall_z.shape[0])
    return fam


def _paper(res, inter_gaps, ref) -> dict:
    paper = {
        "F_FPR": inter_gaps["FPR"],
        "F_OAE": inter_gaps["OAE"],
        "F_DP": inter_gaps["DP"],
        "F_MEO": inter_gaps["MEO"],
        "AUC": None if ref is None else ref["auc"],
    }
    for key, src in (("F_FPR", "FPR"), ("F_OAE", "OAE"), ("F_DP", "DP"), ("F_MEO", "MEO")):
        if paper[key] is None:
            res.undefined(f"paper.{key}", f"gaps_x100.inter.{src} is undefined")
    if ref is None:
        res.undefined("paper.AUC", "the overall pool has no metrics")
    return paper


def _script_outcome(res, ref, inter_m, fam_m):
    if ref is None:
        cause = "KeyError: the overall pool has no metrics (one class only)"
    else:
        empty = [
            name
            for name, members in (
                ("gender", fam_m["gender"]),
                ("race", fam_m["race"]),
                ("intersection", inter_m),
            )
            if not members
        ]
        if not empty:
            return
        cause = (
            "ValueError: max() arg is an empty sequence (no "
            + " / ".join(empty)
            + " set with metrics)"
        )
    res.skipped["_script"] = (
        f"the research script would stop with {cause} and print no gap "
        "lines; quantities defined on this input are reported anyway"
    )


# ----------------------------------------------------------------------------- public API
def pgfdd_metrics(sets, genders, races) -> dict:
    """Every quantity of the PG-FDD research fairness-metrics script, computed as it does.

    Parameters
    ----------
    sets : dict of str to (array-like, array-like)
        ``{"<gender>,<race>": (labels, saved)}`` with 1-D labels 0/1 (1 = fake) and 1-D saved
        values z = the raw class-1 logit the research test script saves. Keys must be among the
        ``f"{g},{r}"`` of the lists; a missing key is an empty set.
    genders, races : list of str
        The two attribute lists in the script's order, e.g. ``PGFDD_FAMILIES["ff++"]``. Order
        matters: it sets the F_COV weights (0-based list index) and the set order.

    Returns
    -------
    dict
        JSON-serialisable (Python floats and ints, ``None`` for undefined, never NaN)::

            {"groups": {set name: {auc, ErrorRate, FPR, TPR, acc, precision, F_G, eer,
                                   positive_rate, negative_rate, FNR, TNR, n}},
             "overall": {same keys} or None,
             "F_S", "F_G_inter", "F_EFPR_inter", "F_EO_inter", "F_A_inter",
             "families": {"gender": {F_G, F_EFPR, F_EO, F_A, F_COV}, "race": {...}},
             "gaps_x100": {"inter" | "gender" | "race": {FPR, AUC, ErrorRate, OAE, DP, MEO}},
             "paper": {F_FPR, F_OAE, F_DP, F_MEO, AUC},
             "skipped": {set name or dotted path: reason},
             "notes": str}

        Set names are the script's: the attributes (``male``, ``asian``, ...) and the
        intersections (``male,asian``, ...). ``groups`` holds the sets with metrics only; empty
        and one-class sets are in ``skipped``. Formulas: see the module docstring.

    Raises
    ------
    CompatInputError
        (a ``ValueError``) for bad names, unknown keys, non-1-D or mismatched arrays, labels
        other than 0/1, non-finite saved values, or no sample at all.
    """
    genders, races = _check_names(genders, races)
    sets = _check_sets(sets, genders, races)
    res = _Result()
    inter_p, attr_p, overall_p = _build_pools(sets, genders, races)

    groups = _all_set_metrics(res, sets, genders, races, inter_p, attr_p, overall_p)
    ref = groups.pop("overall", None)
    inter_m = [groups[k] for k in inter_p if k in groups]
    fam_m = {
        "gender": [groups[a] for a in genders if a in groups],
        "race": [groups[b] for b in races if b in groups],
    }

    out: dict = {"groups": groups, "overall": ref}
    out.update(_inter_aggregates(res, inter_m, ref))
    overall_z = overall_p.arrays()[1]
    out["families"] = {
        family: _family(
            res,
            family,
            fam_m[family],
            ref,
            out["F_S"],
            [attr_p[a].arrays()[1] for a in names],
            overall_z,
        )
        for family, names in (("gender", genders), ("race", races))
    }
    out["gaps_x100"] = {
        "inter": _gaps(res, "inter", inter_m),
        "gender": _gaps(res, "gender", fam_m["gender"]),
        "race": _gaps(res, "race", fam_m["race"]),
    }
    out["paper"] = _paper(res, out["gaps_x100"]["inter"], ref)
    _script_outcome(res, ref, inter_m, fam_m)
    out["skipped"] = res.skipped
    out["notes"] = NOTES
    return out


# ----------------------------------------------------------------------------- files
def _load_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:  # object arrays and pickles are refused by allow_pickle=False
        raise _bad(
            str(path),
            "a .npy array without pickled objects",
            f"a file numpy cannot load without pickles ({exc})",
        ) from None
    except (OSError, EOFError) as exc:
        raise _bad(str(path), "a readable .npy file", f"{type(exc).__name__}: {exc}") from None
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise _bad(str(path), "a single .npy array", "an .npz archive")
    return arr


def _result_files(directory: Path, key: str) -> tuple[Path, Path]:
    # plain string concatenation, as the research test script names its files
    return directory / (key + "labels.npy"), directory / (key + "predictions.npy")


def read_seed_results_dir(path, genders, races) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read the research test script's per-group result directory.

    Parameters
    ----------
    path : str or path-like
        Directory holding ``<gender>,<race>labels.npy`` and ``<gender>,<race>predictions.npy``
        (e.g. ``male,asianlabels.npy``), as ``training/test.py`` writes them.
    genders, races : list of str
        The layout, e.g. ``PGFDD_FAMILIES["celebdf"]``.

    Returns
    -------
    dict of str to (numpy.ndarray, numpy.ndarray)
        ``{"<gender>,<race>": (labels, predictions)}`` in gender-major list order, arrays as
        stored (validated, not converted). A group with neither file is absent: it counts as an
        empty set, and :func:`pgfdd_metrics` lists it in ``skipped``.

    Raises
    ------
    CompatInputError
        (a ``ValueError``) naming the file: the directory is missing; no listed group has files;
        only one file of a pair exists; a file holds pickles or objects, is not a .npy array,
        is not 1-D, has labels other than 0/1 or non-finite predictions; the two files of a
        group differ in length.

    Warns
    -----
    CompatWarning
        When the directory holds result files of groups outside the layout: they are ignored,
        as the research script ignores them (e.g. FF++ results read with a Celeb-DF layout).
    """
    genders, races = _check_names(genders, races)
    directory = Path(path)
    if not directory.is_dir():
        raise _bad(
            "path",
            "a directory of per-group result files",
            f"'{directory}' ({'a file' if directory.exists() else 'nothing there'})",
        )
    sets = {}
    for a in genders:
        for b in races:
            key = f"{a},{b}"
            lab, pred = _result_files(directory, key)
            if not lab.exists() and not pred.exists():
                continue
            for have, missing in ((lab, pred), (pred, lab)):
                if have.exists() and not missing.exists():
                    raise _bad(str(missing), f"the file paired with '{have.name}'", "no file")
            labels, saved = _load_npy(lab), _load_npy(pred)
            _check_labels(labels, str(lab))
            _check_saved(saved, str(pred))
            if labels.shape[0] != saved.shape[0]:
                raise _bad(
                    f"{lab} and {pred}",
                    "the same length",
                    f"{labels.shape[0]} labels and {saved.shape[0]} predictions",
                )
            sets[key] = (labels, saved)
    if not sets:
        raise _bad(
            str(directory),
            f"result files such as '{genders[0]},{races[0]}labels.npy' "
            f"for the groups {[f'{a},{b}' for a in genders for b in races]}",
            "none",
        )
    _warn_unlisted(directory, genders, races)
    return sets


def _warn_unlisted(directory: Path, genders, races):
    listed = {f"{a},{b}" for a in genders for b in races}
    extra = []
    for f in sorted(directory.glob("*,*.npy")):
        for suffix in ("labels.npy", "predictions.npy"):
            if f.name.endswith(suffix) and f.name[: -len(suffix)] not in listed:
                extra.append(f.name)
    if extra:
        warnings.warn(
            f"{directory}: result files of groups outside the layout "
            f"{sorted(listed)} are ignored (as the research script ignores them): "
            f"{', '.join(extra[:8])}{' ...' if len(extra) > 8 else ''}",
            CompatWarning,
            stacklevel=3,
        )


def write_seed_results_dir(path, sets) -> list[Path]:
    """Write sets in the research test script's layout (for tests, examples and users).

    Parameters
    ----------
    path : str or path-like
        Directory to write into; created with its parents if needed. Existing files of the same
        names are overwritten.
    sets : dict of str to (array-like, array-like)
        ``{"<gender>,<race>": (labels, saved)}``; each key must hold exactly one comma. Empty
        arrays are written as empty files, as the research script does for empty groups.

    Returns
    -------
    list of pathlib.Path
        The files written, labels then predictions per set.

    Raises
    ------
    CompatInputError
        (a ``ValueError``) for a key that is not ``"<gender>,<race>"`` or an invalid pair.
    """
    if not isinstance(sets, dict):
        raise _bad("sets", "a dict {'<gender>,<race>': (labels, saved)}", type(sets).__name__)
    checked = {}
    for key, pair in sets.items():
        parts = key.split(",") if isinstance(key, str) else []
        if len(parts) != 2 or not all(parts) or any(c in key for c in "/\\"):
            raise _bad("sets", "keys of the form '<gender>,<race>'", repr(key))
        y, _ = _check_pair(pair, f"sets[{key!r}]")
        checked[key] = (y, np.asarray(pair[1]))
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for key, (y, z) in checked.items():
        lab, pred = _result_files(directory, key)
        np.save(lab, y.astype(np.int64), allow_pickle=False)
        np.save(pred, z, allow_pickle=False)
        written += [lab, pred]
    return written


# ----------------------------------------------------------------------------- text
def _fmt(value, digits: int) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}f}"


_TABLE = (
    ("n", "n", None),
    ("AUC", "auc", 5),
    ("ErrorRate", "ErrorRate", 5),
    ("FPR", "FPR", 5),
    ("TPR", "TPR", 5),
    ("acc", "acc", 5),
    ("precision", "precision", 5),
    ("EER", "eer", 5),
    ("F_G", "F_G", 5),
)


def _set_line(name: str, m: dict, width: int) -> str:
    cells = [str(m["n"]).rjust(6)]
    cells += [_fmt(m[key], d).rjust(max(9, len(head))) for head, key, d in _TABLE[1:]]
    return f"  {name.ljust(width)} " + " ".join(cells)


def format_compat(compat: dict) -> str:
    """Text block of :func:`pgfdd_metrics`'s result, as the CLI prints it.

    Per-set table (the script's printed columns), the sets left out, the aggregates, the x100
    gap lines per list, the paper's names (``F_FPR (paper) = inter FPR range x100 = ...``),
    the reasons for undefined values, and the notes. Fractions to 5 decimals, x100 values to 3,
    undefined values as ``n/a``.

    Parameters
    ----------
    compat : dict
        The dict returned by :func:`pgfdd_metrics` (possibly with extra keys, which are ignored).

    Returns
    -------
    str

    Raises
    ------
    CompatInputError
        (a ``ValueError``) when ``compat`` lacks the keys of a :func:`pgfdd_metrics` result.
    """
    need = ("groups", "overall", "families", "gaps_x100", "paper", "skipped") + AGGREGATE_KEYS
    if not isinstance(compat, dict) or any(k not in compat for k in need):
        missing = [k for k in need if not isinstance(compat, dict) or k not in compat]
        raise _bad("compat", "the dict returned by pgfdd_metrics", f"missing keys {missing}")
    names = list(compat["groups"]) + ["overall"]
    width = max(len(n) for n in names + ["set"])
    head = ["n".rjust(6)] + [h.rjust(max(9, len(h))) for h, _, _ in _TABLE[1:]]
    lines = [
        "score rule: p = sigmoid(saved class-1 logit), fake if p >= 0.5; "
        "nearest-point EER (no interpolation)",
        f"  {'set'.ljust(width)} " + " ".join(head),
    ]
    lines += [_set_line(n, m, width) for n, m in compat["groups"].items()]
    if compat["overall"] is not None:
        lines.append(_set_line("overall", compat["overall"], width))
    not_sets = set(AGGREGATE_KEYS) | {"_script"}
    left_out = {k: v for k, v in compat["skipped"].items() if "." not in k and k not in not_sets}
    for name, reason in left_out.items():
        lines.append(f"  left out: {name}: {reason}")
    f = compat
    lines.append(
        f"F_S = {_fmt(f['F_S'], 5)} | F_G_inter = {_fmt(f['F_G_inter'], 5)} | "
        f"F_EFPR_inter = {_fmt(f['F_EFPR_inter'], 5)} | "
        f"F_EO_inter = {_fmt(f['F_EO_inter'], 5)} | "
        f"F_A_inter = {_fmt(f['F_A_inter'], 5)}"
    )
    for family, vals in compat["families"].items():
        lines.append(
            f"{family}: F_G = {_fmt(vals['F_G'], 5)} | F_EFPR = {_fmt(vals['F_EFPR'], 5)}"
            f" | F_EO = {_fmt(vals['F_EO'], 5)} | F_A (with intersectional F_S) = "
            f"{_fmt(vals['F_A'], 5)} | F_COV = {_fmt(vals['F_COV'], 5)}"
        )
    lists = list(compat["gaps_x100"])
    lines.append("x100 gaps (max - min over sets with metrics): " + " | ".join(lists))
    labels = {
        "FPR": "FPR range",
        "AUC": "AUC range",
        "ErrorRate": "ErrorRate range",
        "OAE": "OAE = accuracy range",
        "DP": "DP = max(PR range, NR range)",
        "MEO": "MEO = max(FPR, FNR, TNR, TPR ranges)",
    }
    for key, label in labels.items():
        vals = " | ".join(_fmt(compat["gaps_x100"][g][key], 3) for g in lists)
        lines.append(f"  {label}: {vals}")
    p = compat["paper"]
    lines += [
        f"F_FPR (paper) = inter FPR range x100 = {_fmt(p['F_FPR'], 3)}",
        f"F_OAE (paper) = inter accuracy range x100 = {_fmt(p['F_OAE'], 3)}",
        f"F_DP (paper) = inter max(PR range, NR range) x100 = {_fmt(p['F_DP'], 3)}",
        f"F_MEO (paper) = inter max(FPR, FNR, TNR, TPR ranges) x100 = {_fmt(p['F_MEO'], 3)}",
        f"AUC (paper) = overall AUC = {_fmt(p['AUC'], 5)}",
    ]
    by_reason: dict[str, list[str]] = {}
    for path, reason in compat["skipped"].items():
        if path not in left_out and path != "_script":
            by_reason.setdefault(reason, []).append(path)
    for reason, paths in by_reason.items():
        lines.append(f"n/a {', '.join(paths)}: {reason}")
    if "_script" in compat["skipped"]:
        lines.append(f"note: {compat['skipped']['_script']}")
    return "\n".join(lines)
