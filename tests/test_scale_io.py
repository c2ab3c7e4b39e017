"""Out of core and across machines (issue 12): report TABLE reads Parquet files, folders and
CSVs in batches and gives the in-memory audit's numbers; fairaudit.dask on a local
multi-process cluster and the README's Spark recipe give them too."""

import json
import os
import shutil
import sys
import tracemalloc

import numpy as np
import pandas as pd
import pytest

import fairaudit
from fairaudit._cli import main

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _frame(n, seed=0, decimals=4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    g = rng.choice(["male", "female"], n)
    r = rng.choice(["asian", "white", "black", "others"], n)
    shift = np.where(r == "black", 0.4, 0.0) * (y == 0)
    p = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.6 * y - 0.6 + shift)))
    p = np.round(p, decimals) if decimals is not None else p
    video = (
        (np.arange(n) // 8) * 8
        + (g == "male") * 4
        + np.searchsorted(["asian", "black", "others", "white"], r)
    )  # videos inside one group, as the permutation test needs
    return pd.DataFrame(
        {
            "prob": p.astype(np.float32),
            "label": y,
            "gender": g,
            "race": r,
            "video_id": video,
            "w": rng.choice([0.5, 1.0, 2.0], n),
        }
    )


def _read_csv(path):
    """A CSV as pandas reads it, every float parsed exactly as pyarrow parses it (pandas 3
    does by default; pandas 2 when asked)."""
    exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    return pd.read_csv(path, **exact)


def _in_memory(df, **kw):
    return fairaudit.audit(df, y_true="label", y_score="prob", groups=["gender", "race"], **kw)


def _report(args, capsys):
    code = main(["report", *args, "--format", "json", "--quiet"])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if code == 0 else None), out.err


def _numbers(doc):
    groups = {
        (g["family"], g["group"], m): v["value"]
        for g in doc["groups"]
        for m, v in g["metrics"].items()
    }
    lims = {
        (g["family"], g["group"], m): (v["lo"], v["hi"])
        for g in doc["groups"]
        for m, v in g["metrics"].items()
    }
    gaps = {
        (g["family"], g["name"]): (g["value"], g["lo"], g["hi"], g["p_value"]) for g in doc["gaps"]
    }
    return groups, lims, gaps


def _same_doc(a, b):
    for x, y in zip(_numbers(a), _numbers(b)):
        assert x == y


# ------------------------------------------------------------------ Parquet and CSV, 10^6 rows
SIZES = [50_000, pytest.param(1_000_000, marks=pytest.mark.slow)]


@pytest.fixture(scope="module", params=SIZES)
def tables(request, tmp_path_factory):
    """Rows (probabilities to 4 decimals: the exact regime) as one Parquet file, a
    hive-partitioned folder of Parquet files and a CSV."""
    df = _frame(request.param, seed=1)
    root = tmp_path_factory.mktemp("tables")
    pq.write_table(pa.Table.from_pandas(df), root / "one.parquet", row_group_size=200_000)
    folder = root / "parts"
    pq.write_to_dataset(pa.Table.from_pandas(df), folder, partition_cols=["gender"])
    df.to_csv(root / "one.csv", index=False)
    return df, root


def test_parquet_file_folder_and_csv_give_the_in_memory_audit(tables, capsys):
    df, root = tables
    opts = ["--attributes", "gender,race", "--n-boot", "40", "--n-perm", "30", "--seed", "5"]
    mem = _in_memory(df, n_boot=40, n_perm=30, seed=5, clusters="video_id")
    mem_doc = json.loads(mem.to_json())
    # float32 scores as decimal text: other numbers (parsed exactly, by pandas as by pyarrow)
    text = _read_csv(root / "one.csv")
    text_doc = json.loads(
        _in_memory(text, n_boot=40, n_perm=30, seed=5, clusters="video_id").to_json()
    )
    for table in (root / "one.parquet", root / "parts", root / "one.csv"):
        code, doc, err = _report([str(table), "--score-col", "prob", *opts], capsys)
        assert code == 0, err
        assert doc["config"]["state"]["scores"] == "exact"
        assert doc["config"]["bootstrap"] == "cluster"  # the table's video_id column
        assert doc["config"]["provenance"]["files"]["table"]["rows_read"] == len(df)
        _same_doc(text_doc if table.suffix == ".csv" else mem_doc, doc)


def test_batches_keep_memory_flat_in_the_number_of_rows(tmp_path):
    from fairaudit._tables import read_table_state

    peaks = []
    for n in (200_000, 800_000):
        path = tmp_path / f"t{n}.parquet"
        pq.write_table(
            pa.Table.from_pandas(_frame(n, seed=2, decimals=None)), path, row_group_size=50_000
        )
        tracemalloc.start()
        state, _ = read_table_state(
            path,
            score="prob",
            attributes=["gender", "race"],
            batch_rows=50_000,
            exact_cap=0,
            grid_bits=10,
        )
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert state.n_rows == n
    assert peaks[1] < 1.2 * peaks[0]  # 4x the rows, the same batches and grid


def test_grid_regime_table_stays_within_its_bounds(tmp_path, capsys):
    df = _frame(300_000, seed=3, decimals=None)
    path = tmp_path / "t.parquet"
    df.to_parquet(path)
    code, doc, err = _report(
        [
            str(path),
            "--score-col",
            "prob",
            "--attributes",
            "gender,race",
            "--n-boot",
            "0",
            "--cluster",
            "video_id",
        ],
        capsys,
    )
    assert code == 0, err
    info = doc["config"]["state"]
    assert info["scores"] == "grid"  # more distinct scores than the exact cap
    mem, _, _ = _numbers(json.loads(_in_memory(df, n_boot=0).to_json()))
    got, _, _ = _numbers(doc)
    for key, value in mem.items():
        bound = info["error_bound"].get(key[2], 0.0)
        assert value is None and got[key] is None or abs(got[key] - value) <= bound, key


def test_table_options_work_as_for_files(tmp_path, capsys):
    df = _frame(20_000, seed=4)
    df["label"] = np.where(df["label"] == 1, "fake", "real")
    df.loc[::97, "race"] = None
    df.loc[5::89, "prob"] = np.nan
    path = tmp_path / "t.parquet"
    df.to_parquet(path)
    out = tmp_path / "out"
    args = [
        str(path),
        "--score-col",
        "prob",
        "--attributes",
        "gender,race",
        "--n-boot",
        "60",
        "--pos-label",
        "fake",
        "--missing-groups",
        "keep",
        "--drop-nan",
        "--weights",
        "w",
        "--bootstrap",
        "iid",
        "--reference",
        "race=white",
        "--tolerance",
        "fpr_range=0.5",
        "--out",
        str(out),
    ]
    code, doc, err = _report(args, capsys)
    assert code == 0, err
    mem = fairaudit.audit(
        df,
        y_true="label",
        y_score="prob",
        groups=["gender", "race"],
        pos_label="fake",
        missing_groups="keep",
        drop_nan=True,
        sample_weight="w",
        bootstrap="iid",
        n_boot=60,
        reference="race=white",
        tolerance="fpr_range=0.5",
    )
    _same_doc(json.loads(mem.to_json()), doc)
    assert doc["config"]["n_dropped"] == int(df["prob"].isna().sum())
    assert ("race", "unknown") in {(g["family"], g["group"]) for g in doc["groups"]}
    assert doc["reference"] and doc["config"]["weighted"]
    assert sorted(os.listdir(out)) == [
        "gaps.csv",
        "groups.csv",
        "reference.csv",
        "report.html",
        "report.json",
    ]
    assert (
        main(
            [
                "report",
                *args[:-2],
                "--fail-on",
                "exceeds",
                "--tolerance",
                "fpr_range=0.0001",
                "--quiet",
            ]
        )
        == 1
    )
    capsys.readouterr()


def test_a_progress_bar_counts_rows_on_a_terminal_only(tmp_path, capsys, monkeypatch):
    from fairaudit._tables import read_table_state

    path = tmp_path / "t.parquet"
    _frame(3000, seed=11).to_parquet(path)
    read_table_state(path, score="prob", attributes=["race"], batch_rows=1000, progress=True)
    assert capsys.readouterr().err == ""  # not a terminal: no bar
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    read_table_state(path, score="prob", attributes=["race"], batch_rows=1000, progress=True)
    err = capsys.readouterr().err
    assert "reading" in err and "/3.00k" in err and "rows/s" in err  # total: the rows
    read_table_state(path, score="prob", attributes=["race"], batch_rows=1000, progress=False)
    assert capsys.readouterr().err == ""  # --quiet


@pytest.mark.parametrize(
    "extra, flag, found",
    [
        (["--score-col", "nope"], "--score-col", "unknown 'nope'"),
        (["--score-col", "prob", "--attributes", "gender,shoe"], "--attributes", "'shoe'"),
        (["--score-col", "prob", "--compat", "pg-fdd"], "--compat", "it needs the rows"),
        (["--score-col", "prob"], "--attributes", "none"),
        (["--score-col", "logit"], "--scores", "not probabilities"),
        ([], "--score-col", "none"),
    ],
)
def test_table_mistakes_are_one_line_errors(tmp_path, capsys, extra, flag, found):
    df = _frame(500, seed=6)
    df["logit"] = np.log(df["prob"] / (1 - df["prob"]))
    path = tmp_path / "t.parquet"
    df.to_parquet(path)
    attrs = (
        []
        if "--attributes" in extra or extra == ["--score-col", "prob"]
        else ["--attributes", "gender,race"]
    )
    code = main(["report", str(path), *extra, *attrs, "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"fairaudit: error: {flag}") and found in err[0], err[0]


def test_logit_tables_need_their_rule_named(tmp_path, capsys):
    df = _frame(3000, seed=7)
    df["logit"] = np.log(df["prob"] / (1 - df["prob"]))
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    code, doc, err = _report(
        [
            str(path),
            "--score-col",
            "logit",
            "--scores",
            "logit",
            "--attributes",
            "gender,race",
            "--n-boot",
            "0",
            "--bootstrap",
            "iid",
        ],
        capsys,
    )
    assert code == 0, err
    text = _read_csv(path)  # the rows as the table holds them
    mem = fairaudit.audit(
        text, y_true="label", y_score="logit", groups=["gender", "race"], scores="logit", n_boot=0
    )
    _same_doc(json.loads(mem.to_json()), doc)


# ------------------------------------------------------------------ Dask, on processes
@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("dask.dataframe")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as c,
        distributed.Client(c) as client,
    ):
        yield client


@pytest.mark.parametrize("n", SIZES)
def test_dask_audit_on_a_multi_process_cluster_equals_the_in_memory_audit(cluster, n):
    import dask.dataframe as dd

    assert len(cluster.scheduler_info()["workers"]) == 2
    df = _frame(n, seed=8)
    ddf = dd.from_pandas(df, npartitions=12)
    kw = dict(n_boot=40, n_perm=30, seed=2, reference="white")
    got = fairaudit.dask.audit(
        ddf, score="prob", attributes=["gender", "race"], clusters="video_id", split_every=3, **kw
    )
    mem = _in_memory(df, clusters="video_id", **kw)
    assert got.config["state"]["scores"] == "exact" and got.config["state"]["rows"] == n
    pd.testing.assert_frame_equal(got.groups_long, mem.groups_long)
    pd.testing.assert_frame_equal(got.gaps, mem.gaps)
    pd.testing.assert_frame_equal(got.reference, mem.reference)


def test_dask_grid_regime_stays_within_its_bounds(cluster):
    import dask.dataframe as dd

    df = _frame(200_000, seed=9, decimals=None)
    got = fairaudit.dask.audit(
        dd.from_pandas(df, npartitions=5),
        score="prob",
        attributes=["gender", "race"],
        exact_cap=5000,
        n_boot=0,
    )
    mem = _in_memory(df, n_boot=0)
    info = got.config["state"]
    assert info["scores"] == "grid"
    diff = (
        got.groups_long.set_index(["family", "group", "metric"])["value"]
        - mem.groups_long.set_index(["family", "group", "metric"])["value"]
    ).abs()
    for m, d in diff.groupby(level="metric"):
        assert d.max() <= info["error_bound"].get(m, 0.0), m


# ------------------------------------------------------------------ Spark, the README's recipe
def _spark_or_skip():
    try:
        import pyspark  # noqa: F401
    except ImportError:
        pytest.skip("pyspark is not installed (pip install pyspark) for the Spark recipe")
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        pytest.skip("no Java runtime (java on PATH or JAVA_HOME) for the Spark recipe")


@pytest.mark.slow
def test_spark_recipe_of_the_readme_gives_the_in_memory_audit():
    _spark_or_skip()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    df = _frame(50_000, seed=10)
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    try:
        sdf = spark.createDataFrame(df[["prob", "label", "gender", "race"]]).repartition(4)
        # --- the recipe, as in the README
        from fairaudit import AuditState

        def to_states(frames):
            state = AuditState(["gender", "race"], scores="prob")
            for f in frames:
                state.update(f["label"], f["prob"], f[["gender", "race"]])
            yield pd.DataFrame({"state": [state.to_bytes()]})

        parts = sdf.mapInPandas(to_states, schema="state binary").collect()
        result = AuditState.merge_all(row.state for row in parts).audit(n_boot=30)
        # ---
    finally:
        spark.stop()
    mem = _in_memory(df, n_boot=30, bootstrap="iid")
    pd.testing.assert_frame_equal(result.groups_long, mem.groups_long)
    pd.testing.assert_frame_equal(result.gaps, mem.gaps)
