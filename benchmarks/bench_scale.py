"""An audit of 10^8 rows out of core: fairaudit report TABLE vs DuckDB's confusion counts.

Writes a Parquet data set (score float32, label, gender, race, video id; FF++-like group
imbalance, 32 frames per video) in row groups of 2^20 rows, streamed out (never held in
memory), into a temporary folder. Then, each in a fresh process on the same file:

* fairaudit: the table read in batches into an AuditState, then the audit of the state the
  issue asks for: point estimates of every metric for three families (gender, race,
  gender+race) and 1000 iid bootstrap replicates (intervals of every metric and gap); then
  again with the command line's default permutation test as well (1000 permutations: gap
  p-values and their adjustment), reported apart;
* DuckDB: one GROUP BY computing only the per-group confusion counts (TP, FP, TN, FN of the
  8 gender x race groups) on the same file: the SQL route a user would otherwise take
  (three runs a turn).

The three are run in turns, ``--rounds`` times (default 2), and each keeps its best time, so
that a change of the machine's load between them weighs less. Reports rows per second, the
audit process's peak resident memory and the ratio of the times. Last line: one JSON object.
``--rows`` runs smaller sizes; 10^8 rows need about 0.6 GB of disk and minutes. Timings
depend on the machine's load (recorded as load averages); memory does not.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from _common import FFPP_COUNTS, RACES

CHUNK = 1 << 20
FRAMES_PER_VIDEO = 32


def write_parquet(path, rows, seed=0):
    """The data set, one row group of 2^20 rows at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    genders, races = pa.array(["male", "female"]), pa.array(list(RACES))
    schema = pa.schema(
        [
            ("prob", pa.float32()),
            ("label", pa.int8()),
            ("gender", pa.dictionary(pa.int8(), pa.string())),
            ("race", pa.dictionary(pa.int8(), pa.string())),
            ("video_id", pa.int64()),
        ]
    )
    share = FFPP_COUNTS / FFPP_COUNTS.sum()
    shifts = np.array([0.0, -0.1, 0.5, 0.2, 0.0, 0.0, 0.6, 0.4])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, CHUNK):
            rng = np.random.default_rng([seed, start])
            m = min(CHUNK, rows - start)
            video = (start + np.arange(m)) // FRAMES_PER_VIDEO
            first = video[0]
            group_of_video = np.random.default_rng([seed, 1, int(first)]).choice(
                8, int(video[-1] - first + 1), p=share
            )
            ids = group_of_video[video - first]  # every frame of a video in its group
            y = rng.integers(0, 2, m).astype(np.int8)
            z = rng.normal(size=m) + 2.0 * y - 1.0 + shifts[ids] * (y == 0)
            table = pa.table(
                {
                    "prob": (1.0 / (1.0 + np.exp(-z))).astype(np.float32),
                    "label": y,
                    "gender": pa.DictionaryArray.from_arrays(
                        pa.array((ids >= 4).astype(np.int8)), genders
                    ),
                    "race": pa.DictionaryArray.from_arrays(
                        pa.array((ids % 4).astype(np.int8)), races
                    ),
                    "video_id": video,
                },
                schema=schema,
            )
            writer.write_table(table, row_group_size=CHUNK)


def run_fairaudit(path, n_boot, n_perm):
    """Read and audit in this process; returns the figures (peak memory of this process)."""
    from fairaudit._tables import read_table_state

    t0 = time.perf_counter()
    state, _ = read_table_state(path, score="prob", attributes=["gender", "race"])
    t1 = time.perf_counter()
    result = state.audit(n_boot=n_boot, n_perm=n_perm, bootstrap="iid")
    t2 = time.perf_counter()
    info = result.config["state"]
    return {
        "read_s": t1 - t0,
        "audit_s": t2 - t1,
        "fairaudit_s": t2 - t0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "state_entries": info["entries"],
        "scores": info["scores"],
        "error_bound": info.get("error_bound", {}),
        "n_gaps": int(len(result.gaps)),
        "families": result.families,
    }


def run_duckdb(path, repeat=3):
    import duckdb

    query = f"""
        SELECT gender, race,
               SUM(CASE WHEN label = 1 AND prob >= 0.5 THEN 1 ELSE 0 END) AS tp,
               SUM(CASE WHEN label = 0 AND prob >= 0.5 THEN 1 ELSE 0 END) AS fp,
               SUM(CASE WHEN label = 0 AND prob < 0.5 THEN 1 ELSE 0 END) AS tn,
               SUM(CASE WHEN label = 1 AND prob < 0.5 THEN 1 ELSE 0 END) AS fn
        FROM read_parquet('{path}') GROUP BY gender, race"""
    con = duckdb.connect()
    times, rows = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        rows = con.execute(query).fetchall()
        times.append(time.perf_counter() - t)
    return {
        "duckdb_s": min(times),
        "duckdb_runs_s": times,
        "duckdb_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "duckdb_groups": len(rows),
        "duckdb_threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
    }


def _in_fresh_process(what, path, n_boot, n_perm=0):
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--run",
            what,
            "--file",
            path,
            "--n-boot",
            str(n_boot),
            "--n-perm",
            str(n_perm),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10**8)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--n-perm", type=int, default=1000, help="permutations of the second run")
    ap.add_argument("--dir", default=None, help="folder for the data set (default: a temp one)")
    ap.add_argument("--keep", action="store_true", help="keep the data set")
    ap.add_argument("--rounds", type=int, default=2, help="turns of the three runs (best kept)")
    ap.add_argument("--run", choices=["fairaudit", "duckdb"], help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run == "fairaudit":
        print(json.dumps(run_fairaudit(args.file, args.n_boot, args.n_perm)))
        return
    if args.run == "duckdb":
        print(json.dumps(run_duckdb(args.file)))
        return

    folder = args.dir or tempfile.mkdtemp(prefix="fairaudit-scale-")
    path = os.path.join(folder, f"scores-{args.rows}.parquet")
    load_before = os.getloadavg()
    t = time.perf_counter()
    if not os.path.exists(path):
        write_parquet(path, args.rows)
    print(
        f"data: {args.rows:,} rows, {os.path.getsize(path) / 2**20:.0f} MB at {path} "
        f"(written in {time.perf_counter() - t:.1f} s)"
    )

    runs = {"duckdb": [], "fairaudit": [], "full": []}
    for _ in range(args.rounds):  # in turns: a change of load hits all three alike
        runs["duckdb"].append(_in_fresh_process("duckdb", path, args.n_boot))
        runs["fairaudit"].append(_in_fresh_process("fairaudit", path, args.n_boot, 0))
        runs["full"].append(_in_fresh_process("fairaudit", path, args.n_boot, args.n_perm))
    fa = min(runs["fairaudit"], key=lambda r: r["fairaudit_s"])
    full = min(runs["full"], key=lambda r: r["fairaudit_s"])
    db = min(runs["duckdb"], key=lambda r: r["duckdb_s"])
    for what, r in ((f"{args.n_boot} replicates", fa), (f"+ {args.n_perm} permutations", full)):
        print(
            f"fairaudit ({what}): read {r['read_s']:.1f} s + audit {r['audit_s']:.1f} s = "
            f"{r['fairaudit_s']:.1f} s ({args.rows / r['fairaudit_s'] / 1e6:.1f} M rows/s), "
            f"peak {r['peak_rss_mb']:.0f} MB; {r['n_gaps']} gaps of "
            f"{', '.join(r['families'])}; state: {r['state_entries']:,} entries, "
            f"scores {r['scores']}"
        )
    if fa["error_bound"]:
        print(
            "  grid error bounds: "
            + ", ".join(f"{m} {v:.1e}" for m, v in fa["error_bound"].items())
        )
    print(
        f"duckdb: confusion counts of {db['duckdb_groups']} groups in {db['duckdb_s']:.1f} s "
        f"(best of {3 * args.rounds}, {db['duckdb_threads']} threads), "
        f"peak {db['duckdb_peak_rss_mb']:.0f} MB"
    )
    ratio = fa["fairaudit_s"] / db["duckdb_s"]
    ratio_full = full["fairaudit_s"] / db["duckdb_s"]
    print(f"fairaudit / duckdb: {ratio:.2f} ({ratio_full:.2f} with the permutation test)")
    if not args.keep and args.dir is None:
        os.remove(path)
        os.rmdir(folder)
    summary = {
        "rows": args.rows,
        "n_boot": args.n_boot,
        "fairaudit_s": round(fa["fairaudit_s"], 3),
        "read_s": round(fa["read_s"], 3),
        "audit_s": round(fa["audit_s"], 3),
        "rows_per_s": round(args.rows / fa["fairaudit_s"]),
        "duckdb_s": round(db["duckdb_s"], 3),
        "ratio_to_duckdb": round(ratio, 3),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs["fairaudit"] + runs["full"]), 1),
        "rounds": args.rounds,
        "n_perm": args.n_perm,
        "fairaudit_with_permutations_s": round(full["fairaudit_s"], 3),
        "ratio_with_permutations": round(ratio_full, 3),
        "state_entries": fa["state_entries"],
        "scores": fa["scores"],
        "error_bound": fa["error_bound"],
        "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
