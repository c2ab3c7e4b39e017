"""Tests of the research-script compatibility layer (fairaudit._compat).

Three kinds of evidence:

* an independent oracle: a loop-by-loop transcription of the research script's procedure as
  spec §5.2 describes it (plain Python lists filled by appending, scikit-learn metric calls, a
  try/except per set), compared with ``pgfdd_metrics`` on many random data sets to 1e-9;
* small hand-made data sets whose every number is worked out by hand in the comments;
* the result-directory reader and writer, including refused files.
"""

from __future__ import annotations

import json
import math
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import config_context
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_score,
    roc_auc_score,
    roc_curve,
)

from fairaudit._compat import (
    PGFDD_FAMILIES,
    CompatInputError,
    CompatWarning,
    format_compat,
    pgfdd_metrics,
    read_seed_results_dir,
    write_seed_results_dir,
)

TOL = 1e-9
FFPP = PGFDD_FAMILIES["ff++"]
CELEB = PGFDD_FAMILIES["celebdf"]


# =============================================================================== the oracle
def _oracle_set_metrics(labels, probs):
    """The script's per-set call: sklearn on arrays made from the pooled lists."""
    y = np.array(labels)
    p = np.array(probs)
    fpr, tpr, _ = roc_curve(y, p, pos_label=1)
    distance = np.absolute((1 - tpr) - fpr)
    k = np.nanargmin(distance)  # raises on a one-class set: every entry is NaN there
    eer = fpr[k]
    auc = roc_auc_score(y, p)
    if np.isnan(auc):
        raise ValueError("one class")
    called_fake = p >= 0.5
    acc = accuracy_score(y, called_fake)
    precision = precision_score(y, called_fake)
    cm = confusion_matrix(y, called_fake)
    tn, fp, fn, tp = cm[0][0], cm[0][1], cm[1][0], cm[1][1]
    fpr_at, tpr_at = fp / (fp + tn), tp / (tp + fn)
    return {
        "auc": auc,
        "ErrorRate": 1 - ((tpr_at + (1 - fpr_at)) / 2),
        "FPR": fpr_at,
        "TPR": tpr_at,
        "acc": acc,
        "precision": precision,
        "F_G": (tp + fp) / len(y),
        "eer": eer,
        "positive_rate": (tp + fp) / len(y),
        "negative_rate": (tn + fn) / len(y),
        "FNR": fn / (fn + tp),
        "TNR": tn / (tn + fp),
        "n": len(y),
    }


def script_oracle(sets, genders, races):
    """Transcription of spec §5.2, deliberately in plain lists and loops."""
    pool_label, pool_logit, pool_prob = {"ALL": []}, {"ALL": []}, {"ALL": []}
    for name in list(genders) + list(races):
        pool_label[name], pool_logit[name], pool_prob[name] = [], [], []
    inter_names = []
    for g in genders:
        for r in races:
            name = g + "," + r
            if name not in sets or len(sets[name][0]) == 0:
                continue
            labels, saved = sets[name]
            with np.errstate(over="ignore"):
                probs = 1.0 / (1.0 + np.exp(-saved))
            inter_names.append(name)
            pool_label[name], pool_logit[name], pool_prob[name] = (
                list(labels),
                list(saved),
                list(probs),
            )
            for target in (g, r, "ALL"):
                pool_label[target] += list(labels)
                pool_logit[target] += list(saved)
                pool_prob[target] += list(probs)

    metrics, left_out = {}, []
    every_set = list(genders) + list(races) + [g + "," + r for g in genders for r in races]
    for name in every_set + ["ALL"]:
        if name not in pool_label or len(pool_label[name]) == 0:
            left_out.append(name)
            continue
        try:
            # skipping sklearn's argument validation only saves time (the inputs are valid)
            with warnings.catch_warnings(), config_context(skip_parameter_validation=True):
                warnings.simplefilter("ignore")
                metrics[name] = _oracle_set_metrics(pool_label[name], pool_prob[name])
        except Exception:
            left_out.append(name)
    allref = metrics.get("ALL")

    # the intersectional lines
    inter_ok = [nm for nm in inter_names if nm in metrics]
    out = {"groups": {nm: metrics[nm] for nm in every_set if nm in metrics}, "overall": allref}
    if inter_ok:
        spread = 0.0
        for i in range(len(inter_ok)):
            for j in range(i + 1, len(inter_ok)):
                d = abs(metrics[inter_ok[i]]["F_G"] - metrics[inter_ok[j]]["F_G"])
                if spread < d:
                    spread = d
        g_inter, efpr, eo = 0.0, 0.0, 0.0
        for nm in inter_ok:
            d = abs(metrics[nm]["F_G"] - allref["F_G"])
            if g_inter < d:
                g_inter = d
            efpr += abs(metrics[nm]["FPR"] - allref["FPR"])
            eo += abs(metrics[nm]["FPR"] - allref["FPR"]) + abs(metrics[nm]["TPR"] - allref["TPR"])
        out.update(
            F_S=spread,
            F_G_inter=g_inter,
            F_EFPR_inter=efpr,
            F_EO_inter=eo,
            F_A_inter=(spread + g_inter) / 2,
        )
    else:
        out.update(F_S=None, F_G_inter=None, F_EFPR_inter=None, F_EO_inter=None, F_A_inter=None)

    # the per-family lines
    n_all = len(pool_label["ALL"])
    out["families"] = {}
    for family, names in (("gender", genders), ("race", races)):
        fg, fefpr, feo, cov, seen = 0.0, 0.0, 0.0, 0.0, False
        for weight, nm in enumerate(names):
            if nm in metrics:
                seen = True
                d = abs(metrics[nm]["F_G"] - allref["F_G"])
                if fg < d:
                    fg = d
                feo += abs(metrics[nm]["FPR"] - allref["FPR"]) + abs(
                    metrics[nm]["TPR"] - allref["TPR"]
                )
                fefpr += abs(metrics[nm]["FPR"] - allref["FPR"])
            # "index times Python list": list repetition, literally
            first = np.sum(weight * pool_logit[nm]) / n_all
            second = np.multiply(weight * len(pool_label[nm]) / n_all, np.mean(pool_logit["ALL"]))
            cov += np.abs(first - second)
        fam = (
            {"F_G": fg, "F_EFPR": fefpr, "F_EO": feo}
            if seen
            else {"F_G": None, "F_EFPR": None, "F_EO": None}
        )
        spread = out["F_S"]
        fam["F_A"] = None if (fam["F_G"] is None or spread is None) else (fam["F_G"] + spread) / 2
        fam["F_COV"] = cov
        out["families"][family] = fam

    # the x100 lines
    def gap_lists(names):
        lists = {k: [] for k in ("auc", "ErrorRate", "FPR", "acc", "PR", "NR", "FNR", "TNR", "TPR")}
        for nm in names:
            try:
                m = metrics[nm]
                lists["auc"].append(m["auc"])
                lists["ErrorRate"].append(m["ErrorRate"])
                lists["FPR"].append(m["FPR"])
                lists["acc"].append(m["acc"])
                lists["PR"].append(m["positive_rate"])
                lists["NR"].append(m["negative_rate"])
                lists["FNR"].append(m["FNR"])
                lists["TNR"].append(m["TNR"])
                lists["TPR"].append(m["TPR"])
            except KeyError:
                continue
        if not lists["auc"]:
            return dict.fromkeys(("FPR", "AUC", "ErrorRate", "OAE", "DP", "MEO"))
        spread = {k: max(v) - min(v) for k, v in lists.items()}
        return {
            "FPR": 100 * spread["FPR"],
            "AUC": 100 * spread["auc"],
            "ErrorRate": 100 * spread["ErrorRate"],
            "OAE": 100 * spread["acc"],
            "DP": 100 * max([spread["PR"], spread["NR"]]),
            "MEO": 100 * max([spread["FPR"], spread["FNR"], spread["TNR"], spread["TPR"]]),
        }

    all_inter = [g + "," + r for g in genders for r in races]
    out["gaps_x100"] = {
        "inter": gap_lists(all_inter),
        "gender": gap_lists(genders),
        "race": gap_lists(races),
    }
    left_out = ["overall" if nm == "ALL" else nm for nm in left_out]
    return out, left_out


def assert_close(mine, ref, path="result"):
    if isinstance(ref, dict):
        assert isinstance(mine, dict), path
        assert set(mine) == set(ref), f"{path}: keys {sorted(mine)} != {sorted(ref)}"
        for key in ref:
            assert_close(mine[key], ref[key], f"{path}.{key}")
    elif ref is None:
        assert mine is None, f"{path}: {mine!r} where the oracle has None"
    else:
        assert mine is not None, f"{path}: None where the oracle has {ref!r}"
        assert abs(float(mine) - float(ref)) <= TOL, f"{path}: {mine!r} != {ref!r}"


def compare_with_oracle(sets, genders, races):
    mine = pgfdd_metrics(sets, genders, races)
    ref, left_out = script_oracle(sets, genders, races)
    for key in (
        "groups",
        "overall",
        "F_S",
        "F_G_inter",
        "F_EFPR_inter",
        "F_EO_inter",
        "F_A_inter",
        "families",
        "gaps_x100",
    ):
        assert_close(mine[key], ref[key], key)
    set_names = (
        set(genders) | set(races) | {"overall"} | {f"{g},{r}" for g in genders for r in races}
    )
    assert {k for k in mine["skipped"] if k in set_names} == set(left_out)
    return mine


# =============================================================================== random data
def random_sets(rng, genders, races, *, style="plain", n_max=60, dtype=np.float64):
    """One empty set (absent or zero-length), one one-class set, the others random."""
    keys = [f"{g},{r}" for g in genders for r in races]
    empty, one_class = rng.choice(len(keys), size=2, replace=False)
    sets = {}
    for i, key in enumerate(keys):
        if i == empty:
            if rng.random() < 0.5:
                sets[key] = (np.zeros(0, np.int64), np.zeros(0, dtype))
            continue
        n = int(rng.integers(1, n_max))
        y = np.full(n, int(rng.integers(0, 2))) if i == one_class else rng.integers(0, 2, n)
        z = rng.normal(rng.normal(0, 1) + rng.uniform(0, 2) * (2 * y - 1), rng.uniform(0.5, 3))
        if style == "ties":
            z = np.round(z * 2) / 2  # many ties: tied and collinear ROC points
        elif style == "saturating":
            z = z * 30  # sigmoid saturates: ties in p that z does not have
        sets[key] = (y, z.astype(dtype))
    return sets


# float32 ties are covered by the large-set test below
STYLES = [
    ("plain", np.float64),
    ("ties", np.float64),
    ("saturating", np.float64),
    ("saturating", np.float32),
]


@pytest.mark.parametrize("layout", ["ff++", "celebdf"])
@pytest.mark.parametrize("style,dtype", STYLES, ids=[f"{s}-{d.__name__}" for s, d in STYLES])
@pytest.mark.parametrize("seed", range(3))
def test_matches_oracle_on_random_sets(layout, style, dtype, seed):
    genders, races = PGFDD_FAMILIES[layout]
    rng = np.random.default_rng([seed, len(races), STYLES.index((style, dtype))])
    sets = random_sets(rng, genders, races, style=style, dtype=dtype)
    out = compare_with_oracle(sets, genders, races)
    # the forced one-class and empty sets are really left out
    assert sum(("," in k) for k in out["skipped"]) >= 2


def test_matches_oracle_on_a_large_set():
    rng = np.random.default_rng(7)
    genders, races = FFPP
    sets = random_sets(rng, genders, races, n_max=4000, style="ties", dtype=np.float32)
    compare_with_oracle(sets, genders, races)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_matches_oracle_on_tiny_tied_sets(data):
    genders, races = ["male", "nonmale"], ["white", "black"]
    sets = {}
    for g in genders:
        for r in races:
            n = data.draw(st.integers(0, 7))
            y = data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
            z = data.draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))
            sets[f"{g},{r}"] = (np.array(y, np.int64), np.array(z, np.float64) / 2)
    if sum(len(v[0]) for v in sets.values()) == 0:
        with pytest.raises(CompatInputError):
            pgfdd_metrics(sets, genders, races)
        return
    compare_with_oracle(sets, genders, races)


# =============================================================================== by hand
# Layout: genders [male, nonmale], races [white, black, others] (the Celeb-DF/DFD lists).
# p = sigmoid(z), so "called fake" means z >= 0. y = label (1 = fake).
HAND = {
    # z: 2(fake) 1(real) -1(fake) -2(real): TP=1 FN=1 FP=1 TN=1, every rate 1/2, PR=1/2,
    # acc=1/2, precision=1/2, ErrorRate=1/2. AUC: fakes {2,-1} vs reals {1,-2}: 3 of 4 pairs
    # -> 0.75. ROC points (0,0),(0,.5),(.5,.5),(.5,1),(1,1): |FNR-FPR| = 1,.5,0,.5,1 -> EER .5.
    "male,white": ([1, 1, 0, 0], [2.0, -1.0, 1.0, -2.0]),
    # fakes 3,2,-1; real -3: TP=2 FN=1 FP=0 TN=1. FPR 0, TPR 2/3, FNR 1/3, TNR 1, acc 3/4,
    # precision 1, PR 1/2, ErrorRate 1-(2/3+1)/2 = 1/6, AUC 1. Raw points (0,1),(0,2),(0,3),
    # (1,3): (0,2) is collinear and dropped -> (0,0),(0,1/3),(0,1),(1,1): EER = 0.
    "male,black": ([1, 1, 1, 0], [3.0, 2.0, -1.0, -3.0]),
    # only fakes: one class, left out of every aggregate but still in the pools and in F_COV.
    "male,others": ([1, 1], [1.0, -1.0]),
    # reals 2,-1; fake 1: TP=1 FN=0 FP=1 TN=1. FPR 1/2, TPR 1, FNR 0, TNR 1/2, acc 2/3,
    # precision 1/2, PR 2/3, NR 1/3, ErrorRate 1-(1+1/2)/2 = 1/4, AUC 1/2.
    # ROC (0,0),(.5,0),(.5,1),(1,1): |FNR-FPR| = 1,.5,.5,1 -> first minimum -> EER 1/2.
    "nonmale,white": ([0, 0, 1], [2.0, -1.0, 1.0]),
    # nonmale,black: absent (an empty set).
    # one fake and one real tied at each of 2, 1, -1, -2: every rate 1/2, acc 1/2, AUC 1/2.
    # Raw ROC points (1,1),(2,2),(3,3),(4,4) are collinear; drop_intermediate keeps the ends
    # -> (0,0),(.25,.25),(1,1): |FNR-FPR| = 1, .5, 1 -> nearest-point EER = 0.25, whereas the
    # interpolated EER (the diagonal crosses FNR = FPR at .5) is 0.5.
    "nonmale,others": ([1, 0, 1, 0, 1, 0, 1, 0], [2.0, 2.0, 1.0, 1.0, -1.0, -1.0, -2.0, -2.0]),
}

# Pools (samples appended in list order):
#   male = m,white + m,black + m,others: n 10, 7 fakes 3 reals; TP 4 FN 3 FP 1 TN 2.
#     FPR 1/3 TPR 4/7 FNR 3/7 TNR 2/3 acc 6/10 precision 4/5 PR 1/2 NR 1/2
#     ErrorRate 1-(4/7+2/3)/2 = 8/21. AUC: fakes {3,2,2,1,-1,-1,-1} vs reals {1,-2,-3}:
#     3.5 + 7 + 7 = 17.5 of 21 -> 5/6. ROC (0,0),(0,1/7),(0,3/7),(1/3,4/7),(1/3,1),(1,1)
#     [(2/3,1) dropped]: |FNR-FPR| smallest 2/21 at (1/3,4/7) -> EER 1/3.
#   nonmale = nf,white + nf,others: n 11, 5 fakes 6 reals; TP 3 FN 2 FP 3 TN 3.
#     FPR 1/2 TPR 3/5 FNR 2/5 TNR 1/2 acc 6/11 precision 1/2 PR 6/11 NR 5/11
#     ErrorRate 1-(3/5+1/2)/2 = 0.45. AUC 14.5/30 = 29/60. ROC (0,0),(1/3,.2),(1/2,.6),
#     (5/6,.8),(1,1): |FNR-FPR| = 1, .467, .1, .633, 1 -> EER 1/2.
#   white = m,white + nf,white: n 7, 3 fakes 4 reals; TP 2 FN 1 FP 2 TN 2.
#     FPR 1/2 TPR 2/3 FNR 1/3 TNR 1/2 acc 4/7 precision 1/2 PR 4/7 NR 3/7
#     ErrorRate 1-(2/3+1/2)/2 = 5/12. AUC 7.5/12 = 0.625. Raw points (1,1),(2,2),(3,3),(4,3):
#     (2,2) dropped -> (0,0),(1/4,1/3),(3/4,1),(1,1): |FNR-FPR| = 1, 5/12, 3/4, 1 -> EER 1/4;
#     the interpolated crossing is at FPR 3/7 and the kept (2,2) point would have given 1/2.
#   black = m,black (nonmale,black is empty): as male,black.
#   others = m,others + nf,others: n 10, 6 fakes 4 reals; TP 3 FN 3 FP 2 TN 2.
#     FPR TPR FNR TNR acc PR NR ErrorRate all 1/2, precision 3/5, AUC 1/2.
#     ROC (0,0),(1/4,1/6),(3/4,5/6),(1,1): |FNR-FPR| = 1, 7/12, 7/12, 1 -> the tie goes to the
#     first point -> EER 1/4.
#   overall: n 21, 12 fakes 9 reals; TP 7 FN 5 FP 4 TN 5.
#     FPR 4/9 TPR 7/12 FNR 5/12 TNR 5/9 acc 12/21 precision 7/11 PR 11/21 NR 10/21
#     ErrorRate 1-(7/12+5/9)/2 = 31/72. AUC 69/108 = 23/36. ROC (0,0),(0,1/12),(4/9,7/12),
#     (6/9,11/12),(8/9,1),(1,1): smallest |FNR-FPR| = 1/36 at (4/9,7/12) -> EER 4/9.
HAND_GROUPS = {
    "male": dict(
        auc=5 / 6,
        ErrorRate=8 / 21,
        FPR=1 / 3,
        TPR=4 / 7,
        acc=0.6,
        precision=0.8,
        F_G=0.5,
        eer=1 / 3,
        positive_rate=0.5,
        negative_rate=0.5,
        FNR=3 / 7,
        TNR=2 / 3,
        n=10,
    ),
    "nonmale": dict(
        auc=29 / 60,
        ErrorRate=0.45,
        FPR=0.5,
        TPR=0.6,
        acc=6 / 11,
        precision=0.5,
        F_G=6 / 11,
        eer=0.5,
        positive_rate=6 / 11,
        negative_rate=5 / 11,
        FNR=0.4,
        TNR=0.5,
        n=11,
    ),
    "white": dict(
        auc=0.625,
        ErrorRate=5 / 12,
        FPR=0.5,
        TPR=2 / 3,
        acc=4 / 7,
        precision=0.5,
        F_G=4 / 7,
        eer=0.25,
        positive_rate=4 / 7,
        negative_rate=3 / 7,
        FNR=1 / 3,
        TNR=0.5,
        n=7,
    ),
    "black": dict(
        auc=1.0,
        ErrorRate=1 / 6,
        FPR=0.0,
        TPR=2 / 3,
        acc=0.75,
        precision=1.0,
        F_G=0.5,
        eer=0.0,
        positive_rate=0.5,
        negative_rate=0.5,
        FNR=1 / 3,
        TNR=1.0,
        n=4,
    ),
    "others": dict(
        auc=0.5,
        ErrorRate=0.5,
        FPR=0.5,
        TPR=0.5,
        acc=0.5,
        precision=0.6,
        F_G=0.5,
        eer=0.25,
        positive_rate=0.5,
        negative_rate=0.5,
        FNR=0.5,
        TNR=0.5,
        n=10,
    ),
    "male,white": dict(
        auc=0.75,
        ErrorRate=0.5,
        FPR=0.5,
        TPR=0.5,
        acc=0.5,
        precision=0.5,
        F_G=0.5,
        eer=0.5,
        positive_rate=0.5,
        negative_rate=0.5,
        FNR=0.5,
        TNR=0.5,
        n=4,
    ),
    "male,black": dict(
        auc=1.0,
        ErrorRate=1 / 6,
        FPR=0.0,
        TPR=2 / 3,
        acc=0.75,
        precision=1.0,
        F_G=0.5,
        eer=0.0,
        positive_rate=0.5,
        negative_rate=0.5,
        FNR=1 / 3,
        TNR=1.0,
        n=4,
    ),
    "nonmale,white": dict(
        auc=0.5,
        ErrorRate=0.25,
        FPR=0.5,
        TPR=1.0,
        acc=2 / 3,
        precision=0.5,
        F_G=2 / 3,
        eer=0.5,
        positive_rate=2 / 3,
        negative_rate=1 / 3,
        FNR=0.0,
        TNR=0.5,
        n=3,
    ),
    "nonmale,others": dict(
        auc=0.5,
        ErrorRate=0.5,
        FPR=0.5,
        TPR=0.5,
        acc=0.5,
        precision=0.5,
        F_G=0.5,
        eer=0.25,
        positive_rate=0.5,
        negative_rate=0.5,
        FNR=0.5,
        TNR=0.5,
        n=8,
    ),
}
HAND_OVERALL = dict(
    auc=23 / 36,
    ErrorRate=31 / 72,
    FPR=4 / 9,
    TPR=7 / 12,
    acc=4 / 7,
    precision=7 / 11,
    F_G=11 / 21,
    eer=4 / 9,
    positive_rate=11 / 21,
    negative_rate=10 / 21,
    FNR=5 / 12,
    TNR=5 / 9,
    n=21,
)

# Aggregates. I = [m,white, m,black, nf,white, nf,others] (one-class and empty sets left out).
#   PR over I: 1/2, 1/2, 2/3, 1/2 -> F_S = 1/6.   PR_all = 11/21, FPR_all = 4/9, TPR_all = 7/12.
#   F_G_inter = max(1/42, 1/42, 1/7, 1/42) = 1/7.
#   F_EFPR_inter = 1/18 + 4/9 + 1/18 + 1/18 = 11/18.
#   TPR terms 1/12 + 1/12 + 5/12 + 1/12 = 2/3 -> F_EO_inter = 11/18 + 2/3 = 23/18.
#   F_A_inter = (1/6 + 1/7)/2 = 13/84.
# gender: F_G = max(|1/2-11/21|, |6/11-11/21|) = max(1/42, 5/231) = 1/42;
#   F_EFPR = 1/9 + 1/18 = 1/6; TPR terms 1/84 + 1/60 = 1/35 -> F_EO = 41/210;
#   F_A = (1/42 + F_S 1/6)/2 = 2/21 -- the quirk: with gender's own PR spread (1/22) it would be
#   (1/42 + 1/22)/2 instead.
#   F_COV: N = 21, mean_all(z) = 3/21 = 1/7. male has weight 0. nonmale (weight 1): sum z = 2,
#   n = 11: |2/21 - (11/21)(1/7)| = 3/147 = 1/49.
# race: F_G = max(1/21, 1/42, 1/42) = 1/21; F_EFPR = 1/18 + 4/9 + 1/18 = 5/9;
#   TPR terms 1/12 * 3 = 1/4 -> F_EO = 29/36; F_A = (1/21 + 1/6)/2 = 3/28.
#   F_COV: white weight 0; black weight 1: sum z = 1, n = 4: |1/21 - (4/21)(1/7)| = 3/147;
#   others weight 2: sum z = 0, n = 10: |0 - 2(10/21)(1/7)| = 20/147 -> 23/147.
#   (|Cov(race index, z)| would be |(1*1 + 2*0)/21 - (1*4 + 2*10)/21 * 1/7| = 17/147 instead.)
HAND_AGG = dict(
    F_S=1 / 6, F_G_inter=1 / 7, F_EFPR_inter=11 / 18, F_EO_inter=23 / 18, F_A_inter=13 / 84
)
HAND_FAMILIES = {
    "gender": dict(F_G=1 / 42, F_EFPR=1 / 6, F_EO=41 / 210, F_A=2 / 21, F_COV=1 / 49),
    "race": dict(F_G=1 / 21, F_EFPR=5 / 9, F_EO=29 / 36, F_A=3 / 28, F_COV=23 / 147),
}
# x100 gaps.
# inter: FPR {1/2,0,1/2,1/2} -> 50; AUC {.75,1,.5,.5} -> 50; ErrorRate {1/2,1/6,1/4,1/2} -> 100/3;
#   acc {1/2,3/4,2/3,1/2} -> 25; PR range 1/6, NR range 1/6 -> DP 100/6;
#   FPR, FNR {1/2,1/3,0,1/2}, TNR {1/2,1,1/2,1/2}, TPR {1/2,2/3,1,1/2} ranges all 1/2 -> MEO 50.
# gender: FPR {1/3,1/2} -> 100/6; AUC {5/6,29/60} -> 35; ErrorRate {8/21,.45} -> 2900/420;
#   acc {.6,6/11} -> 300/55; PR {1/2,6/11}, NR {1/2,5/11} -> DP 100/22;
#   FPR 1/6, FNR {3/7,2/5} 1/35, TNR {2/3,1/2} 1/6, TPR 1/35 -> MEO 100/6.
# race: FPR {1/2,0,1/2} -> 50; AUC {.625,1,.5} -> 50; ErrorRate {5/12,1/6,1/2} -> 100/3;
#   acc {4/7,3/4,1/2} -> 25; PR {4/7,1/2,1/2} 1/14 (NR the same) -> DP 100/14;
#   FPR 1/2, FNR {1/3,1/3,1/2} 1/6, TNR {1/2,1,1/2} 1/2, TPR 1/6 -> MEO 50.
HAND_GAPS = {
    "inter": dict(FPR=50.0, AUC=50.0, ErrorRate=100 / 3, OAE=25.0, DP=100 / 6, MEO=50.0),
    "gender": dict(
        FPR=100 / 6, AUC=35.0, ErrorRate=2900 / 420, OAE=300 / 55, DP=100 / 22, MEO=100 / 6
    ),
    "race": dict(FPR=50.0, AUC=50.0, ErrorRate=100 / 3, OAE=25.0, DP=100 / 14, MEO=50.0),
}


def hand_sets():
    return {k: (np.array(y), np.array(z)) for k, (y, z) in HAND.items()}


@pytest.fixture(scope="module")
def hand_result():
    return pgfdd_metrics(hand_sets(), *CELEB)


def _approx(d):
    return {k: (v if isinstance(v, int) else pytest.approx(v, abs=1e-12)) for k, v in d.items()}


def test_hand_per_set_metrics(hand_result):
    assert list(hand_result["groups"]) == list(HAND_GROUPS)  # attributes, then gender-major
    for name, expected in HAND_GROUPS.items():
        assert hand_result["groups"][name] == _approx(expected), name
    assert hand_result["overall"] == _approx(HAND_OVERALL)


def test_hand_left_out_sets(hand_result):
    skipped = hand_result["skipped"]
    assert set(skipped) == {"male,others", "nonmale,black"}
    assert "one class" in skipped["male,others"] and "n_fake = 2" in skipped["male,others"]
    assert "empty" in skipped["nonmale,black"]


def test_hand_aggregates(hand_result):
    for key, value in HAND_AGG.items():
        assert hand_result[key] == pytest.approx(value, abs=1e-12), key
    for family, expected in HAND_FAMILIES.items():
        assert hand_result["families"][family] == _approx(expected), family
    for family, expected in HAND_GAPS.items():
        assert hand_result["gaps_x100"][family] == _approx(expected), family
    assert hand_result["paper"] == _approx(
        dict(F_FPR=50.0, F_OAE=25.0, F_DP=100 / 6, F_MEO=50.0, AUC=23 / 36)
    )


def test_hand_case_also_matches_oracle():
    compare_with_oracle(hand_sets(), *CELEB)


def test_hand_f_cov_uses_list_position():
    # swapping the race order changes the weights: others 0, black 1, white 2.
    # black: 3/147 as before; white (weight 2): sum z = 2, n = 7:
    # |2*2/21 - 2*(7/21)(1/7)| = |4/21 - 2/21| = 2/21 = 14/147 -> 17/147.
    out = pgfdd_metrics(hand_sets(), ["male", "nonmale"], ["others", "black", "white"])
    assert out["families"]["race"]["F_COV"] == pytest.approx(17 / 147, abs=1e-12)
    # and with nonmale first, male (sum z = 1, n = 10) gets weight 1:
    # |1/21 - (10/21)(1/7)| = |7/147 - 10/147| = 3/147.
    out = pgfdd_metrics(hand_sets(), ["nonmale", "male"], ["white", "black", "others"])
    assert out["families"]["gender"]["F_COV"] == pytest.approx(3 / 147, abs=1e-12)


def test_f_cov_is_index_weighted_population_covariance():
    rng = np.random.default_rng(3)
    genders, races = FFPP
    sets = random_sets(rng, genders, races, n_max=300)
    out = pgfdd_metrics(sets, genders, races)
    keys = [k for k in sets if len(sets[k][0])]
    z = np.concatenate([sets[k][1] for k in keys])
    for family, names, part in (("gender", genders, 0), ("race", races, 1)):
        member = np.concatenate([[k.split(",")[part]] * len(sets[k][0]) for k in keys])
        expected = 0.0
        for m, a in enumerate(names):
            ind = (member == a).astype(float)
            expected += m * abs(np.mean(ind * z) - np.mean(ind) * np.mean(z))
        assert out["families"][family]["F_COV"] == pytest.approx(expected, abs=1e-12)


# ------------------------------------------------------------------ single-set cases (1 x 1)
def one_set(y, z, dtype=np.float64):
    out = pgfdd_metrics({"male,white": (np.array(y), np.array(z, dtype))}, ["male"], ["white"])
    return out["groups"]["male,white"]


def test_eer_is_nearest_point_after_drop_intermediate():
    # four tied fake/real pairs: the diagonal; nearest kept point (1/4,1/4) -> 0.25, not 0.5
    m = one_set([1, 0, 1, 0, 1, 0, 1, 0], [2, 2, 1, 1, -1, -1, -2, -2])
    assert m["eer"] == 0.25 and m["auc"] == 0.5
    # with every ROC point kept the nearest point would be (1/2,1/2)
    fpr, tpr, _ = roc_curve(
        [1, 0, 1, 0, 1, 0, 1, 0], [2, 2, 1, 1, -1, -1, -2, -2], drop_intermediate=False
    )
    assert fpr[np.argmin(np.abs(1 - tpr - fpr))] == 0.5


def test_eer_is_not_interpolated():
    # fakes 3 and 1, real 1: ROC (0,0),(0,1/2),(1,1). The crossing of FNR = FPR on the segment
    # from (0,1/2) to (1,1) is at FPR 1/3; the nearest point is (0,1/2): EER 0.
    # AUC: (3 > 1) + tie/2 = 1.5 of 2.
    m = one_set([1, 1, 0], [3, 1, 1])
    assert m["eer"] == 0.0 and m["auc"] == 0.75


def test_auc_ranks_the_sigmoid_not_the_logit():
    # sigmoid(40) and sigmoid(38) both round to 1.0 in float64: a tie, so AUC 1/2 (not 1),
    # and with one ROC point besides (0,0) both at distance 1, EER = FPR at (0,0) = 0.
    m = one_set([1, 0], [40.0, 38.0])
    assert m["auc"] == 0.5 and m["eer"] == 0.0 and m["FPR"] == 1.0
    # in float64 sigmoid(20) and sigmoid(18) differ; in float32 (the saved dtype) they tie
    assert one_set([1, 0], [20.0, 18.0])["auc"] == 1.0
    assert one_set([1, 0], [20.0, 18.0], np.float32)["auc"] == 0.5


def test_precision_without_predicted_fakes_is_zero():
    m = one_set([1, 0, 0], [-1.0, -2.0, -0.5])
    assert m["precision"] == 0.0 and m["F_G"] == 0.0 and m["TPR"] == 0.0 and m["TNR"] == 1.0


def test_threshold_is_sigmoid_half():
    # z = 0 is called fake (p = 0.5 >= 0.5); z = -1e-9 is not
    m = one_set([1, 0, 1, 0], [0.0, -1e-9, 5.0, -5.0])
    assert m["TPR"] == 1.0 and m["FPR"] == 0.0


# ------------------------------------------------------------------ undefined values
def _null_paths(obj, path=""):
    if obj is None:
        return [path]
    if isinstance(obj, dict):
        out = []
        for k, v in obj.items():
            out += _null_paths(v, f"{path}.{k}" if path else k)
        return out
    return []


def _check_nulls_explained(out):
    nulls = [p for p in _null_paths({k: v for k, v in out.items() if k != "skipped"})]
    for p in nulls:
        assert p in out["skipped"], f"{p} is None without a reason"
    for key in out["skipped"]:
        if "." in key or key in ("F_S", "F_G_inter", "F_EFPR_inter", "F_EO_inter", "F_A_inter"):
            assert key in nulls, f"skipped names {key}, which has a value"


def test_one_class_family_gives_nulls_with_reasons_not_crashes():
    # all male samples fake, all nonmale real: every intersection and both gender pools have
    # one class; the race pools have both. The script would print F_S = 0.0 and stop at max([]).
    sets = {
        "male,white": ([1, 1], [2.0, -1.0]),
        "male,black": ([1], [3.0]),
        "nonmale,white": ([0, 0], [2.0, -1.0]),
        "nonmale,black": ([0], [1.0]),
    }
    out = pgfdd_metrics(sets, ["male", "nonmale"], ["white", "black"])
    assert out["F_S"] is None and out["F_A_inter"] is None
    assert out["families"]["gender"]["F_G"] is None
    assert all(v is None for v in out["gaps_x100"]["inter"].values())
    assert all(v is None for v in out["gaps_x100"]["gender"].values())
    assert out["paper"]["F_FPR"] is None
    # what is defined is still reported. white: fakes 2,-1 reals 2,-1 -> all rates 1/2.
    # black: fake 3, real 1 -> both called fake: FPR 1, TPR 1. Overall FPR 2/3 TPR 2/3 PR 2/3.
    # race F_G = max(|1/2-2/3|, |1-2/3|) = 1/3; F_EFPR = 1/6 + 1/3 = 1/2;
    # F_EO = 1/2 + (1/6 + 1/3) = 1. Gaps: FPR range 1/2 -> 50, PR range 1/2 -> DP 50.
    race = out["families"]["race"]
    assert race["F_G"] == pytest.approx(1 / 3) and race["F_EFPR"] == pytest.approx(0.5)
    assert race["F_EO"] == pytest.approx(1.0) and race["F_A"] is None
    assert out["gaps_x100"]["race"]["FPR"] == pytest.approx(50.0)
    assert out["gaps_x100"]["race"]["DP"] == pytest.approx(50.0)
    # F_COV needs no metrics: N = 6, sum z = 6, mean 1. gender: nonmale (weight 1) has sum z 2,
    # n 3: |2/6 - (3/6)(1)| = 1/6. race: black (weight 1) has sum z 4, n 2: |4/6 - 2/6| = 1/3.
    assert out["families"]["gender"]["F_COV"] == pytest.approx(1 / 6)
    assert out["families"]["race"]["F_COV"] == pytest.approx(1 / 3)
    assert "max() arg is an empty sequence" in out["skipped"]["_script"]
    assert "max()" in out["skipped"]["gaps_x100.inter.FPR"]
    _check_nulls_explained(out)
    json.dumps(out, allow_nan=False)


def test_overall_with_one_class_gives_null_overall():
    sets = {"male,white": ([1, 1], [2.0, -1.0]), "nonmale,white": ([1], [0.5])}
    out = pgfdd_metrics(sets, ["male", "nonmale"], ["white"])
    assert out["overall"] is None and out["groups"] == {} and out["paper"]["AUC"] is None
    assert "KeyError" in out["skipped"]["_script"]
    # N = 3, mean z = 1.5/3 = 1/2; nonmale: |0.5/3 - (1/3)(1/2)| = 0
    assert out["families"]["gender"]["F_COV"] == pytest.approx(0.0, abs=1e-15)
    _check_nulls_explained(out)


def test_every_null_is_explained_on_random_sets():
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        out = pgfdd_metrics(random_sets(rng, *FFPP, n_max=4), *FFPP)
        _check_nulls_explained(out)


def test_result_is_plain_json():
    rng = np.random.default_rng(11)
    out = pgfdd_metrics(random_sets(rng, *FFPP, dtype=np.float32), *FFPP)
    text = json.dumps(out, allow_nan=False)
    assert json.loads(text) == out

    def leaves(o):
        if isinstance(o, dict):
            for v in o.values():
                yield from leaves(v)
        else:
            yield o

    for leaf in leaves(out):
        assert leaf is None or type(leaf) in (float, int, str), type(leaf)
    assert set(out) == {
        "groups",
        "overall",
        "F_S",
        "F_G_inter",
        "F_EFPR_inter",
        "F_EO_inter",
        "F_A_inter",
        "families",
        "gaps_x100",
        "paper",
        "skipped",
        "notes",
    }
    assert "sigmoid" in out["notes"] and "EER" in out["notes"]
    set_keys = {
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
    }
    assert out["groups"] and all(set(m) == set_keys for m in out["groups"].values())
    assert set(out["overall"]) == set_keys
    assert set(out["families"]) == {"gender", "race"}
    for fam in out["families"].values():
        assert set(fam) == {"F_G", "F_EFPR", "F_EO", "F_A", "F_COV"}
    assert set(out["gaps_x100"]) == {"inter", "gender", "race"}
    for gaps in out["gaps_x100"].values():
        assert set(gaps) == {"FPR", "AUC", "ErrorRate", "OAE", "DP", "MEO"}
    assert set(out["paper"]) == {"F_FPR", "F_OAE", "F_DP", "F_MEO", "AUC"}
    assert out["paper"]["F_MEO"] == out["gaps_x100"]["inter"]["MEO"]
    assert out["paper"]["AUC"] == out["overall"]["auc"]


def test_families_table():
    assert PGFDD_FAMILIES["ff++"] == (["male", "nonmale"], ["asian", "white", "black", "others"])
    assert PGFDD_FAMILIES["dfdc"] == PGFDD_FAMILIES["ff++"]
    assert PGFDD_FAMILIES["celebdf"] == (["male", "nonmale"], ["white", "black", "others"])
    assert PGFDD_FAMILIES["dfd"] == PGFDD_FAMILIES["celebdf"]


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "sets,genders,races,words",
    [
        (
            {"female,white": ([1, 0], [1.0, 0.0])},
            ["male", "nonmale"],
            ["white"],
            ["sets", "'female,white'", "keys among"],
        ),
        (
            {"male,white": ([1, 0, 1], [1.0, 0.0])},
            ["male"],
            ["white"],
            ["sets['male,white']", "same length", "3 labels and 2 saved"],
        ),
        (
            {"male,white": ([1, 0], [1.0, np.nan])},
            ["male"],
            ["white"],
            ["sets['male,white'] saved", "finite", "indices 1"],
        ),
        (
            {"male,white": ([1, 2], [1.0, 0.0])},
            ["male"],
            ["white"],
            ["sets['male,white'] labels", "0 (real) or 1 (fake)", "[2]"],
        ),
        (
            {"male,white": ([1, 0], np.ones((2, 2)))},
            ["male"],
            ["white"],
            ["sets['male,white'] saved", "1-D", "(2, 2)"],
        ),
        (
            {"male,white": ([1, 0], np.array(["a", "b"]))},
            ["male"],
            ["white"],
            ["saved", "real-valued", "dtype <U1"],
        ),
        (
            {"male,white": ([1, 0], [1.0, 0.0])},
            ["male"],
            ["male", "white"],
            ["genders, races", "['male'] in both"],
        ),
        ({"male,white": ([1, 0], [1.0, 0.0])}, ["ma,le"], ["white"], ["genders", "'ma,le'"]),
        ({"male,white": ([1, 0], [1.0, 0.0])}, ["male"], ["overall"], ["races", "'overall'"]),
        ({"male,white": ([], [])}, ["male"], ["white"], ["sets", "at least one sample", "none"]),
        (
            {"male,white": ([1, 0], [1.0, 0.0], [0, 0])},
            ["male"],
            ["white"],
            ["sets['male,white']", "a pair", "tuple"],
        ),
        ({"male,white": [1, 0]}, ["male"], ["white"], ["sets['male,white'] labels", "shape ()"]),
    ],
)
def test_bad_input_is_a_value_error_naming_the_argument(sets, genders, races, words):
    with pytest.raises(ValueError) as info:
        pgfdd_metrics(sets, genders, races)
    assert isinstance(info.value, CompatInputError)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


# =============================================================================== files
def test_round_trip_through_a_results_directory(tmp_path):
    rng = np.random.default_rng(5)
    sets = random_sets(rng, *FFPP, dtype=np.float32)
    written = write_seed_results_dir(tmp_path / "results", sets)
    assert {p.name for p in written} == {
        f"{k}{s}.npy" for k in sets for s in ("labels", "predictions")
    }
    back = read_seed_results_dir(tmp_path / "results", *FFPP)
    assert list(back) == [k for k in (f"{g},{r}" for g in FFPP[0] for r in FFPP[1]) if k in sets]
    for key, (y, z) in sets.items():
        assert np.array_equal(back[key][0], y) and np.array_equal(back[key][1], z)
        assert back[key][1].dtype == np.float32
    assert pgfdd_metrics(back, *FFPP) == pgfdd_metrics(sets, *FFPP)


def test_file_names_are_plain_concatenation(tmp_path):
    write_seed_results_dir(tmp_path, {"nonmale,others": ([1, 0], [0.5, -0.5])})
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["nonmale,otherslabels.npy", "nonmale,otherspredictions.npy"]
    back = read_seed_results_dir(str(tmp_path), *CELEB)
    assert list(back) == ["nonmale,others"]
    assert back["nonmale,others"][0].tolist() == [1, 0]


def test_group_without_files_is_absent_and_reported(tmp_path):
    write_seed_results_dir(
        tmp_path, {"male,white": ([1, 0], [1.0, -1.0]), "nonmale,white": ([], [])}
    )
    back = read_seed_results_dir(tmp_path, *CELEB)
    assert set(back) == {"male,white", "nonmale,white"} and len(back["nonmale,white"][0]) == 0
    out = pgfdd_metrics(back, *CELEB)
    assert "zero-length" in out["skipped"]["nonmale,white"]
    assert "not in the input" in out["skipped"]["male,black"]


def _save(path, arr, **kw):
    with open(path, "wb") as f:
        np.save(f, arr, **kw)


@pytest.mark.parametrize("kind", ["object", "pickle", "2d", "npz", "nan", "labels2", "text"])
def test_bad_result_files_name_the_file(tmp_path, kind):
    lab, pred = tmp_path / "male,whitelabels.npy", tmp_path / "male,whitepredictions.npy"
    _save(lab, np.array([1, 0, 1]))
    _save(pred, np.array([0.5, -1.0, 2.0]))
    target, words = pred, []
    if kind == "object":
        _save(pred, np.array([0.5, None, "x"], dtype=object), allow_pickle=True)
        words = ["without pickled objects"]
    elif kind == "pickle":
        with open(lab, "wb") as f:
            pickle.dump([1, 0, 1], f)
        target, words = lab, ["without pickled objects"]
    elif kind == "2d":
        _save(pred, np.zeros((3, 2)))
        words = ["1-D", "(3, 2)"]
    elif kind == "npz":
        with open(pred, "wb") as f:
            np.savez(f, a=np.zeros(3))
        words = [".npz archive"]
    elif kind == "nan":
        _save(pred, np.array([0.5, np.nan, np.inf]))
        words = ["finite", "2 at indices 1, 2"]
    elif kind == "labels2":
        _save(lab, np.array([1, 0, 2]))
        target, words = lab, ["0 (real) or 1 (fake)"]
    elif kind == "text":
        lab.write_text("1,0,1\n")
        target, words = lab, ["male,whitelabels.npy"]
    with pytest.raises(ValueError) as info:
        read_seed_results_dir(tmp_path, ["male"], ["white"])
    message = str(info.value)
    assert str(target) in message, message
    for word in words:
        assert word in message, (word, message)


def test_length_mismatch_names_both_files(tmp_path):
    _save(tmp_path / "male,whitelabels.npy", np.array([1, 0, 1]))
    _save(tmp_path / "male,whitepredictions.npy", np.array([0.5, -1.0]))
    with pytest.raises(CompatInputError, match="3 labels and 2 predictions") as info:
        read_seed_results_dir(tmp_path, ["male"], ["white"])
    assert "male,whitelabels.npy" in str(info.value)
    assert "male,whitepredictions.npy" in str(info.value)


def test_half_a_pair_is_an_error_naming_the_missing_file(tmp_path):
    _save(tmp_path / "male,whitelabels.npy", np.array([1, 0]))
    with pytest.raises(CompatInputError, match="male,whitepredictions.npy.*no file"):
        read_seed_results_dir(tmp_path, ["male"], ["white"])


def test_missing_directory_or_no_files(tmp_path):
    with pytest.raises(CompatInputError, match="nothing there"):
        read_seed_results_dir(tmp_path / "nope", *FFPP)
    with pytest.raises(CompatInputError, match="male,asianlabels.npy"):
        read_seed_results_dir(tmp_path, *FFPP)


def test_files_outside_the_layout_are_ignored_with_a_warning(tmp_path):
    write_seed_results_dir(
        tmp_path, {"male,asian": ([1, 0], [1.0, -1.0]), "male,white": ([1, 0], [1.0, -1.0])}
    )
    with pytest.warns(CompatWarning, match="male,asianlabels.npy"):
        back = read_seed_results_dir(tmp_path, *CELEB)
    assert list(back) == ["male,white"]


def test_write_refuses_bad_keys_and_pairs(tmp_path):
    with pytest.raises(CompatInputError, match="'<gender>,<race>'"):
        write_seed_results_dir(tmp_path, {"male": ([1], [1.0])})
    with pytest.raises(CompatInputError, match="same length"):
        write_seed_results_dir(tmp_path, {"male,white": ([1, 0], [1.0])})
    assert list(tmp_path.iterdir()) == []


# =============================================================================== text
def test_format_labels_the_paper_names(hand_result):
    text = format_compat(hand_result)
    assert "F_FPR (paper) = inter FPR range x100 = 50.000" in text
    assert "F_OAE (paper) = inter accuracy range x100 = 25.000" in text
    assert "F_DP (paper) = inter max(PR range, NR range) x100 = 16.667" in text
    assert "F_MEO (paper) = inter max(FPR, FNR, TNR, TPR ranges) x100 = 50.000" in text
    assert "AUC (paper) = overall AUC = 0.63889" in text
    assert "F_S = 0.16667" in text and "F_COV = 0.15646" in text
    lines = text.splitlines()
    for name in list(HAND_GROUPS) + ["overall"]:
        assert any(line.split()[:1] == [name] for line in lines), name
    row = next(line for line in lines if line.split()[:1] == ["nonmale,others"])
    assert row.split()[1:] == [
        "8",
        "0.50000",
        "0.50000",
        "0.50000",
        "0.50000",
        "0.50000",
        "0.50000",
        "0.25000",
        "0.50000",
    ]
    assert any(line.startswith("  left out: male,others: one class") for line in lines)
    assert any(line.startswith("  left out: nonmale,black: empty") for line in lines)


def test_format_shows_undefined_values():
    sets = {"male,white": ([1, 1], [2.0, -1.0]), "nonmale,white": ([0, 1], [1.0, 0.5])}
    out = pgfdd_metrics(sets, ["male", "nonmale"], ["white"])
    text = format_compat(out)
    assert "F_FPR (paper) = inter FPR range x100 = n/a" not in text  # nonmale,white is fine
    sets = {"male,white": ([1, 1], [2.0, -1.0]), "nonmale,white": ([0], [1.0])}
    text = format_compat(pgfdd_metrics(sets, ["male", "nonmale"], ["white"]))
    assert "F_FPR (paper) = inter FPR range x100 = n/a" in text
    assert "note: the research script would stop" in text
    assert any(
        line.startswith("n/a ") and "gaps_x100.inter.FPR" in line for line in text.splitlines()
    )


def test_format_refuses_other_dicts():
    with pytest.raises(CompatInputError, match="compat: expected the dict returned"):
        format_compat({"groups": {}})


def test_no_nan_anywhere_even_for_degenerate_but_valid_sets():
    # every score identical: one ROC point besides (0,0); rates are still defined
    out = pgfdd_metrics({"male,white": ([1, 0, 1], [0.0, 0.0, 0.0])}, ["male"], ["white"])
    m = out["groups"]["male,white"]
    assert m["auc"] == 0.5 and m["eer"] == 0.0 and m["FPR"] == 1.0
    assert not any(isinstance(v, float) and math.isnan(v) for v in m.values())
