"""Models: backbones, the PG-FDD detector and plain baselines, behind ``create_model``."""

from . import pgfdd as _pgfdd  # noqa: F401  (registers "pgfdd")
from . import plain as _plain  # noqa: F401  (registers the plain detectors)
from ._backbones import BACKBONES, backbone_spec, create_backbone
from ._layers import adain
from ._registry import (
    Detector,
    check_model_config,
    create_model,
    list_models,
    model_options,
    register_detector,
)
from ._weights import WeightsReport, load_weights, read_state_dict
from .pgfdd import PGFDD, VARIANTS
from .plain import PlainDetector
from .xception import Xception, load_xception_weights

__all__ = [
    "BACKBONES",
    "Detector",
    "PGFDD",
    "PlainDetector",
    "VARIANTS",
    "WeightsReport",
    "Xception",
    "adain",
    "backbone_spec",
    "check_model_config",
    "create_backbone",
    "create_model",
    "list_models",
    "load_weights",
    "load_xception_weights",
    "model_options",
    "read_state_dict",
    "register_detector",
]
