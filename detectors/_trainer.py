"""The training loop: data, model, SAM or plain optimizer, StepLR, validation, checkpoints, logs."""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset
from tqdm.auto import tqdm

from fairaudit import AuditState

from . import __version__
from ._checkpoint import FORMAT_VERSION, load_checkpoint, save_atomic
from ._distributed import (
    DistInfo,
    all_gather_bytes,
    all_gather_objects,
    all_reduce_sum,
    barrier,
    unwrap,
)
from ._engine import plain_step, run_inference, sam_step, to_device
from ._errors import ConfigError, DataError
from ._metrics import state_metrics, validation_state
from ._seeding import rng_state, seed_everything, set_rng_state
from .config import dump_config
from .data import (
    GROUP_CODINGS,
    PairDataset,
    build_transform,
    check_dataset,
    collate_pairs,
    group_counts,
    num_groups,
    read_training_tables,
)
from .models import create_model, model_options
from .sam import SAM

__all__ = ["Trainer", "set_threads"]

log = logging.getLogger("detectors.train")


def set_threads(threads: int | str, device: torch.device) -> int:
    """Set torch's CPU threads for this process; returns the number in force.

    ``auto``: leave torch's choice when ``OMP_NUM_THREADS`` is set (torchrun sets it to 1 per
    process); one thread on a GPU (the CPU only feeds it); on the CPU, this process's share of
    the idle cores - the cores available to it, less the one-minute load average, divided by
    the processes on this machine (``LOCAL_WORLD_SIZE``) - at least 1 and at most 4. On a busy
    machine more threads than idle cores make every step wait for the slowest thread (measured
    in the README's "Speed" section: 25 to 50 times slower). An integer is used as given.

    Examples
    --------
    >>> previous = torch.get_num_threads()
    >>> set_threads(1, torch.device("cpu"))
    1
    >>> torch.set_num_threads(previous)
    """
    if threads == "auto":
        if os.environ.get("OMP_NUM_THREADS"):
            return torch.get_num_threads()
        if device.type == "cuda":
            threads = 1
        else:
            available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
            busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
            local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
            threads = min(4, max(1, int(available - busy) // local))
    torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def _seed_worker(worker_id: int) -> None:
    import random

    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


class Trainer:
    """Owns one training run; see :mod:`detectors.train` for the command line.

    Parameters
    ----------
    cfg : dict
        A resolved configuration (:func:`detectors.config.load_config`).
    info : DistInfo
        This process's rank and world size.
    device : torch.device
    """

    def __init__(self, cfg: dict[str, Any], info: DistInfo, device: torch.device) -> None:
        self.cfg, self.info, self.device = cfg, info, device
        self.run_dir = Path(cfg["run_dir"])
        self.seed = int(cfg["seed"])
        seed_everything(self.seed + info.rank)
        self._set_determinism()
        self.dataset = check_dataset(cfg["data"]["dataset"])
        self._build_data_tables()
        self.model = self._build_model()
        self._build_loaders()
        self._build_optimizer()
        self.start_epoch, self.global_step = 0, 0
        self.best_metric, self.best_epoch = float("-inf"), -1

    # ---- construction ------------------------------------------------------------------
    def _set_determinism(self) -> None:
        if self.cfg["train"]["deterministic"]:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
            torch.use_deterministic_algorithms(True, warn_only=True)
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    def _build_data_tables(self) -> None:
        data = self.cfg["data"]
        if not data["root"]:
            raise ConfigError(
                "data.root is not set: pass data.root=DIR, a folder holding faketrain.csv, "
                "realtrain.csv, fakeval.csv and realval.csv"
            )
        skip = bool(data["skip_bad_images"])
        read_tables, self._make_pairs = self._pair_source(data["fakes"], data["sbi"])
        self.train_tables = read_tables(
            data["root"], "train", dataset=self.dataset, skip_missing=skip
        )
        self.val_tables = read_tables(data["root"], "val", dataset=self.dataset, skip_missing=skip)
        self.missing_images = sum(t.skipped for t in self.train_tables + self.val_tables)
        counts = group_counts(list(self.train_tables), num_groups(self.dataset))
        empty = [
            f"{g},{r}" for i, (g, r) in enumerate(GROUP_CODINGS[self.dataset]) if counts[i] == 0
        ]
        if empty:
            log.warning(
                "group(s) %s of the %s coding have no training rows: the detector never sees "
                "them in training and LDAM gives them the largest margin",
                ", ".join(empty),
                self.dataset,
            )

    @staticmethod
    def _pair_source(fakes: str, sbi: dict[str, bool]) -> tuple[Any, Any]:
        """(table reader, pair dataset factory) for ``data.fakes``: the CSV fakes, or
        self-blended fakes made on the fly from the reals (:mod:`detectors.sbi`, with the
        ``data.sbi`` options)."""
        if fakes == "csv":
            return read_training_tables, PairDataset
        try:
            from .sbi import BlendOptions, SelfBlendedPairDataset, read_sbi_tables
        except ImportError as exc:
            raise ConfigError(
                f"data.fakes=sbi needs detectors.sbi and its dependencies: {exc}"
            ) from None

        blend = BlendOptions(erode_mask=sbi["erode_mask"], elastic_source=sbi["elastic_source"])

        def self_blended(fakes_table, reals, transform, **options):
            return SelfBlendedPairDataset(
                reals, transform, options=blend, post_augment=sbi["post_augment"], **options
            )

        return read_sbi_tables, self_blended

    def _model_options(self) -> tuple[str, dict[str, Any]]:
        options = dict(self.cfg["model"])
        name = options.pop("name")
        known = model_options(name)
        n_groups = num_groups(self.dataset)
        if options.get("num_groups", n_groups) != n_groups:
            raise ConfigError(
                f"model.num_groups={options['num_groups']} but data.dataset={self.dataset} has "
                f"{n_groups} groups"
            )
        if "num_groups" in known:
            options["num_groups"] = n_groups
        if "group_counts" in known and options.get("group_counts") is None:
            options["group_counts"] = group_counts(
                list(self.train_tables), n_groups
            )  # LDAM counts from the CSVs
        return name, options

    def _check_specific_labels(self, model: nn.Module) -> None:
        """Every fake's ``spe_label`` must be a class of the specific head (0 is real)."""
        classes = getattr(model, "num_specific", None)
        if classes is None:
            return
        for table in (self.train_tables[0], self.val_tables[0]):  # the fakes (sbi: reals, skipped)
            bad = np.flatnonzero((table.specific < 1) | (table.specific >= classes))
            if (table.labels == 1).all() and bad.size:
                i = int(bad[0])
                raise DataError(
                    f"{table.describe_row(i)}: spe_label {int(table.specific[i])} is not a "
                    f"manipulation id of the model (1..{classes - 1}: model.num_specific="
                    f"{classes} classes, 0 being real); {bad.size} such row(s)"
                )

    def _build_model(self) -> nn.Module:
        self.model_name, self.model_options = self._model_options()
        model = create_model(self.model_name, **self.model_options)
        self._check_specific_labels(model)
        if "group_counts" in self.model_options:
            log.info("group counts from the training CSVs: %s", self.model_options["group_counts"])
        pretrained = self.model_options.get("pretrained")
        log.info(
            "initial weights: %s",
            f"{pretrained} (ImageNet file, loaded into every backbone)"
            if pretrained
            else "random (model.pretrained=none)",
        )
        self.input_size = int(self.cfg["data"]["input_size"] or model.input_size)
        multiple = getattr(model, "input_multiple", 1)
        if self.input_size % multiple:
            raise ConfigError(
                f"config key 'data.input_size': {self.model_name} needs a multiple of {multiple} "
                f"(its decoder rebuilds the image from the feature map), found {self.input_size}"
            )
        model.to(self.device)
        if self.info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(
                model,
                device_ids=ids,
                find_unused_parameters=self.cfg["train"]["find_unused_parameters"],
            )
        return model

    def _build_loaders(self) -> None:
        data = self.cfg["data"]
        skip = bool(data["skip_bad_images"])
        train_tf = build_transform(self.input_size, data["augment"])
        eval_tf = build_transform(self.input_size)
        if data["fakes"] == "sbi":
            # one augmentation draw shared by each real and its fake (detectors.sbi.shared_augment)
            self.train_set = self._make_pairs(
                *self.train_tables, eval_tf, seed=self.seed, skip_bad=skip, augment=data["augment"]
            )
        else:
            self.train_set = self._make_pairs(
                *self.train_tables, train_tf, seed=self.seed, skip_bad=skip
            )
        val_set = self._make_pairs(
            *self.val_tables, eval_tf, seed=self.seed, fixed=True, skip_bad=skip
        )
        self.sampler = DistributedSampler(
            self.train_set,
            num_replicas=self.info.world_size,
            rank=self.info.rank,
            shuffle=True,
            seed=self.seed,
        )
        common = dict(
            batch_size=data["batch_size"],
            num_workers=data["num_workers"],
            collate_fn=collate_pairs,
            pin_memory=self.device.type == "cuda",
            worker_init_fn=_seed_worker,
        )
        self.loader_generator = torch.Generator()
        self.train_loader = DataLoader(
            self.train_set, sampler=self.sampler, generator=self.loader_generator, **common
        )
        shard = Subset(val_set, list(range(self.info.rank, len(val_set), self.info.world_size)))
        self.val_loader = DataLoader(shard, shuffle=False, **common)

    def _build_optimizer(self) -> None:
        opt = self.cfg["optim"]
        params = self.model.parameters()
        if opt["base"] == "sgd":
            self.base_optimizer = torch.optim.SGD(
                params, lr=opt["lr"], momentum=opt["momentum"], weight_decay=opt["weight_decay"]
            )
        else:
            cls = torch.optim.Adam if opt["base"] == "adam" else torch.optim.AdamW
            self.base_optimizer = cls(params, lr=opt["lr"], weight_decay=opt["weight_decay"])
        self.optimizer = (
            SAM(self.base_optimizer, rho=opt["rho"], adaptive=opt["adaptive"])
            if opt["sam"]
            else self.base_optimizer
        )
        sched = self.cfg["sched"]
        self.scheduler = torch.optim.lr_scheduler.StepLR(
            self.base_optimizer, step_size=sched["step_size"], gamma=sched["gamma"]
        )
        amp = self.cfg["train"]["amp"]
        self.scaler = torch.amp.GradScaler(self.device.type) if amp == "fp16" else None

    # ---- checkpoints ----------------------------------------------------------------------
    def _checkpoint(self, epoch: int, rng: list[dict[str, Any]]) -> dict[str, Any]:
        core = unwrap(self.model)
        options = {k: v for k, v in self.model_options.items() if k != "pretrained"}
        return {
            "format_version": FORMAT_VERSION,
            "model_name": self.model_name,
            "model_options": options,
            "model": core.state_dict(),
            "transform": {
                "input_size": self.input_size,
                "mean": list(core.mean),
                "std": list(core.std),
            },
            "dataset": self.dataset,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "epoch": epoch,
            "global_step": self.global_step,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "rng": rng,
            "config": self.cfg,
            "versions": {"detectors": __version__, "torch": str(torch.__version__)},
        }

    def resume(self, checkpoint: str | os.PathLike | dict[str, Any], source: str = "") -> None:
        """Restore model, optimizer (with the base optimizer's momentum), scheduler, scaler, epoch,
        best metric and generator states from a checkpoint written by this trainer (a path, or
        the loaded dict). Settings that differ from the checkpoint's are refused, except those
        of :data:`detectors.train.RESUMABLE_CHANGES`, which are applied and logged."""
        from .train import check_resume

        if isinstance(checkpoint, dict):
            ckpt, path = checkpoint, source or "checkpoint"
        else:
            ckpt, path = load_checkpoint(checkpoint, map_location="cpu"), str(checkpoint)
        if "config" in ckpt:
            accepted = check_resume(ckpt["config"], self.cfg, path)
            if accepted:
                log.info("resuming with changed settings: %s", "; ".join(accepted))
        if ckpt["model_name"] != self.model_name:
            raise ConfigError(
                f"--resume {path}: the checkpoint holds model {ckpt['model_name']}, the config "
                f"asks for {self.model_name}"
            )
        unwrap(self.model).load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.start_epoch, self.global_step = int(ckpt["epoch"]), int(ckpt["global_step"])
        self.best_metric, self.best_epoch = float(ckpt["best_metric"]), int(ckpt["best_epoch"])
        states = ckpt.get("rng") or []
        if len(states) == self.info.world_size:
            set_rng_state(states[self.info.rank])
        else:
            log.warning(
                "checkpoint has generator states for %d process(es), this run has %d: reseeding",
                len(states),
                self.info.world_size,
            )
            seed_everything(self.seed + self.info.rank + 1000 * self.start_epoch)
        log.info(
            "resumed from %s after epoch %d (best val AUC %.4f at epoch %d)",
            path,
            self.start_epoch,
            self.best_metric,
            self.best_epoch,
        )

    # ---- one epoch --------------------------------------------------------------------------
    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        """A loader batch on the device, its uint8 images normalised for the backbone."""
        core = unwrap(self.model)
        return to_device(batch, self.device, core.mean, core.std)

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One optimisation step on a prepared batch (:meth:`prepare`); returns detached losses."""
        self.model.train()
        amp = self.cfg["train"]["amp"]
        if isinstance(self.optimizer, SAM):
            losses = sam_step(self.model, batch, self.optimizer, amp=amp, device=self.device)
        else:
            losses = plain_step(
                self.model, batch, self.optimizer, amp=amp, device=self.device, scaler=self.scaler
            )
        self.global_step += 1
        return losses

    def epoch_batches(self, epoch: int):
        """The training batches of ``epoch`` (shuffle, real partners and worker seeds set by the
        epoch)."""
        self.sampler.set_epoch(epoch)
        self.train_set.set_epoch(epoch)
        self.loader_generator.manual_seed(self.seed * 100_003 + epoch)
        return iter(self.train_loader)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """Train for one epoch; returns the mean of each loss over steps (and processes)."""
        sums: dict[str, torch.Tensor] = {}
        steps, skipped = 0, 0
        show = self.info.is_main and self.cfg["train"]["progress"]
        bar = tqdm(
            self.epoch_batches(epoch),
            total=len(self.train_loader),
            desc=f"epoch {epoch + 1}/{self.cfg['train']['epochs']}",
            disable=None if show else True,  # None: only when stderr is a terminal
            leave=False,
            dynamic_ncols=True,
        )
        for batch in bar:
            skipped += int(batch.pop("n_skipped", 0))
            if not self._batch_usable(batch):
                continue
            losses = self.train_step(self.prepare(batch))
            for k, v in losses.items():
                sums[k] = sums.get(k, torch.zeros((), device=self.device)) + v.float()
            steps += 1
            if show and steps % 10 == 1:
                bar.set_postfix(loss=f"{float(losses['overall']):.4f}")
        bar.close()
        names = sorted(sums)
        totals = all_reduce_sum(
            torch.stack(
                [sums[k] for k in names]
                + [
                    torch.tensor(float(steps), device=self.device),
                    torch.tensor(float(skipped), device=self.device),
                ]
            )
        )
        n = max(float(totals[-2]), 1.0)
        stats = {f"train_{k}": float(totals[i]) / n for i, k in enumerate(names)}
        stats["skipped_images"] = int(totals[-1])
        return stats

    def _batch_usable(self, batch: dict[str, Any]) -> bool:
        usable = "image" in batch
        if self.info.enabled and self.cfg["data"]["skip_bad_images"]:
            flag = all_reduce_sum(torch.tensor([0.0 if usable else 1.0], device=self.device))
            return bool(flag.item() == 0)  # every process skips the step together
        return usable

    def evaluate(self) -> dict[str, float]:
        """Validation AUC, accuracy, loss and the gaps of every family (:mod:`fairaudit`) on the
        fixed validation pairing, gathered from all processes."""
        result = run_inference(
            unwrap(self.model), self.val_loader, self.device, amp=self.cfg["train"]["amp"]
        )
        logits = result["logits"]
        labels = result["label"].long()
        # each process audits its own rows into a state; the states' bytes are gathered and
        # merged (no pickles, no rows shipped), then the merged state is audited
        state = validation_state(
            labels.numpy(),
            torch.softmax(logits.double(), 1)[:, 1].numpy(),
            result["group"].numpy(),
            self.dataset,
        )
        whole = AuditState.merge_all(all_gather_bytes(state.to_bytes(), self.device))
        if whole.n_rows == 0:
            raise DataError("no validation image could be read")
        found = state_metrics(whole)
        metrics = {f"val_{k}": v for k, v in found.items()}
        totals = all_reduce_sum(
            torch.tensor(
                [
                    float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum"))
                    if len(labels)
                    else 0.0,
                    float(len(labels)),
                    float(len(result["skipped"])),
                ],
                dtype=torch.float64,
                device=self.device,
            )
        ).cpu()
        metrics["val_loss"] = float(totals[0] / totals[1])
        metrics["val_skipped_images"] = int(totals[2])
        return metrics

    # ---- the run --------------------------------------------------------------------------------
    def fit(self) -> None:
        """Train from ``start_epoch`` to ``train.epochs``; validate and checkpoint every epoch."""
        epochs = int(self.cfg["train"]["epochs"])
        if self.start_epoch >= epochs:
            log.info(
                "nothing to do: %d epoch(s) already done, train.epochs=%d", self.start_epoch, epochs
            )
        for epoch in range(self.start_epoch, epochs):
            t0 = time.time()
            lr = self.base_optimizer.param_groups[0]["lr"]
            row: dict[str, Any] = {"epoch": epoch + 1, "lr": lr}
            row.update(self.train_epoch(epoch))
            row.update(self.evaluate())
            self.scheduler.step()  # StepLR counts epochs
            auc = row["val_auc"]
            improved = not math.isnan(auc) and auc > self.best_metric
            if improved:
                self.best_metric, self.best_epoch = auc, epoch + 1
            row["missing_images"] = self.missing_images
            if row["skipped_images"] or row["val_skipped_images"]:
                log.warning(
                    "epoch %d: skipped %d unreadable training and %d validation image(s)",
                    epoch + 1,
                    row["skipped_images"],
                    row["val_skipped_images"],
                )
            row["seconds"] = round(time.time() - t0, 3)
            row["best"] = int(improved)
            rng = all_gather_objects(rng_state())
            if self.info.is_main:
                ckpt = self._checkpoint(epoch + 1, rng)
                save_atomic(ckpt, self.run_dir / "last.pt")
                if improved:
                    save_atomic(ckpt, self.run_dir / "best.pt")
                self._append_summary(row)
                log.info(
                    "epoch %d/%d: %s",
                    epoch + 1,
                    epochs,
                    ", ".join(f"{k}={_fmt(v)}" for k, v in row.items() if k != "epoch"),
                )
            barrier()

    def prepare_run_dir(self, resuming: bool) -> None:
        """Create the run folder, write the resolved config; on resume drop summary rows after the
        checkpoint."""
        if not self.info.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(dump_config(self.cfg), encoding="utf-8")
        summary = self.run_dir / "summary.csv"
        if resuming and summary.exists():
            with open(summary, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["epoch"]) <= self.start_epoch]
            self._write_summary(rows, summary)
        elif summary.exists():
            summary.unlink()

    def _append_summary(self, row: dict[str, Any]) -> None:
        summary = self.run_dir / "summary.csv"
        rows = []
        if summary.exists():
            with open(summary, newline="") as fh:
                rows = list(csv.DictReader(fh))
        rows.append({k: _fmt(v) for k, v in row.items()})
        self._write_summary(rows, summary)

    @staticmethod
    def _write_summary(rows: list[dict[str, Any]], path: Path) -> None:
        fields: list[str] = []
        for r in rows:
            fields += [k for k in r if k not in fields]
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value
