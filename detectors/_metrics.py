"""Validation metrics computed during training, by fairaudit (one implementation of AUC and of
the fairness gaps in the repository).

Each process fills a :class:`fairaudit.AuditState` with its share of the validation rows; the
states' bytes are gathered and merged, and the merged state is audited: the same numbers as an
audit of every row in one place (the state is exact while the validation set has fewer than
2^18 distinct scores per group cell and label, and within a stated bound after that).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .data import GROUP_CODINGS

__all__ = ["validation_metrics", "validation_state", "state_metrics", "VALIDATION_GAPS"]

#: gaps logged for every attribute family (gender, race, gender+race)
VALIDATION_GAPS = ("auc_range", "fpr_range", "tpr_range", "equalized_odds", "demographic_parity")


def _attributes(groups: np.ndarray, dataset: str) -> pd.DataFrame:
    coding = GROUP_CODINGS[dataset]
    gender = np.array(["female" if g == "nonmale" else g for g, _ in coding])
    race = np.array([r for _, r in coding])
    return pd.DataFrame({"gender": gender[groups], "race": race[groups]})


def validation_state(
    labels: np.ndarray,
    prob_fake: np.ndarray,
    groups: np.ndarray,
    dataset: str = "ff++",
    threshold: float = 0.5,
):
    """This process's rows as a mergeable :class:`fairaudit.AuditState` (gender and race from
    ``dataset``'s coding, every group listed even without rows).

    >>> s = validation_state(np.array([0, 1]), np.array([0.2, 0.9]), np.array([1, 5]))
    >>> s.n_rows, s.attributes
    (2, ['gender', 'race'])
    """
    from fairaudit import AuditState

    coding = GROUP_CODINGS[dataset]
    categories = {
        "gender": list(dict.fromkeys("female" if g == "nonmale" else g for g, _ in coding)),
        "race": list(dict.fromkeys(r for _, r in coding)),
    }
    state = AuditState(
        ["gender", "race"], scores="prob", threshold=threshold, categories=categories
    )
    if len(labels):
        state.update(
            np.asarray(labels),
            np.asarray(prob_fake, dtype=np.float64),
            _attributes(np.asarray(groups), dataset),
        )
    return state


def state_metrics(state) -> dict[str, float]:
    """Overall AUC and accuracy, and the gaps of :data:`VALIDATION_GAPS` for every family, of a
    (merged) validation state; NaN where undefined.

    >>> s = validation_state(np.array([0, 1, 0, 1]), np.array([0.2, 0.9, 0.6, 0.7]),
    ...                      np.array([1, 1, 5, 5]))
    >>> m = state_metrics(s)
    >>> m["auc"], m["gender_fpr_range"]
    (1.0, 1.0)
    """
    result = state.audit(n_boot=0, n_perm=0)
    overall = result.groups.loc["overall"].iloc[0]
    metrics = {"auc": float(overall["auc"]), "acc": float(overall["accuracy"])}
    gaps = result.gaps.set_index(["family", "name"])["value"]
    for family in ("gender", "race", "gender+race"):
        for gap in VALIDATION_GAPS:
            key = (family, gap)
            metrics[f"{family}_{gap}"] = float(gaps[key]) if key in gaps.index else float("nan")
    return metrics


def validation_metrics(
    labels: np.ndarray,
    prob_fake: np.ndarray,
    groups: np.ndarray,
    dataset: str = "ff++",
    threshold: float = 0.5,
) -> dict[str, float]:
    """Overall AUC and accuracy, and the gaps of :data:`VALIDATION_GAPS` for every family.

    ``groups`` are intersectional ids of ``dataset``'s coding; they are turned into
    ``gender`` and ``race`` columns and audited by fairaudit (no bootstrap) on ``p(fake)``
    with ``threshold``. Keys: ``auc``, ``acc`` and ``<family>_<gap>`` such as
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
    return state_metrics(validation_state(labels, prob_fake, groups, dataset, threshold))
