"""The inference tables of a report: gaps with intervals, p-values, adjusted p-values and
verdicts, and the comparisons of every group with a reference group.

Everything here works on point values and replicate values that the engine has computed; no row
is touched. The methods themselves live in :mod:`fairaudit._inference`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._errors import bad
from ._gaps import GAP_KINDS, family_gaps, gap_metric, gap_names
from ._inference import (
    GAP_CI_METHODS,
    P_ADJUST_METHODS,
    adjust_p,
    bootstrap_maxt,
    family_gap_intervals,
    inversion_p_value,
    quantile,
    stepdown_maxt,
    upper_tail,
    verdict,
)

__all__ = [
    "TOLERANCE_PRESETS",
    "gap_higher_is_worse",
    "parse_tolerance",
    "parse_references",
    "gap_table",
    "reference_table",
    "UNUSABLE_WARN_SHARE",
]

#: Named tolerance sets: ``four-fifths`` is the 80% rule applied to every ratio gap.
TOLERANCE_PRESETS = {"four-fifths": ("_ratio", 0.8)}
#: A gap whose replicates are unusable more often than this gets a warning.
UNUSABLE_WARN_SHARE = 0.01
GAP_COLUMNS = [
    "family",
    "name",
    "value",
    "lo",
    "hi",
    "p_value",
    "p_adjusted",
    "tolerance",
    "verdict",
    "n_unusable",
    "skipped",
]


def gap_higher_is_worse(name: str) -> bool:
    """Ratios (min / max) are worse when lower; every other gap when higher.

    >>> gap_higher_is_worse("fpr_range"), gap_higher_is_worse("demographic_parity_ratio")
    (True, False)
    """
    return not name.endswith("ratio")


def parse_tolerance(tolerance, metrics) -> dict:
    """Tolerances per gap name from ``"fpr_range=0.05,four-fifths"``, a dict or None.

    >>> parse_tolerance("fpr_range=0.05", ["fpr", "tpr"])
    {'fpr_range': 0.05}
    >>> sorted(parse_tolerance("four-fifths", ["fpr", "tpr"]))
    ['equalized_odds_ratio', 'fpr_ratio', 'tpr_ratio']
    """
    if tolerance is None:
        return {}
    names = gap_names(metrics)
    items = tolerance.items() if isinstance(tolerance, dict) else None
    if items is None:
        if not isinstance(tolerance, str):
            raise bad("tolerance", "'GAP=VALUE,...', a preset name or a dict", repr(tolerance))
        items = []
        for part in filter(None, (p.strip() for p in tolerance.split(","))):
            name, eq, value = part.partition("=")
            items.append((name.strip(), value.strip() if eq else None))
    out = {}
    for name, value in items:
        if value is None and name in TOLERANCE_PRESETS:
            suffix, level = TOLERANCE_PRESETS[name]
            out.update({g: level for g in names if g.endswith(suffix)})
            continue
        if name not in names:
            raise bad(
                "tolerance",
                "gap names (e.g. fpr_range, demographic_parity_ratio) or a preset ("
                + ", ".join(TOLERANCE_PRESETS)
                + ")",
                repr(name),
            )
        try:
            level = float(value)
        except (TypeError, ValueError):
            raise bad("tolerance", f"a number for {name}", repr(value)) from None
        if not np.isfinite(level) or level < 0:
            raise bad("tolerance", f"a finite non-negative number for {name}", repr(value))
        out[name] = level
    return out


def parse_references(reference, structure) -> list:
    """Reference groups as indices into the structure's groups.

    ``reference`` is a group name (``white``; every family holding it), ``family=group``
    (``race=white``, ``gender+race=male+white``), a comma-separated list of those, or a list.
    """
    if reference is None:
        return []
    parts = reference
    if isinstance(reference, str):
        parts = [p.strip() for p in reference.split(",") if p.strip()]
    if isinstance(reference, dict):
        parts = [f"{k}={v}" for k, v in reference.items()]
    known = ", ".join(f"{f}={g}" for f, g in zip(structure.group_family, structure.group_name))
    out = []
    for part in parts:
        part = str(part)
        fam, eq, name = part.partition("=")
        hits = [
            i
            for i, (f, g) in enumerate(zip(structure.group_family, structure.group_name))
            if ((g == name and f == fam) if eq else g == part)
        ]
        if not hits:
            raise bad("reference", f"a group (e.g. {known[:200]})", repr(part))
        out += [i for i in hits if i not in out]
    fams = [structure.group_family[i] for i in out]
    dup = {f for f in fams if fams.count(f) > 1}
    if dup:
        raise bad("reference", "one reference group per family", f"several in {sorted(dup)}")
    return out


# ---------------------------------------------------------------------------- gaps
def _percentile_gap_intervals(gv, ov, grep, orep, metrics, alpha, method, jack):
    """Percentile (or BCa) intervals of the replicate gaps, with the point estimate's groups."""
    from ._bootstrap import interval

    out = {}
    for g in gap_names(metrics):
        ms = gap_metric(g)
        ok = np.ones(next(iter(grep.values())).shape[0], dtype=bool)
        for m in ms:
            used = ~np.isnan(gv[m])
            ok &= ~np.isnan(grep[m][:, used]).any(axis=1) & ~np.isnan(orep[m])
        masked = {m: np.where(np.isnan(gv[m])[None, :], np.nan, grep[m][ok]) for m in ms}
        reps = family_gaps(masked, {m: orep[m][ok] for m in ms}, ms)[g]
        point = family_gaps({m: gv[m] for m in ms}, {m: np.asarray(ov[m]) for m in ms}, ms)[g]
        jk = None
        if method == "bca" and jack is not None:
            jk = family_gaps(
                {m: np.where(np.isnan(gv[m])[None, :], np.nan, jack[0][m]) for m in ms},
                {m: jack[1][m] for m in ms},
                ms,
            )[g][:, None]
        lo, hi = interval(np.array([point]), reps[:, None], 1 - alpha, method, jk)
        out[g] = (lo[0], hi[0], int((~ok).sum()))
    return out


def gap_table(structure, point, reps, perm, jack, metrics, *, ci, gap_ci, p_adjust, tolerance):
    """The gaps of every family: value, interval, p-values, verdicts; plus warnings.

    ``point``: metric -> (G + 1,) values (whole set last); ``reps``: metric -> (B, G + 1) or
    None; ``perm``: a permutation result or None; ``jack``: metric -> (J, G + 1) or None.
    """
    if gap_ci not in GAP_CI_METHODS:
        raise bad("gap_ci", "one of " + ", ".join(GAP_CI_METHODS), repr(gap_ci))
    if p_adjust not in P_ADJUST_METHODS:
        raise bad("p_adjust", "one of " + ", ".join(P_ADJUST_METHODS), repr(p_adjust))
    names = gap_names(metrics)
    tolerance = tolerance or {}
    alpha = 1.0 - ci
    rows, warnings_out = [], []
    s = structure
    for fam in s.families:
        idx = s.family_slice(fam)
        gv = {m: point[m][idx] for m in metrics}
        ov = {m: point[m][-1] for m in metrics}
        gp = family_gaps(gv, ov, metrics)
        lims = {}
        if reps is not None:
            grep = {m: reps[m][:, idx] for m in metrics}
            orep = {m: reps[m][:, -1] for m in metrics}
            if gap_ci == "max-t":
                lims = family_gap_intervals(gv, ov, grep, orep, metrics, alpha)
            else:
                jk = (
                    None
                    if jack is None
                    else (
                        {m: jack[m][:, idx] for m in metrics},
                        {m: jack[m][:, -1] for m in metrics},
                    )
                )
                lims = _percentile_gap_intervals(gv, ov, grep, orep, metrics, alpha, gap_ci, jk)
        member = [s.group_name[i] for i in idx]
        worst = {}
        for g in names:
            skipped = [
                member[j] for j in range(len(idx)) if any(np.isnan(gv[m][j]) for m in gap_metric(g))
            ]
            lo, hi, n_bad = lims.get(g, (np.nan, np.nan, 0))
            p = perm.p_value(fam, g, gp[g]) if perm is not None else np.nan
            tol = tolerance.get(g)
            v = verdict(lo, hi, tol, gap_higher_is_worse(g))
            rows.append((fam, g, float(gp[g]), lo, hi, p, np.nan, tol, v, n_bad, skipped))
            if reps is not None and n_bad > UNUSABLE_WARN_SHARE * reps[metrics[0]].shape[0]:
                worst[g] = n_bad
        if worst:
            top = max(worst.values())
            warnings_out.append(
                f"{fam}: {len(worst)} gaps left out up to {top} of "
                f"{reps[metrics[0]].shape[0]} replicates in which a group they use was "
                f"undefined (e.g. {next(iter(worst))}); their intervals use the other replicates"
            )
    gaps = pd.DataFrame(rows, columns=GAP_COLUMNS)
    gaps["p_adjusted"] = _adjusted(gaps, perm, p_adjust)
    return gaps, warnings_out


def _adjusted(gaps, perm, method):
    p = gaps["p_value"].to_numpy(dtype=float)
    if method != "maxt" or perm is None:
        return adjust_p(p, "holm" if method == "maxt" else method)
    ok = np.flatnonzero(~np.isnan(p))
    out = np.full(p.shape, np.nan)
    if ok.size == 0:
        return out
    sign = np.array([1.0 if gap_higher_is_worse(n) else -1.0 for n in gaps["name"]])
    obs = sign[ok] * gaps["value"].to_numpy(dtype=float)[ok]
    null = np.stack(
        [sign[i] * perm.gaps[gaps["family"].iloc[i]][gaps["name"].iloc[i]] for i in ok], axis=1
    )
    out[ok] = stepdown_maxt(obs, null)
    return out


# ---------------------------------------------------------------------------- reference groups
REFERENCE_COLUMNS = [
    "family",
    "group",
    "reference",
    "metric",
    "value",
    "reference_value",
    "diff",
    "diff_lo",
    "diff_hi",
    "ratio",
    "ratio_lo",
    "ratio_hi",
    "p_value",
    "p_adjusted",
]


def reference_table(refs, structure, point, reps, jack, metrics, *, ci, ci_method, p_adjust):
    """Every other group of the reference's family against the reference group.

    Differences and ratios get intervals of ``ci_method`` (percentile or BCa) from the joint
    replicates; the p-value of "no difference" (equivalently "ratio 1") inverts the percentile
    interval of the difference (:func:`fairaudit._inference.inversion_p_value`), and is
    adjusted over the whole table (``maxt``: Romano-Wolf step-down max-|t| from the same joint
    replicates, :func:`fairaudit._inference.bootstrap_maxt`).
    """
    from ._bootstrap import interval

    rows, rep_cols = [], []
    s = structure
    for r in refs:
        fam = s.group_family[r]
        for i in s.family_slice(fam):
            if i == r:
                continue
            for m in metrics:
                v, v_ref = point[m][i], point[m][r]
                diff = v - v_ref
                ratio = v / v_ref if v_ref != 0 else np.nan
                lims = [np.nan] * 4
                p = np.nan
                if reps is not None and not np.isnan(diff):
                    rd = reps[m][:, i] - reps[m][:, r]
                    with np.errstate(divide="ignore", invalid="ignore"):
                        rr = reps[m][:, i] / reps[m][:, r]
                    jd = jr = None
                    if ci_method == "bca" and jack is not None:
                        jd = (jack[m][:, i] - jack[m][:, r])[:, None]
                        with np.errstate(divide="ignore", invalid="ignore"):
                            jr = (jack[m][:, i] / jack[m][:, r])[:, None]
                    lims = _ordered_interval(diff, rd, ci, ci_method, jd, interval)
                    lims += _ordered_interval(ratio, rr, ci, ci_method, jr, interval)
                    p = inversion_p_value(diff, rd)
                    rep_cols.append((len(rows), rd))
                rows.append(
                    (
                        fam,
                        s.group_name[i],
                        s.group_name[r],
                        m,
                        v,
                        v_ref,
                        diff,
                        lims[0],
                        lims[1],
                        ratio,
                        lims[2],
                        lims[3],
                        p,
                        np.nan,
                    )
                )
    table = pd.DataFrame(rows, columns=REFERENCE_COLUMNS)
    p = table["p_value"].to_numpy(dtype=float)
    if p_adjust == "maxt" and rep_cols:
        idx = np.array([i for i, _ in rep_cols])
        point = table["diff"].to_numpy(dtype=float)[idx]
        adjusted = np.full(p.shape, np.nan)
        adjusted[idx] = bootstrap_maxt(point, np.column_stack([c for _, c in rep_cols]))
        table["p_adjusted"] = adjusted
    else:
        table["p_adjusted"] = adjust_p(p, "holm" if p_adjust == "maxt" else p_adjust)
    return table


def _ordered_interval(value, reps, ci, method, jack, interval):
    if np.isnan(value):
        return [np.nan, np.nan]
    r = reps[~np.isnan(reps)]
    if r.size < max(2, reps.size // 2):
        return [np.nan, np.nan]
    if method == "bca" and jack is not None and np.isfinite(r).all():
        lo, hi = interval(np.array([value]), r[:, None], ci, "bca", jack)
        return [lo[0], hi[0]]
    a = 1.0 - ci
    return [quantile(r, a / 2), upper_tail(r, a / 2)]


GAP_KIND_NAMES = tuple(GAP_KINDS)
