"""fairaudit: fairness audits of binary classifiers across demographic groups.

Per-group metrics (AUC, EER, FPR, TPR, ...), gaps between groups (range, ratio, distance to
overall, equalized odds, demographic parity), bootstrap confidence intervals, permutation
tests, plots and reports. Label 1 = fake (positive class); higher score = more likely fake.

>>> import fairaudit
>>> result = fairaudit.audit(y_true, y_score, {"gender": g, "race": r})   # doctest: +SKIP
>>> result.groups, result.gaps                                            # doctest: +SKIP
"""

__version__ = "0.1.0"

from ._errors import FairauditError, FairauditWarning  # noqa: E402
from ._metrics import METRICS, METRIC_NAMES  # noqa: E402
from ._gaps import GAP_KINDS, COMPOSITES, gap_names  # noqa: E402
from ._audit import Audit, audit  # noqa: E402
from ._compare import Comparison, compare  # noqa: E402
from ._example import example_paths  # noqa: E402
from ._table import Table, table  # noqa: E402
from ._state import AuditState  # noqa: E402
from . import plots  # noqa: E402

__all__ = [
    # core
    "audit",
    "Audit",
    "compare",
    "Comparison",
    "table",
    "Table",
    "AuditState",
    "plots",
    "example_paths",
    # definitions
    "METRICS",
    "METRIC_NAMES",
    "GAP_KINDS",
    "COMPOSITES",
    "gap_names",
    # errors
    "FairauditError",
    "FairauditWarning",
    "__version__",
]


def __getattr__(name):
    # fairaudit.dask (the optional extra "dask") loads on first use
    if name == "dask":
        import importlib

        return importlib.import_module(".dask", __name__)
    raise AttributeError(f"module 'fairaudit' has no attribute {name!r}")
