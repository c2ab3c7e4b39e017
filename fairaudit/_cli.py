"""Command line: ``python -m fairaudit report|compare ...``.

Every bad input ends with one line ``fairaudit: error: ...`` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np

from ._errors import FairauditError, bad

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        sys.stderr.write(f"fairaudit: error: {message}\n")
        sys.exit(2)


def _add_common(p):
    a = p.add_argument
    a(
        "--scores",
        default="auto",
        choices=["auto", "prob", "logit", "logits2"],
        help="score rule (auto: logits2 for 2 columns, prob when all in [0,1], else logit)",
    )
    a("--threshold", type=float, default=0.5, help="threshold on p(fake) (default 0.5)")
    a("--pos-label", default=None, help="label value meaning fake, when labels are not 0/1")
    a(
        "--dataset",
        default="ff++",
        choices=["ff++", "dfdc", "celebdf", "dfd"],
        help="group coding of the research CSV / result layout (default ff++)",
    )
    a(
        "--attributes",
        default=None,
        help="comma-separated attribute columns of the CSV instead of the research schema",
    )
    a("--weights", default=None, metavar="COLUMN", help="CSV column of sample weights")
    a(
        "--cluster",
        default=None,
        metavar="COLUMN",
        help="CSV column of cluster ids (video, identity) for --bootstrap cluster and the test",
    )
    a("--reference", default=None, help="reference group (e.g. white, male+asian)")
    a("--n-boot", type=int, default=1000, help="bootstrap replicates (0: point estimates only)")
    a("--n-perm", type=int, default=None, help="permutations of the test (default: --n-boot)")
    a("--ci", type=float, default=0.95, help="confidence level (default 0.95)")
    a("--ci-method", default="percentile", choices=["percentile", "bca"])
    a(
        "--bootstrap",
        default=None,
        choices=["iid", "stratified", "cluster"],
        help="resampling scheme (default: cluster when --cluster is given, else iid)",
    )
    a("--seed", type=int, default=0)
    a("--drop-nan", action="store_true", help="drop rows with NaN/inf scores (reported)")
    a("--min-count", type=int, default=30, help="warn below this many positives/negatives")
    a("--max-bins", type=int, default=1024, help="score bins per group of bootstrap replicates")
    a(
        "--max-order",
        type=int,
        default=None,
        metavar="K",
        help="intersections of at most K attributes (default: all)",
    )
    a(
        "--memory-budget",
        type=float,
        default=1024,
        metavar="MB",
        help="peak memory of the resampling, in megabytes (default 1024; numbers do not change)",
    )
    a(
        "--skip-small-groups",
        action="store_true",
        help="do not resample groups with fewer than --min-count fakes or reals (reported; "
        "they get no intervals and are left out of the gaps)",
    )
    a(
        "--compat",
        default=None,
        choices=["pg-fdd"],
        help="add the research code's fairness-metrics quantities",
    )
    a("--out", default=None, metavar="DIR", help="write report.json, groups.csv, gaps.csv here")
    a("--format", default="text", choices=["text", "json", "markdown"])
    a(
        "--figures",
        default=None,
        choices=["png", "svg", "pdf"],
        help="also write every figure in this format into --out/figures",
    )
    a("--all-gaps", action="store_true", help="print every gap, not only the headline ones")
    a("--quiet", action="store_true", help="no progress bar")


def build_parser():
    p = _Parser(
        prog="fairaudit",
        description="Fairness audit of a binary classifier's scores "
        "across demographic groups (label 1 = fake).",
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser(
        "report",
        help="audit one detector",
        description="INPUTS: SCORES LABELS CSV | SCORES CSV (labels from the CSV's "
        "label column) | RESULTS_DIR (research per-group .npy layout). SCORES: "
        "FILE.npy or FILE.csv:COLUMN.",
    )
    r.add_argument("inputs", nargs="*")
    r.add_argument("--example", action="store_true", help="audit the embedded synthetic example")
    _add_common(r)
    c = sub.add_parser(
        "compare",
        help="paired comparison of two detectors (B - A)",
        description="INPUTS: SCORES_A SCORES_B LABELS CSV | SCORES_A SCORES_B CSV",
    )
    c.add_argument("inputs", nargs="*")
    c.add_argument(
        "--example", action="store_true", help="compare the example's two embedded detectors"
    )
    _add_common(c)
    return p


# ---------------------------------------------------------------------------- inputs
def _example_inputs(n_scores):
    from ._example import example_paths

    paths = example_paths()
    scores = [str(paths["preds"]), str(paths["preds_fair"])][:n_scores]
    return scores + [str(paths["labels"]), str(paths["csv"])]


def _load(args, n_scores):
    """Resolve positional inputs; return dict of arrays, attributes and provenance."""
    from ._io import check_label_column, load_array, read_demographics, sha256

    inputs = list(args.inputs)
    if args.example:
        if inputs:
            raise bad("--example", "no input files", f"{len(inputs)} inputs")
        inputs = _example_inputs(n_scores)
        if args.cluster is None:
            args.cluster = "video_id"
    if n_scores == 1 and len(inputs) == 1 and os.path.isdir(inputs[0]):
        return _load_results_dir(args, inputs[0])
    if len(inputs) not in (n_scores + 1, n_scores + 2):
        want = "SCORES LABELS CSV" if n_scores == 1 else "SCORES_A SCORES_B LABELS CSV"
        raise bad(
            "inputs",
            f"{want} (or without LABELS when the CSV has a label column)",
            f"{len(inputs)} arguments",
        )
    score_specs = inputs[:n_scores]
    csv_path = inputs[-1]
    demo = read_demographics(csv_path, dataset=args.dataset, attributes=args.attributes)
    scores = [
        load_array(s, f"scores{'' if n_scores == 1 else ' ' + 'AB'[i]} ('{s}')")
        for i, s in enumerate(score_specs)
    ]
    if len(inputs) == n_scores + 2:
        labels_raw = load_array(inputs[n_scores], f"labels ('{inputs[n_scores]}')")
    else:
        if "label" not in demo.table.columns:
            raise bad(
                "csv",
                "a 'label' column when no labels file is given",
                f"columns {', '.join(map(str, demo.table.columns[:12]))}",
            )
        labels_raw = demo.table["label"].to_numpy()
    n = scores[0].shape[0]
    for i, s in enumerate(scores[1:], 1):
        if s.shape[0] != n:
            raise bad(
                f"scores B ('{score_specs[i]}')", f"{n} rows like scores A", f"{s.shape[0]} rows"
            )
    if labels_raw.ndim == 2 and labels_raw.shape[1] == 1:
        labels_raw = labels_raw[:, 0]
    if labels_raw.shape[0] != n:
        raise bad("labels", f"{n} rows (as many as the scores)", f"{labels_raw.shape[0]} rows")
    if len(demo.table) != n:
        raise bad(
            f"csv ('{csv_path}')", f"{n} rows (as many as the scores)", f"{len(demo.table)} rows"
        )
    from ._validation import as_labels

    labels = as_labels(labels_raw, n, pos_label=args.pos_label)
    if len(inputs) == n_scores + 2 and args.pos_label is None:
        check_label_column(demo.table, labels, f"csv ('{csv_path}')")
    weights = _column(demo.table, args.weights, "--weights", numeric=True)
    clusters = _column(demo.table, args.cluster, "--cluster", numeric=False)
    files = {}
    for role, path in zip(
        ["scores" if n_scores == 1 else "scores_a", "scores_b"][:n_scores]
        + (["labels"] if len(inputs) == n_scores + 2 else [])
        + ["csv"],
        score_specs + inputs[n_scores:],
    ):
        real = path if os.path.exists(path) else path.rsplit(":", 1)[0]
        files[role] = {"path": os.path.basename(real), "sha256": sha256(real)}
    return {
        "scores": scores,
        "labels": labels,
        "groups": demo.attributes,
        "weights": weights,
        "clusters": clusters,
        "provenance": {"files": files, "groups_from": demo.source, "example": bool(args.example)},
        "compat_sets": None,
    }


def _column(table, name, option, numeric):
    if name is None:
        return None
    if name not in table.columns:
        raise bad(
            option,
            "a column of the CSV",
            f"'{name}' (columns: {', '.join(map(str, table.columns[:12]))})",
        )
    col = table[name]
    if numeric and not np.issubdtype(col.dtype, np.number):
        raise bad(option, f"numeric values in column '{name}'", f"dtype {col.dtype}")
    return col.to_numpy()


def _load_results_dir(args, path):
    from ._compat import PGFDD_FAMILIES, read_seed_results_dir

    genders, races = PGFDD_FAMILIES[args.dataset]
    try:
        sets = read_seed_results_dir(path, genders, races)
    except FairauditError:
        raise
    except ValueError as exc:
        raise FairauditError(f"RESULTS_DIR: {exc}") from None
    if not sets or sum(len(v[0]) for v in sets.values()) == 0:
        raise bad(
            "RESULTS_DIR",
            "files '<gender>,<race>labels.npy' and '<gender>,<race>predictions.npy'",
            f"none with data in '{path}'",
        )
    y, z, g, r = [], [], [], []
    for key, (lab, pred) in sets.items():
        gender, race = key.split(",")
        y.append(np.asarray(lab))
        z.append(np.asarray(pred, dtype=float))
        g += ["female" if gender == "nonmale" else gender] * len(lab)
        r += [race] * len(lab)
    import pandas as pd

    groups = pd.DataFrame(
        {
            "gender": pd.Categorical(g, categories=["male", "female"]),
            "race": pd.Categorical(r, categories=races),
        }
    )
    if args.scores == "auto":
        args.scores = "logit"  # the research layout saves the raw class-1 logit
    return {
        "scores": [np.concatenate(z)],
        "labels": np.concatenate(y).astype(int),
        "groups": groups,
        "weights": None,
        "clusters": None,
        "provenance": {
            "files": {"results_dir": os.path.basename(os.path.abspath(path))},
            "groups_from": f"research per-group files (--dataset {args.dataset})",
        },
        "compat_sets": sets,
    }


# ---------------------------------------------------------------------------- commands
def _options(args):
    if args.bootstrap is None:
        args.bootstrap = "cluster" if args.cluster else "iid"
    return dict(
        scores=args.scores,
        threshold=args.threshold,
        reference=args.reference,
        n_boot=args.n_boot,
        ci=args.ci,
        seed=args.seed,
        bootstrap=args.bootstrap,
        ci_method=args.ci_method,
        n_perm=args.n_perm,
        drop_nan=args.drop_nan,
        min_count=args.min_count,
        max_bins=args.max_bins,
        max_order=args.max_order,
        memory_budget=args.memory_budget,
        skip_small_groups=args.skip_small_groups,
        progress=not args.quiet,
    )


def _check_output_options(args):
    if args.figures and not args.out:
        raise bad("--figures", "--out DIR to write the figures into", "no --out")


def _report(args):
    from ._audit import audit

    _check_output_options(args)
    d = _load(args, 1)
    result = audit(
        d["labels"],
        d["scores"][0],
        d["groups"],
        sample_weight=d["weights"],
        clusters=d["clusters"],
        dataset=args.dataset,
        provenance=d["provenance"],
        **_options(args),
    )
    if args.compat:
        result = _with_compat(result, args, d)
    _emit(result, args)
    return 0


def _with_compat(result, args, d):
    import dataclasses

    from ._compat import PGFDD_FAMILIES, pgfdd_metrics
    from ._compat_bridge import compat_from_arrays

    if d["compat_sets"] is not None:
        genders, races = PGFDD_FAMILIES[args.dataset]
        comp = pgfdd_metrics(d["compat_sets"], genders, races)
        comp["input"] = {
            "saved_value": "the research per-group files as saved",
            "dataset": args.dataset,
        }
    else:
        comp = compat_from_arrays(
            d["labels"],
            d["scores"][0],
            d["groups"],
            rule=result.config["score_rule"],
            mode=args.compat,
            dataset=args.dataset,
            drop_nan=args.drop_nan,
        )
    return dataclasses.replace(result, compat=comp)


def _emit(result, args):
    from ._format import format_comparison_text, format_markdown, format_text

    is_cmp = hasattr(result, "differences")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        result.to_json(os.path.join(args.out, "report.json"))
        result.groups_flat().to_csv(os.path.join(args.out, "groups.csv"), index=False)
        result.gaps_flat().to_csv(os.path.join(args.out, "gaps.csv"), index=False)
        if getattr(result, "reference", None) is not None:
            result.reference.to_csv(os.path.join(args.out, "reference.csv"), index=False)
        _write_html(result, args)
    if args.format == "json":
        print(result.to_json())
    elif is_cmp:
        print(
            format_comparison_text(
                result, all_gaps=args.all_gaps, markdown=args.format == "markdown"
            )
        )
    elif args.format == "markdown":
        print(format_markdown(result, all_gaps=args.all_gaps))
    else:
        print(format_text(result, all_gaps=args.all_gaps))
        if args.out:
            print(f"\nwrote {', '.join(sorted(os.listdir(args.out)))} to {args.out}")


def _write_html(result, args):
    try:
        from ._html import write_report
    except ImportError:
        return
    write_report(result, args.out, figures=args.figures)


def _compare(args):
    from ._compare import compare

    _check_output_options(args)
    d = _load(args, 2)
    result = compare(
        d["labels"],
        d["scores"][0],
        d["scores"][1],
        d["groups"],
        sample_weight=d["weights"],
        clusters=d["clusters"],
        dataset=args.dataset,
        provenance=d["provenance"],
        **_options(args),
    )
    _emit(result, args)
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return {"report": _report, "compare": _compare}[args.command](args)
    except FairauditError as exc:
        sys.stderr.write(f"fairaudit: error: {exc}\n")
        return 2
    except BrokenPipeError:  # e.g. `... | head`: the reader left; nothing to report
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except MemoryError:
        sys.stderr.write("fairaudit: error: out of memory (try a smaller --max-bins or --n-boot)\n")
        return 2
