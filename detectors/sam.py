"""Sharpness-aware minimisation (Foret et al., ICLR 2021), the paper's "loss flattening".

SAM minimises ``max_{||e|| <= rho} L(w + e)`` with one ascent step::

    g = grad L(w);   e = rho * g / (||g||_2 + 1e-12)        (||.|| over all parameters)
    w <- base_step(w, grad L(w + e))

``adaptive=True`` gives ASAM, ``e = rho * w^2 g / (||w g|| + 1e-12)``.

:class:`SAM` wraps any base optimizer instance: ``first_step`` climbs to
``w + e``, ``second_step`` restores ``w`` and applies the base step with the
gradient taken at ``w + e``. Its ``param_groups`` are the base optimizer's, so a
learning-rate scheduler may be attached to either. ``state_dict`` holds the base
optimizer's state (e.g. momentum buffers), so checkpoints resume exactly.

:func:`frozen_bn_stats` freezes BatchNorm running statistics during the second
pass (batch statistics are still used to normalise), so the running averages
see only the unperturbed weights.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from torch import nn

__all__ = ["SAM", "frozen_bn_stats"]


class SAM(torch.optim.Optimizer):
    """SAM around a base optimizer (module docstring).

    Parameters
    ----------
    base_optimizer : torch.optim.Optimizer
        Any optimizer, already built on the model's parameters.
    rho : float
        Radius of the ascent step (0.05 in the paper). ``rho=0`` gives the base step.
    adaptive : bool
        ASAM's parameter-scaled perturbation.

    Examples
    --------
    >>> model = torch.nn.Linear(2, 1)
    >>> opt = SAM(torch.optim.SGD(model.parameters(), lr=0.1), rho=0.05)
    >>> x, y = torch.ones(4, 2), torch.zeros(4, 1)
    >>> torch.nn.functional.mse_loss(model(x), y).backward()
    >>> opt.first_step(zero_grad=True)  # climb to w + e
    >>> torch.nn.functional.mse_loss(model(x), y).backward()
    >>> opt.second_step(zero_grad=True)  # back to w, step with the gradient at w + e
    >>> model.weight.shape
    torch.Size([1, 2])
    """

    def __init__(
        self, base_optimizer: torch.optim.Optimizer, rho: float = 0.05, adaptive: bool = False
    ) -> None:
        if rho < 0:
            raise ValueError(f"rho must be non-negative, found {rho}")
        self.base_optimizer = base_optimizer
        self.rho, self.adaptive = float(rho), bool(adaptive)
        # Deliberately not calling Optimizer.__init__ with new groups: share the base optimizer's.
        super().__init__(base_optimizer.param_groups, {"rho": self.rho, "adaptive": self.adaptive})
        self.param_groups = base_optimizer.param_groups
        self._saved: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._buffers: dict[torch.Tensor, torch.Tensor] = {}  # backup of w, one per parameter

    def _params_with_grad(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"] if p.grad is not None]

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Save ``w`` and move to ``w + e`` (the ascent point); gradients must be those at ``w``.

        Uses the ``torch._foreach_*`` kernels (a few launches for all parameters) and
        reuses one backup buffer per parameter across steps.
        """
        params = self._params_with_grad()
        self._saved = []
        if not params:
            return
        grads = [p.grad for p in params]
        devices = {p.device for p in params}
        if len(devices) == 1:
            scaled = (
                torch._foreach_mul(grads, torch._foreach_abs(params)) if self.adaptive else grads
            )
            norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(scaled)), 2)
            scale = self.rho / (norm + 1e-12)
            backups = [self._backup(p) for p in params]
            torch._foreach_copy_(backups, params)
            step = torch._foreach_mul(grads, scale)
            if self.adaptive:
                step = torch._foreach_mul(step, torch._foreach_mul(params, params))
            torch._foreach_add_(params, step)
        else:  # parameters spread over devices: plain loop
            device = params[0].device
            norm = torch.stack(
                [((p.abs() if self.adaptive else 1.0) * p.grad).norm(2).to(device) for p in params]
            ).norm(2)
            scale = self.rho / (norm + 1e-12)
            backups = [self._backup(p) for p in params]
            for p, b in zip(params, backups):
                b.copy_(p)
                e = p.grad * scale.to(p.device)
                p.add_(e * p.pow(2) if self.adaptive else e)
        self._saved = list(zip(params, backups))
        if zero_grad:
            self.zero_grad(set_to_none=True)

    def _backup(self, p: torch.Tensor) -> torch.Tensor:
        buf = self._buffers.get(p)
        if buf is None or buf.shape != p.shape or buf.device != p.device or buf.dtype != p.dtype:
            buf = self._buffers[p] = torch.empty_like(p, memory_format=torch.preserve_format)
        return buf

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Restore ``w`` and apply the base step with the gradients taken at ``w + e``."""
        if self._saved:
            params, backups = (list(t) for t in zip(*self._saved))
            if len({p.device for p in params}) == 1:
                torch._foreach_copy_(params, backups)
            else:
                for p, b in zip(params, backups):
                    p.copy_(b)
        self._saved = []
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad(set_to_none=True)

    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> None:  # type: ignore[override]
        """Full SAM step; ``closure`` must recompute the loss and call ``backward()``.

        The caller has already run the first forward and backward pass at ``w``.
        """
        if closure is None:
            raise ValueError(
                "SAM.step needs a closure that recomputes the loss and calls backward(); or call "
                "first_step/second_step"
            )
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            closure()
        self.second_step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:  # type: ignore[override]
        """The base optimizer's state dict plus ``rho`` and ``adaptive``."""
        return {
            "base": self.base_optimizer.state_dict(),
            "rho": self.rho,
            "adaptive": self.adaptive,
        }

    def load_state_dict(self, state_dict: dict) -> None:  # type: ignore[override]
        self.base_optimizer.load_state_dict(state_dict["base"])
        self.rho = float(state_dict.get("rho", self.rho))
        self.adaptive = bool(state_dict.get("adaptive", self.adaptive))
        self.param_groups = self.base_optimizer.param_groups


@contextlib.contextmanager
def frozen_bn_stats(model: nn.Module) -> Iterator[None]:
    """Inside the block BatchNorm layers normalise with batch statistics but update nothing.

    Setting ``track_running_stats=False`` in training mode makes BatchNorm skip
    both the running mean/var update and ``num_batches_tracked`` (which matters
    when ``momentum=None``, the cumulative average).

    Examples
    --------
    >>> bn = torch.nn.BatchNorm1d(2)
    >>> with frozen_bn_stats(bn):
    ...     _ = bn(torch.randn(8, 2) + 5)
    >>> bn.running_mean.tolist(), int(bn.num_batches_tracked)
    ([0.0, 0.0], 0)
    """
    layers = [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    for m in layers:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in layers:
            m.track_running_stats = True
