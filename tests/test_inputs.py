"""Inputs from Python: mistakes refused before computing, honest defaults, one option checker.

Each case reproduces a problem of issues 10 and 9 (wrong numbers with exit code 0, options
silently truncated, keys that collide) and failed before the input checks existed.
"""

import inspect

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import fairaudit
from fairaudit import FairauditError
from fairaudit._cli import build_parser
from fairaudit._options import DEFAULTS
from fairaudit._validation import as_labels


def data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = 1 / (1 + np.exp(-(rng.normal(size=n) + 2 * y - 1)))
    groups = pd.DataFrame(
        {
            "gender": rng.choice(["male", "female"], n),
            "race": rng.choice(["asian", "white", "black"], n),
        }
    )
    video = np.arange(n) // 4  # four frames per video, one group per video
    groups.loc[:, ["gender", "race"]] = groups.iloc[video * 4].to_numpy()
    return y, p, groups, video


def fast(**kw):
    return dict(dict(n_boot=0, min_count=1), **kw)


def message(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text and "np.float" not in text and "np.int" not in text, text
    return text


# ---------------------------------------------------------------------- labels given as scores
def test_labels_given_as_scores_are_refused_with_their_likely_cause():
    y, _, groups, _ = data()
    with pytest.raises(FairauditError) as e:
        fairaudit.audit(y, y.astype(float), groups, **fast())
    text = message(e)
    assert text.startswith("y_score: ") and "labels themselves" in text
    assert "allow_perfect_scores=True" in text
    with pytest.raises(FairauditError, match="labels inverted"):
        fairaudit.audit(y, 1 - y, groups, **fast())


def test_perfect_classifier_needs_the_explicit_override():
    y, _, groups, _ = data()
    r = fairaudit.audit(y, y, groups, allow_perfect_scores=True, **fast())
    assert r.overall["auc"] == 1.0 and r.overall["fpr"] == 0.0


def test_hard_predictions_that_differ_from_the_labels_stay_valid():
    y, _, groups, _ = data()
    hard = y.copy()
    hard[:7] = 1 - hard[:7]
    r = fairaudit.audit(y, hard, groups, **fast())
    assert r.overall["auc"] == pytest.approx(roc_auc_score(y, hard))


def test_compare_with_the_labels_as_detector_b_is_refused():
    y, p, groups, _ = data()
    with pytest.raises(FairauditError) as e:
        fairaudit.compare(y, p, y, groups, **fast())
    assert message(e).startswith("score_b: ") and "score file left out" in str(e.value)


# ---------------------------------------------------------------------- score rules
def test_percentages_under_auto_are_refused_naming_the_options():
    y, p, groups, _ = data()
    with pytest.raises(FairauditError) as e:
        fairaudit.audit(y, 100 * p, groups, **fast())
    text = message(e)
    assert "percentages?" in text
    assert 'scores="percent"' in text and 'scores="logit"' in text


def test_percent_rule_equals_probabilities():
    y, p, groups, _ = data()
    pct = fairaudit.audit(y, 100 * p, groups, scores="percent", **fast())
    prob = fairaudit.audit(y, p, groups, **fast())
    assert pct.config["score_rule"] == "percent"
    pd.testing.assert_frame_equal(pct.groups, prob.groups)
    with pytest.raises(FairauditError, match=r"values in \[0, 100\]"):
        fairaudit.audit(y, 150 * p, groups, scores="percent", **fast())


@pytest.mark.parametrize(
    "transform, found",
    [
        (lambda z: 5 * (z - z.min()) / np.ptp(z), "not probabilities"),  # one-sided values
        (lambda z: -np.exp(z), "only negative values"),
        (lambda z: z - z.min() - 0.05, "mostly on one side of 0"),
    ],
)
def test_auto_reads_values_outside_0_1_as_logits_only_when_they_look_like_logits(transform, found):
    y, p, groups, _ = data()
    z = np.log(p) - np.log1p(-p)
    assert fairaudit.audit(y, z, groups, **fast()).config["score_rule"] == "logit"
    odd = transform(z)
    with pytest.raises(FairauditError, match=found):
        fairaudit.audit(y, odd, groups, **fast())
    assert fairaudit.audit(y, odd, groups, scores="logit", **fast()).config["score_rule"] == (
        "logit"
    )


def test_two_columns_of_probabilities_are_not_read_as_logits():
    y, p, groups, _ = data()
    with pytest.raises(FairauditError, match="each row summing to 1"):
        fairaudit.audit(y, np.c_[1 - p, p], groups, **fast())
    z = np.log(p) - np.log1p(-p)
    two = fairaudit.audit(y, np.c_[np.zeros_like(z), z], groups, **fast())
    assert two.config["score_rule"] == "logits2"


# ---------------------------------------------------------------------- defaults
SHARED = [
    "scores",
    "threshold",
    "n_boot",
    "n_perm",
    "ci",
    "ci_method",
    "bootstrap",
    "seed",
    "min_count",
    "max_bins",
    "missing_groups",
    "drop_nan",
]


def test_audit_compare_and_the_command_line_share_their_defaults():
    audit_defaults = inspect.signature(fairaudit.audit).parameters
    compare_defaults = inspect.signature(fairaudit.compare).parameters
    cli = build_parser().parse_args(["report"])
    for name in SHARED:
        assert audit_defaults[name].default == DEFAULTS[name], name
        assert compare_defaults[name].default == DEFAULTS[name], name
        assert getattr(cli, name) == DEFAULTS[name], name
    assert DEFAULTS["n_boot"] == 1000


def test_default_audit_has_intervals_like_the_command_line():
    y, p, groups, _ = data(n=200)
    r = fairaudit.audit(y, p, groups, n_perm=0)
    assert r.config["n_boot"] == 1000
    assert np.isfinite(r.gaps["lo"]).any()


def test_clusters_imply_the_cluster_scheme_and_say_why():
    y, p, groups, video = data()
    r = fairaudit.audit(y, p, groups, clusters=video, n_boot=30, n_perm=30, min_count=1)
    assert r.config["bootstrap"] == "cluster"
    assert "clusters given" in r.config["bootstrap_reason"]
    r = fairaudit.audit(y, p, groups, n_boot=30, n_perm=0, min_count=1)
    assert r.config["bootstrap"] == "iid" and "no clusters" in r.config["bootstrap_reason"]
    r = fairaudit.audit(
        y, p, groups, clusters=video, bootstrap="iid", n_boot=30, n_perm=0, min_count=1
    )
    assert r.config["bootstrap"] == "iid" and r.config["bootstrap_reason"] == "asked for"
    c = fairaudit.compare(y, p, p**2, groups, clusters=video, n_boot=20, min_count=1)
    assert c.config["bootstrap"] == "cluster" and "clusters given" in c.config["bootstrap_reason"]


# ---------------------------------------------------------------------- labels (issue 9)
def test_text_pos_label_on_boolean_labels_is_read_as_a_boolean():
    y = np.array([True, False, True, False])
    assert as_labels(y, pos_label="False").tolist() == [0, 1, 0, 1]
    assert as_labels(y, pos_label="true").tolist() == [1, 0, 1, 0]
    yy, p, groups, _ = data()
    inverted = fairaudit.audit(yy.astype(bool), p, groups, pos_label="False", **fast())
    direct = fairaudit.audit(1 - yy, p, groups, **fast())
    assert inverted.overall["auc"] == direct.overall["auc"] < 0.5


@pytest.mark.parametrize(
    "labels, pos_label, found",
    [
        (np.array([1.0, 0.0, np.nan, 1.0]), 1, "missing values"),
        (np.array(["fake", "real", None, "fake"], dtype=object), "fake", "missing values"),
        (np.array(["fake", "real", "unknown", "fake"]), "fake", "3 values"),
        (np.array([7, 3, 5, 7]), 7, "3 values"),
        (np.array([7, 3, 3, 7]), "seven", "an integer"),
        (np.array([True, False, True, False]), "yes", "True or False"),
        (np.array(["fake", "real", "real", "fake"]), "Fake", "occurs in the labels"),
    ],
)
def test_labels_with_pos_label_need_exactly_two_values(labels, pos_label, found):
    with pytest.raises(FairauditError) as e:
        as_labels(labels, pos_label=pos_label)
    assert found in message(e)


def test_text_labels_with_pos_label():
    y, p, groups, _ = data()
    text = np.where(y == 1, "fake", "real")
    r = fairaudit.audit(text, p, groups, pos_label="fake", **fast())
    assert r.overall["auc"] == pytest.approx(roc_auc_score(y, p))
    with pytest.raises(FairauditError, match="pos_label"):
        fairaudit.audit(text, p, groups, **fast())


# ---------------------------------------------------------------------- group keys (issue 9)
def test_attribute_values_with_plus_that_collide_are_refused():
    n = 8
    y = np.tile([0, 1], n // 2)
    p = np.linspace(0.1, 0.9, n)
    groups = {"a": ["p", "p+q"] * (n // 2), "b": ["q+r", "r", "r", "q+r"] * (n // 4)}
    with pytest.raises(FairauditError) as e:
        fairaudit.audit(y, p, groups, **fast())
    assert "'p+q+r'" in message(e) and "rename values" in str(e.value)


def test_attribute_values_with_plus_that_stay_unambiguous_are_kept():
    y, p, groups, _ = data()
    age = np.where(np.arange(y.size) % 2 == 0, "65+", "18-64")
    r = fairaudit.audit(y, p, {"age": age, "gender": groups["gender"]}, **fast())
    assert "65++male" in set(r.counts["group"])
    assert r.groups.loc[("age", "65+"), "n"] == (age == "65+").sum()


def test_attribute_names_with_plus_that_collide_are_refused():
    y, p, groups, _ = data()
    cols = {"a": groups["gender"], "b": groups["race"], "a+b": groups["race"]}
    with pytest.raises(FairauditError) as e:
        fairaudit.audit(y, p, cols, **fast())
    assert "'a+b'" in message(e) and "rename columns" in str(e.value)
    one = fairaudit.audit(y, p, {"gender+race": groups["race"]}, **fast())
    assert one.families == ["gender+race"]
    with pytest.raises(FairauditError, match="'overall'"):
        fairaudit.audit(y, p, {"overall": groups["race"]}, **fast())


# ---------------------------------------------------------------------- options (issue 9)
@pytest.mark.parametrize(
    "option, value, expected",
    [
        ("seed", -1, "non-negative integer"),
        ("seed", 1.5, "non-negative integer"),
        ("seed", True, "non-negative integer"),
        ("min_count", -3, "non-negative integer"),
        ("n_boot", 10.0, "non-negative integer"),
        ("n_perm", -1, "non-negative integer"),
        ("max_bins", 4, "at least 16"),
        ("ci", 1.5, "strictly between 0 and 1"),
        ("threshold", np.float32(1.0), "strictly between 0 and 1"),
        ("bootstrap", "boot", "one of iid, stratified, cluster"),
        ("missing_groups", "ignore", "one of error, drop, keep"),
        ("drop_nan", "yes", "True or False"),
    ],
)
def test_bad_options_one_clear_error_in_audit_and_compare(option, value, expected):
    y, p, groups, _ = data(n=100)
    for run in (
        lambda **kw: fairaudit.audit(y, p, groups, **kw),
        lambda **kw: fairaudit.compare(y, p, p**2, groups, **kw),
    ):
        with pytest.raises(FairauditError) as e:
            run(**dict(fast(), **{option: value}))
        text = message(e)
        assert text.startswith(f"{option}: expected") and expected in text
        assert "--" not in text.split(":")[0]  # Python names, not flags


def test_numpy_scalars_are_accepted_where_they_make_sense():
    y, p, groups, _ = data(n=200)
    plain = fairaudit.audit(y, p, groups, threshold=0.4, ci=0.9, n_boot=40, seed=3, n_perm=0)
    numpy = fairaudit.audit(
        y,
        p,
        groups,
        threshold=np.float32(0.4),
        ci=np.float32(0.9),
        n_boot=np.int64(40),
        seed=np.uint8(3),
        n_perm=np.int32(0),
    )
    assert numpy.config["ci"] == 0.9 and numpy.config["threshold"] == 0.4
    pd.testing.assert_frame_equal(plain.gaps, numpy.gaps)


def test_python_errors_name_python_arguments():
    y, p, groups, _ = data(n=100)
    q = p.copy()
    q[3] = np.nan
    with pytest.raises(FairauditError) as e:
        fairaudit.audit(y, q, groups, **fast())
    assert "drop_nan=True" in message(e) and "--drop-nan" not in str(e.value)
    with pytest.raises(FairauditError) as e:
        fairaudit.audit(y, p, groups, bootstrap="cluster", **fast())
    assert message(e).startswith('bootstrap="cluster": expected cluster ids (clusters)')
    with pytest.raises(FairauditError) as e:
        fairaudit.audit(np.where(y == 1, 2.5, 0.0), p, groups, **fast())
    assert message(e).startswith("y_true: ") and "pos_label" in str(e.value)


# ---------------------------------------------------------------------- tables and series
def test_dataframe_with_column_names_equals_arrays():
    y, p, groups, video = data()
    df = groups.assign(label=y, prob=p, video_id=video)
    by_name = fairaudit.audit(
        df,
        y_true="label",
        y_score="prob",
        groups=["gender", "race"],
        clusters="video_id",
        n_boot=30,
        n_perm=30,
    )
    by_array = fairaudit.audit(y, p, groups, clusters=video, n_boot=30, n_perm=30)
    pd.testing.assert_frame_equal(by_name.gaps, by_array.gaps)
    assert by_name.config["bootstrap"] == "cluster"
    series = fairaudit.audit(y, p, [df["gender"], df["race"]], **fast())
    assert series.families == ["gender", "race", "gender+race"]
    pd.testing.assert_frame_equal(series.groups, fairaudit.audit(y, p, groups, **fast()).groups)


def test_compare_takes_a_dataframe_with_column_names():
    y, p, groups, _ = data()
    df = groups.assign(label=y, a=p, b=p**2)
    by_name = fairaudit.compare(
        df, y_true="label", score_a="a", score_b="b", groups=["gender", "race"], n_boot=20
    )
    by_array = fairaudit.compare(y, p, p**2, groups, n_boot=20)
    pd.testing.assert_frame_equal(by_name.differences, by_array.differences)


def test_column_names_are_checked():
    y, p, groups, _ = data()
    df = groups.assign(label=y, prob=p)
    with pytest.raises(FairauditError, match="'probability'"):
        fairaudit.audit(df, y_true="label", y_score="probability", groups=["race"], **fast())
    with pytest.raises(FairauditError, match="y_true: expected the name of the label column"):
        fairaudit.audit(df, y_score="prob", groups=["race"], **fast())
    with pytest.raises(FairauditError, match="clusters: expected an array"):
        fairaudit.audit(y, p, groups, clusters="video_id", **fast())
    with pytest.raises(FairauditError, match=r"groups\[1\]: expected a Series with a name"):
        fairaudit.audit(y, p, [df["race"], pd.Series(y)], **fast())


# ---------------------------------------------------------------------- missing groups
def test_missing_attribute_values_error_drop_or_keep():
    y, p, groups, _ = data()
    race = groups["race"].to_numpy(dtype=object)
    race[[5, 9, 11]] = None
    g = {"gender": groups["gender"], "race": race}
    with pytest.raises(FairauditError) as e:
        fairaudit.audit(y, p, g, **fast())
    assert 'missing_groups="drop"' in message(e) and 'missing_groups="keep"' in str(e.value)
    dropped = fairaudit.audit(y, p, g, missing_groups="drop", **fast())
    assert dropped.config["n_rows"] == y.size - 3
    assert dropped.config["n_dropped_missing_groups"] == 3
    assert any("dropped 3 rows without an attribute value" in w for w in dropped.warnings)
    kept = fairaudit.audit(y, p, g, missing_groups="keep", **fast())
    assert kept.groups.loc[("race", "unknown"), "n"] == 3
    assert list(kept.groups.loc["race"].index)[-1] == "unknown"
    cmp = fairaudit.compare(y, p, p**2, g, missing_groups="drop", n_boot=10, min_count=1)
    assert cmp.config["n_rows"] == y.size - 3 and cmp.config["n_dropped_missing_groups"] == 3


# ---------------------------------------------------------------------- dependencies (issue 10)
IMPORT_NAME = {"scikit-learn": "sklearn", "pyyaml": "yaml", "pillow": "PIL"}


def _requirement_names(entries):
    import re

    return [re.split(r"[<>=!~\[ ;]", e, maxsplit=1)[0].lower() for e in entries]


def _imported_by(package_dirs) -> set:
    import ast
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    names = set()
    for d in package_dirs:
        for path in (root / d).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names.add(node.module.split(".")[0])
    return names


def test_every_runtime_dependency_is_imported_by_runtime_code():
    import pathlib

    tomllib = pytest.importorskip("tomllib")
    root = pathlib.Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = _requirement_names(project["dependencies"])
    detectors = _requirement_names(project["optional-dependencies"]["detectors"])
    assert "fairlearn" not in core and "seaborn" not in core  # oracles of tests, not runtime
    assert "fairlearn" in _requirement_names(project["optional-dependencies"]["test"])
    assert "fairlearn" in _requirement_names(project["optional-dependencies"]["bench"])
    used_core = _imported_by(["fairaudit"])
    used_detectors = _imported_by(["detectors"])
    for name in core:
        assert IMPORT_NAME.get(name, name) in used_core, name
    for name in detectors:
        assert IMPORT_NAME.get(name, name) in used_detectors, name
    assert "torch" not in used_core  # the audit core never imports torch


def test_groups_given_as_a_tuple_of_things_is_one_clear_error():
    import fairaudit

    y = np.array([0, 1, 0, 1])
    with pytest.raises(fairaudit.FairauditError, match="groups: expected a DataFrame"):
        fairaudit.audit(y, np.array([0.1, 0.9, 0.2, 0.8]), (y, [1.0, 2.0], {"a": 1}), n_boot=0)
