"""Checkpoint files: atomic writes, loading with ``weights_only=True``, rebuilding the model.

A checkpoint is a dict of plain values and tensors::

    format_version, model_name, model_options, model (unwrapped state dict),
    transform {input_size, mean, std}, dataset, optimizer, scheduler, scaler,
    epoch (completed epochs), global_step, best_metric, best_epoch,
    rng (list of per-rank generator states), config, versions
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ._errors import WeightsError
from .models import Detector, create_model

__all__ = ["FORMAT_VERSION", "save_atomic", "load_checkpoint", "model_from_checkpoint"]

FORMAT_VERSION = 1


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint written by the trainer (tensors only, no pickled code)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types (UnpicklingError, RuntimeError, EOFError)
        raise WeightsError(f"cannot read checkpoint {path}: {_reason(exc)}") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_name" not in ckpt:
        raise WeightsError(
            f"{path} is not a detectors checkpoint (expected keys model_name, model, ...)"
        )
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise WeightsError(
            f"{path}: checkpoint format {ckpt['format_version']} is newer than this code "
            f"({FORMAT_VERSION})"
        )
    return ckpt


def _reason(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = [line for line in lines if "WeightsUnpickler error" in line]
    return (detail or lines or [type(exc).__name__])[0]


def model_from_checkpoint(ckpt: dict[str, Any]) -> Detector:
    """Rebuild the detector of ``ckpt`` and load its weights strictly (no ImageNet file needed)."""
    options = dict(ckpt.get("model_options", {}))
    options.pop("pretrained", None)  # the trained weights replace any initialisation
    model = create_model(ckpt["model_name"], **options)
    result = model.load_state_dict(ckpt["model"], strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise WeightsError(
            f"checkpoint does not fit model {ckpt['model_name']!r}: missing "
            f"{result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]}"
        )
    return model
