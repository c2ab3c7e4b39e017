"""Detector contract and registry: ``create_model(name, **options)``.

A detector is an ``nn.Module`` whose ``forward(batch, inference=False)`` takes a
dict of named tensors (``image`` (B, 3, S, S), ``label``, ``label_specific``,
``group``; training batches are laid out ``[reals; fakes]``) and returns a dict
of named outputs that always holds ``logits`` (B, 2), the scoring head
(p(fake) = softmax(logits)[:, 1]). ``get_losses(batch, outputs)`` returns a dict
of named scalar losses with the total under ``overall``.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch
from torch import nn

from .._errors import ConfigError

__all__ = ["Detector", "register_detector", "create_model", "list_models", "model_options"]


class Detector(nn.Module):
    """Base class of the detectors (see the module docstring for the contract).

    Attributes
    ----------
    input_size : int
        Default input side in pixels.
    mean, std : tuple of float
        Normalisation the backbone's weights expect.
    """

    input_size: int = 256
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)

    def forward(self, batch: dict[str, torch.Tensor], inference: bool = False) -> dict[str, Any]:
        raise NotImplementedError

    def get_losses(
        self, batch: dict[str, torch.Tensor], outputs: dict[str, Any]
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError


_DETECTORS: dict[str, tuple[type[Detector], dict[str, Any]]] = {}


def register_detector(name: str, **fixed: Any) -> Callable[[type[Detector]], type[Detector]]:
    """Class decorator: register ``cls`` under ``name`` with some constructor options fixed."""

    def decorate(cls: type[Detector]) -> type[Detector]:
        _DETECTORS[name] = (cls, dict(fixed))
        return cls

    return decorate


def list_models() -> list[str]:
    """Registered detector names."""
    return sorted(_DETECTORS)


def _entry(name: str) -> tuple[type[Detector], dict[str, Any]]:
    if name not in _DETECTORS:
        raise ConfigError(f"unknown model {name!r} (known: {', '.join(list_models())})")
    return _DETECTORS[name]


def model_options(name: str) -> dict[str, Any]:
    """The options ``name`` accepts and their defaults (keyword-only constructor parameters)."""
    cls, fixed = _entry(name)
    params = inspect.signature(cls.__init__).parameters
    return {
        p.name: (None if p.default is inspect.Parameter.empty else p.default)
        for p in params.values()
        if p.kind == inspect.Parameter.KEYWORD_ONLY and p.name not in fixed
    }


def create_model(name: str, **options: Any) -> Detector:
    """Build detector ``name``; unknown options raise :class:`ConfigError` naming them."""
    cls, fixed = _entry(name)
    known = model_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for model {name!r} (known: "
            f"{', '.join(sorted(known))})"
        )
    model = cls(**fixed, **options)
    model.init_options = dict(options)  # what predict needs to rebuild it
    model.model_name = name
    return model
