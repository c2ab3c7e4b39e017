"""How far binned bootstrap replicates are from exact ones, on adversarial data.

Replicates of the ranking metrics (AUC, EER, average precision) are computed on at most
``--max-bins`` bins per group when the scores have more distinct values. For each case, the
same bootstrap multiplicities are evaluated four ways: exactly (every distinct score its own
bin, the point-estimate code); with fairaudit's per-group bins as its replicates are (shifted
by the binning error of the data itself, ``Resampler.binning_offsets``); with per-group bins
unshifted; and with bins shared by all groups (quantiles of the whole set: the previous
engine, kept for the permutation test). The error of a group is |binned - exact| over
replicates; it is also given in units of the exact replicates' standard deviation (the width
scale of an interval). Last line: one JSON object.
"""

import argparse
import json
import time

import numpy as np

from fairaudit._audit import prepare
from fairaudit._bootstrap import Resampler
from fairaudit._metrics import compute_metrics
from fairaudit._stats import group_point_metrics, sort_rows

METRICS = ("auc", "eer", "average_precision")


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def case_narrow(n, rng):
    """5% of rows in a group whose scores lie in [0.7, 0.7001], fakes above reals."""
    g = np.where(rng.random(n) < 0.05, "narrow", rng.choice(["a", "b"], n))
    y = rng.integers(0, 2, n)
    wide = _sigmoid(rng.normal(size=n) + 1.5 * y - 0.5)
    narrow = 0.7 + 1e-4 * np.clip(rng.normal(0.5 + 0.25 * (2 * y - 1), 0.2, n), 0, 1)
    return y, np.where(g == "narrow", narrow, wide), {"group": g}


def case_narrow_imbalanced(n, rng):
    """A narrow group with 40 fakes among 4,000 rows, inside a wide set."""
    g = np.where(np.arange(n) < 4000, "narrow", rng.choice(["a", "b"], n))
    y = rng.integers(0, 2, n)
    y[:4000] = 0
    y[:40] = 1
    wide = _sigmoid(rng.normal(size=n) + 1.5 * y - 0.5)
    narrow = 0.3 + 1e-3 * _sigmoid(rng.normal(size=n) + 2.0 * y)
    return y, np.where(g == "narrow", narrow, wide), {"group": g}


def case_narrow_intersection(n, rng):
    """Three attributes; one intersection cell sits in a narrow score band."""
    a = rng.choice(["x", "y"], n)
    b = rng.choice(["p", "q", "r"], n)
    c = rng.choice(["u", "v"], n)
    y = rng.integers(0, 2, n)
    s = _sigmoid(rng.normal(size=n) + 1.5 * y - 0.5)
    cell = (a == "x") & (b == "q") & (c == "v")
    s = np.where(cell, 0.45 + 1e-4 * _sigmoid(rng.normal(size=n) + 1.5 * y), s)
    return y, s, {"a": a, "b": b, "c": c}


def case_tiny_groups(n, rng):
    """Many groups of 5 to 60 rows next to two large ones."""
    sizes = rng.integers(5, 60, 60)
    small = np.repeat([f"t{i}" for i in range(sizes.size)], sizes)
    g = np.r_[small, rng.choice(["big0", "big1"], n - small.size)]
    y = rng.integers(0, 2, n)
    return y, _sigmoid(rng.normal(size=n) + 1.5 * y - 0.5), {"group": g}


def case_ties_and_logits(n, rng):
    """Logits from -500 to 500, a third of them rounded to one decimal (heavy ties)."""
    g = rng.choice(["a", "b", "c"], n)
    y = rng.integers(0, 2, n)
    z = 100 * (rng.normal(size=n) + 1.5 * y - 0.5) + 50 * (g == "c")
    z = np.where(rng.random(n) < 0.33, np.round(z, 1), z)
    return y, z, {"group": g}


def case_ffpp_large(n, rng):
    """FF++-like imbalance over 8 groups, many rows (every group coarsened)."""
    counts = np.array([2475, 25443, 1468, 4163, 8013, 31281, 1111, 2185])
    ids = rng.choice(8, n, p=counts / counts.sum())
    y = rng.integers(0, 2, n)
    shift = np.array([0.0, -0.1, 0.5, 0.2, 0.0, 0.0, 0.6, 0.4])[ids] * (y == 0)
    return y, _sigmoid(rng.normal(size=n) + 2.0 * y - 1.0 + shift), {"group": ids.astype(str)}


CASES = {
    "narrow group": (case_narrow, 100_000),
    "narrow imbalanced group": (case_narrow_imbalanced, 100_000),
    "narrow intersection": (case_narrow_intersection, 100_000),
    "tiny groups": (case_tiny_groups, 50_000),
    "ties and large logits": (case_ties_and_logits, 100_000),
    "1e6 rows, 8 groups": (case_ffpp_large, 1_000_000),
}


def exact(prep, mult):
    d = prep.data
    w = d.w * mult[d.order]
    keep = w > 0
    data = sort_rows(d.score[keep], d.y[keep], w[keep], d.atom[keep])
    return group_point_metrics(
        data, prep.structure, prep.rule.threshold, prep.rule.to_probability, which=METRICS
    )


def per_group_bins(res, mult):
    d = res.prep.data
    counts = np.bincount(
        res._row_cell(), weights=d.w * mult[d.order], minlength=2 * res.cells.n_cells
    )
    return res.cell_metrics(counts.reshape(1, 2, -1))


def shared_bins(res, mult):
    d, tab = res.prep.data, res.table
    K = tab.counts.shape[-1]
    flat = (d.atom * 2 + d.y.astype(np.int64)) * K + tab.bin_of_row
    counts = np.bincount(flat, weights=d.w * mult[d.order], minlength=tab.counts.size)
    s = res.prep.structure
    memb = np.vstack([s.membership, np.ones((1, s.n_atoms), bool)]).astype(float)
    g = (memb @ counts.reshape(s.n_atoms, 2 * K)).reshape(-1, 2, K)
    return compute_metrics(
        g[:, 1], g[:, 0], tab.thr_index, bin_value=tab.bin_value, probabilities=True, which=METRICS
    )


def run_case(name, make, n, n_rep, max_bins, seed=0):
    rng = np.random.default_rng(seed)
    y, s, groups = make(n, rng)
    prep = prepare(y, s, groups)
    res = Resampler(prep, max_bins=max_bins, metrics=METRICS)
    res.binning_offsets()
    ex, ours, raw, old = [], [], [], []
    for _ in range(n_rep):
        mult = rng.multinomial(n, np.full(n, 1 / n)).astype(float)
        ex.append(exact(prep, mult))
        raw.append(per_group_bins(res, mult))
        ours.append(res._shift({m: v.copy() for m, v in raw[-1].items()}))
        old.append(shared_bins(res, mult))
    row = {"case": name, "rows": n, "groups": prep.structure.n_groups, "exact": res.bins_exact}
    for m in METRICS:
        e = np.array([r[m] for r in ex])  # (n_rep, groups + 1)
        sd = np.nanstd(e, axis=0, ddof=1)
        for label, reps in (("per_group", ours), ("unshifted", raw), ("shared", old)):
            b = np.array([r[m][0] if r[m].ndim == 2 else r[m] for r in reps])
            err = np.abs(b - e)
            row[f"{m}_{label}_max_error"] = float(np.nanmax(err))
            with np.errstate(invalid="ignore", divide="ignore"):
                row[f"{m}_{label}_max_error_sd"] = float(np.nanmax(np.nanmax(err, axis=0) / sd))
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicates", type=int, default=20)
    ap.add_argument("--max-bins", type=int, default=1024)
    ap.add_argument("--cases", nargs="+", default=list(CASES))
    args = ap.parse_args()
    rows = []
    print(
        f"max |binned - exact| over {args.replicates} bootstrap replicates and all groups, "
        f"max_bins {args.max_bins}: fairaudit's replicates (per-group bins, shifted) | "
        "per-group bins unshifted | bins shared by all groups; in brackets, in replicate sds"
    )
    for name in args.cases:
        make, n = CASES[name]
        t = time.perf_counter()
        r = run_case(name, make, n, args.replicates, args.max_bins)
        rows.append(r)
        parts = [
            f"{m} "
            + " | ".join(
                f"{r[f'{m}_{k}_max_error']:.1e} ({r[f'{m}_{k}_max_error_sd']:.2f})"
                for k in ("per_group", "unshifted", "shared")
            )
            for m in METRICS
        ]
        print(f"{name} ({r['rows']} rows, {time.perf_counter() - t:.0f} s): " + "; ".join(parts))
    print(json.dumps({"benchmark": "binning", "max_bins": args.max_bins, "cases": rows}))


if __name__ == "__main__":
    main()
