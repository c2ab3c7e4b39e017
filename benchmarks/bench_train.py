"""Speed of the detectors pipeline: SAM step vs plain step, data loading vs model consumption,
predict vs a bare forward loop.

Usage (with the package installed, e.g. ``pip install -e .[detectors]``, or ``PYTHONPATH=.``)::

    python benchmarks/bench_train.py                       # CPU: tiny backbone at 64 px
    python benchmarks/bench_train.py --device cuda         # GPU: Xception PG-FDD at 256 px
    python benchmarks/bench_train.py --backbone xception --size 256 --batch 16
    python benchmarks/bench_train.py --threads 2            # CPU threads (default: auto, as train)

Figures (the last line is one JSON object holding all of them):

* ``sam_over_plain``: seconds per SAM step / seconds per plain step, same model, same batch
  (two forward-backward passes: 2.0 is the floor; target <= 2.1);
* ``loader_images_per_s`` vs ``model_images_per_s``: images the training DataLoader delivers
  per second (no model) vs images a SAM training step consumes per second;
* ``predict_overhead``: seconds of ``detectors.predict.predict`` over seconds of a bare
  ``model(batch, inference=True)`` loop on the same number of pre-made tensors, minus 1
  (target <= 0.10).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader

from detectors._engine import plain_step, sam_step, to_device
from detectors._trainer import set_threads
from detectors.data import PairDataset, build_transform, collate_pairs, read_training_tables
from detectors.models import create_model
from detectors.predict import predict
from detectors.sam import SAM
from detectors.synth import generate


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _model(args, device):
    torch.manual_seed(0)
    options = {"backbone": args.backbone}
    if args.backbone == "tiny_cnn":
        options.update(feature_dim=64, head_hidden=64)
    return create_model("pgfdd", **options).to(device)


def _batch(args, device):
    g = torch.Generator().manual_seed(0)
    n = args.batch
    return to_device(
        {
            "image": torch.rand(2 * n, 3, args.size, args.size, generator=g) * 2 - 1,
            "label": torch.tensor([0] * n + [1] * n),
            "label_specific": torch.cat(
                [torch.zeros(n, dtype=torch.long), torch.randint(1, 6, (n,), generator=g)]
            ),
            "group": torch.randint(0, 8, (2 * n,), generator=g),
        },
        device,
    )


def time_steps(args, device) -> dict[str, float]:
    """Seconds per plain and per SAM step on one model and one batch.

    Blocks of ``--steps`` plain steps and ``--steps`` SAM steps alternate ``--rounds`` times
    (so load changes on the machine hit both alike); the median block time is reported.
    """
    batch = _batch(args, device)
    model = _model(args, device).train()
    base = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-3)
    sam = SAM(base, rho=0.05)
    run = {
        "plain": lambda: plain_step(model, batch, base, amp=args.amp, device=device),
        "sam": lambda: sam_step(model, batch, sam, amp=args.amp, device=device),
    }
    for _ in range(args.warmup):
        run["plain"]()
        run["sam"]()
    times: dict[str, list[float]] = {"plain": [], "sam": []}
    for _ in range(args.rounds):
        for mode in ("plain", "sam"):
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(args.steps):
                run[mode]()
            _sync(device)
            times[mode].append((time.perf_counter() - t0) / args.steps)
    return {mode: statistics.median(v) for mode, v in times.items()}


def loader_rate(args, data: Path) -> float:
    fakes, reals = read_training_tables(data, "train", dataset="ff++", skip_missing=False)
    ds = PairDataset(fakes, reals, build_transform(args.size), seed=0)
    loader = DataLoader(
        ds,
        batch_size=args.batch,
        shuffle=True,
        num_workers=args.workers,
        collate_fn=collate_pairs,
        pin_memory=args.device.startswith("cuda"),
        persistent_workers=False,
    )
    images, t0 = 0, None
    for epoch in range(args.loader_epochs + 1):
        ds.set_epoch(epoch)
        for i, batch in enumerate(loader):
            if t0 is None and i == 1:  # after worker start-up
                t0 = time.perf_counter()
            elif t0 is not None:
                images += batch["image"].shape[0]
    return images / (time.perf_counter() - t0)


def predict_overhead(args, data: Path, device: torch.device, workdir: Path) -> dict[str, float]:
    model = _model(args, device).eval()
    ckpt = {
        "format_version": 1,
        "model_name": "pgfdd",
        "model_options": {
            "backbone": args.backbone,
            **({"feature_dim": 64, "head_hidden": 64} if args.backbone == "tiny_cnn" else {}),
        },
        "model": model.state_dict(),
        "transform": {"input_size": args.size, "mean": [0.5] * 3, "std": [0.5] * 3},
        "dataset": "ff++",
        "epoch": 0,
    }
    torch.save(ckpt, workdir / "bench.pt")
    frames = [
        pd.read_csv(data / f)
        for f in ("faketrain.csv", "realtrain.csv", "fakeval.csv", "realval.csv", "test.csv")
    ]
    table = pd.concat(frames)[
        ["img_path", "label", "ismale", "isasian", "iswhite", "isblack", "intersec_label"]
    ]
    table.to_csv(data / "all.csv", index=False)
    table.head(2 * args.predict_batch).to_csv(data / "warm.csv", index=False)
    kw = dict(device=str(device), batch_size=args.predict_batch, num_workers=args.workers)
    predict(workdir / "bench.pt", data / "warm.csv", **kw)  # warm-up (allocator, kernels)
    t0 = time.perf_counter()
    res = predict(workdir / "bench.pt", data / "all.csv", **kw)
    _sync(device)
    t_predict = time.perf_counter() - t0
    n = len(res["prob"])
    x = torch.rand(args.predict_batch, 3, args.size, args.size, device=device) * 2 - 1
    with torch.inference_mode():
        model(({"image": x}), inference=True)
        _sync(device)
        t0 = time.perf_counter()
        done = 0
        while done < n:
            k = min(args.predict_batch, n - done)
            model({"image": x[:k]}, inference=True)["logits"].float()
            done += k
        _sync(device)
    t_bare = time.perf_counter() - t0
    return {
        "n": n,
        "predict_s": t_predict,
        "bare_forward_s": t_bare,
        "predict_images_per_s": n / t_predict,
        "bare_images_per_s": n / t_bare,
        "overhead": t_predict / t_bare - 1.0,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--backbone", default=None, help="default: xception on CUDA, tiny_cnn on CPU")
    p.add_argument("--size", type=int, default=None, help="default: 256 on CUDA, 64 on CPU")
    p.add_argument(
        "--batch", type=int, default=None, help="pairs per step (default 16 on CUDA, 4 on CPU)"
    )
    p.add_argument("--steps", type=int, default=5, help="steps per timed block")
    p.add_argument("--rounds", type=int, default=6, help="alternating plain/SAM blocks")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--amp", default="none", choices=("none", "bf16"))
    p.add_argument(
        "--images",
        type=int,
        default=400,
        help="synthetic images for the loader and predict figures",
    )
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--loader-epochs", type=int, default=2)
    p.add_argument("--predict-batch", type=int, default=64)
    p.add_argument(
        "--threads",
        default="auto",
        help="CPU threads of this process: auto (the training default, train.threads) or N",
    )
    args = p.parse_args()
    cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    args.device = ("cuda" if cuda else "cpu") if args.device == "auto" else args.device
    device = torch.device(args.device)
    args.backbone = args.backbone or ("xception" if cuda else "tiny_cnn")
    args.size = args.size or (256 if cuda else 64)
    args.batch = args.batch or (16 if cuda else 4)
    if cuda:
        torch.backends.cudnn.benchmark = True
    threads = set_threads(args.threads if args.threads == "auto" else int(args.threads), device)

    steps = time_steps(args, device)
    model_rate = 2 * args.batch / steps["sam"]
    print(
        f"SAM step {steps['sam'] * 1e3:.1f} ms, plain step {steps['plain'] * 1e3:.1f} ms, ratio "
        f"{steps['sam'] / steps['plain']:.3f} (floor 2.0, target <= 2.1)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        generate(data, args.images, size=args.size, seed=0)
        rate = loader_rate(args, data)
        print(
            f"data loader {rate:.0f} images/s with {args.workers} worker(s); a SAM step consumes "
            f"{model_rate:.0f} images/s"
        )
        pred = predict_overhead(args, data, device, Path(tmp))
    print(
        f"predict {pred['predict_images_per_s']:.0f} images/s vs bare forward "
        f"{pred['bare_images_per_s']:.0f} images/s: overhead {pred['overhead'] * 100:.1f}% "
        "(target <= 10%)"
    )
    figures = {
        "device": torch.cuda.get_device_name(device)
        if cuda
        else f"cpu ({platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads)",
        "backbone": args.backbone,
        "threads": threads,
        "input_size": args.size,
        "pairs_per_step": args.batch,
        "amp": args.amp,
        "sam_step_s": round(steps["sam"], 5),
        "timing": f"median of {args.rounds} alternating blocks of {args.steps} steps",
        "plain_step_s": round(steps["plain"], 5),
        "sam_over_plain": round(steps["sam"] / steps["plain"], 4),
        "loader_images_per_s": round(rate, 1),
        "model_images_per_s": round(model_rate, 1),
        "loader_over_model": round(rate / model_rate, 3),
        "workers": args.workers,
        "predict_images_per_s": round(pred["predict_images_per_s"], 1),
        "bare_forward_images_per_s": round(pred["bare_images_per_s"], 1),
        "predict_overhead": round(pred["overhead"], 4),
        "predict_images": pred["n"],
        "torch": str(torch.__version__),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
