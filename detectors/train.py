"""Command line: ``python -m detectors.train --config CONFIG [key=value ...]``.

CONFIG is a YAML file or a shipped preset (``tiny``, ``pgfdd-ff++``). Values
resolve as defaults < CONFIG < ``key=value`` overrides (dotted keys, YAML
values). The run folder ``run_dir`` receives ``config.yaml`` (resolved),
``train.log``, ``summary.csv`` (one row per epoch), ``last.pt`` and ``best.pt``
(best validation AUC). Several processes: ``torchrun --nproc_per_node=N -m
detectors.train ...`` (DDP; gloo on CPU, NCCL on GPU).

Example::

    python -m detectors.train --config tiny data.root=DATA train.epochs=3 run_dir=RUN
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from ._cli import run_cli, setup_logging
from ._errors import ConfigError
from .config import dump_config, list_presets, load_config

__all__ = ["main", "holds_run", "clear_run", "config_changes", "check_resume"]

log = logging.getLogger("detectors.train")


#: files a training run writes into ``run_dir`` (removed by ``--overwrite`` before it starts)
RUN_FILES = ("last.pt", "best.pt", "summary.csv", "config.yaml", "train.log")

#: configuration keys that may differ when a run is resumed (applied, and logged)
RESUMABLE_CHANGES = (
    "run_dir",
    "device",
    "data.num_workers",
    "data.skip_bad_images",
    "train.epochs",
    "train.progress",
    "train.threads",
    "train.find_unused_parameters",
    "model.pretrained",
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m detectors.train",
        description="Train a deepfake detector (PG-FDD and baselines). KEY=VALUE overrides may "
        "come anywhere on the line.",
    )
    p.add_argument(
        "--config", required=True, help=f"YAML file or preset name ({', '.join(list_presets())})"
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="config overrides, e.g. data.root=DATA train.epochs=3 run_dir=RUN",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the run in run_dir from its last.pt"
    )
    p.add_argument("--resume-from", metavar="CKPT", help="continue from this checkpoint file")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help=f"start afresh in a run_dir that holds a run (its {', '.join(RUN_FILES)} are "
        "removed first)",
    )
    p.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="skip (and count) missing or unreadable images instead of stopping",
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    return p


def _add_file_log(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("detectors").addHandler(handler)
    return handler


def holds_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds (part of) a training run: a checkpoint or a summary.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> holds_run(folder), (folder / "summary.csv").touch(), holds_run(folder)
    (False, None, True)
    """
    return any((run_dir / name).exists() for name in ("last.pt", "best.pt", "summary.csv"))


def clear_run(run_dir: Path) -> list[str]:
    """Remove a run's files from ``run_dir`` (other files stay); returns the names removed.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> (folder / "last.pt").touch(); (folder / "notes.txt").touch()
    >>> clear_run(folder), sorted(p.name for p in folder.iterdir())
    (['last.pt'], ['notes.txt'])
    """
    removed = []
    for name in RUN_FILES:
        if (run_dir / name).exists():
            (run_dir / name).unlink()
            removed.append(name)
    for tmp in run_dir.glob(".*.tmp*"):  # interrupted atomic writes
        tmp.unlink()
    return removed


def _flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(cfg, dict):
        return {prefix[:-1]: cfg}
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        out.update(_flatten(value, f"{prefix}{key}."))
    return out


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose value differs between two configurations: ``{key: (old, new)}``.

    Examples
    --------
    >>> config_changes({"optim": {"lr": 0.1}, "seed": 5}, {"optim": {"lr": 0.2}, "seed": 5})
    {'optim.lr': (0.1, 0.2)}
    """
    a, b = _flatten(old), _flatten(new)
    keys = list(a) + [k for k in b if k not in a]
    return {k: (a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)}


def check_resume(old: dict[str, Any], new: dict[str, Any], source: str) -> list[str]:
    """Refuse a resumption whose settings differ from the checkpoint's, except
    :data:`RESUMABLE_CHANGES` and keys outside ``model`` that the checkpoint's configuration
    does not have (added to ``detectors`` later); returns the accepted changes as log lines.

    Examples
    --------
    >>> check_resume({"train": {"epochs": 3}}, {"train": {"epochs": 6}}, "RUN/last.pt")
    ['train.epochs: 3 -> 6']
    >>> check_resume({"seed": 5}, {"seed": 5, "train": {"threads": 1}}, "RUN/last.pt")
    ['train.threads: None -> 1']
    >>> check_resume({"optim": {"lr": 0.1}}, {"optim": {"lr": 0.2}}, "RUN/last.pt")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    detectors._errors.ConfigError: --resume RUN/last.pt: the checkpoint was trained with ...
    """
    changes = config_changes(old, new)
    known = _flatten(old)
    refused = {
        k: v
        for k, v in changes.items()
        # keys added to the defaults after the checkpoint was written are accepted; an absent
        # model option is the detector's default, so setting it now is a change
        if k not in RESUMABLE_CHANGES and (k in known or k.startswith("model."))
    }
    if refused:
        listed = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in refused.items())
        raise ConfigError(
            f"--resume {source}: the checkpoint was trained with other settings ({listed}); "
            "resume with the checkpoint's values, or start a new run"
        )
    return [f"{k}: {a!r} -> {b!r}" for k, (a, b) in changes.items()]


def _refuse_early(cfg: dict[str, Any], run_dir: Path, *, resuming: bool, overwrite: bool) -> None:
    """The checks that need no torch: a run folder in use, no data folder."""
    if not resuming and not overwrite and holds_run(run_dir):
        raise ConfigError(
            f"run_dir {run_dir} already holds a run: pass --resume to continue it, "
            "--overwrite to start again, or another run_dir"
        )
    if not cfg["data"]["root"]:
        raise ConfigError(
            "data.root is not set: pass data.root=DIR, a folder holding faketrain.csv, "
            "realtrain.csv, fakeval.csv and realval.csv"
        )


def main(argv: list[str] | None = None) -> int:
    """The command line (module docstring); returns the exit status.

    Examples
    --------
    >>> main(["--config", "tiny", "--print-config", "--overwrite", "train.epochs=2"])
    ... # doctest: +ELLIPSIS
    seed: 5
    ...
    train:
      epochs: 2
    ...
    0
    """
    args = _parser().parse_intermixed_args(argv)
    overrides = list(args.overrides) + (
        ["data.skip_bad_images=true"] if args.skip_bad_images else []
    )
    cfg = load_config(args.config, overrides)
    run_dir = Path(cfg["run_dir"])
    resume_path = args.resume_from or (run_dir / "last.pt" if args.resume else None)
    if not args.print_config:
        _refuse_early(cfg, run_dir, resuming=resume_path is not None, overwrite=args.overwrite)
    from .models import check_model_config  # imports torch: after the quick checks

    cfg["model"] = check_model_config(cfg["model"])
    if args.print_config:
        sys.stdout.write(dump_config(cfg))
        return 0
    from .data import check_data_root

    check_data_root(cfg["data"]["root"])
    import torch.distributed as dist

    from ._checkpoint import load_checkpoint
    from ._distributed import init_distributed
    from ._trainer import Trainer, set_threads

    ckpt = None
    if resume_path is not None:
        ckpt = load_checkpoint(resume_path)
        check_resume(ckpt.get("config", cfg), cfg, str(resume_path))  # refuse early; logged later
    elif args.overwrite and os.environ.get("RANK", "0") == "0" and run_dir.is_dir():
        clear_run(run_dir)
    info, device = init_distributed(cfg["device"])
    setup_logging(logging.INFO if info.is_main else logging.WARNING)
    handler = None
    try:
        if info.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            handler = _add_file_log(run_dir)
        threads = set_threads(cfg["train"]["threads"], device)
        trainer = Trainer(cfg, info, device)  # reads and checks the tables first
        log.info(
            "device %s, %d process(es), %d CPU thread(s) each; run_dir %s",
            device,
            info.world_size,
            threads,
            run_dir,
        )
        if ckpt is not None:
            trainer.resume(ckpt, str(resume_path))
        trainer.prepare_run_dir(resuming=ckpt is not None)
        trainer.fit()
    finally:
        if handler is not None:
            logging.getLogger("detectors").removeHandler(handler)
            handler.close()
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("detectors.train", main))
