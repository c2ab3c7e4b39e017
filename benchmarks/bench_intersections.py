"""Intersectional audits in bounded memory: time and peak memory as the number of groups grows.

10^5 rows; 1 to 5 attributes (one attribute with 8 levels, then the first k of 2, 4, 3, 4, 3
levels, every intersection audited); all metrics; 1,000 bootstrap replicates and 1,000
permutations. Each configuration runs in a fresh process, so its peak resident memory
(``ru_maxrss``: everything the process held, Python and the inputs included) is its own.
Prints one line per configuration and, last, one JSON object with the ``groups``,
``seconds`` and ``peak_rss_mb`` lists.
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

LEVELS = [[8], [2, 4], [2, 4, 3], [2, 4, 3, 4], [2, 4, 3, 4, 3]]


def make_attributes(n, levels, seed=0):
    """Attribute columns with unequal level shares, labels and scores with group effects."""
    rng = np.random.default_rng(seed)
    cols, effect = {}, np.zeros(n)
    for j, k in enumerate(levels):
        share = rng.dirichlet(np.full(k, 4.0))
        code = rng.choice(k, n, p=share)
        cols[f"a{j}"] = np.array([f"v{i}" for i in range(k)])[code]
        effect += rng.normal(0, 0.15, k)[code]
    y = rng.integers(0, 2, n)
    z = rng.normal(size=n) + 2.0 * y - 1.0 + effect * (y == 0)
    return y, 1.0 / (1.0 + np.exp(-z)), cols


def one_run(args):
    import fairaudit

    y, p, cols = make_attributes(args.rows, LEVELS[args.config])
    kw = {} if args.memory_budget is None else {"memory_budget": args.memory_budget}
    t = time.perf_counter()
    r = fairaudit.audit(y, p, cols, n_boot=args.n_boot, n_perm=args.n_perm, seed=0, **kw)
    seconds = time.perf_counter() - t
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    groups = int((r.counts["family"] != "overall").sum())
    print(json.dumps({"groups": groups, "seconds": seconds, "peak_rss_mb": peak_kb / 1024}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--n-perm", type=int, default=1000)
    ap.add_argument("--configs", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--memory-budget", type=int, default=None, help="MB (default: fairaudit's)")
    ap.add_argument("--config", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.config is not None:
        return one_run(args)
    out = {"groups": [], "seconds": [], "peak_rss_mb": []}
    print(
        f"{args.rows} rows, {args.n_boot} bootstrap replicates, {args.n_perm} permutations, "
        "all metrics"
    )
    for c in args.configs:
        cmd = [sys.executable, __file__, "--config", str(c), "--rows", str(args.rows)]
        cmd += ["--n-boot", str(args.n_boot), "--n-perm", str(args.n_perm)]
        if args.memory_budget is not None:
            cmd += ["--memory-budget", str(args.memory_budget)]
        res = json.loads(
            subprocess.run(cmd, check=True, capture_output=True).stdout.splitlines()[-1]
        )
        levels = ", ".join(map(str, LEVELS[c]))
        print(
            f"{len(LEVELS[c])} attributes ({levels}): {res['groups']} groups, "
            f"{res['seconds']:.1f} s, peak RSS {res['peak_rss_mb']:.0f} MB"
        )
        for k in out:
            out[k].append(round(res[k], 1) if k != "groups" else res[k])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
