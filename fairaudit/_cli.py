"""Command line: ``python -m fairaudit report|compare|table ...``.

Every bad input ends with one line ``fairaudit: error: ...`` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings

import numpy as np

from . import __version__
from ._errors import FairauditError, bad
from ._options import DEFAULTS, SCORE_RULES, check_options

__all__ = ["main"]


# argparse's own messages, in the one-line form of every other error
_ARGPARSE_FORMS = [
    (
        re.compile(r"argument (\S+?)(?:/\S+)?: invalid choice: '?([^']*?)'? \(choose from (.*)\)"),
        lambda m: f"{m[1]}: expected one of {m[3].replace(chr(39), '')}, found '{m[2]}'",
    ),
    (
        re.compile(r"argument (\S+?)(?:/\S+)?: invalid (int|float) value: '(.*)'"),
        lambda m: (
            f"{m[1]}: expected {'an integer' if m[2] == 'int' else 'a number'}, found '{m[3]}'"
        ),
    ),
    (
        re.compile(r"argument (\S+?)(?:/\S+)?: expected one argument"),
        lambda m: f"{m[1]}: expected a value, found none",
    ),
    (
        re.compile(r"unrecognized arguments: (.*)"),
        lambda m: f"arguments: expected the options listed by --help, found {m[1]}",
    ),
    (
        re.compile(r"the following arguments are required: (.*)"),
        lambda m: f"{m[1]}: expected report or compare, found none",
    ),
]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        for pattern, form in _ARGPARSE_FORMS:
            m = pattern.search(message)
            if m:
                message = form(m)
                break
        sys.stderr.write(f"fairaudit: error: {message}\n")
        sys.exit(2)


def _add_inference(p):
    """Options of the inference layer: gap intervals, p-value adjustment, tolerance verdicts."""
    a = p.add_argument
    a(
        "--gap-ci",
        default="max-t",
        choices=["max-t", "percentile", "bca"],
        help="gap intervals: max-t (default; keeps coverage where groups are equal or close), "
        "or the plain percentile / BCa bootstrap of the gap (biased near equality)",
    )
    a(
        "--p-adjust",
        default="maxt",
        choices=["maxt", "holm", "bh", "none"],
        help="adjusted p-values (p_adjusted): maxt = Westfall-Young step-down max-T over all gaps "
        "(default), holm, bh (false discovery rate), none",
    )
    a(
        "--tolerance",
        default=None,
        metavar="GAP=VALUE,...",
        help="tolerances giving each such gap a verdict within / exceeds / inconclusive "
        "(e.g. fpr_range=0.05,demographic_parity_ratio=0.8; preset four-fifths: 0.8 for "
        "every ratio gap)",
    )
    a(
        "--fail-on",
        default=None,
        choices=["exceeds", "inconclusive"],
        help="exit with code 1 when a gap's verdict is 'exceeds' (or, with inconclusive, "
        "anything but 'within')",
    )


def _class_names(args, d):
    """--class-names, else fake/real for the research schema (the example included)."""
    if args.class_names:
        return args.class_names
    source = str(d["provenance"].get("groups_from", ""))
    return ("fake", "real") if source.startswith("research") else None


def _inference_args(args):
    return dict(gap_ci=args.gap_ci, p_adjust=args.p_adjust)


def _fail_code(result, args):
    """Exit code 1 (and one line on stderr) when --fail-on finds a gap with that verdict."""
    if args.fail_on is None:
        return 0
    gaps = result.gaps if hasattr(result, "gaps") else None
    if gaps is None or "verdict" not in gaps:
        return 0
    bad_verdicts = {"exceeds"} if args.fail_on == "exceeds" else {"exceeds", "inconclusive"}
    hit = gaps[gaps["verdict"].isin(bad_verdicts)]
    if hit.empty:
        return 0
    listed = ", ".join(f"{r.family}:{r.name} {r.verdict}" for r in hit.head(5).itertuples())
    more = f" and {len(hit) - 5} more" if len(hit) > 5 else ""
    sys.stderr.write(f"fairaudit: --fail-on {args.fail_on}: {len(hit)} gaps ({listed}{more})\n")
    return 1


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's default in its help line (when it has a value worth showing)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and not any(default is v for v in (None, False, argparse.SUPPRESS))
            and "default" not in text
        ):
            text += " (default: %(default)s)"
        return text


#: What ``--out DIR`` writes, per command (shown by --help; tests check it is true).
OUT_FILES = {
    "report": [
        ("report.json", "every number and how it was made"),
        ("groups.csv", "per-group metrics with intervals"),
        ("gaps.csv", "gaps with intervals and p-values"),
        ("report.html", "the self-contained report with figures"),
        ("reference.csv", "with --reference: differences to the reference group"),
        ("figures/", "with --figures: each figure as a file"),
    ],
    "compare": [
        ("report.json", "every number and how it was made, both detectors"),
        ("groups.csv", "per-group metrics of both detectors"),
        ("gaps.csv", "differences B - A with intervals and p-values"),
        ("report.html", "the self-contained report with figures"),
        ("figures/", "with --figures: each figure as a file"),
    ],
}


def _epilog(command):
    rows = "\n".join(f"  {name:<15} {what}" for name, what in OUT_FILES[command])
    return f"files written by --out DIR:\n{rows}"


def _add_common(p):
    a = p.add_argument
    _add_inference(p)
    a(
        "--scores",
        default=DEFAULTS["scores"],
        choices=SCORE_RULES,
        help="score rule: prob (p in [0, 1]), percent (p = score / 100), logit "
        "(p = sigmoid(score)), logits2 (two columns); auto: logits2 for two columns, prob when "
        "all values are in [0, 1], logit when they look like logits (both signs, a roughly "
        "symmetric range), refused otherwise",
    )
    a("--threshold", type=float, default=DEFAULTS["threshold"], help="threshold on p(fake)")
    a(
        "--pos-label",
        default=None,
        metavar="VALUE",
        help="label value meaning fake, when labels are not 0/1 (text labels too)",
    )
    a(
        "--allow-perfect",
        action="store_true",
        help="accept scores that reproduce the labels exactly (refused by default: usually "
        "the labels given as scores)",
    )
    a(
        "--dataset",
        default="ff++",
        choices=["ff++", "dfdc", "celebdf", "dfd"],
        help="group coding of the research CSV / result layout",
    )
    a(
        "--attributes",
        default=None,
        help="comma-separated attribute columns of the CSV instead of the research schema",
    )
    a(
        "--missing-groups",
        default=DEFAULTS["missing_groups"],
        choices=["error", "drop", "keep"],
        help="rows without an attribute value: error, drop them (counted), or keep them as a "
        "group 'unknown'",
    )
    a("--weights", default=None, metavar="COLUMN", help="CSV column of sample weights")
    a(
        "--cluster",
        default=None,
        metavar="COLUMN",
        help="CSV column of cluster ids (video, identity): whole clusters are resampled and "
        "permuted (default: the CSV's video_id column when it has one)",
    )
    a("--reference", default=None, help="reference group (e.g. white, male+asian)")
    a(
        "--n-boot",
        type=int,
        default=DEFAULTS["n_boot"],
        help="bootstrap replicates (0: point estimates only)",
    )
    a(
        "--n-perm",
        type=int,
        default=DEFAULTS["n_perm"],
        help="permutations of the test of no disparity (default: --n-boot; 0: no test)",
    )
    a("--ci", type=float, default=DEFAULTS["ci"], help="confidence level")
    a(
        "--ci-method",
        default=DEFAULTS["ci_method"],
        choices=["percentile", "bca"],
        help="interval method of the bootstrap",
    )
    a(
        "--bootstrap",
        default=DEFAULTS["bootstrap"],
        choices=["iid", "stratified", "cluster"],
        help="resampling scheme (default: cluster when there are clusters - --cluster or a "
        "video_id column - else iid)",
    )
    a("--seed", type=int, default=DEFAULTS["seed"], help="seed of every random draw")
    a("--drop-nan", action="store_true", help="drop rows with NaN/inf scores (reported)")
    a(
        "--min-count",
        type=int,
        default=DEFAULTS["min_count"],
        help="warn below this many positives/negatives",
    )
    a(
        "--max-bins",
        type=int,
        default=DEFAULTS["max_bins"],
        help="score bins of bootstrap replicates",
    )
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
    a("--out", default=None, metavar="DIR", help="write the files listed below into DIR")
    a(
        "--format",
        default="text",
        choices=["text", "json", "markdown"],
        help="what is printed on the terminal",
    )
    a(
        "--figures",
        default=None,
        choices=["png", "svg", "pdf"],
        help="also write every figure in this format into DIR/figures (needs --out)",
    )
    a(
        "--class-names",
        default=None,
        metavar="POS,NEG",
        help="names of the positive and negative class in the output (default: fake,real for "
        "the research schema, else the --pos-label value or positive,negative)",
    )
    a("--all-gaps", action="store_true", help="print every gap, not only the headline ones")
    a(
        "--all-metrics",
        action="store_true",
        help="print every metric, not only the headline ones (auc, eer, fpr, tpr, accuracy, "
        "selection_rate)",
    )
    a("--quiet", action="store_true", help="no progress bar")


def build_parser():
    p = _Parser(
        prog="fairaudit",
        description="Fairness audit of a binary classifier's scores "
        "across demographic groups (label 1 = fake).",
    )
    p.add_argument("--version", action="version", version=f"fairaudit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser(
        "report",
        help="audit one detector",
        formatter_class=_HelpFormatter,
        description="INPUTS: SCORES LABELS CSV | SCORES CSV (labels from the CSV's "
        "label column) | RESULTS_DIR (research per-group .npy layout) | TABLE --score-col "
        "COLUMN (a Parquet file, a folder of Parquet files or a CSV, read in batches: memory "
        "does not grow with its rows). SCORES: FILE.npy or FILE.csv:COLUMN; LABELS: FILE.npy "
        "or FILE.csv:COLUMN.",
        epilog=_epilog("report"),
    )
    r.add_argument(
        "inputs", nargs="*", help="SCORES [LABELS] CSV, or RESULTS_DIR alone, or TABLE alone"
    )
    _add_table_input(r)
    r.add_argument("--example", action="store_true", help="audit the embedded synthetic example")
    r.add_argument("--name", default=None, help="detector name for tables (default: scores file)")
    _add_dataset_name(r)
    _add_common(r)
    c = sub.add_parser(
        "compare",
        help="paired comparison of two detectors (B - A)",
        formatter_class=_HelpFormatter,
        description="INPUTS: SCORES_A SCORES_B LABELS CSV | SCORES_A SCORES_B CSV",
        epilog=_epilog("compare"),
    )
    c.add_argument("inputs", nargs="*", help="SCORES_A SCORES_B [LABELS] CSV")
    c.add_argument(
        "--example", action="store_true", help="compare the example's two embedded detectors"
    )
    c.add_argument("--names", default=None, help="A,B: detector names (default: scores files)")
    _add_dataset_name(c)
    _add_common(c)
    _add_table(sub)
    return p


def _add_table_input(p):
    """Options of the TABLE form (a Parquet file or folder, or a CSV, read out of core)."""
    a = p.add_argument
    a(
        "--score-col",
        default=None,
        metavar="COLUMN",
        help="TABLE form: the score column (COL0,COL1: two columns of logits)",
    )
    a("--label-col", default="label", metavar="COLUMN", help="TABLE form: the label column")
    a(
        "--batch-rows",
        type=int,
        default=1 << 20,
        metavar="N",
        help="TABLE form: rows read at a time",
    )


def _add_dataset_name(p):
    p.add_argument(
        "--dataset-name", default=None, help="test-set name for tables (default: the CSV's name)"
    )


def _add_table(sub):
    from ._table import FORMATS

    t = sub.add_parser(
        "table",
        help="one paper table of many runs (detectors x test sets)",
        description="RUN: a report.json, a folder holding one (--out of report/compare), or a "
        "compare output (its two runs and their paired differences).",
    )
    a = t.add_argument
    a("runs", nargs="+", metavar="RUN")
    a("--names", default=None, help="detector names, one per row in input order (A,B,...)")
    a("--datasets", default=None, help="test-set names, one per row in input order")
    a("--rows", default="detector", choices=["detector", "dataset"], help="rows within a block")
    a("--family", default=None, help="family of the gap columns (default: e.g. gender+race)")
    a("--metrics", default=None, help="metric and gap columns, or pg-fdd (the paper's set)")
    a("--format", default="text", choices=list(FORMATS))
    a("--digits", type=int, default=3, help="decimals (default 3)")
    a("--out", default=None, metavar="FILE", help="write the table to FILE")


# ---------------------------------------------------------------------------- inputs
def _example_inputs(n_scores):
    from ._example import example_paths

    paths = example_paths()
    scores = [str(paths["preds"]), str(paths["preds_fair"])][:n_scores]
    return scores + [str(paths["labels"]), str(paths["csv"])]


def _usage(n_scores):
    return "SCORES [LABELS] CSV" if n_scores == 1 else "SCORES_A SCORES_B [LABELS] CSV"


def _roles(inputs, n_scores):
    """The role of each positional input, or an error naming what the count suggests."""
    usage = _usage(n_scores)
    if n_scores == 1 and len(inputs) == 1:
        if os.path.isdir(inputs[0]):
            return None  # a research result folder
        if not os.path.exists(inputs[0]):
            raise bad(
                "RESULTS_DIR",
                f"an existing folder of research result files (or the files {usage})",
                f"nothing at '{inputs[0]}'",
            )
    if len(inputs) not in (n_scores + 1, n_scores + 2):
        folders = [s for s in inputs if os.path.isdir(s)]
        hint = "; a folder of research results goes alone (report RESULTS_DIR)" if folders else ""
        raise bad(
            "inputs",
            f"{usage} (LABELS left out when the CSV has a label column)",
            f"{len(inputs)} argument{'s' if len(inputs) != 1 else ''}"
            + (": " + " ".join(f"'{s}'" for s in inputs) if inputs else "")
            + hint,
        )
    scores = ["scores"] if n_scores == 1 else ["scores A", "scores B"]
    labels = ["labels"] if len(inputs) == n_scores + 2 else []
    return scores + labels + ["csv"]


def _load(args, n_scores):
    """Resolve positional inputs; return dict of arrays, attributes and provenance."""
    from ._io import check_input_roles, check_label_column, load_array, read_demographics

    inputs = list(args.inputs)
    if args.example:
        if inputs:
            raise bad("--example", "no input files", f"{len(inputs)} inputs")
        inputs = _example_inputs(n_scores)
    roles = _roles(inputs, n_scores)
    if roles is None:
        return _load_results_dir(args, inputs[0])
    check_input_roles(inputs, roles, _usage(n_scores))
    named = dict(zip(roles, inputs))
    csv_path = named["csv"]
    demo = read_demographics(csv_path, dataset=args.dataset, attributes=args.attributes)
    score_roles = roles[:n_scores]
    scores = [load_array(named[r], f"{r} ('{named[r]}')") for r in score_roles]
    if "labels" in named:
        labels_arg = f"labels ('{named['labels']}')"
        labels_raw = load_array(named["labels"], labels_arg, text=True)
    else:
        labels_arg = f"csv ('{csv_path}') column 'label'"
        if "label" not in demo.table.columns:
            raise bad(
                f"csv ('{csv_path}')",
                "a 'label' column when no labels file is given",
                f"columns {', '.join(map(str, demo.table.columns[:12]))}",
            )
        labels_raw = demo.table["label"].to_numpy()
    n = scores[0].shape[0]
    for r, s in zip(score_roles[1:], scores[1:]):
        if s.shape[0] != n:
            raise bad(f"{r} ('{named[r]}')", f"{n} rows like scores A", f"{s.shape[0]} rows")
    if labels_raw.ndim == 2 and labels_raw.shape[1] == 1:
        labels_raw = labels_raw[:, 0]
    if labels_raw.shape[0] != n:
        raise bad(labels_arg, f"{n} rows (as many as the scores)", f"{labels_raw.shape[0]} rows")
    if len(demo.table) != n:
        raise bad(
            f"csv ('{csv_path}')", f"{n} rows (as many as the scores)", f"{len(demo.table)} rows"
        )
    if "labels" in named and args.pos_label is None:
        _check_not_swapped(scores[0], labels_raw, named)
    from ._validation import as_labels

    labels = as_labels(labels_raw, n, pos_label=args.pos_label, argument=labels_arg)
    if "labels" in named and args.pos_label is None:
        check_label_column(demo.table, labels, f"csv ('{csv_path}')")
    weights = _column(demo.table, args.weights, "--weights", numeric=True)
    cluster_column, reason = _cluster_column(args, demo.table)
    clusters = _column(demo.table, cluster_column, "--cluster", numeric=False)
    args.typed.update(_argument_names(named, score_roles, labels_arg))
    return {
        "scores": scores,
        "labels": labels,
        "groups": demo.attributes,
        "weights": weights,
        "clusters": clusters,
        "bootstrap_reason": reason,
        "provenance": {
            "files": _provenance_files(named, score_roles),
            "groups_from": demo.source,
            "clusters_from": cluster_column,
            "example": bool(args.example),
        },
        "compat_sets": None,
    }


def _check_not_swapped(scores, labels_raw, named):
    """Scores that are 0/1 while the labels hold many fractional values: swapped files."""
    if labels_raw.dtype.kind != "f" or scores.ndim != 1:
        return
    if np.isin(scores, [0, 1]).all() and not np.isin(labels_raw, [0, 1]).all():
        first = "scores" if "scores" in named else "scores A"
        raise bad(
            f"labels ('{named['labels']}')",
            "0/1 labels",
            f"fractional values while {first} ('{named[first]}') holds only 0 and 1: the "
            "score and label files look swapped (the order is SCORES LABELS CSV)",
        )


def _cluster_column(args, table):
    """The cluster column and why: --cluster, else the CSV's video_id column unless another
    scheme is asked for (frames of one video are not independent)."""
    if args.cluster is not None:
        return args.cluster, f"--cluster {args.cluster}: whole clusters are resampled together"
    if args.bootstrap in (None, "cluster") and "video_id" in table.columns:
        return "video_id", (
            "the CSV has a video_id column: frames of one video are resampled together "
            "(--bootstrap iid resamples frames)"
        )
    if args.bootstrap is not None:
        return None, f"asked for (--bootstrap {args.bootstrap})"
    return None, "no --cluster or video_id column: rows are resampled"


def _argument_names(named, score_roles, labels_arg) -> dict:
    """What the user typed for each Python data argument (for error messages)."""
    python = ["y_score"] if len(score_roles) == 1 else ["score_a", "score_b"]
    out = {p: f"{r} ('{named[r]}')" for p, r in zip(python, score_roles)}
    out.update({"y_true": labels_arg, "groups": f"csv ('{named['csv']}')"})
    return out


def _provenance_files(named, score_roles):
    from ._io import sha256

    files = {}
    for role, path in named.items():
        key = role.replace("scores A", "scores_a").replace("scores B", "scores_b")
        real = path if os.path.exists(path) else path.rsplit(":", 1)[0]
        files[key] = {"path": os.path.basename(real), "sha256": sha256(real)}
    return files


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
    import pandas as pd

    from ._compat import PGFDD_FAMILIES
    from ._io import read_results_dir

    for option, value in (
        ("--cluster", args.cluster),
        ("--weights", args.weights),
        ("--attributes", args.attributes),
    ):
        if value is not None:
            raise bad(option, "a demographics CSV to take the column from", "a RESULTS_DIR")
    _, races = PGFDD_FAMILIES[args.dataset]
    sets = read_results_dir(path, args.dataset)
    if sum(len(v[0]) for v in sets.values()) == 0:
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
    groups = pd.DataFrame(
        {
            "gender": pd.Categorical(g, categories=["male", "female"]),
            "race": pd.Categorical(r, categories=races),
        }
    )
    if args.scores == "auto":
        args.scores = "logit"  # the research layout saves the raw class-1 logit
    args.typed.update({"y_score": f"RESULTS_DIR ('{path}') predictions"})
    args.typed.update({"y_true": f"RESULTS_DIR ('{path}') labels"})
    return {
        "scores": [np.concatenate(z)],
        "labels": np.concatenate(y).astype(int),
        "groups": groups,
        "weights": None,
        "clusters": None,
        "bootstrap_reason": _cluster_column(args, pd.DataFrame())[1],
        "provenance": {
            "files": {"results_dir": os.path.basename(os.path.abspath(path))},
            "groups_from": f"research per-group files (--dataset {args.dataset})",
        },
        "compat_sets": sets,
    }


# ---------------------------------------------------------------------------- commands
def _options(args):
    """The shared options, validated (with the Python API's checker) before any file is read."""
    return check_options(
        scores=args.scores,
        threshold=args.threshold,
        n_boot=args.n_boot,
        ci=args.ci,
        seed=args.seed,
        bootstrap=args.bootstrap,
        ci_method=args.ci_method,
        n_perm=args.n_perm,
        drop_nan=args.drop_nan,
        missing_groups=args.missing_groups,
        allow_perfect_scores=args.allow_perfect,
        min_count=args.min_count,
        max_bins=args.max_bins,
    )


def _computation_options(args, d):
    opts = _options(args)
    opts["scores"] = args.scores  # RESULTS_DIR sets logit
    return dict(
        opts,
        reference=args.reference,
        max_order=args.max_order,
        memory_budget=args.memory_budget,
        skip_small_groups=args.skip_small_groups,
        progress=not args.quiet,
        sample_weight=d["weights"],
        clusters=d["clusters"],
        dataset=args.dataset,
        provenance=d["provenance"],
    )


def _with_reason(result, d):
    """The bootstrap's reason in the command line's words (which column, which flag)."""
    import dataclasses

    return dataclasses.replace(
        result, config={**result.config, "bootstrap_reason": d["bootstrap_reason"]}
    )


def _check_output_options(args):
    if args.figures and not args.out:
        raise bad("--figures", "--out DIR to write the figures into", "no --out")


def _report(args):
    from ._audit import audit

    _options(args)
    _check_output_options(args)
    if args.score_col is not None or _looks_like_table(args.inputs):
        return _report_table(args)
    if _looks_like_state(args.inputs):
        return _report_state(args)
    d = _load(args, 1)
    if args.compat and d["groups"].isna().any(axis=None):
        raise bad(
            f"--compat {args.compat}",
            "a gender and a race on every row (the research script has no missing group)",
            f"{int(d['groups'].isna().any(axis=1).sum())} rows without one",
        )
    result = audit(
        d["labels"],
        d["scores"][0],
        d["groups"],
        tolerance=args.tolerance,
        class_names=_class_names(args, d),
        **_computation_options(args, d),
        **_inference_args(args),
    )
    result = _with_reason(result, d)
    if args.compat:
        result = _with_compat(result, args, d)
    _emit(_with_names(result, args), args)
    return _fail_code(result, args)


def _looks_like_table(inputs):
    from ._tables import table_kind

    return len(inputs) == 1 and table_kind(inputs[0]) == "parquet"


def _report_table(args):
    """report TABLE --score-col COLUMN: the table read in batches into an AuditState."""
    import pandas as pd

    from ._tables import read_table_state, table_columns, table_provenance

    if len(args.inputs) != 1 or args.example:
        raise bad(
            "inputs",
            "one TABLE with --score-col (a Parquet file or folder, or a CSV)",
            f"{len(args.inputs)} inputs" + (" and --example" if args.example else ""),
        )
    path = args.inputs[0]
    if args.score_col is None:
        raise bad("--score-col", f"the score column of the table '{path}'", "none")
    for option, value in (("--compat", args.compat),):
        if value is not None:
            raise bad(option, "the files form SCORES [LABELS] CSV (it needs the rows)", value)
    if not args.attributes:
        raise bad("--attributes", f"the attribute columns of the table '{path}'", "none")
    if args.batch_rows < 1:
        raise bad("--batch-rows", "a positive number of rows", str(args.batch_rows))
    columns = table_columns(path)
    cluster, reason = _cluster_column(args, pd.DataFrame(columns=columns))
    attributes = [c.strip() for c in args.attributes.split(",")]
    args.typed.update(
        {
            "y_score": f"TABLE ('{path}') column '{args.score_col}'",
            "y_true": f"TABLE ('{path}') column '{args.label_col}'",
            "groups": f"TABLE ('{path}')",
        }
    )
    opts = _options(args)
    state, info = read_table_state(
        path,
        score=args.score_col,
        label=args.label_col,
        attributes=attributes,
        clusters=cluster,
        weights=args.weights,
        scores=opts["scores"],
        threshold=opts["threshold"],
        pos_label=args.pos_label,
        missing_groups=opts["missing_groups"],
        drop_nan=opts["drop_nan"],
        batch_rows=args.batch_rows,
        progress=not args.quiet,
    )
    if state.n_rows == 0:
        raise bad("TABLE", "at least one row to audit", f"none left of {info['rows_read']}")
    used = [args.score_col, args.label_col, *attributes, cluster, args.weights]
    provenance = {
        "files": {"table": table_provenance(path, info, [c for c in used if c])},
        "groups_from": "columns " + ", ".join(attributes),
        "clusters_from": cluster,
        "example": False,
    }
    return _audit_state(state, args, opts, provenance, reason)


def _audit_state(state, args, opts, provenance, reason):
    """Audit a filled state with the command line's options; print and write as usual."""
    result = state.audit(
        reference=args.reference,
        n_boot=opts["n_boot"],
        ci=opts["ci"],
        seed=opts["seed"],
        bootstrap=opts["bootstrap"],
        ci_method=opts["ci_method"],
        n_perm=opts["n_perm"],
        allow_perfect_scores=opts["allow_perfect_scores"],
        min_count=opts["min_count"],
        max_bins=opts["max_bins"],
        max_order=args.max_order,
        memory_budget=args.memory_budget,
        skip_small_groups=args.skip_small_groups,
        progress=not args.quiet,
        gap_ci=args.gap_ci,
        p_adjust=args.p_adjust,
        tolerance=args.tolerance,
        class_names=args.class_names,
        provenance=provenance,
    )
    result = _with_reason(result, {"bootstrap_reason": reason})
    _emit(_with_names(result, args), args)
    return _fail_code(result, args)


def _looks_like_state(inputs):
    from ._state import MAGIC

    if len(inputs) != 1 or not os.path.isfile(inputs[0]):
        return False
    with open(inputs[0], "rb") as fh:
        return fh.read(len(MAGIC)) == MAGIC


def _report_state(args):
    """report STATE: a saved AuditState (e.g. ``detectors.predict --state``), audited."""
    from ._io import sha256
    from ._state import AuditState

    if args.compat is not None:
        raise bad("--compat", "the files form SCORES [LABELS] CSV (it needs the rows)", args.compat)
    path = args.inputs[0]
    with open(path, "rb") as fh:
        state = AuditState.from_bytes(fh.read())
    if state.n_rows == 0:
        raise bad("STATE", "a state holding at least one row", f"an empty state in '{path}'")
    provenance = {
        "files": {"state": {"path": os.path.basename(path), "sha256": sha256(path)}},
        "groups_from": "a saved audit state (" + ", ".join(state.attributes) + ")",
        "example": False,
    }
    reason = "the state holds clusters" if state.clustered else None
    return _audit_state(state, args, _options(args), provenance, reason)


def _with_names(result, args):
    """Record the detector and test-set names of a table row in the config."""
    import dataclasses

    from ._table import default_names

    config = dict(result.config)
    role = "scores_a" if "names" in config else "scores"
    detector, dataset = default_names(config, role)
    if "names" not in config:
        config["name"] = args.name or detector
    config["dataset_name"] = args.dataset_name or dataset
    return dataclasses.replace(result, config=config)


def _compare_names(args, provenance):
    from ._table import default_names

    if args.names is not None:
        names = [x.strip() for x in args.names.split(",")]
        if len(names) != 2 or not all(names):
            raise bad("--names", "two names A,B", repr(args.names))
        return tuple(names)
    config = {"provenance": provenance}
    names = (default_names(config, "scores_a")[0], default_names(config, "scores_b")[0])
    return names if None not in names and names[0] != names[1] else ("A", "B")


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
        result.groups_table().to_csv(os.path.join(args.out, "groups.csv"), index=False)
        result.gaps_table().to_csv(os.path.join(args.out, "gaps.csv"), index=False)
        if getattr(result, "reference", None) is not None:
            result.reference.to_csv(os.path.join(args.out, "reference.csv"), index=False)
        _write_html(result, args)
    if args.format == "json":
        print(result.to_json())
    else:
        wide = dict(all_gaps=args.all_gaps, all_metrics=args.all_metrics)
        if is_cmp:
            print(format_comparison_text(result, markdown=args.format == "markdown", **wide))
        elif args.format == "markdown":
            print(format_markdown(result, **wide))
        else:
            print(format_text(result, **wide))
    if args.out:
        sys.stderr.write(f"wrote {', '.join(sorted(os.listdir(args.out)))} to {args.out}\n")


def _write_html(result, args):
    try:
        from ._html import write_report
    except ImportError:
        return
    write_report(result, args.out, figures=args.figures)


def _compare(args):
    from ._compare import compare

    _options(args)
    _check_output_options(args)
    for flag, value in (("--tolerance", args.tolerance), ("--fail-on", args.fail_on)):
        if value is not None:
            raise bad(flag, "a report (compare judges changes, not gaps)", repr(value))
    d = _load(args, 2)
    result = compare(
        d["labels"],
        d["scores"][0],
        d["scores"][1],
        d["groups"],
        names=_compare_names(args, d["provenance"]),
        class_names=_class_names(args, d),
        **_computation_options(args, d),
        **_inference_args(args),
    )
    _emit(_with_names(_with_reason(result, d), args), args)
    return 0


def _table(args):
    from ._table import table

    result = table(
        args.runs,
        names=args.names,
        datasets=args.datasets,
        rows=args.rows,
        family=args.family,
        metrics=args.metrics,
        digits=args.digits,
    )
    text = result.render(args.format, args.out)
    sys.stdout.write(f"wrote {args.out}\n" if args.out else text)
    return 0


def main(argv=None) -> int:
    """Run the command line; return the exit code (2 for bad input, with one line on stderr).

    >>> main(["report", "--example", "--n-boot", "-1"])
    2
    """
    args = build_parser().parse_args(argv)
    args.typed = {}  # Python data argument -> what the user typed, for error messages
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("always", UserWarning)
            try:
                return {"report": _report, "compare": _compare, "table": _table}[args.command](args)
            finally:
                shown = dict.fromkeys(str(w.message).splitlines()[0] for w in caught)
                for line in shown:  # one line each, never a raw Python warning
                    sys.stderr.write(f"fairaudit: warning: {line}\n")
    except FairauditError as exc:
        sys.stderr.write(f"fairaudit: error: {exc.render(cli=True, names=args.typed)}\n")
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
