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
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Callable

import torch
from torch import nn

from .._errors import ConfigError

__all__ = [
    "Detector",
    "register_detector",
    "create_model",
    "list_models",
    "model_options",
    "check_model_config",
]


class Detector(nn.Module):
    """Base class of the detectors (see the module docstring for the contract).

    Attributes
    ----------
    input_size : int
        Default input side in pixels.
    mean, std : tuple of float
        Normalisation the backbone's weights expect.
    input_multiple : int
        The input side must be a multiple of it (PG-FDD: 32).

    Examples
    --------
    >>> model = create_model("plain", backbone="tiny_cnn")
    >>> isinstance(model, Detector), model.input_size, model.mean
    (True, 64, (0.5, 0.5, 0.5))
    """

    input_size: int = 256
    input_multiple: int = 1
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
    """Class decorator: register ``cls`` under ``name`` with some constructor options fixed.

    Examples
    --------
    >>> @register_detector("constant")
    ... class Constant(Detector):
    ...     def forward(self, batch, inference=False):
    ...         return {"logits": torch.zeros(len(batch["image"]), 2)}
    >>> create_model("constant")(dict(image=torch.zeros(3, 3, 8, 8)))["logits"].shape
    torch.Size([3, 2])
    >>> _ = _DETECTORS.pop("constant")
    """

    def decorate(cls: type[Detector]) -> type[Detector]:
        _DETECTORS[name] = (cls, dict(fixed))
        return cls

    return decorate


def list_models() -> list[str]:
    """Registered detector names.

    Examples
    --------
    >>> list_models()
    ['efficientnet_b3', 'efficientnet_b4', 'pgfdd', 'plain', 'resnet50', 'xception']
    """
    return sorted(_DETECTORS)


def _entry(name: str) -> tuple[type[Detector], dict[str, Any]]:
    if name not in _DETECTORS:
        raise ConfigError(f"unknown model {name!r} (known: {', '.join(list_models())})")
    return _DETECTORS[name]


def model_options(name: str) -> dict[str, Any]:
    """The options ``name`` accepts and their defaults (keyword-only constructor parameters).

    Examples
    --------
    >>> model_options("plain")["loss"], "backbone" in model_options("xception")
    ('ce', False)
    """
    cls, fixed = _entry(name)
    params = inspect.signature(cls.__init__).parameters
    return {
        p.name: (None if p.default is inspect.Parameter.empty else p.default)
        for p in params.values()
        if p.kind == inspect.Parameter.KEYWORD_ONLY and p.name not in fixed
    }


def _describe(hint: Any) -> str:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = " or ".join(_describe(a) for a in args)
        return f"{inner} or null"
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if origin in (dict, Mapping):
        return "a mapping"
    if origin in (list, tuple, Sequence):
        return f"a list of {_describe(args[0]).replace('an ', '').replace('a ', '')}s"
    return str(hint)


def _conform(value: Any, hint: Any) -> tuple[bool, Any]:
    """Whether ``value`` fits the annotation ``hint``, and the value converted to it."""
    from ..config import as_number

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True, value
    if hint is type(None):
        return value is None, value
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            ok, converted = _conform(value, arg)
            if ok:
                return True, converted
        return False, value
    if hint is bool:
        return isinstance(value, bool), value
    if hint in (int, float):
        number = as_number(value, integer=hint is int)
        return number is not None, (
            float(number) if hint is float and number is not None else number
        )
    if hint is str:
        return isinstance(value, str), value
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            return False, value
        converted = {}
        for k, v in value.items():
            ok, converted[k] = _conform(v, args[1] if args else Any)
            if not ok:
                return False, value
        return True, converted
    if origin in (list, tuple, Sequence):
        if not isinstance(value, (list, tuple)):
            return False, value
        items = [_conform(v, args[0] if args else Any) for v in value]
        if not all(ok for ok, _ in items):
            return False, value
        return True, [v for _, v in items]
    return True, value


def check_model_config(model: dict[str, Any]) -> dict[str, Any]:
    """The ``model`` section of a configuration, checked against the detector's constructor.

    Unknown options and values that do not fit the constructor's annotations are reported
    together, one line each; numbers in any notation Python accepts are converted
    (``1e-3``). ``pretrained: none`` (any case) means no weights file. A preset can require a
    choice with ``pretrained: required``.

    Examples
    --------
    >>> check_model_config({"name": "pgfdd", "feature_dim": "64", "tau1": "1e-3"})
    {'name': 'pgfdd', 'feature_dim': 64, 'tau1': 0.001}
    >>> check_model_config({"name": "pgfdd", "feature_dim": "abc", "dropout_on_logits": 1})
    Traceback (most recent call last):
    ...
    detectors._errors.ConfigError: config key 'model.feature_dim': expected an integer, found 'abc'
    config key 'model.dropout_on_logits': expected true or false or null, found 1
    """
    options = dict(model)
    name = options.pop("name")
    cls, fixed = _entry(name)
    known = model_options(name)
    errors = [
        f"unknown option(s) {', '.join(sorted(set(options) - set(known)))} for model {name!r} "
        f"(known: {', '.join(sorted(known))})"
    ] * bool(set(options) - set(known))
    hints = typing.get_type_hints(cls.__init__)
    result: dict[str, Any] = {"name": name}
    for key, value in options.items():
        if key == "pretrained" and isinstance(value, str) and value.lower() == "none":
            value = None
        elif key == "pretrained" and value == "required":
            errors.append(
                "config key 'model.pretrained': this configuration starts from ImageNet weights "
                "as the paper does: pass model.pretrained=FILE (a local weights file, e.g. "
                "xception-b5690688.pth) or model.pretrained=none to train from random weights"
            )
            continue
        if key in known and key in hints:
            ok, value = _conform(value, hints[key])
            if not ok:
                errors.append(
                    f"config key 'model.{key}': expected {_describe(hints[key])}, "
                    f"found {model[key]!r}"
                )
        result[key] = value
    if errors:
        raise ConfigError("\n".join(errors))
    return result


def create_model(name: str, **options: Any) -> Detector:
    """Build detector ``name``; unknown options raise :class:`ConfigError` naming them.

    Examples
    --------
    >>> model = create_model("plain", backbone="tiny_cnn")
    >>> model(dict(image=torch.zeros(2, 3, 64, 64)))["logits"].shape
    torch.Size([2, 2])
    """
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
