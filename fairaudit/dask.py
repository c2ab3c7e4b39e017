"""Audits of Dask DataFrames across machines (the optional extra ``dask``).

Every partition becomes an :class:`~fairaudit.AuditState` on its worker, serialised to bytes
(no pickled objects travel); the states are merged in a tree, ``split_every`` at a time, and
the merged state is audited on the client. Merging is associative and commutative, so the
partitioning and the tree never change a number: the audit equals :func:`fairaudit.audit` on
the same rows while the scores are exact, and stays within the bounds recorded in
``config["state"]`` past the state's exact cap.
"""

from __future__ import annotations

from ._errors import bad, opt
from ._options import DEFAULTS
from ._state import EXACT_CAP, GRID_BITS, AuditState

__all__ = ["audit", "state"]


def state(
    ddf,
    *,
    score,
    label="label",
    attributes,
    clusters=None,
    weights=None,
    scores="auto",
    threshold=DEFAULTS["threshold"],
    pos_label=None,
    missing_groups=DEFAULTS["missing_groups"],
    drop_nan=DEFAULTS["drop_nan"],
    exact_cap=EXACT_CAP,
    grid_bits=GRID_BITS,
    split_every=8,
) -> AuditState:
    """The merged :class:`~fairaudit.AuditState` of a Dask DataFrame's rows.

    ``score``: the score column (a list of two for two columns of logits); ``label``,
    ``attributes``, ``clusters``, ``weights``: column names. ``scores="auto"`` takes
    ``logits2`` for two columns and ``prob`` when every score lies in [0, 1] (one pass for the
    range); other rules are named.

    >>> import dask, dask.dataframe as dd, pandas as pd
    >>> df = pd.DataFrame({"p": [0.1, 0.8, 0.6, 0.3], "label": [0, 1, 1, 0],
    ...                    "g": ["a", "a", "b", "b"]})
    >>> with dask.config.set(scheduler="synchronous"):
    ...     s = state(dd.from_pandas(df, npartitions=2), score="p", attributes=["g"])
    >>> s.n_rows
    4
    """
    import dask

    score_cols = [score] if isinstance(score, str) else list(score)
    attributes = [attributes] if isinstance(attributes, str) else list(attributes)
    named = score_cols + [label] + attributes + [c for c in (clusters, weights) if c]
    unknown = [c for c in named if c not in ddf.columns]
    if unknown:
        raise bad(
            "ddf",
            "the named columns",
            f"no column {', '.join(map(repr, unknown))} (columns: "
            f"{', '.join(map(str, list(ddf.columns)[:15]))})",
        )
    if not isinstance(split_every, int) or isinstance(split_every, bool) or split_every < 2:
        raise bad("split_every", "an integer of at least 2", repr(split_every))
    config = dict(
        scores=_rule(ddf, score_cols, scores),
        threshold=threshold,
        pos_label=pos_label,
        missing_groups=missing_groups,
        drop_nan=drop_nan,
        clustered=clusters is not None,
        weighted=weights is not None,
        exact_cap=exact_cap,
        grid_bits=grid_bits,
    )
    AuditState(attributes, **config)  # settings checked here, before any task runs
    columns = dict(
        score=score_cols, label=label, attributes=attributes, clusters=clusters, weights=weights
    )
    parts = [
        dask.delayed(_partition_state)(p, attributes, config, columns)
        for p in ddf[list(dict.fromkeys(named))].to_delayed()
    ]
    while len(parts) > 1:
        parts = [
            dask.delayed(_merge_bytes)(*parts[i : i + split_every])
            for i in range(0, len(parts), split_every)
        ]
    return AuditState.from_bytes(parts[0].compute())


def audit(ddf, *, score, label="label", attributes, clusters=None, weights=None, **options):
    """The :class:`~fairaudit.Audit` of a Dask DataFrame: partitions to states, merged in a
    tree, audited. Options: those of :func:`state` (score rule, threshold, ...) and of
    :meth:`fairaudit.AuditState.audit` (``n_boot``, ``reference``, ``tolerance``, ...).

    >>> import dask, dask.dataframe as dd, numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"p": rng.random(400), "label": rng.integers(0, 2, 400),
    ...                    "race": rng.choice(["asian", "white"], 400)})
    >>> with dask.config.set(scheduler="synchronous"):
    ...     r = audit(dd.from_pandas(df, npartitions=4), score="p", attributes=["race"],
    ...               n_boot=0)
    >>> bool(r.groups.loc[("overall", "overall"), "n"] == 400)
    True
    """
    keys = (
        "scores",
        "threshold",
        "pos_label",
        "missing_groups",
        "drop_nan",
        "exact_cap",
        "grid_bits",
        "split_every",
    )
    state_options = {k: options.pop(k) for k in keys if k in options}
    merged = state(
        ddf,
        score=score,
        label=label,
        attributes=attributes,
        clusters=clusters,
        weights=weights,
        **state_options,
    )
    return merged.audit(**options)


def _rule(ddf, score_cols, scores):
    if scores != "auto":
        return scores
    if len(score_cols) == 2:
        return "logits2"
    import dask

    lo, hi = dask.compute(ddf[score_cols[0]].min(), ddf[score_cols[0]].max())
    if lo != lo or (lo >= 0 and hi <= 1):  # NaN: no finite score (the state says so)
        return "prob"
    raise bad(
        "scores",
        f"a named rule ({opt('scores', 'logit')} or {opt('scores', 'percent')}) for scores "
        f"that are not probabilities (under {opt('scores', 'auto')} they must lie in [0, 1])",
        f"scores from {lo:.4g} to {hi:.4g}",
    )


def _partition_state(df, attributes, config, columns) -> bytes:
    s = AuditState(attributes, **config)
    if len(df):
        score = columns["score"]
        s.update(
            df[columns["label"]].to_numpy(),
            df[score[0]].to_numpy() if len(score) == 1 else df[score].to_numpy(),
            df[attributes],
            clusters=None if columns["clusters"] is None else df[columns["clusters"]],
            weights=None if columns["weights"] is None else df[columns["weights"]].to_numpy(),
        )
    return s.to_bytes()


def _merge_bytes(*parts) -> bytes:
    return AuditState.merge_all(parts).to_bytes()
