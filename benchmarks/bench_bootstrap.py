"""Bootstrap intervals of FPR, TPR and AUC over 8 groups and their gaps: fairaudit vs fairlearn.

fairaudit: 1,000 replicates (iid row bootstrap, percentile intervals for every group and every
gap, equalized odds included), and separately 1,000 permutations of the test. fairlearn:
MetricFrame(n_boot=k) with the same metrics and groups; it is too slow for 1,000 replicates, so
it runs a few and its per-replicate cost (time with n_boot=k minus time without, over k) is
scaled to 1,000, which the output states. Peak memory of the fairaudit run is measured with
tracemalloc (numpy reports its buffers to it). Last line: one JSON object with the figures.
"""

import argparse
import json
import time
import tracemalloc

import numpy as np
from fairlearn.metrics import MetricFrame, false_positive_rate, true_positive_rate
from sklearn.metrics import roc_auc_score

import fairaudit
from _common import make_data

METRICS = ["fpr", "tpr", "auc"]


def ours(y, p, groups, n_boot, n_perm):
    tracemalloc.start()
    t = time.perf_counter()
    r = fairaudit.audit(y, p, {"group": groups}, n_boot=n_boot, n_perm=n_perm, metrics=METRICS)
    dt = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return dt, peak, r


def theirs(y, p, groups, n_boot):
    pred = (p >= 0.5).astype(int)

    def tpr(yt, sc):
        return true_positive_rate(yt, (sc >= 0.5).astype(int))

    def fpr(yt, sc):
        return false_positive_rate(yt, (sc >= 0.5).astype(int))

    t = time.perf_counter()
    kw = (
        {} if n_boot == 0 else {"n_boot": n_boot, "ci_quantiles": [0.025, 0.975], "random_state": 0}
    )
    mf = MetricFrame(
        metrics={"fpr": fpr, "tpr": tpr, "auc": roc_auc_score},
        y_true=y,
        y_pred=p,
        sensitive_features=groups,
        **kw,
    )
    mf.difference()
    del pred
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--fairlearn-boot", type=int, nargs="+", default=[10, 3])
    args = ap.parse_args()
    y0, p0, g0, r0 = make_data(1000)
    ours(y0, p0, np.char.add(g0, r0), 10, 0)  # warm imports
    figures = []
    for n, k in zip(args.rows, args.fairlearn_boot):
        y, p, gender, race = make_data(n)
        groups = np.char.add(np.char.add(gender, "+"), race)
        t_boot, peak, res = ours(y, p, groups, args.n_boot, 0)
        t_perm, peak_perm, _ = ours(y, p, groups, 0, args.n_boot)
        base = theirs(y, p, groups, 0)
        with_k = theirs(y, p, groups, k)
        per_rep_fl = max(with_k - base, 1e-9) / k
        per_rep_ours = t_boot / args.n_boot
        row = {
            "rows": n,
            "replicates": args.n_boot,
            "fairaudit_s": round(t_boot, 3),
            "fairaudit_perm_s": round(t_perm, 3),
            "fairaudit_peak_mb": round(peak / 2**20, 1),
            "fairlearn_boot_measured": k,
            "fairlearn_per_replicate_s": round(per_rep_fl, 4),
            "fairlearn_s_scaled_to_1000": round(per_rep_fl * args.n_boot, 1),
            "ratio_per_replicate": round(per_rep_fl / per_rep_ours, 1),
            "bins_exact": res.config.get("bootstrap_bins", {}).get("exact"),
        }
        figures.append(row)
        print(
            f"rows {n}: fairaudit {t_boot:.2f} s for {args.n_boot} replicates "
            f"(peak {peak / 2**20:.0f} MB), permutation test {t_perm:.2f} s; fairlearn "
            f"{per_rep_fl:.3f} s per replicate (measured with n_boot={k}, scaled: "
            f"{per_rep_fl * args.n_boot:.0f} s for {args.n_boot}); ratio "
            f"{per_rep_fl / per_rep_ours:.0f}x"
        )
    print(
        json.dumps({"benchmark": "bootstrap", "metrics": METRICS, "groups": 8, "figures": figures})
    )


if __name__ == "__main__":
    main()
