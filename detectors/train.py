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
import sys
from pathlib import Path

from ._cli import run_cli, setup_logging
from ._errors import ConfigError
from .config import dump_config, list_presets, load_config

__all__ = ["main"]

log = logging.getLogger("detectors.train")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m detectors.train",
        description="Train a deepfake detector (PG-FDD and baselines).",
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
        "--overwrite", action="store_true", help="start afresh even if run_dir already holds a run"
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = list(args.overrides) + (
        ["data.skip_bad_images=true"] if args.skip_bad_images else []
    )
    cfg = load_config(args.config, overrides)
    if args.print_config:
        sys.stdout.write(dump_config(cfg))
        return 0
    import torch.distributed as dist  # torch-heavy imports after the configuration checks

    from ._distributed import init_distributed
    from ._trainer import Trainer

    info, device = init_distributed(cfg["device"])
    setup_logging(logging.INFO if info.is_main else logging.WARNING)
    run_dir = Path(cfg["run_dir"])
    resume_path = args.resume_from or (run_dir / "last.pt" if args.resume else None)
    if resume_path is None and (run_dir / "last.pt").exists() and not args.overwrite:
        raise ConfigError(
            f"run_dir {run_dir} already holds a run (last.pt): pass --resume to continue it, "
            "--overwrite to start again, or another run_dir"
        )
    handler = None
    try:
        if info.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            handler = _add_file_log(run_dir)
            log.info("device %s, %d process(es); run_dir %s", device, info.world_size, run_dir)
        trainer = Trainer(cfg, info, device)
        if resume_path is not None:
            trainer.resume(resume_path)
        trainer.prepare_run_dir(resuming=resume_path is not None)
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
