"""detectors: the PG-FDD deepfake-detector pipeline (data, models, losses, SAM, training,
inference).

Entry points: ``python -m detectors.train``, ``python -m detectors.predict``,
``python -m detectors.synth``. Predictions are written in the form
``python -m fairaudit report`` reads.

The package imports torch lazily, so configuration errors are reported
without waiting for it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ._errors import ConfigError, DataError, DetectorsError, WeightsError

__version__ = "0.1.0"

_LAZY = {
    "SAM": "detectors.sam",
    "frozen_bn_stats": "detectors.sam",
    "create_model": "detectors.models",
    "create_backbone": "detectors.models",
    "list_models": "detectors.models",
}

__all__ = ["ConfigError", "DataError", "DetectorsError", "WeightsError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'detectors' has no attribute {name!r}")
