"""torchrun / DDP helpers: process info, device choice, unwrapping, reductions."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn

from ._errors import ConfigError

__all__ = [
    "DistInfo",
    "init_distributed",
    "resolve_device",
    "unwrap",
    "maybe_no_sync",
    "all_reduce_sum",
    "all_gather_objects",
    "all_gather_bytes",
    "barrier",
]


@dataclass(frozen=True)
class DistInfo:
    """Rank, world size and local rank of this process (1 / 0 / 0 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str, info: DistInfo) -> torch.device:
    """``auto`` -> ``cuda:<local rank>`` when CUDA is available, else ``cpu``; explicit names
    checked."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {name!r}: CUDA is not available on this machine (use device=cpu)"
            )
        index = info.local_rank if name == "cuda" else int(name.split(":", 1)[1])
        return torch.device("cuda", index)
    if name != "cpu":
        raise ConfigError(f"device {name!r}: expected auto, cpu, cuda or cuda:N")
    return torch.device("cpu")


def init_distributed(device_name: str) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1); gloo on CPU, NCCL on
    CUDA."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    info = DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    device = resolve_device(device_name, info)
    if info.enabled and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info, device


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (state dicts are saved from it, without ``module.``)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


@contextlib.contextmanager
def maybe_no_sync(model: nn.Module) -> Iterator[None]:
    """``model.no_sync()`` under DDP (gradients of the block stay local), else nothing."""
    if isinstance(model, nn.parallel.DistributedDataParallel):
        with model.no_sync():
            yield
    else:
        yield


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over processes (identity without a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_objects(obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order (``[obj]`` without a process group)."""
    if dist.is_available() and dist.is_initialized():
        out: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out
    return [obj]


def all_gather_bytes(data: bytes, device: torch.device) -> list[bytes]:
    """Every process's ``data``, in rank order: two all-gathers of uint8 tensors (sizes, then
    the padded bytes), no pickling; ``[data]`` without a process group.

    >>> all_gather_bytes(b"state", torch.device("cpu"))
    [b'state']
    """
    if not (dist.is_available() and dist.is_initialized()):
        return [bytes(data)]
    blob = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device)
    size = torch.tensor([blob.numel()], dtype=torch.int64, device=device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    padded = torch.zeros(int(max(int(s) for s in sizes)), dtype=torch.uint8, device=device)
    padded[: blob.numel()] = blob
    gathered = [torch.zeros_like(padded) for _ in sizes]
    dist.all_gather(gathered, padded)
    return [g[: int(n)].cpu().numpy().tobytes() for g, n in zip(gathered, sizes)]


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
