"""Losses as small device-agnostic functions and modules.

Cross-entropy and L1 come from :mod:`torch.nn.functional`; this package adds
the reconstruction sum, the contrastive regularisation, LDAM and the CVaR
family (bi-level for PG-FDD, DAG-FDD, DAW-FDD).
"""

from ._contrastive import contrastive_regularization
from ._cvar import (
    FLOAT32_EXP_OVERFLOW,
    SOLVERS,
    bilevel_cvar_loss,
    cvar,
    dag_fdd_loss,
    daw_fdd_loss,
    grouped_cvar,
    smoothed_cvar,
)
from ._ldam import LDAMLoss, ldam_margins
from ._reconstruction import reconstruction_l1

__all__ = [
    "FLOAT32_EXP_OVERFLOW",
    "LDAMLoss",
    "SOLVERS",
    "bilevel_cvar_loss",
    "contrastive_regularization",
    "cvar",
    "dag_fdd_loss",
    "daw_fdd_loss",
    "grouped_cvar",
    "ldam_margins",
    "reconstruction_l1",
    "smoothed_cvar",
]
