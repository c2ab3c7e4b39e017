"""Point estimates of every metric and gap: fairaudit vs fairlearn's MetricFrame.

1e6 rows, 8 intersectional groups (gender x race) plus the gender and race families.
fairlearn gets the same work: one MetricFrame per family (gender, race, gender+race) with
the metrics it can express (tpr, fpr, tnr, fnr, accuracy, selection rate, precision, balanced
error, AUC, average precision) and difference/ratio/to-overall gaps. fairaudit also computes
EER and ECE, which fairlearn cannot. Last line: one JSON object with the figures.
"""

import argparse
import json
import time

import numpy as np
from fairlearn.metrics import (
    MetricFrame,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_negative_rate,
    true_positive_rate,
)
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    precision_score,
    roc_auc_score,
)

import fairaudit
from _common import make_data


def run_fairaudit(y, p, gender, race):
    t = time.perf_counter()
    r = fairaudit.audit(y, p, {"gender": gender, "race": race}, n_boot=0, n_perm=0)
    return time.perf_counter() - t, r


def run_fairlearn(y, p, gender, race):
    pred = (p >= 0.5).astype(int)
    metrics = {
        "tpr": true_positive_rate,
        "fpr": false_positive_rate,
        "tnr": true_negative_rate,
        "fnr": false_negative_rate,
        "accuracy": accuracy_score,
        "selection_rate": selection_rate,
        "ppv": lambda yt, yp: precision_score(yt, yp, zero_division=np.nan),
        "balanced_error": lambda yt, yp: 1 - balanced_accuracy_score(yt, yp),
    }
    t = time.perf_counter()
    for feats in ({"gender": gender}, {"race": race}, {"gender": gender, "race": race}):
        mf = MetricFrame(metrics=metrics, y_true=y, y_pred=pred, sensitive_features=feats)
        mf_s = MetricFrame(
            metrics={"auc": roc_auc_score, "ap": average_precision_score},
            y_true=y,
            y_pred=p,
            sensitive_features=feats,
        )
        for m in (mf, mf_s):
            m.difference(), m.ratio(), m.difference(method="to_overall")
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--fairaudit-only", action="store_true", help="skip the (slow) fairlearn run")
    args = ap.parse_args()
    y, p, gender, race = make_data(args.rows)
    run_fairaudit(y[:1000], p[:1000], gender[:1000], race[:1000])  # warm imports
    ours = min(run_fairaudit(y, p, gender, race)[0] for _ in range(args.repeat))
    if args.fairaudit_only:
        print(json.dumps({"benchmark": "point", "rows": args.rows, "fairaudit_s": round(ours, 4)}))
        return
    theirs = min(run_fairlearn(y, p, gender, race) for _ in range(max(1, args.repeat - 1)))
    print(
        f"rows {args.rows}: fairaudit {ours:.3f} s (12 metrics x 15 groups + 159 gaps), "
        f"fairlearn {theirs:.3f} s (10 metrics, 3 MetricFrames x 2 + gaps)"
    )
    print(
        json.dumps(
            {
                "benchmark": "point",
                "rows": args.rows,
                "groups": 8,
                "fairaudit_s": round(ours, 4),
                "fairlearn_s": round(theirs, 4),
                "speedup": round(theirs / ours, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
