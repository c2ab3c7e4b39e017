"""One optimisation step (SAM or plain) and the inference loop shared by validation and predict."""

from __future__ import annotations

import contextlib
from typing import Any, Iterable

import torch
from torch import Tensor, nn

from ._distributed import maybe_no_sync, unwrap
from .data import normalize_images
from .sam import SAM, frozen_bn_stats

__all__ = ["to_device", "autocast", "sam_step", "plain_step", "run_inference"]


def to_device(batch: dict[str, Any], device: torch.device, mean=None, std=None) -> dict[str, Any]:
    """Move the tensors of a batch dict (non-blocking) and normalise a uint8 ``image`` with
    ``mean``/``std``."""
    out = {
        k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()
    }
    if mean is not None and "image" in out:
        out["image"] = normalize_images(out["image"], mean, std)
    return out


def autocast(amp: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Mixed-precision context for ``amp`` in ``none``, ``bf16``, ``fp16``."""
    if amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _losses(
    model: nn.Module, batch: dict[str, Any], amp: str, device: torch.device
) -> dict[str, Tensor]:
    with autocast(amp, device):
        outputs = model(batch)
    return unwrap(model).get_losses(batch, outputs)


def sam_step(
    model: nn.Module, batch: dict[str, Any], optimizer: SAM, *, amp: str, device: torch.device
) -> dict[str, Tensor]:
    """One SAM step: loss and gradient at ``w`` (under DDP inside ``no_sync``: the ascent is per
    replica), ascent to ``w + e``, loss and gradient there with BatchNorm statistics frozen
    (gradients synchronised), base step from ``w``.

    Returns the detached losses of the first pass (the loss of the weights being trained).
    """
    with maybe_no_sync(model):
        losses = _losses(model, batch, amp, device)
        losses["overall"].backward()
    optimizer.first_step(zero_grad=True)
    with frozen_bn_stats(model):
        _losses(model, batch, amp, device)["overall"].backward()
    optimizer.second_step(zero_grad=True)
    return {k: v.detach() for k, v in losses.items()}


def plain_step(
    model: nn.Module,
    batch: dict[str, Any],
    optimizer: torch.optim.Optimizer,
    *,
    amp: str,
    device: torch.device,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, Tensor]:
    """One forward, backward and optimizer step (float16 through ``scaler``)."""
    losses = _losses(model, batch, amp, device)
    if scaler is not None:
        scaler.scale(losses["overall"]).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        losses["overall"].backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return {k: v.detach() for k, v in losses.items()}


@torch.inference_mode()
def run_inference(
    model: nn.Module,
    loader: Iterable[dict[str, Any]],
    device: torch.device,
    *,
    amp: str = "none",
    progress=None,
) -> dict[str, Any]:
    """Scoring-head logits for every batch of ``loader``, in eval mode.

    Logits stay on the device until the end (no per-batch synchronisation).

    Returns
    -------
    dict
        ``logits`` (N, 2) float32 on the CPU; ``label`` and ``group`` (N,) as
        the batches carry them; ``index`` (N,) the dataset index of each row
        (pair batches: 0..N-1 in batch order); ``skipped`` the dataset indices
        whose image could not be read.
    """
    model.eval()
    core = unwrap(model)
    logits: list[Tensor] = []
    carried: dict[str, list[Tensor]] = {"label": [], "group": [], "index": []}
    skipped: list[int] = []
    offset = 0
    for batch in loader:
        skipped += list(batch.pop("skipped", []))
        batch.pop("n_skipped", None)
        if "image" not in batch:
            continue
        n = batch["image"].shape[0]
        carried["index"].append(
            batch.pop("index") if "index" in batch else torch.arange(offset, offset + n)
        )
        carried["label"].append(batch["label"])
        carried["group"].append(batch["group"])
        offset += n
        with autocast(amp, device):
            logits.append(
                model(to_device(batch, device, core.mean, core.std), inference=True)[
                    "logits"
                ].float()
            )
        if progress is not None:
            progress.update(n)
    out: dict[str, Any] = {
        k: torch.cat(v) if v else torch.zeros(0, dtype=torch.long) for k, v in carried.items()
    }
    out["logits"] = torch.cat(logits).cpu() if logits else torch.zeros(0, 2)
    out["skipped"] = skipped
    return out
