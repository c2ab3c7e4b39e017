"""Plain backbone detectors (Xception, ResNet-50, EfficientNet-B3/B4) with CE, DAG-FDD or DAW-FDD
loss.

``backbone -> global average pool -> dropout -> Linear(C, 2)``. The loss is
chosen with ``loss``:

``ce``
    mean cross-entropy.
``dag``
    DAG-FDD: ``CVaR_alpha`` of the per-sample cross-entropies over the batch (spec 10).
``daw``
    DAW-FDD: plain ``CVaR_alpha_outer`` over groups of ``CVaR_alpha_inner`` within each group.

The research baselines use one logit with a binary cross-entropy; two logits
with softmax cross-entropy are the same model (``z = z_1 - z_0``) and keep one
output contract for every detector.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from .._errors import ConfigError
from ..losses import SOLVERS, dag_fdd_loss, daw_fdd_loss
from ._backbones import backbone_spec, create_backbone
from ._registry import Detector, register_detector

__all__ = ["PlainDetector", "LOSSES"]

LOSSES = ("ce", "dag", "daw")


@register_detector("plain")
@register_detector("xception", backbone="xception")
@register_detector("resnet50", backbone="resnet50")
@register_detector("efficientnet_b3", backbone="efficientnet_b3")
@register_detector("efficientnet_b4", backbone="efficientnet_b4")
class PlainDetector(Detector):
    """A backbone with a linear real/fake head (module docstring).

    Parameters
    ----------
    backbone : str
    pretrained : str, optional
        Local ImageNet weights file for the backbone.
    loss : {"ce", "dag", "daw"}
    alpha : float
        DAG-FDD's CVaR level (0.5).
    alpha_inner, alpha_outer : float
        DAW-FDD's levels (0.9 within groups, 0.5 over groups).
    num_groups : int
    group_counts : sequence of int, optional
        Accepted for a uniform interface; unused.
    dropout : float
        Dropout before the linear head.
    cvar_solver : {"exact", "fminbound"}
        How DAG-FDD / DAW-FDD find their CVaR minimisers: exactly (default), or by the research
        code's bounded search, whose gradient is off the exact one
        (:mod:`detectors.losses`).

    Examples
    --------
    >>> import torch
    >>> model = PlainDetector(backbone="tiny_cnn", loss="daw")
    >>> batch = {"image": torch.zeros(4, 3, 64, 64), "label": torch.tensor([0, 0, 1, 1]),
    ...          "group": torch.tensor([0, 1, 0, 1])}
    >>> out = model(batch)
    >>> out["logits"].shape, sorted(model.get_losses(batch, out))
    (torch.Size([4, 2]), ['ce', 'overall'])
    """

    def __init__(
        self,
        *,
        backbone: str = "xception",
        pretrained: str | None = None,
        backbone_options: dict[str, Any] | None = None,
        loss: str = "ce",
        alpha: float = 0.5,
        alpha_inner: float = 0.9,
        alpha_outer: float = 0.5,
        num_groups: int = 8,
        group_counts: Sequence[int] | None = None,
        dropout: float = 0.0,
        cvar_solver: str = "exact",
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ConfigError(f"option loss: expected one of {', '.join(LOSSES)}, found {loss!r}")
        spec = backbone_spec(backbone)
        self.input_size, self.mean, self.std = spec.input_size, spec.mean, spec.std
        self.backbone = create_backbone(
            backbone, pretrained=pretrained, **dict(backbone_options or {})
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.backbone.out_channels, 2)
        self.loss, self.alpha, self.alpha_inner, self.alpha_outer = (
            loss,
            alpha,
            alpha_inner,
            alpha_outer,
        )
        self.num_groups = num_groups
        if cvar_solver not in SOLVERS:
            raise ConfigError(
                f"option cvar_solver: expected one of {', '.join(SOLVERS)}, found {cvar_solver!r}"
            )
        self.cvar_solver = cvar_solver

    def forward(self, batch: dict[str, Tensor], inference: bool = False) -> dict[str, Any]:
        """Outputs ``logits`` (B, 2) and ``feat`` (B, C) pooled features."""
        feat = self.backbone(batch["image"]).mean(dim=(2, 3))
        return {"logits": self.classifier(self.dropout(feat)), "feat": feat}

    def get_losses(self, batch: dict[str, Tensor], outputs: dict[str, Any]) -> dict[str, Tensor]:
        per_sample = F.cross_entropy(outputs["logits"].float(), batch["label"], reduction="none")
        if self.loss == "ce":
            total = per_sample.mean()
        elif self.loss == "dag":
            total = dag_fdd_loss(per_sample, self.alpha, solver=self.cvar_solver)
        else:
            total = daw_fdd_loss(
                per_sample,
                batch["group"],
                self.num_groups,
                alpha_inner=self.alpha_inner,
                alpha_outer=self.alpha_outer,
                solver=self.cvar_solver,
            )
        return {"overall": total, "ce": per_sample.mean().detach()}
