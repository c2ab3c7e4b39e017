"""Command line: ``python -m detectors.predict --checkpoint CKPT --csv test.csv --out DIR``.

Writes, for the rows of ``test.csv`` in file order:

``DIR/preds.npy``
    p(fake) = softmax(logits)[:, 1] of the scoring head (PG-FDD: the fused
    head), float64, 1-D.
``DIR/logits.npy``
    the scoring head's logits, N x 2 (real, fake).
``DIR/labels.npy``
    the CSV's ``label`` column (0 real, 1 fake), when it has one.
``DIR/test.csv``
    the input CSV's rows and columns unchanged (demographics included).
``DIR/predictions.csv``
    one row per image: row, img_path, label, intersec_label, group, [video_id,]
    logit_real, logit_fake, prob_fake.
``DIR/predict.json``
    how the numbers were made (checkpoint, score rule, counts).

then ``python -m fairaudit report DIR/preds.npy DIR/labels.npy DIR/test.csv``
audits them. ``--seed-layout [FOLDER]`` also writes the research code's
per-group files ``<gender>,<race>labels.npy`` / ``<gender>,<race>predictions.npy``,
whose score is the raw class-1 logit as the research code saves it. With a
video column (default ``video_id``) the frame scores are also aggregated per
video into ``DIR/video/`` (same files, one row per video).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from ._checkpoint import load_checkpoint, model_from_checkpoint
from ._cli import run_cli, setup_logging
from ._distributed import DistInfo, resolve_device
from ._engine import run_inference
from ._errors import DataError
from .data import (
    GROUP_CODINGS,
    ImageListDataset,
    ImageTable,
    build_transform,
    collate_images,
    group_names,
    read_table,
)

__all__ = ["main", "predict", "write_seed_layout", "aggregate_videos", "audit_state"]

log = logging.getLogger("detectors.predict")

SCORE_RULE = "p(fake) = softmax(logits)[:, 1] of the scoring head"


def prob_fake(logits: np.ndarray) -> np.ndarray:
    """``softmax(z)[:, 1] = 1 / (1 + exp(z_0 - z_1))`` in float64."""
    z = logits.astype(np.float64)
    return 1.0 / (1.0 + np.exp(z[:, 0] - z[:, 1]))


def predict(
    checkpoint: str | Path,
    csv: str | Path,
    *,
    device: str = "auto",
    batch_size: int = 64,
    num_workers: int = 2,
    skip_bad_images: bool = False,
    dataset: str | None = None,
    amp: str = "none",
    progress: bool = False,
) -> dict[str, Any]:
    """Score every image of ``csv`` with the detector in ``checkpoint``.

    Returns
    -------
    dict
        ``table`` (:class:`ImageTable`, kept rows), ``rows`` (int positions in
        ``table`` that were scored, in file order), ``logits`` (N, 2), ``prob`` (N,),
        ``skipped`` (list of CSV row numbers), ``dataset``, ``checkpoint`` info.

    Examples
    --------
    >>> import tempfile
    >>> from detectors.synth import generate
    >>> from detectors.train import main as train
    >>> root = tempfile.mkdtemp()
    >>> _ = generate(f"{root}/data", 40)
    >>> train(["--config", "tiny", f"data.root={root}/data", f"run_dir={root}/run",
    ...        "train.epochs=1", "model.name=plain", "model.backbone=tiny_cnn"])
    0
    >>> result = predict(f"{root}/run/best.pt", f"{root}/data/test.csv", num_workers=0)
    >>> result["prob"].shape, float(result["prob"].min()) >= 0
    ((8,), True)
    """
    dev = resolve_device(device, DistInfo())
    ckpt = load_checkpoint(checkpoint, map_location="cpu")
    model = model_from_checkpoint(ckpt).to(dev).eval()
    dataset = dataset or ckpt.get("dataset", "ff++")
    table = read_table(
        csv,
        dataset=dataset,
        role="any",
        require_groups=False,
        require_labels=False,
        skip_missing=skip_bad_images,
    )
    tf = ckpt["transform"]
    model.mean, model.std = tuple(tf["mean"]), tuple(tf["std"])  # as trained
    transform = build_transform(int(tf["input_size"]))
    loader = DataLoader(
        ImageListDataset(table, transform, skip_bad=skip_bad_images),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_images,
        pin_memory=dev.type == "cuda",
    )
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(table), desc="predict", leave=False, dynamic_ncols=True)
    result = run_inference(model, loader, dev, amp=amp, progress=bar)
    if bar is not None:
        bar.close()
    if len(result["index"]) == 0:
        raise DataError(f"{csv}: no image could be read")
    rows = result["index"].numpy()
    skipped = table.skipped_rows + [int(table.rows[i]) for i in result["skipped"]]
    logits = result["logits"].numpy()
    return {
        "table": table,
        "rows": rows,
        "logits": logits,
        "prob": prob_fake(logits),
        "skipped": sorted(skipped),
        "dataset": dataset,
        "model_name": ckpt["model_name"],
        "epoch": int(ckpt.get("epoch", -1)),
    }


def audit_state(labels, logits, groups, dataset, clusters=None, batch_rows=4096):
    """The predictions streamed, batch by batch, into a :class:`fairaudit.AuditState` (gender
    and race from ``dataset``'s coding, 2-column logits; whole videos resampled when
    ``clusters`` are given). States of several shards merge into the state of all of them.

    >>> logits = np.array([[0.0, 2.0], [1.0, -1.0], [0.5, 0.4], [-1.0, 1.0]])
    >>> s = audit_state(np.array([1, 0, 0, 1]), logits, np.array([1, 1, 5, 5]), "ff++")
    >>> s.n_rows, float(s.audit(n_boot=0, n_perm=0).groups.loc[("gender", "male"), "auc"])
    (4, 1.0)
    """
    from fairaudit import AuditState

    coding = GROUP_CODINGS[dataset]
    gender = np.array(["female" if g == "nonmale" else g for g, _ in coding])
    race = np.array([r for _, r in coding])
    state = AuditState(
        ["gender", "race"],
        scores="logits2",
        categories={
            "gender": list(dict.fromkeys(gender.tolist())),
            "race": list(dict.fromkeys(race.tolist())),
        },
        clustered=clusters is not None,
    )
    for start in range(0, len(labels), batch_rows):
        part = slice(start, start + batch_rows)
        g = np.asarray(groups[part])
        state.update(
            labels[part],
            logits[part].astype(np.float64),
            {"gender": gender[g], "race": race[g]},
            clusters=None if clusters is None else clusters[part],
        )
    return state


def _group_column(groups: np.ndarray, dataset: str) -> list[str]:
    names = group_names(dataset)
    return [names[g] if 0 <= g < len(names) else "" for g in groups]


def _write_arrays(
    out: Path, frame: pd.DataFrame, labels: np.ndarray, logits: np.ndarray, prob: np.ndarray
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "preds.npy", prob.astype(np.float64))
    np.save(out / "logits.npy", logits.astype(np.float32))
    if (labels >= 0).all():
        np.save(out / "labels.npy", labels.astype(np.int64))
    frame.to_csv(out / "test.csv", index=False)


def write_seed_layout(
    folder: Path, labels: np.ndarray, groups: np.ndarray, logits: np.ndarray, dataset: str
) -> None:
    """The research code's per-group files: ``<gender>,<race>labels.npy`` and
    ``<gender>,<race>predictions.npy`` (the raw class-1 logit ``logits[:, 1]``), one pair per group
    of the coding (empty arrays for absent groups, as the research code writes them).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> logits = np.array([[0.0, 1.0], [0.5, -1.0]])
    >>> write_seed_layout(folder, np.array([1, 0]), np.array([0, 5]), logits, "ff++")
    >>> np.load(folder / "male,asianpredictions.npy").tolist()  # the raw class-1 logit
    [1.0]
    >>> np.load(folder / "nonmale,whitelabels.npy").tolist()
    [0]
    """
    folder.mkdir(parents=True, exist_ok=True)
    for gid, name in enumerate(group_names(dataset)):
        mask = groups == gid
        np.save(folder / f"{name}labels.npy", labels[mask].astype(np.int64))
        np.save(folder / f"{name}predictions.npy", logits[mask, 1].astype(np.float32))


def aggregate_videos(
    frame: pd.DataFrame,
    video_column: str,
    labels: np.ndarray,
    logits: np.ndarray,
    prob: np.ndarray,
    how: str = "mean",
) -> dict[str, Any]:
    """One row per video: mean (or max) p(fake) and mean logits of its frames.

    The video's label must be the same on every frame; its demographic columns
    are taken from its first frame. Returns frame/labels/logits/prob per video, in
    order of first appearance.

    Examples
    --------
    >>> frame = pd.DataFrame({"video_id": ["a", "a", "b"]})
    >>> logits = np.zeros((3, 2))
    >>> prob = np.array([0.2, 0.6, 0.1])
    >>> out = aggregate_videos(frame, "video_id", np.array([1, 1, 0]), logits, prob)
    >>> out["prob"].round(6).tolist(), out["labels"].tolist()
    ([0.4, 0.1], [1, 0])
    """
    keys = frame[video_column].astype(str).to_numpy()
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first)  # videos in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    vid = rank[inverse]
    n_videos = len(uniq)
    counts = np.bincount(vid, minlength=n_videos)
    if (labels >= 0).all():
        lo = np.full(n_videos, 2)
        hi = np.full(n_videos, -1)
        np.minimum.at(lo, vid, labels)
        np.maximum.at(hi, vid, labels)
        if (lo != hi).any():
            bad = uniq[order][np.flatnonzero(lo != hi)[0]]
            raise DataError(
                f"video {bad!r} has frames labelled both real and fake: cannot aggregate per video"
            )
        video_labels = lo
    else:
        video_labels = np.full(n_videos, -1)
    video_logits = np.zeros((n_videos, 2))
    np.add.at(video_logits, vid, logits.astype(np.float64))
    video_logits /= counts[:, None]
    if how == "mean":
        video_prob = np.bincount(vid, weights=prob, minlength=n_videos) / counts
    else:
        video_prob = np.full(n_videos, -np.inf)
        np.maximum.at(video_prob, vid, prob)
    video_frame = frame.iloc[first[order]].reset_index(drop=True).copy()
    video_frame.insert(len(video_frame.columns), "n_frames", counts)
    return {
        "frame": video_frame,
        "labels": video_labels,
        "logits": video_logits,
        "prob": video_prob,
    }


def _predictions_table(
    frame: pd.DataFrame,
    rows: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    logits: np.ndarray,
    prob: np.ndarray,
    dataset: str,
    video_column: str | None,
) -> pd.DataFrame:
    table = pd.DataFrame({"row": rows, "img_path": frame["img_path"].to_numpy()})
    if (labels >= 0).all():
        table["label"] = labels
    if (groups >= 0).all():
        table["intersec_label"] = groups
        table["group"] = _group_column(groups, dataset)
    if video_column:
        table[video_column] = frame[video_column].to_numpy()
    table["logit_real"], table["logit_fake"], table["prob_fake"] = logits[:, 0], logits[:, 1], prob
    return table


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m detectors.predict",
        description="Score the images of a CSV with a trained detector.",
    )
    p.add_argument(
        "--checkpoint", required=True, help="a last.pt / best.pt written by detectors.train"
    )
    p.add_argument(
        "--csv", required=True, help="CSV of the research schema (img_path, label, demographics)"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--num-workers", type=int, default=2)
    p.add_argument(
        "--dataset",
        default=None,
        help="group coding of the CSV (ff++, dfdc, celebdf, dfd); default: the checkpoint's",
    )
    p.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="skip (and list in skipped.csv) missing or unreadable images",
    )
    p.add_argument(
        "--seed-layout",
        nargs="?",
        const="",
        default=None,
        metavar="FOLDER",
        help="also write the research per-group files (default folder: OUT/seed_layout)",
    )
    p.add_argument(
        "--video-column",
        default="video_id",
        help="column naming each frame's video; aggregated into OUT/video/ when present",
    )
    p.add_argument(
        "--video-aggregate",
        choices=("mean", "max"),
        default="mean",
        help="how frame p(fake) become a video's",
    )
    p.add_argument(
        "--state",
        action="store_true",
        help="also write OUT/state.bin: the outputs streamed into a fairaudit.AuditState "
        "(mergeable with other shards' states; `python -m fairaudit report OUT/state.bin`)",
    )
    p.add_argument("--amp", choices=("none", "bf16"), default="none", help="autocast for inference")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """The command line (module docstring); returns the exit status.

    Examples
    --------
    >>> import tempfile
    >>> from detectors.synth import generate
    >>> from detectors.train import main as train
    >>> root = tempfile.mkdtemp()
    >>> _ = generate(f"{root}/data", 40)
    >>> train(["--config", "tiny", f"data.root={root}/data", f"run_dir={root}/run",
    ...        "train.epochs=1", "model.name=plain", "model.backbone=tiny_cnn"])
    0
    >>> main(["--checkpoint", f"{root}/run/best.pt", "--csv", f"{root}/data/test.csv",
    ...       "--out", f"{root}/out", "--num-workers", "0"])  # doctest: +ELLIPSIS
    wrote 8 predictions to ...
    0
    >>> np.load(f"{root}/out/preds.npy").shape
    (8,)
    """
    args = _parser().parse_args(argv)
    setup_logging()
    t0 = time.time()
    res = predict(
        args.checkpoint,
        args.csv,
        device=args.device,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        skip_bad_images=args.skip_bad_images,
        dataset=args.dataset,
        amp=args.amp,
        progress=args.progress,
    )
    out = Path(args.out)
    table: ImageTable = res["table"]
    rows = res["rows"]
    frame = table.frame.iloc[rows].reset_index(drop=True)
    labels, groups = table.labels[rows], table.groups[rows]
    _write_arrays(out, frame, labels, res["logits"], res["prob"])
    video_column = args.video_column if args.video_column in frame.columns else None
    _predictions_table(
        frame,
        table.rows[rows],
        labels,
        groups,
        res["logits"],
        res["prob"],
        res["dataset"],
        video_column,
    ).to_csv(out / "predictions.csv", index=False)
    if res["skipped"]:
        pd.DataFrame({"row": res["skipped"]}).to_csv(out / "skipped.csv", index=False)
        log.warning(
            "skipped %d unreadable image(s); their rows are listed in %s",
            len(res["skipped"]),
            out / "skipped.csv",
        )
    if args.seed_layout is not None:
        if (labels < 0).any() or (groups < 0).any():
            raise DataError(
                f"--seed-layout needs the label and intersec_label columns in {args.csv}"
            )
        write_seed_layout(
            Path(args.seed_layout) if args.seed_layout else out / "seed_layout",
            labels,
            groups,
            res["logits"],
            res["dataset"],
        )
    if video_column:
        videos = aggregate_videos(
            frame, video_column, labels, res["logits"], res["prob"], args.video_aggregate
        )
        _write_arrays(
            out / "video", videos["frame"], videos["labels"], videos["logits"], videos["prob"]
        )
    if args.state:
        if (labels < 0).any() or (groups < 0).any():
            raise DataError(f"--state needs the label and intersec_label columns in {args.csv}")
        clusters = frame[video_column].to_numpy() if video_column else None
        state = audit_state(labels, res["logits"], groups, res["dataset"], clusters)
        (out / "state.bin").write_bytes(state.to_bytes())
    meta = {
        "checkpoint": str(args.checkpoint),
        "model": res["model_name"],
        "epoch": res["epoch"],
        "csv": str(args.csv),
        "dataset": res["dataset"],
        "score_rule": SCORE_RULE,
        "n": int(len(rows)),
        "skipped": len(res["skipped"]),
        "video_column": video_column,
        "video_aggregate": args.video_aggregate if video_column else None,
        "seconds": round(time.time() - t0, 3),
        "torch": str(torch.__version__),
    }
    (out / "predict.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    print(f"wrote {len(rows)} predictions to {out} (skipped {len(res['skipped'])})")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("detectors.predict", main))
