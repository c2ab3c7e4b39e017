"""Coverage of the gap intervals by simulation (the README's "How well the intervals cover").

Data sets are drawn from a model whose per-group metrics are known exactly: the scores of the
reals of group g are normal with mean a_g, those of the fakes with mean b_g (unit variance on
the logit scale, plus a shared video effect in the cluster design), so that FPR_g = P(z >= 0),
TPR_g, AUC_g and EER_g have closed forms and every gap has a true value. Each configuration
is simulated ``--n-sim`` times; an interval covers when it contains the true gap.

    python benchmarks/coverage.py --n-sim 400 --out coverage.json   # the README table
    python benchmarks/coverage.py --quick                           # a few configurations

Prints one Markdown table per kind of run (audit, compare) and, last, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from scipy.optimize import brentq
from scipy.stats import norm

import fairaudit

METRICS = ["fpr", "tpr", "auc", "eer"]
REPORTED = [
    "fpr_range",
    "fpr_ratio",
    "fpr_max_to_overall",
    "fpr_sum_to_overall",
    "tpr_range",
    "auc_range",
    "auc_ratio",
    "eer_range",
    "eer_max_to_overall",
    "equalized_odds",
    "equalized_odds_mean",
    "equalized_odds_ratio",
]


# ---------------------------------------------------------------------------- the model
class Design:
    """K groups; per group n_neg reals and n_pos fakes with target FPR and TPR at logit 0.

    ``video_sd`` > 0 groups rows into videos of ``frames`` rows sharing a normal effect (the
    same for reals and fakes of a video); targets refer to the marginal distribution.
    """

    def __init__(self, fpr, tpr, n_neg, n_pos, video_sd=0.0, frames=1):
        self.fpr, self.tpr = np.asarray(fpr, float), np.asarray(tpr, float)
        self.n_neg, self.n_pos = n_neg, n_pos
        self.video_sd, self.frames = video_sd, frames
        self.sd = np.sqrt(1.0 + video_sd**2)
        self.a = norm.ppf(self.fpr) * self.sd  # real mean
        self.b = norm.ppf(self.tpr) * self.sd  # fake mean

    @property
    def K(self):
        return self.fpr.size

    def draw(self, rng, shift=None):
        K, f = self.K, self.frames
        n_vid_neg, n_vid_pos = self.n_neg // f, self.n_pos // f
        g = np.repeat(np.arange(K), (n_vid_neg + n_vid_pos) * f)
        y = np.tile(np.r_[np.zeros(n_vid_neg * f), np.ones(n_vid_pos * f)], K)
        video = np.repeat(np.arange(K * (n_vid_neg + n_vid_pos)), f)
        u = rng.normal(0, self.video_sd, video.max() + 1)[video] if self.video_sd else 0.0
        mean = np.where(y == 1, self.b[g], self.a[g])
        z = mean + u + rng.normal(size=y.size)
        return y.astype(int), z, g, video

    def truth(self):
        s = self.sd
        auc = norm.cdf((self.b - self.a) / (s * np.sqrt(2)))
        eer = norm.cdf(-(self.b - self.a) / (2 * s))
        w_neg = np.full(self.K, 1.0 / self.K)

        def fpr_at(x):
            return np.sum(w_neg * norm.sf((x - self.a) / s))

        def fnr_at(x):
            return np.sum(w_neg * norm.cdf((x - self.b) / s))

        x = brentq(lambda t: fpr_at(t) - fnr_at(t), -20, 20)
        overall = {
            "fpr": self.fpr.mean(),
            "tpr": self.tpr.mean(),
            "auc": np.mean(norm.cdf((self.b[None, :] - self.a[:, None]) / (s * np.sqrt(2)))),
            "eer": fpr_at(x),
        }
        groups = {"fpr": self.fpr, "tpr": self.tpr, "auc": auc, "eer": eer}
        from fairaudit._gaps import family_gaps

        return family_gaps(groups, {m: np.asarray(v) for m, v in overall.items()}, METRICS)


# ---------------------------------------------------------------------------- runs
def audit_coverage(design, scheme, n_sim, n_boot, methods, seed=0):
    rng = np.random.default_rng(seed)
    truth = design.truth()
    hits = {m: {k: [] for k in REPORTED} for m in methods}
    width = {m: {k: [] for k in REPORTED} for m in methods}
    for s in range(n_sim):
        y, z, g, video = design.draw(rng)
        for method in methods:
            r = fairaudit.audit(
                y,
                z,
                {"group": g.astype(str)},
                scores="logit",
                n_boot=n_boot,
                n_perm=0,
                bootstrap=scheme,
                clusters=video if scheme == "cluster" else None,
                metrics=METRICS,
                seed=s,
                gap_ci=method,
            )
            gaps = r.gaps.set_index("name")
            for k in REPORTED:
                lo, hi = gaps.loc[k, "lo"], gaps.loc[k, "hi"]
                if np.isnan(lo):
                    continue
                hits[method][k].append(lo - 1e-9 <= truth[k] <= hi + 1e-9)
                width[method][k].append(hi - lo)
    return {
        m: {k: (float(np.mean(v)), float(np.mean(width[m][k])), len(v)) for k, v in hits[m].items()}
        for m in methods
    }


def compare_coverage(design_a, design_b, n_sim, n_boot, methods, seed=0):
    """Detectors A and B on the same rows; B's scores share A's noise partly (paired)."""
    rng = np.random.default_rng(seed)
    ta, tb = design_a.truth(), design_b.truth()
    hits = {m: {k: [] for k in REPORTED} for m in methods}
    width = {m: {k: [] for k in REPORTED} for m in methods}
    for s in range(n_sim):
        y, za, g, _ = design_a.draw(rng)
        mean_b = np.where(y == 1, design_b.b[g], design_b.a[g])
        noise_a = za - np.where(y == 1, design_a.b[g], design_a.a[g])
        zb = mean_b + 0.6 * noise_a + 0.8 * rng.normal(size=y.size)  # unit variance, corr 0.6
        for method in methods:
            c = fairaudit.compare(
                y,
                za,
                zb,
                {"group": g.astype(str)},
                scores="logit",
                n_boot=n_boot,
                metrics=METRICS,
                seed=s,
                gap_ci=method,
            )
            d = c.gap_differences().set_index("name")
            for k in REPORTED:
                lo, hi = d.loc[k, "lo"], d.loc[k, "hi"]
                if np.isnan(lo):
                    continue
                hits[method][k].append(lo - 1e-9 <= tb[k] - ta[k] <= hi + 1e-9)
                width[method][k].append(hi - lo)
    return {
        m: {k: (float(np.mean(v)), float(np.mean(width[m][k])), len(v)) for k, v in hits[m].items()}
        for m in methods
    }


EQUAL = ([0.2, 0.2, 0.2], [0.8, 0.8, 0.8])
LARGE = ([0.1, 0.2, 0.4], [0.9, 0.75, 0.6])  # FPR, TPR and AUC all far apart
CONFIGS = {
    # name: (design arguments, scheme)
    "3 groups equal, 300+300, iid": (dict(fpr=EQUAL[0], tpr=EQUAL[1], n_neg=300, n_pos=300), "iid"),
    "3 groups small gaps, 300+300, iid": (
        dict(fpr=[0.2, 0.22, 0.24], tpr=[0.78, 0.8, 0.82], n_neg=300, n_pos=300),
        "iid",
    ),
    "3 groups large gaps, 300+300, iid": (
        dict(fpr=LARGE[0], tpr=LARGE[1], n_neg=300, n_pos=300),
        "iid",
    ),
    "2 groups equal, 2000+2000, iid": (
        dict(fpr=[0.1, 0.1], tpr=[0.9, 0.9], n_neg=2000, n_pos=2000),
        "iid",
    ),
    "2 groups large gap, 2000+2000, stratified": (
        dict(fpr=[0.1, 0.2], tpr=[0.9, 0.8], n_neg=2000, n_pos=2000),
        "stratified",
    ),
    "8 groups equal, 100+100, iid": (
        dict(fpr=[0.2] * 8, tpr=[0.8] * 8, n_neg=100, n_pos=100),
        "iid",
    ),
    "8 groups, extremes far apart, 300+300, stratified": (
        dict(
            fpr=[0.05] + [0.2] * 6 + [0.45], tpr=[0.95] + [0.8] * 6 + [0.55], n_neg=300, n_pos=300
        ),
        "stratified",
    ),
    "4 groups, 20+20, iid": (
        dict(fpr=[0.2, 0.25, 0.3, 0.35], tpr=[0.7, 0.75, 0.8, 0.85], n_neg=20, n_pos=20),
        "iid",
    ),
    "3 groups equal, 20+20, stratified": (
        dict(fpr=EQUAL[0], tpr=EQUAL[1], n_neg=20, n_pos=20),
        "stratified",
    ),
    "3 groups equal, videos of 10 frames, cluster": (
        dict(fpr=EQUAL[0], tpr=EQUAL[1], n_neg=300, n_pos=300, video_sd=1.0, frames=10),
        "cluster",
    ),
    "3 groups large gaps, videos of 10 frames, cluster": (
        dict(fpr=LARGE[0], tpr=LARGE[1], n_neg=300, n_pos=300, video_sd=1.0, frames=10),
        "cluster",
    ),
    "4 groups like the example, videos of 16 frames, cluster": (
        dict(
            fpr=[0.08, 0.09, 0.27, 0.17],
            tpr=[0.67, 0.89, 0.8, 0.82],
            n_neg=240,
            n_pos=960,
            video_sd=1.0,
            frames=16,
        ),
        "cluster",
    ),
}
COMPARE_CONFIGS = {
    "A unequal (0.2/0.3/0.4), B equal, 300+300": (
        dict(fpr=[0.2, 0.3, 0.4], tpr=[0.8, 0.8, 0.8], n_neg=300, n_pos=300),
        dict(fpr=[0.2, 0.2, 0.2], tpr=[0.8, 0.8, 0.8], n_neg=300, n_pos=300),
    ),
    "A and B equal, 300+300": (
        dict(fpr=EQUAL[0], tpr=EQUAL[1], n_neg=300, n_pos=300),
        dict(fpr=EQUAL[0], tpr=EQUAL[1], n_neg=300, n_pos=300),
    ),
    "A and B both large gaps, 300+300": (
        dict(fpr=LARGE[0], tpr=LARGE[1], n_neg=300, n_pos=300),
        dict(fpr=[0.1, 0.15, 0.25], tpr=[0.85, 0.75, 0.65], n_neg=300, n_pos=300),
    ),
}


def _table(results, methods):
    lines = [
        "| configuration | gap | " + " | ".join(f"{m} coverage (width)" for m in methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for name, res in results.items():
        for k in REPORTED:
            cells = []
            for m in methods:
                cov, w, n = res[m][k]
                cells.append(f"{cov:.3f} ({w:.3f})" if n else "-")
            lines.append(f"| {name} | {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def readme_tables(docs) -> str:
    """Compact tables for the README from saved results: per configuration, the lowest
    coverage over the reported gaps (and which gap), and the mean width ratio."""
    out = []
    for kind, title in (("audit", "Gaps of one audit"), ("compare", "Changes B - A of compare")):
        rows = {}
        for doc in docs:
            for name, res in doc.get(kind, {}).items():
                rows[name] = (res, doc["n_sim"])
        if not rows:
            continue
        out += [
            f"{title} ({', '.join(sorted({str(n) for _, n in rows.values()}))} simulated data "
            "sets per configuration, 1000 replicates, 95% intervals):",
            "",
            "| configuration | max-t: lowest coverage | percentile: lowest coverage | "
            "width max-t / percentile |",
            "|---|---|---|---|",
        ]
        for name, (res, _) in rows.items():
            cells = []
            for m in ("max-t", "percentile"):
                covs = {k: v[0] for k, v in res[m].items() if v[2]}
                worst = min(covs, key=covs.get)
                cells.append(f"{covs[worst]:.3f} ({worst})")
            ratios = [
                res["max-t"][k][1] / res["percentile"][k][1]
                for k in res["max-t"]
                if res["percentile"][k][1] and np.isfinite(res["max-t"][k][1])
            ]
            cells.append(f"{np.mean(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f})")
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-sim", type=int, default=200)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--methods", default="max-t,percentile")
    ap.add_argument(
        "--only", default=None, help="substrings of configuration names to run, separated by |"
    )
    ap.add_argument("--quick", action="store_true", help="three configurations, 60 data sets")
    ap.add_argument("--out", default=None, help="write the JSON results here")
    ap.add_argument(
        "--readme",
        nargs="+",
        default=None,
        metavar="JSON",
        help="print README tables of saved runs",
    )
    args = ap.parse_args(argv)
    if args.readme:
        docs = []
        for path in args.readme:
            with open(path) as fh:
                docs.append(json.load(fh))
        print(readme_tables(docs))
        return
    methods = args.methods.split(",")
    configs = dict(CONFIGS)
    compares = dict(COMPARE_CONFIGS)
    if args.quick:
        args.n_sim = min(args.n_sim, 60)
        configs = {k: configs[k] for k in list(configs)[:3]}
        compares = {k: compares[k] for k in list(compares)[:1]}
    if args.only:
        keep = args.only.split("|")
        configs = {k: v for k, v in configs.items() if any(x in k for x in keep)}
        compares = {k: v for k, v in compares.items() if any(x in k for x in keep)}
    results, cresults = {}, {}
    for name, (kw, scheme) in configs.items():
        t0 = time.time()
        results[name] = audit_coverage(Design(**kw), scheme, args.n_sim, args.n_boot, methods)
        print(f"# {name}: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    for name, (ka, kb) in compares.items():
        t0 = time.time()
        cresults[name] = compare_coverage(
            Design(**ka), Design(**kb), args.n_sim, args.n_boot, methods
        )
        print(f"# compare {name}: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    print(f"## audit: {args.n_sim} data sets per configuration, {args.n_boot} replicates\n")
    print(_table(results, methods))
    if cresults:
        print(f"\n## compare (B - A): {args.n_sim} data sets per configuration\n")
        print(_table(cresults, methods))
    doc = {"n_sim": args.n_sim, "n_boot": args.n_boot, "audit": results, "compare": cresults}
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(doc, fh, indent=1)
    print(json.dumps({"n_sim": args.n_sim, "configurations": len(results) + len(cresults)}))


if __name__ == "__main__":
    main()
