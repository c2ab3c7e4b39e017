"""Validation metrics computed during training, by :func:`fairaudit.audit` (one implementation of
AUC and of the fairness gaps in the repository)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .data import GROUP_CODINGS

__all__ = ["validation_metrics", "VALIDATION_GAPS"]

#: gaps logged for every attribute family (gender, race, gender+race)
VALIDATION_GAPS = ("auc_range", "fpr_range", "tpr_range", "equalized_odds", "demographic_parity")


def _attributes(groups: np.ndarray, dataset: str) -> pd.DataFrame:
    coding = GROUP_CODINGS[dataset]
    gender = np.array(["female" if g == "nonmale" else g for g, _ in coding])
    race = np.array([r for _, r in coding])
    return pd.DataFrame({"gender": gender[groups], "race": race[groups]})


def validation_metrics(
    labels: np.ndarray,
    prob_fake: np.ndarray,
    groups: np.ndarray,
    dataset: str = "ff++",
    threshold: float = 0.5,
) -> dict[str, float]:
    """Overall AUC and accuracy, and the gaps of :data:`VALIDATION_GAPS` for every family.

    ``groups`` are intersectional ids of ``dataset``'s coding; they are turned into
    ``gender`` and ``race`` columns and audited by :func:`fairaudit.audit` (no bootstrap) on
    ``p(fake)`` with ``threshold``. Keys: ``auc``, ``acc`` and ``<family>_<gap>`` such as
    ``gender_fpr_range`` or ``gender+race_equalized_odds``; NaN where undefined (e.g. a family
    with a single group, or one class only).

    Examples
    --------
    >>> labels = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    >>> prob = np.array([0.1, 0.6, 0.8, 0.9, 0.2, 0.3, 0.4, 0.7])
    >>> groups = np.array([1, 1, 1, 1, 5, 5, 5, 5])  # male,white and nonmale,white
    >>> m = validation_metrics(labels, prob, groups)
    >>> m["auc"], m["acc"], m["gender_fpr_range"], m["gender_tpr_range"]
    (0.9375, 0.75, 0.5, 0.5)
    >>> bool(np.isnan(m["race_fpr_range"]))  # one race only
    True
    """
    import fairaudit

    result = fairaudit.audit(
        np.asarray(labels),
        np.asarray(prob_fake, dtype=np.float64),
        _attributes(np.asarray(groups), dataset),
        scores="prob",
        threshold=threshold,
        n_boot=0,
    )
    overall = result.groups.loc["overall"].iloc[0]
    metrics = {"auc": float(overall["auc"]), "acc": float(overall["accuracy"])}
    gaps = result.gaps.set_index(["family", "name"])["value"]
    for family in ("gender", "race", "gender+race"):
        for gap in VALIDATION_GAPS:
            key = (family, gap)
            metrics[f"{family}_{gap}"] = float(gaps[key]) if key in gaps.index else float("nan")
    return metrics
