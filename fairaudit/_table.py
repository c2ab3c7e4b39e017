"""Paper tables: many detectors on many test sets, one row per run, from finished audits.

A *run* is one detector scored on one test set: a ``report.json`` (or the ``--out`` folder of
``report`` holding one), an :class:`~fairaudit.Audit`, or a report dict. A comparison (the
output of ``compare`` or a :class:`~fairaudit.Comparison`) contributes its two runs and their
paired differences B - A. Nothing is recomputed: every number is read from the results.

Columns are overall metrics (``auc``, ``eer``, ...), gaps over one family (``fpr_range``,
``equalized_odds``, ...) or the research code's quantities (``pg-fdd``: F_FPR, F_OAE, F_DP,
F_MEO and AUC from ``compat.paper``). A cell shows the value and its interval. The best value
of a column among the runs on one test set is bold only when, for every other run on that test
set, a paired comparison of the two (same rows, same resampled rows for both) has an interval
of the difference that excludes 0 in the best run's favour (an intersection-union test: each of
the k - 1 comparisons at the comparison's level, no multiplicity correction needed). Unpaired
intervals of two runs never decide it, even over identical rows: overlap or not of two
separate intervals is not a test of their difference. A comparison whose detector matches a
report given too (the same score, label and CSV files by sha256, same threshold and score rule
- or, in Python, the same rows, groups and probabilities) is merged into that report's row,
so a table of reports with intervals can take its bold marks from comparisons.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._errors import bad
from ._format import _md_table
from ._gaps import gap_names
from ._metrics import METRIC_NAMES, SPECS

__all__ = ["table", "Table", "DEFAULT_COLUMNS", "PGFDD_COLUMNS", "FORMATS"]

DEFAULT_COLUMNS = ("auc", "eer", "fpr_range", "equalized_odds", "demographic_parity")
PGFDD_COLUMNS = ("F_FPR", "F_OAE", "F_DP", "F_MEO", "AUC")  # compat.paper, the paper's order
FORMATS = ("text", "markdown", "latex", "csv", "html")
ROWS = ("detector", "dataset")
VERDICTS = ("within", "exceeds", "inconclusive")
# Marks per format: bold value, verdicts, arrows of the header ("higher is better" or not).
_MARKS = {
    "text": {"within": "✓", "exceeds": "✗", "inconclusive": "?", "up": "↑", "down": "↓"},
    "latex": {
        "within": r"$^{\surd}$",
        "exceeds": r"$^{\times}$",
        "inconclusive": r"$^{?}$",
        "up": r"$\uparrow$",
        "down": r"$\downarrow$",
    },
}
_LABELS = {"detector": "detector", "dataset": "test set"}


# ---------------------------------------------------------------------------- the result
@dataclass(frozen=True)
class _Column:
    name: str
    kind: str  # "metric" (overall), "gap" (over the table's family), "pg-fdd" (compat.paper)
    higher_is_better: bool


@dataclass(frozen=True)
class Table:
    """A paper table: one row per run (detector x test set), one column per metric or gap.

    Attributes
    ----------
    data : DataFrame
        Tidy numbers, one row per run x column: ``detector``, ``dataset``, ``metric``, ``kind``
        (metric, gap, pg-fdd), ``family``, ``value``, ``lo``, ``hi``, ``p_value``,
        ``p_adjusted``, ``tolerance``, ``verdict``, ``best``, ``source``; rows in table order.
    rows : {"detector", "dataset"}
        What varies within a block: ``detector`` gives one block per test set with a row per
        detector; ``dataset`` one block per detector with a row per test set.
    legend : tuple of str
        How the cells were made and what the marks mean (plain text).

    Examples
    --------
    >>> import fairaudit
    >>> doc = {"config": {"name": "base", "dataset_name": "ff++", "families": ["gender"],
    ...                   "metrics": ["auc"], "n_boot": 0},
    ...        "overall": {"auc": {"value": 0.91, "lo": None, "hi": None}},
    ...        "groups": [], "gaps": []}
    >>> t = fairaudit.table([doc], metrics=["auc"])
    >>> print(t.to_markdown().splitlines()[2])
    | ff++ | base | 0.910 |
    """

    data: pd.DataFrame
    columns: tuple
    rows: str
    legend: tuple
    digits: int = 3
    legend_latex: tuple = field(default=(), repr=False)

    # ----------------------------------------------------------------- views
    def _outer_inner(self):
        return ("dataset", "detector") if self.rows == "detector" else ("detector", "dataset")

    def _grid(self, marks, bold, esc):
        """Header and body rows of strings; the outer key shown once per block."""
        outer, inner = self._outer_inner()
        head = [_LABELS[outer], _LABELS[inner]] + [
            f"{esc(c.name)} {marks['up' if c.higher_is_better else 'down']}" for c in self.columns
        ]
        body, blocks, last = [], [], None
        cells = self.data.set_index(["detector", "dataset", "metric"])
        for det, ds in dict.fromkeys(zip(self.data["detector"], self.data["dataset"])):
            key = {"detector": det, "dataset": ds}
            row = [esc(key[outer]) if key[outer] != last else "", esc(key[inner])]
            blocks.append(key[outer] != last and last is not None)
            last = key[outer]
            for c in self.columns:
                row.append(self._cell(cells.loc[(det, ds, c.name)], marks, bold))
            body.append(row)
        return head, body, blocks

    def _cell(self, r, marks, bold) -> str:
        if _missing(r["value"]):
            return "-"
        s = f"{r['value']:.{self.digits}f}"
        s = bold(s) if r["best"] else s
        if isinstance(r["verdict"], str) and r["verdict"] in VERDICTS:
            s += marks[r["verdict"]]
        if not (_missing(r["lo"]) or _missing(r["hi"])):
            s += f" [{r['lo']:.{self.digits}f}, {r['hi']:.{self.digits}f}]"
        return s

    def to_frame(self) -> pd.DataFrame:
        """The table as rendered (cells as text), indexed by its two row keys.

        >>> import fairaudit
        >>> doc = {"config": {"name": "base", "dataset_name": "ff++", "families": [],
        ...                   "metrics": ["auc"], "n_boot": 0},
        ...        "overall": {"auc": {"value": 0.5, "lo": None, "hi": None}},
        ...        "groups": [], "gaps": []}
        >>> fairaudit.table([doc], metrics="auc").to_frame()
                           auc ↑
        test set detector
        ff++     base      0.500
        """
        head, body, _ = self._grid(_MARKS["text"], lambda s: s + "*", str)
        outer, inner = self._outer_inner()
        keys = self.data.drop_duplicates(["detector", "dataset"])
        index = pd.MultiIndex.from_arrays(
            [keys[outer].to_numpy(), keys[inner].to_numpy()], names=head[:2]
        )
        return pd.DataFrame([r[2:] for r in body], index=index, columns=head[2:])

    # ----------------------------------------------------------------- renderings
    def render(self, fmt: str = "text", path=None) -> str:
        """The table in one of :data:`FORMATS` (text, markdown, latex, csv, html)."""
        if fmt not in FORMATS:
            raise bad("--format", "one of " + ", ".join(FORMATS), repr(fmt))
        return getattr(self, f"to_{fmt}")(path)

    def to_text(self, path=None) -> str:
        """Aligned columns for the terminal; bold is a ``*`` after the value."""
        head, body, blocks = self._grid(_MARKS["text"], lambda s: s + "*", str)
        widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]

        def line(r):
            return "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))
            ).rstrip()

        rule = "-" * len(line(head))
        out = [line(head), rule]
        for r, new_block in zip(body, blocks):
            out += ([""] if new_block else []) + [line(r)]
        legend = [x.replace("Bold:", "Bold (value*):", 1) for x in self.legend]
        return _written(path, "\n".join(out + [rule] + legend) + "\n")

    def to_markdown(self, path=None) -> str:
        """A GitHub/pandoc pipe table (bold as ``**value**``), the legend below it."""
        head, body, _ = self._grid(_MARKS["text"], lambda s: f"**{s}**", str)
        text = _md_table(pd.DataFrame(body, columns=head))
        return _written(path, text + "\n\n" + "\n".join(f"- {x}" for x in self.legend) + "\n")

    def to_latex(self, path=None) -> str:
        """A ``table`` float with a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``).

        Special characters of names are escaped; bold is ``\\textbf``; the legend is the
        caption.
        """
        head, body, blocks = self._grid(_MARKS["latex"], lambda s: rf"\textbf{{{s}}}", _tex)
        body = [r[:2] + [_tex_interval(c) for c in r[2:]] for r in body]
        spec = "ll" + "c" * len(self.columns)
        out = [
            "% fairaudit table; needs \\usepackage{booktabs}",
            r"\begin{table}[t]",
            r"\centering",
            r"\caption{" + " ".join(self.legend_latex) + "}",
            r"\begin{tabular}{" + spec + "}",
            r"\toprule",
            " & ".join(head) + r" \\",
            r"\midrule",
        ]
        for r, new_block in zip(body, blocks):
            out += ([r"\midrule"] if new_block else []) + [" & ".join(r) + r" \\"]
        out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        return _written(path, "\n".join(out) + "\n")

    def to_html(self, path=None) -> str:
        """An HTML ``<table>`` fragment (every string escaped), the legend as its caption."""
        e = _html_escape
        head, body, blocks = self._grid(_MARKS["text"], lambda s: f"<strong>{s}</strong>", e)
        out = ['<table class="fairaudit-table">']
        out.append("<caption>" + "<br>".join(e(x) for x in self.legend) + "</caption>")
        out.append("<thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead>")
        out.append("<tbody>")
        for r, new_block in zip(body, blocks):
            style = ' style="border-top: 1px solid"' if new_block else ""
            out.append(f"<tr{style}>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>")
        out.append("</tbody></table>")
        return _written(path, "\n".join(out) + "\n")

    def to_csv(self, path=None) -> str:
        """Tidy CSV: one row per run x column, with lo/hi, p-values, tolerance and verdict."""
        return _written(path, self.data.to_csv(index=False))

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        n = len(self.data.drop_duplicates(["detector", "dataset"]))
        return f"<Table rows={n} columns={[c.name for c in self.columns]}>"


def _written(path, text: str) -> str:
    if path is not None:
        try:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise bad("--out", "a writable file", f"{path!s}: {exc.strerror}") from None
    return text


def _missing(v) -> bool:
    if v is None:
        return True
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        return True


_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "|": r"\textbar{}",  # OT1 fonts print |, < and > as other glyphs
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "[": "{[}",  # a row starting with [ would be read as the row end's optional argument
    "]": "{]}",
}


def _tex(s) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(s))


def _tex_interval(cell: str) -> str:
    head, sep, interval = cell.partition(" [")
    return head + (r" {\scriptsize[" + interval + "}" if sep else "")


def _html_escape(s) -> str:
    return html.escape(str(s), quote=True)


# ---------------------------------------------------------------------------- inputs
@dataclass
class _Run:
    doc: dict  # a report.json document
    source: str  # for messages: RUN 'path', runs[2], ... (A) / (B)
    position: tuple  # (input index, part): the row order
    detector: str | None
    dataset: str | None
    rows_key: tuple | None  # identifies the rows (test set)
    run_key: tuple | None  # identifies rows + scores + threshold (merges comparisons)


@dataclass
class _Pair:
    a: _Run
    b: _Run
    diffs: dict  # (kind, family, name) -> {"diff", "lo", "hi", ...}, diff = b - a
    ci: float | None


def _label(item, i) -> str:
    return f"RUN '{item}'" if isinstance(item, (str, os.PathLike)) else f"runs[{i}]"


def _read_path(path, label) -> dict:
    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
        if not p.is_file():
            raise bad(
                label, "a report.json or the --out folder of report/compare", "no report.json"
            )
    if not p.is_file():
        raise bad(label, "a report.json or the --out folder of report/compare", "no such file")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise bad(label, "a fairaudit report.json", "a file that is not JSON") from None


_REPORT_KEYS = ("config", "overall", "groups", "gaps")


def _check_doc(doc, label, comparison_part=False):
    if not isinstance(doc, dict):
        raise bad(label, "a fairaudit report", type(doc).__name__)
    if doc.get("kind") == "comparison" and not comparison_part:
        missing = [k for k in ("a", "b", "differences", "config") if k not in doc]
    else:
        missing = [k for k in _REPORT_KEYS if k not in doc]
    if missing:
        keys = ", ".join(map(str, list(doc)[:8])) or "none"
        raise bad(label, "a report.json of fairaudit report or compare", f"keys {keys}")
    for key, kind in (("config", dict), ("overall", dict), ("gaps", list), ("groups", list)):
        if key in doc and not isinstance(doc[key], kind):
            raise bad(label, f"'{key}' as a JSON {kind.__name__}", type(doc[key]).__name__)
    if any(not isinstance(g, dict) for g in doc.get("gaps", [])):
        raise bad(label, "'gaps' entries as JSON objects", "other values")


def _file_keys(doc, scores_role, rule_key):
    """Row and run identities of a report.json from its provenance (files' sha256)."""
    c = doc["config"]
    files = (c.get("provenance") or {}).get("files") or {}
    csv = (files.get("csv") or {}).get("sha256") if isinstance(files.get("csv"), dict) else None
    if csv is None:
        return None, None
    rows = ("file", csv, c.get("n_rows"))
    scores = files.get(scores_role)
    if not (isinstance(scores, dict) and scores.get("sha256")):
        return rows, None
    labels = files.get("labels")
    labels = labels.get("sha256") if isinstance(labels, dict) else None
    return rows, rows + (labels, scores["sha256"], c.get("threshold"), c.get(rule_key))


def _data_keys(audit):
    """Row and run identities of an in-memory audit from its own data (labels, groups, p)."""
    data = (getattr(audit, "extras", None) or {}).get("data")
    if not data:
        return None, None
    groups = data["groups"].astype(str)
    h = hashlib.sha256()
    h.update(repr(list(groups.columns)).encode())
    h.update(pd.util.hash_pandas_object(groups, index=False).to_numpy().tobytes())
    h.update(np.ascontiguousarray(data["y"], dtype=np.int8).tobytes())
    rows = ("data", h.hexdigest())
    h.update(np.ascontiguousarray(data["p"], dtype=float).tobytes())
    return rows, rows + (h.hexdigest(), audit.config.get("threshold"))


def _stem(files, role):
    f = files.get(role)
    if isinstance(f, dict) and f.get("path"):
        return os.path.splitext(os.path.basename(str(f["path"]).split(":")[0]))[0]
    if isinstance(f, str):  # research result directory: its folder name
        return f
    return None


def default_names(config: dict, scores_role: str = "scores"):
    """(detector, test set) recorded in a report's config, else from its input file names.

    The test set falls back to the data set coding (``dataset``) when no CSV was read.

    >>> default_names({"provenance": {"files": {"scores": {"path": "xception.npy"},
    ...                                         "csv": {"path": "dfdc.csv"}}}})
    ('xception', 'dfdc')
    >>> default_names({"name": "PG-FDD", "dataset_name": "Celeb-DF"})
    ('PG-FDD', 'Celeb-DF')
    """
    files = (config.get("provenance") or {}).get("files") or {}
    detector = config.get("name") or _stem(files, scores_role) or _stem(files, "results_dir")
    dataset = (
        config.get("dataset_name")
        or _stem(files, "csv")
        or config.get("dataset")  # the group coding (ff++, celebdf, ...) of a results folder
        or _stem(files, "results_dir")
    )
    return detector, dataset


def _runs_of(item, i):
    """(runs, pair or None) of one input: a report or a comparison, object, dict or path."""
    from ._audit import Audit
    from ._compare import Comparison

    label = _label(item, i)
    keys = [(None, None), (None, None)]
    if isinstance(item, Audit):
        doc, keys[0] = item.to_dict(), _data_keys(item)
    elif isinstance(item, Comparison):
        doc, keys = item.to_dict(), [_data_keys(item.a), _data_keys(item.b)]
    elif isinstance(item, dict):
        doc = item
    elif isinstance(item, (str, os.PathLike)):
        doc = _read_path(item, label)
    else:
        raise bad(label, "an Audit, a Comparison, a report dict or a report.json path", repr(item))
    _check_doc(doc, label)
    if doc.get("kind") != "comparison":
        if keys[0] == (None, None):
            keys[0] = _file_keys(doc, "scores", "score_rule")
        det, ds = default_names(doc["config"])
        return [_Run(doc, label, (i, 0), det, ds, *keys[0])], None
    names = list(doc["config"].get("names") or ["A", "B"])
    runs = []
    for part, (ab, role) in enumerate((("a", "scores_a"), ("b", "scores_b"))):
        sub = doc[ab]
        _check_doc(sub, f"{label} ({ab.upper()})", comparison_part=True)
        sub_config = dict(doc["config"], **{k: sub["config"].get(k) for k in ("n_boot", "ci")})
        sub = dict(sub, config=sub_config)
        k = keys[part]
        if k == (None, None):
            k = _file_keys(doc, role, f"score_rule_{ab}")
        ds = default_names(doc["config"])[1]
        runs.append(_Run(sub, f"{label} ({ab.upper()})", (i, part), names[part], ds, *k))
    diffs = {
        (d.get("kind"), d.get("family"), d.get("name")): d
        for d in doc.get("differences") or []
        if d.get("kind") in ("gap", "overall")
    }
    ci = doc["config"].get("ci") if doc["config"].get("n_boot") else None
    return runs, _Pair(runs[0], runs[1], diffs, ci)


def _collect(items):
    """Runs in input order, comparisons' runs merged into matching reports, and the pairs."""
    runs, pairs = [], []
    parsed = [_runs_of(item, i) for i, item in enumerate(items)]
    for new, pair in parsed:
        if pair is None:
            runs += new
    by_key = {r.run_key: r for r in runs if r.run_key is not None}
    for new, pair in parsed:
        if pair is None:
            continue
        for j, r in enumerate(new):
            match = by_key.get(r.run_key) if r.run_key is not None else None
            if match is None:
                runs.append(r)
                if r.run_key is not None:
                    by_key[r.run_key] = r
            else:
                new[j] = match
        pairs.append(_Pair(new[0], new[1], pair.diffs, pair.ci))
    runs.sort(key=lambda r: r.position)
    return runs, pairs


# ---------------------------------------------------------------------------- naming
def _apply_names(runs, names, datasets):
    for option, given, attr in (
        ("--names", names, "detector"),
        ("--datasets", datasets, "dataset"),
    ):
        if given is None:
            continue
        given = [s.strip() for s in given.split(",")] if isinstance(given, str) else list(given)
        if len(given) != len(runs):
            listed = ", ".join(f"{r.source}" for r in runs)
            raise bad(option, f"{len(runs)} names, one per row ({listed})", f"{len(given)}")
        if any(not str(g) for g in given):
            raise bad(option, "non-empty names", repr(given))
        for r, g in zip(runs, given):
            setattr(r, attr, str(g))
    # Unnamed test sets: numbered by their rows, so runs on the same rows share a name.
    numbered = {}
    for k, r in enumerate(runs):
        if r.detector is None:
            r.detector = f"run {k + 1}"
        if r.dataset is None:
            key = r.rows_key if r.rows_key is not None else ("run", k)
            r.dataset = numbered.setdefault(key, f"test set {len(numbered) + 1}")
    seen, rows_of = {}, {}
    for r in runs:
        other = seen.setdefault((r.detector, r.dataset), r)
        if other is not r:
            raise bad(
                "--names",
                "one run per detector and test set (name them with --names / --datasets)",
                f"'{r.detector}' on '{r.dataset}' twice ({other.source}, {r.source})",
            )
        if r.rows_key is not None:
            prev = rows_of.setdefault((r.dataset, r.rows_key[0]), r)
            if prev.rows_key != r.rows_key:
                raise bad(
                    "--datasets",
                    "one test set per name",
                    f"'{r.dataset}' names different rows ({prev.source}, {r.source})",
                )


# ---------------------------------------------------------------------------- columns
def _columns(metrics) -> list:
    if metrics is None:
        metrics = DEFAULT_COLUMNS
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    metrics = list(metrics)
    if metrics == ["pg-fdd"]:
        return [_Column(m, "pg-fdd", m == "AUC") for m in PGFDD_COLUMNS]
    gaps = set(gap_names(METRIC_NAMES))
    unknown = [m for m in metrics if m not in SPECS and m not in gaps]
    if unknown or not metrics or len(set(metrics)) != len(metrics):
        raise bad(
            "--metrics",
            "distinct metric or gap names (e.g. auc,eer,fpr_range,equalized_odds) or pg-fdd",
            ", ".join(unknown) if unknown else repr(",".join(metrics)),
        )
    out = []
    for m in metrics:
        if m in SPECS:
            out.append(_Column(m, "metric", not SPECS[m].higher_is_worse))
        else:  # a ratio is 1 at parity; every other gap is 0 at parity
            out.append(_Column(m, "gap", m.endswith("_ratio")))
    return out


def _family(runs, family, columns) -> str | None:
    if not any(c.kind == "gap" for c in columns):
        return family
    if family is None:
        fams = runs[0].doc["config"].get("families") or []
        if not fams:
            raise bad(runs[0].source, "a report with families (for gap columns)", "none")
        family = fams[-1]  # the most detailed intersection, e.g. gender+race
    for r in runs:
        fams = r.doc["config"].get("families") or sorted({g.get("family") for g in r.doc["gaps"]})
        if family not in fams:
            raise bad(
                r.source,
                f"family {family} like the other runs (gaps are over one family)",
                "families " + (", ".join(map(str, fams)) or "none"),
            )
    return family


# ---------------------------------------------------------------------------- cells
def _entry(run, col, family) -> dict:
    doc = run.doc
    if col.kind == "metric":
        e = doc["overall"].get(col.name)
        if not isinstance(e, dict):
            have = [m for m in doc["overall"] if isinstance(doc["overall"][m], dict)]
            raise bad(run.source, f"metric {col.name} like the other runs", _have(have))
        return e
    if col.kind == "gap":
        for g in doc["gaps"]:
            if g.get("family") == family and g.get("name") == col.name:
                return g
        have = sorted({g.get("name") for g in doc["gaps"] if g.get("family") == family})
        raise bad(run.source, f"gap {col.name} of family {family} like the other runs", _have(have))
    paper = (doc.get("compat") or {}).get("paper")
    if not isinstance(paper, dict):
        raise bad(run.source, "a report made with --compat pg-fdd (for --metrics pg-fdd)", "none")
    return {"value": paper.get(col.name)}


def _have(names) -> str:
    return "metrics " + (", ".join(map(str, names[:12])) or "none")


def _num(v):
    return np.nan if _missing(v) else float(v)


def _tidy(runs, columns, family) -> pd.DataFrame:
    rows = []
    for r in runs:
        for c in columns:
            e = _entry(r, c, family)
            verdict = e.get("verdict")
            rows.append(
                {
                    "detector": r.detector,
                    "dataset": r.dataset,
                    "metric": c.name,
                    "kind": c.kind,
                    "family": family if c.kind == "gap" else "overall",
                    "value": _num(e.get("value")),
                    "lo": _num(e.get("lo")),
                    "hi": _num(e.get("hi")),
                    "p_value": _num(e.get("p_value")),
                    "p_adjusted": _num(e.get("p_adjusted")),
                    "tolerance": _num(e.get("tolerance")),
                    "verdict": verdict if verdict in VERDICTS else None,
                    "best": False,
                    "source": r.source,
                }
            )
    return pd.DataFrame(rows)


def _order(runs, rows):
    """Runs grouped in blocks (outer key in order of first appearance), inner order kept."""
    outer = "dataset" if rows == "detector" else "detector"
    first = {}
    for r in runs:
        first.setdefault(getattr(r, outer), len(first))
    return sorted(runs, key=lambda r: first[getattr(r, outer)])


def _separated(best, other, key, pairs, sign) -> bool:
    """A paired interval of best - other excluding 0 in best's favour."""
    for p in pairs:
        if {id(p.a), id(p.b)} != {id(best), id(other)}:
            continue
        d = p.diffs.get(key)
        if not d or _missing(d.get("lo")) or _missing(d.get("hi")):
            continue
        lo, hi = float(d["lo"]), float(d["hi"])  # of b - a
        if p.a is best:
            lo, hi = -hi, -lo
        if (sign > 0 and lo > 0) or (sign < 0 and hi < 0):
            return True
    return False


def _mark_best(data, runs, columns, pairs, family):
    values = data.set_index(["detector", "dataset", "metric"])["value"]
    for c in columns:
        if c.kind == "pg-fdd":
            continue  # the research code's quantities come without paired differences
        key = ("overall", "overall", c.name) if c.kind == "metric" else ("gap", family, c.name)
        sign = 1 if c.higher_is_better else -1
        for ds in dict.fromkeys(r.dataset for r in runs):
            block = [r for r in runs if r.dataset == ds]
            vals = [(r, values[(r.detector, ds, c.name)]) for r in block]
            vals = [(r, v) for r, v in vals if not math.isnan(v)]
            if len(vals) < 2:
                continue
            best = max(vals, key=lambda t: sign * t[1])[0]
            if all(_separated(best, r, key, pairs, sign) for r, _ in vals if r is not best):
                hit = (data["detector"] == best.detector) & (data["dataset"] == ds)
                data.loc[hit & (data["metric"] == c.name), "best"] = True


# ---------------------------------------------------------------------------- legend
def _interval_words(config) -> str | None:
    if not config.get("n_boot"):
        return None
    words = (
        f"{config.get('ci') or 0.95:.0%} {config.get('ci_method') or 'percentile'} bootstrap, "
        f"{config['n_boot']} replicates, {config.get('bootstrap') or 'iid'} resampling"
    )
    if config.get("gap_ci"):
        words += f"; gap intervals: {config['gap_ci']}"
    return words


def _check_levels(runs, pairs) -> float | None:
    """One confidence level in a table; return the level of the paired comparisons."""
    levels = [(r.source, r.doc["config"].get("ci")) for r in runs if r.doc["config"].get("n_boot")]
    levels += [(f"{p.a.source} - {p.b.source}", p.ci) for p in pairs if p.ci is not None]
    levels = [(who, float(ci)) for who, ci in levels if ci is not None]
    for who, ci in levels[1:]:
        if ci != levels[0][1]:
            raise bad(
                who, f"intervals at the {levels[0][1]:.0%} level like {levels[0][0]}", f"{ci:.0%}"
            )
    return next((p.ci for p in pairs if p.ci is not None), None)


def _legend(runs, pairs, columns, family, data, tex, pair_level):
    esc = _tex if tex else str
    marks = _MARKS["latex" if tex else "text"]
    lines, words = [], {}
    for r in runs:
        words.setdefault(_interval_words(r.doc["config"]), []).append(f"{r.detector}/{r.dataset}")
    for w, who in words.items():
        scope = "" if len(words) == 1 else f" ({', '.join(who)})"
        if w is None:
            lines.append(esc(f"No intervals{scope}: point estimates only."))
        else:
            lines.append(esc(f"Cells: value [interval]; intervals: {w}{scope}."))
    if any(c.kind == "gap" for c in columns):
        lines.append(esc(f"Gaps over the groups of {family}."))
    if any(c.kind == "pg-fdd" for c in columns):
        lines.append(
            esc(
                "F_FPR, F_OAE, F_DP, F_MEO: the research code's 100 x ranges over the gender x "
                "race sets (--compat pg-fdd, compat.paper); AUC: its overall AUC (a fraction); "
                "no intervals."
            )
        )
    if data["best"].any():
        level = "" if pair_level is None else f"{pair_level:.0%} "
        lines.append(
            esc(
                "Bold: best on its test set and better than "
                f"every other run there by a paired comparison whose {level}interval of the "
                "difference excludes 0."
            )
        )
    elif any(c.kind != "pg-fdd" for c in columns):
        lines.append(
            esc(
                "Nothing bold: no best value is separated from every other run on its test set "
                "by a paired comparison"
                + (" (none given; see fairaudit compare)." if not pairs else ".")
            )
        )
    if data["verdict"].notna().any():
        lines.append(
            f"{marks['within']} within, {marks['exceeds']} exceeds, {marks['inconclusive']} "
            + esc("inconclusive: the gap's verdict against its tolerance.")
        )
    paired = {frozenset((id(p.a), id(p.b))) for p in pairs}
    for i, a in enumerate(runs):
        for b in runs[i + 1 :]:
            same = a.rows_key is not None and a.rows_key == b.rows_key
            if same and frozenset((id(a), id(b))) not in paired:
                lines.append(
                    esc(
                        f"{a.detector} and {b.detector} on {a.dataset} share their rows but no "
                        "paired comparison of them was given."
                    )
                )
    return lines


# ---------------------------------------------------------------------------- entry point
def table(
    runs,
    *,
    names=None,
    datasets=None,
    rows: str = "detector",
    family: str | None = None,
    metrics=None,
    digits: int = 3,
) -> Table:
    """One paper table of many runs (detectors x test sets); no number is recomputed.

    Parameters
    ----------
    runs : list
        Each an :class:`~fairaudit.Audit`, a :class:`~fairaudit.Comparison` (its two runs and
        their paired differences), a report.json dict, or the path of a report.json or of a
        folder holding one (the ``--out`` of ``report`` or ``compare``).
    names, datasets : list of str or comma-separated str, optional
        Detector and test-set names, one per table row in input order (a comparison counts as
        its runs A and B, unless they are runs given too). Default: those recorded in the
        reports (``--name``, ``--dataset-name``), else the score and CSV file names, else
        ``run k`` and ``test set k`` (runs on identical rows share a test set).
    rows : {"detector", "dataset"}
        ``detector``: a block per test set, a row per detector; ``dataset``: a block per
        detector, a row per test set.
    family : str, optional
        The family of the gap columns (default: the last family of the first run, the most
        detailed intersection such as ``gender+race``).
    metrics : list of str or comma-separated str, optional
        Overall metrics and gap names (default :data:`DEFAULT_COLUMNS`), or ``"pg-fdd"`` for
        the paper's F_FPR, F_OAE, F_DP, F_MEO and AUC (reports made with ``compat="pg-fdd"``).
    digits : int
        Decimals of every number.

    Returns
    -------
    Table

    Examples
    --------
    >>> import numpy as np, fairaudit
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 600)
    >>> groups = {"gender": rng.choice(["male", "female"], 600)}
    >>> good = np.clip(0.6 * y + 0.4 * rng.random(600), 0, 1)
    >>> cmp = fairaudit.compare(y, rng.random(600), good, groups, n_boot=50,
    ...                         names=("coin", "good"))
    >>> t = fairaudit.table([cmp], metrics=["auc", "fpr_range"])
    >>> t.to_frame()
                                         auc ↑ fpr_range ↓
    test set   detector
    test set 1 coin       0.483 [0.441, 0.524]       0.057
               good      1.000* [1.000, 1.000]       0.000
    >>> t.to_latex().count(r"\\textbf")
    1
    """
    if rows not in ROWS:
        raise bad("--rows", "detector or dataset", repr(rows))
    if not isinstance(digits, (int, np.integer)) or not 0 <= digits <= 10:
        raise bad("--digits", "an integer from 0 to 10", repr(digits))
    items = list(runs) if isinstance(runs, (list, tuple)) else [runs]
    if not items:
        raise bad("runs", "at least one report or comparison", "none")
    columns = _columns(metrics)
    collected, pairs = _collect(items)
    _apply_names(collected, names, datasets)
    family = _family(collected, family, columns)
    pair_level = _check_levels(collected, pairs)
    ordered = _order(collected, rows)
    data = _tidy(ordered, columns, family)
    _mark_best(data, ordered, columns, pairs, family)
    legend = _legend(ordered, pairs, columns, family, data, False, pair_level)
    legend_tex = _legend(ordered, pairs, columns, family, data, True, pair_level)
    return Table(data, tuple(columns), rows, tuple(legend), int(digits), tuple(legend_tex))
