"""Loading weights from a local file into a module, reporting what did not fit.

Nothing is ever downloaded: a path must be given. Files are read with
``torch.load(..., map_location="cpu", weights_only=True)``, so they must hold
plain tensors (a state dict, possibly inside ``{"state_dict": ...}`` or
``{"model": ...}``), never pickled objects.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import torch
from torch import nn

from .._errors import WeightsError

__all__ = ["WeightsReport", "load_weights", "read_state_dict"]

log = logging.getLogger(__name__)


@dataclass
class WeightsReport:
    """What :func:`load_weights` did.

    Attributes
    ----------
    path, sha256 : str
    loaded : int
        Number of tensors copied into the module.
    missing : list of str
        Module keys the file did not provide (BatchNorm ``num_batches_tracked`` excluded).
    unexpected : list of str
        File keys the module does not have (after dropping and renaming).
    dropped : list of str
        File keys dropped on purpose (e.g. the 1000-class ImageNet head).
    reshaped : list of str
        2-D pointwise convolution weights reshaped to ``(out, in, 1, 1)``.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.pt")
    >>> torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    >>> report = load_weights(torch.nn.Linear(2, 2), path)
    >>> report.loaded, report.missing, report.unexpected
    (2, [], [])
    """

    path: str
    sha256: str
    loaded: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    reshaped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{os.path.basename(self.path)} (sha256 {self.sha256[:12]}): loaded {self.loaded}, "
            f"missing {len(self.missing)}, unexpected {len(self.unexpected)}, dropped "
            f"{len(self.dropped)}, reshaped {len(self.reshaped)}"
        )


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a tensor dict from ``path`` (unwrapping ``state_dict`` / ``model`` and ``module.``
    prefixes).

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.pt")
    >>> torch.save({"state_dict": {"module.bias": torch.zeros(1)}}, path)
    >>> list(read_state_dict(path))
    ['bias']
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types (UnpicklingError, RuntimeError, EOFError)
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = (
            [line for line in lines if "WeightsUnpickler error" in line]
            or lines
            or [type(exc).__name__]
        )
        raise WeightsError(f"cannot read weights file {path}: {detail[0]}") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(
            f"weights file {path}: expected a dict of tensors (a state dict), found "
            f"{type(obj).__name__}"
        )
    return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in obj.items()}


def load_weights(
    module: nn.Module,
    path: str | os.PathLike,
    *,
    drop_prefixes: Iterable[str] = (),
    reshape_pointwise: bool = False,
    strict: bool = True,
) -> WeightsReport:
    """Copy the tensors of the file at ``path`` into ``module`` and report the differences.

    Parameters
    ----------
    drop_prefixes : iterable of str
        File keys starting with one of these are dropped (e.g. ``"fc."``, the ImageNet head).
    reshape_pointwise : bool
        Reshape 2-D ``*pointwise.weight`` tensors to ``(out, in, 1, 1)`` (the Cadene Xception file).
    strict : bool
        Raise :class:`WeightsError` when keys are missing or unexpected; otherwise log a warning.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.pt")
    >>> weights = {"fc.weight": torch.ones(1, 2), "weight": torch.ones(1, 2),
    ...            "bias": torch.ones(1)}
    >>> torch.save(weights, path)
    >>> layer = torch.nn.Linear(2, 1)
    >>> load_weights(layer, path, drop_prefixes=("fc.",)).dropped
    ['fc.weight']
    >>> layer.weight.tolist()
    [[1.0, 1.0]]
    """
    path = os.fspath(path)
    state = read_state_dict(path)
    report = WeightsReport(path=path, sha256=_sha256(path))
    prefixes = tuple(drop_prefixes)
    kept: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if prefixes and key.startswith(prefixes):
            report.dropped.append(key)
            continue
        if reshape_pointwise and "pointwise" in key and value.dim() == 2:
            value = value[:, :, None, None]
            report.reshaped.append(key)
        kept[key] = value
    target = module.state_dict()
    report.missing = sorted(
        k for k in target if k not in kept and not k.endswith("num_batches_tracked")
    )
    report.unexpected = sorted(k for k in kept if k not in target)
    wrong_shape = [k for k in kept if k in target and kept[k].shape != target[k].shape]
    if wrong_shape:
        k = wrong_shape[0]
        raise WeightsError(
            f"weights file {path}: {len(wrong_shape)} tensor(s) with the wrong shape, e.g. {k}: "
            f"file {tuple(kept[k].shape)}, model {tuple(target[k].shape)}"
        )
    if strict and (report.missing or report.unexpected):
        raise WeightsError(
            f"weights file {path} does not fit {type(module).__name__}: missing "
            f"{len(report.missing)} {report.missing[:3]}, unexpected {len(report.unexpected)} "
            f"{report.unexpected[:3]}"
        )
    with torch.no_grad():
        module.load_state_dict(kept, strict=False)
    report.loaded = sum(1 for k in kept if k in target)
    if report.missing or report.unexpected:
        log.warning(
            "weights %s; missing %s; unexpected %s",
            report.summary(),
            report.missing[:5],
            report.unexpected[:5],
        )
    else:
        log.info("weights %s", report.summary())
    return report
