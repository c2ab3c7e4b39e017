"""detectors: the PG-FDD deepfake-detector pipeline (data, models, losses, SAM, training, inference).

Entry points: ``python -m detectors.train``, ``python -m detectors.predict``,
``python -m detectors.synth``. Predictions are written in the form
``python -m fairaudit report`` reads.
"""

__version__ = "0.1.0"

from ._errors import ConfigError, DataError, DetectorsError, WeightsError  # noqa: E402
from .models import create_backbone, create_model, list_models  # noqa: E402
from .sam import SAM, frozen_bn_stats  # noqa: E402

__all__ = [
    "ConfigError",
    "DataError",
    "DetectorsError",
    "SAM",
    "WeightsError",
    "__version__",
    "create_backbone",
    "create_model",
    "frozen_bn_stats",
    "list_models",
]
