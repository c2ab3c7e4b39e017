"""Validation metrics computed during training (the full audit is :mod:`fairaudit`'s job)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

__all__ = ["validation_metrics"]


def validation_metrics(
    labels: np.ndarray, prob_fake: np.ndarray, groups: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """AUC, accuracy and the FPR gap across groups.

    ``fpr_gap = max_g FPR_g - min_g FPR_g`` over the groups that have at least one
    real image, with ``FPR_g`` the fraction of group g's reals scored
    ``p(fake) >= threshold``. NaN when fewer than two groups qualify.
    """
    labels = np.asarray(labels)
    pred = np.asarray(prob_fake) >= threshold
    auc = float(roc_auc_score(labels, prob_fake)) if len(np.unique(labels)) == 2 else float("nan")
    fprs = [
        pred[(groups == g) & (labels == 0)].mean()
        for g in np.unique(groups)
        if ((groups == g) & (labels == 0)).any()
    ]
    gap = float(max(fprs) - min(fprs)) if len(fprs) >= 2 else float("nan")
    return {"auc": auc, "acc": float((pred == (labels == 1)).mean()), "fpr_gap": gap}
