"""Reading tables out of core into an :class:`~fairaudit.AuditState`.

A TABLE is a Parquet file, a folder of Parquet files (hive partitions become columns) or a
CSV file (``.csv``, ``.csv.gz``, ``.tsv``). Only the named columns are read, in batches of
rows, with pyarrow (the optional extra ``parquet``); each batch goes into the state and is
dropped, so memory does not grow with the number of rows.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._errors import bad, opt, shown

__all__ = ["read_table_state", "table_kind", "table_columns", "table_provenance"]

CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
BATCH_ROWS = 1 << 20


def _pyarrow():
    try:
        import pyarrow  # noqa: F401
        import pyarrow.dataset  # noqa: F401
    except ImportError:
        raise bad(
            "TABLE",
            "pyarrow to read tables (pip install 'fairaudit[parquet]')",
            "no pyarrow installed",
        ) from None
    return pyarrow


def table_kind(path) -> str | None:
    """``parquet`` (a file or a folder holding Parquet files), ``csv``, or None.

    >>> table_kind("scores.csv.gz"), table_kind("part-0.parquet"), table_kind("x.npy")
    ('csv', 'parquet', None)
    """
    p = str(path).lower()
    if p.endswith(CSV_SUFFIXES):
        return "csv"
    if p.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if os.path.isdir(path) and _parquet_files(path):
        return "parquet"
    return None


def _parquet_files(folder):
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        found += [
            os.path.join(root, f) for f in sorted(files) if f.lower().endswith(PARQUET_SUFFIXES)
        ]
    return found


def _files(path, kind):
    if kind == "parquet" and os.path.isdir(path):
        return _parquet_files(path)
    return [path]


def _open(path):
    """(kind, pyarrow dataset or None, column names) of a table."""
    if not os.path.exists(path):
        raise bad(
            "TABLE", "a Parquet file, a folder of Parquet files or a CSV", f"nothing at '{path}'"
        )
    kind = table_kind(path)
    if kind is None:
        raise bad(
            "TABLE",
            "a Parquet file, a folder of Parquet files or a CSV (.csv, .csv.gz, .tsv)",
            f"'{path}'",
        )
    pa = _pyarrow()
    if kind == "parquet":
        import pyarrow.dataset as ds

        try:
            data = ds.dataset(
                path, format="parquet", partitioning="hive", exclude_invalid_files=False
            )
        except (pa.ArrowInvalid, OSError) as exc:
            raise bad("TABLE", "a readable Parquet table", f"'{path}': {exc}") from None
        return kind, data, list(data.schema.names)
    import pyarrow.csv as pcsv

    try:
        with pcsv.open_csv(path, parse_options=_csv_parse(path)) as reader:
            names = list(reader.schema.names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise bad("TABLE", "a readable CSV with a header", f"'{path}': {exc}") from None
    return kind, None, names


def _csv_parse(path):
    import pyarrow.csv as pcsv

    return pcsv.ParseOptions(delimiter="\t" if ".tsv" in str(path).lower() else ",")


def table_columns(path) -> list:
    """Column names of a table (read from its schema, not its rows).

    >>> import tempfile, pandas as pd
    >>> f = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> pd.DataFrame({"prob": [0.2], "label": [1]}).to_csv(f, index=False)
    >>> table_columns(f)
    ['prob', 'label']
    """
    return _open(path)[2]


def _batches(path, kind, data, columns, types, batch_rows):
    """(record batches, total rows or None) of the named columns."""
    if kind == "parquet":
        import pyarrow.dataset as ds

        # without pre-buffering and with little read-ahead, memory does not grow with rows
        batches = data.to_batches(
            columns=columns,
            batch_size=batch_rows,
            batch_readahead=2,
            fragment_readahead=1,
            fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False),
        )
        return batches, data.count_rows()
    import pyarrow as pa
    import pyarrow.csv as pcsv

    reader = pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=max(1 << 20, batch_rows * 16)),
        parse_options=_csv_parse(path),
        convert_options=pcsv.ConvertOptions(
            include_columns=columns, column_types={c: pa.string() for c in types}
        ),
    )
    return reader, None


def read_table_state(
    path,
    *,
    score,
    label="label",
    attributes,
    clusters=None,
    weights=None,
    scores="auto",
    threshold=0.5,
    pos_label=None,
    missing_groups="error",
    drop_nan=False,
    exact_cap=None,
    grid_bits=None,
    batch_rows=BATCH_ROWS,
    progress=False,
):
    """An :class:`~fairaudit.AuditState` of a table's rows, read in batches.

    ``score``: the score column (two names, ``"z0,z1"``, for two columns of logits);
    ``label``, ``attributes``, ``clusters``, ``weights``: column names. ``scores="auto"``
    takes ``logits2`` for two score columns and ``prob`` when every score lies in [0, 1]
    (from the Parquet statistics, or one pass over the score column); other rules are named.
    The other options are :class:`~fairaudit.AuditState`'s.

    Returns
    -------
    (AuditState, dict)
        The state and what was read (format, files, rows).

    >>> import tempfile, pandas as pd
    >>> f = os.path.join(tempfile.mkdtemp(), "t.parquet")
    >>> pd.DataFrame({"p": [0.2, 0.9, 0.6], "label": [0, 1, 1], "g": ["a", "b", "a"]}).to_parquet(f)
    >>> state, info = read_table_state(f, score="p", attributes=["g"])
    >>> state.n_rows, info["format"]
    (3, 'parquet')
    """
    from ._state import EXACT_CAP, GRID_BITS, AuditState

    kind, data, names = _open(path)
    score_cols = [c.strip() for c in score.split(",")] if isinstance(score, str) else list(score)
    attributes = [attributes] if isinstance(attributes, str) else list(attributes)
    wanted = {
        "--score-col": score_cols,
        "--label-col": [label],
        "--attributes": attributes,
        "--cluster": [clusters] if clusters else [],
        "--weights": [weights] if weights else [],
    }
    for option, cols in wanted.items():
        unknown = [c for c in cols if c not in names]
        if unknown:
            raise bad(
                option,
                f"columns of '{path}'",
                f"unknown {', '.join(map(repr, unknown))} (columns: {', '.join(names[:15])})",
            )
    if len(score_cols) not in (1, 2):
        raise bad("--score-col", "one score column, or two of logits", shown(score))
    rule = _rule(path, kind, data, score_cols, scores)
    state = AuditState(
        attributes,
        scores=rule,
        threshold=threshold,
        pos_label=pos_label,
        missing_groups=missing_groups,
        drop_nan=drop_nan,
        clustered=clusters is not None,
        weighted=weights is not None,
        exact_cap=EXACT_CAP if exact_cap is None else exact_cap,
        grid_bits=GRID_BITS if grid_bits is None else grid_bits,
    )
    columns = list(
        dict.fromkeys(score_cols + [label] + attributes + wanted["--cluster"] + wanted["--weights"])
    )
    # CSV attribute values stay text as written (cluster ids keep their type: numbers sort
    # as numbers, as in memory)
    text = attributes + ([label] if pos_label is not None else [])
    batches, total = _batches(path, kind, data, columns, text, batch_rows)
    bar = _progress_bar(total, progress)
    state.grid  # built once, before the threads share it
    columns_of = dict(
        score_cols=score_cols,
        label=label,
        attributes=attributes,
        clusters=clusters,
        weights=weights,
    )
    try:
        # batches are prepared on two threads (numpy lets go of the lock) and added in order
        with ThreadPoolExecutor(2) as pool:
            queue = deque()
            for batch in batches:
                if not batch.num_rows:
                    continue
                queue.append(
                    (batch.num_rows, pool.submit(_prepare_batch, state, batch, **columns_of))
                )
                while len(queue) > 2:
                    _commit(state, queue.popleft(), bar)
            while queue:
                _commit(state, queue.popleft(), bar)
    except Exception as exc:  # a malformed row far into a file: say where
        if exc.__class__.__name__.startswith("Arrow"):
            raise bad("TABLE", "a table of consistent rows", f"'{path}': {exc}") from None
        raise
    finally:
        if bar is not None:
            bar.close()
    files = _files(path, kind)
    return state, {
        "format": kind,
        "files": files,
        "rows_read": state.n_rows
        + state._counters["dropped_nan"]
        + state._counters["dropped_missing"],
    }


def _commit(state, queued, bar):
    rows, future = queued
    state._commit(future.result())
    if bar is not None:
        bar.update(rows)


def _progress_bar(total, progress):
    if not (progress and sys.stderr.isatty()):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=" rows", unit_scale=True, desc="reading", leave=False)


def _rule(path, kind, data, score_cols, scores):
    """The score rule of a table: named, or ``auto`` from the range of its scores."""
    if scores != "auto":
        return scores
    if len(score_cols) == 2:
        return "logits2"
    lo, hi = _score_range(path, kind, data, score_cols[0])
    if lo is None or (lo >= 0 and hi <= 1):
        return "prob"
    raise bad(
        "--scores",
        f"a named rule ({opt('scores', 'logit')} or {opt('scores', 'percent')}) for a table "
        f"whose scores are not probabilities (under {opt('scores', 'auto')} a table's scores "
        "must lie in [0, 1])",
        f"scores from {lo:.4g} to {hi:.4g} in column '{score_cols[0]}'",
    )


def _score_range(path, kind, data, column):
    """(min, max) of a column: Parquet statistics when every row group has them."""
    import pyarrow.compute as pc

    if kind == "parquet":
        lo = hi = None
        try:
            for fragment in data.get_fragments():
                meta = fragment.metadata
                j = meta.schema.to_arrow_schema().get_field_index(column)
                for g in range(meta.num_row_groups):
                    st = meta.row_group(g).column(j).statistics
                    if st is None or not st.has_min_max or st.null_count:
                        raise LookupError
                    lo = st.min if lo is None else min(lo, st.min)
                    hi = st.max if hi is None else max(hi, st.max)
            return lo, hi
        except (LookupError, AttributeError, ValueError):
            pass
    batches, _ = _batches(path, kind, data, [column], [], BATCH_ROWS)
    lo = hi = None
    for batch in batches:
        col = batch.column(0)
        mm = pc.min_max(pc.if_else(pc.is_finite(col), col, None))
        a, b = mm["min"].as_py(), mm["max"].as_py()
        if a is not None:
            lo = a if lo is None else min(lo, a)
            hi = b if hi is None else max(hi, b)
    return lo, hi


def _prepare_batch(state, batch, score_cols, label, attributes, clusters, weights):
    """One record batch as a prepared batch of the state (see ``AuditState._prepare``)."""
    from ._validation import as_labels, as_weights

    cols = {name: batch.column(i) for i, name in enumerate(batch.schema.names)}
    n = batch.num_rows
    ranking = _ranking(state, [_numeric(cols[c], f"--score-col {c}") for c in score_cols])
    y_col = cols[label]
    if y_col.null_count:
        raise bad(
            "--label-col",
            f"a label on every row of column '{label}'",
            f"{y_col.null_count} missing",
        )
    y_raw = y_col.to_numpy(zero_copy_only=False)
    if state.pos_label is not None:
        y = state._labels(y_raw, n)
    elif y_raw.dtype.kind in "iub" and y_raw.min() >= 0 and y_raw.max() <= 1:
        y = y_raw.astype(np.int8, copy=False)  # 0/1 already: no other check needed
    else:
        y = as_labels(y_raw, n, argument="y_true")
    codes, values = [], []
    for a in attributes:
        c, v = _codes(cols[a], a)
        codes.append(c)
        values.append(v)
    w = None
    if weights is not None:
        if cols[weights].null_count:
            raise bad("--weights", "a weight on every row", f"{cols[weights].null_count} missing")
        w = as_weights(_numeric(cols[weights], "--weights"), n, argument="sample_weight")
    cl = None
    if clusters is not None:
        col = cols[clusters]
        if col.null_count:
            raise bad("--cluster", "a cluster id on every row", f"{col.null_count} missing")
        raw = col.to_numpy(zero_copy_only=False)
        cl = raw.astype(np.int64) if raw.dtype.kind in "biu" else raw.astype(str)
    return state._prepare(ranking, y, codes, values, w, cl)


def _numeric(col, option):
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            try:
                col = pc.cast(col, pa.float64())
            except pa.ArrowInvalid:
                raise bad(
                    option, "numeric values", f"text such as {shown(col[0].as_py())}"
                ) from None
        else:
            raise bad(option, "numeric values", f"type {col.type}")
    if col.null_count:
        col = pc.fill_null(pc.cast(col, pa.float64()), np.nan)
    arr = col.to_numpy(zero_copy_only=False)
    return arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float64)


def _ranking(state, raw):
    """Ranking scores of one batch under the state's rule (float32 probabilities and logits
    stay float32: the grid reads them as they are); values outside the rule's range are
    refused with the rule's own message."""
    from ._validation import as_scores

    rule = state.rule.name
    if rule == "logits2":
        if len(raw) != 2:
            raise bad(opt("scores", "logits2"), "two score columns", f"{len(raw)}")
        return raw[1].astype(np.float64) - raw[0]
    x = raw[0]
    if rule in ("prob", "percent"):
        top = 1.0 if rule == "prob" else 100.0
        lo, hi = np.fmin.reduce(x), np.fmax.reduce(x)  # NaN left out
        if lo < 0 or hi > top:
            finite = x[np.isfinite(x)]  # inf is refused (or dropped) later, as NaN is
            if finite.size and (finite.min() < 0 or finite.max() > top):
                as_scores(x, rule)  # raises with the rule's message
        if rule == "percent":
            return x / 100.0
    return x


def _codes(col, name):
    """Per-row codes (-1: missing) and the text of every value of an attribute column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    indices = col.indices
    if indices.null_count:  # missing: -1 (unsigned indices first widened to make room)
        if pa.types.is_unsigned_integer(indices.type):
            indices = pc.cast(indices, pa.int64())
        indices = pc.fill_null(indices, -1)
    codes = indices.to_numpy(zero_copy_only=False)
    values = [_text(v) for v in col.dictionary.to_pylist()]
    if name.lower() == "gender":
        from ._io import GENDER_ALIASES

        values = [GENDER_ALIASES.get(v.lower(), v.lower()) for v in values]
    if len(set(values)) != len(values):  # two spellings of one value (e.g. Male, male)
        merged = {v: i for i, v in reversed(list(enumerate(values)))}
        lut = np.array([merged[v] for v in values] + [-1], np.int64)
        codes = lut[codes]
    return codes, values


def _text(v):
    """A value as the CSV reader writes it: whole-number floats as integers."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def table_provenance(path, info, columns) -> dict:
    """What a report records about a table input: name, format, files and their sha256.

    >>> import tempfile, pandas as pd
    >>> f = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> pd.DataFrame({"p": [0.2], "label": [1], "g": ["a"]}).to_csv(f, index=False)
    >>> doc = table_provenance(f, {"format": "csv", "files": [f], "rows_read": 1}, ["p"])
    >>> doc["path"], doc["rows_read"], len(doc["sha256"])
    ('t.csv', 1, 64)
    """
    h = hashlib.sha256()
    size = 0
    for f in info["files"]:
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
                size += len(block)
    return {
        "path": os.path.basename(os.path.normpath(str(path))),
        "format": info["format"],
        "n_files": len(info["files"]),
        "bytes": size,
        "rows_read": info["rows_read"],
        "columns": columns,
        "sha256": h.hexdigest(),
    }
