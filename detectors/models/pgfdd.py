"""PG-FDD, the detector of "Preserving Fairness Generalization in Deepfake Detection" (CVPR 2024).

Architecture (spec section 1), with descriptive names (research names in brackets):

* three encoders of the same backbone + channel adapter to ``feature_dim``:
  forgery F [encoder_f], content C [encoder_c], demographic D [encoder_fair];
* 1 x 1 MLP blocks: F -> specific F_spe [block_spe], F -> shared F_sha [block_sha],
  D -> demographic D_dem [block_fair], each ``feature_dim / 2`` channels;
* heads (pool -> MLP): specific (manipulation id), shared (real/fake),
  demographic (intersectional group, LDAM), fused (real/fake, bi-level CVaR) -
  the fused head is the scoring head (``logits``);
* a reconstruction decoder that swaps forgery and content codes between the
  real and the fake half of the batch (training only).

Variants (spec section 12, model-side quirks):

``faithful`` (the research code)
    fused input ``Z = AdaIN(D_dem, F_sha)`` - which global pooling reduces to
    pool(F_sha), so the fused head never sees the demographic features;
    reconstruction content ``AdaIN(D, C)`` - which the decoder's first AdaIN
    renormalises away, leaving the content encoder almost inert; dropout on the
    logits; the float32 overflow guard of the outer CVaR search.
``fixed``
    fused input ``Z = MLP(concat(D_dem, F_sha))`` (the research code's unused
    fused block), in which the demographic features survive pooling; the raw
    content code C for reconstruction (content encoder live); dropout before the
    last linear layer; the exact smoothed CVaR.

Each behaviour can also be switched alone (``fusion``, ``content_code``,
``dropout_on_logits``, ``overflow_guard``).

Loss (spec 2.7)::

    L = L_shared + 0.1 L_specific + 0.3 L_reconstruction + 0.05 L_contrastive
        + 0.1 L_demographic + 1.0 L_fusion
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._errors import ConfigError
from ..losses import (
    SOLVERS,
    LDAMLoss,
    bilevel_cvar_loss,
    contrastive_regularization,
    reconstruction_l1,
)
from ._backbones import backbone_spec, create_backbone
from ._layers import ChannelAdapter, ClassifierHead, PointwiseMLP, ReconstructionDecoder, adain
from ._registry import Detector, register_detector

__all__ = ["PGFDD", "VARIANTS", "DEFAULT_LOSS_WEIGHTS"]

VARIANTS: dict[str, dict[str, Any]] = {
    "faithful": {
        "fusion": "adain",
        "content_code": "adain",
        "dropout_on_logits": True,
        "overflow_guard": True,
        "cvar_solver": "fminbound",
    },
    "fixed": {
        "fusion": "concat",
        "content_code": "raw",
        "dropout_on_logits": False,
        "overflow_guard": False,
        "cvar_solver": "exact",
    },
}

DEFAULT_LOSS_WEIGHTS = {
    "shared": 1.0,
    "specific": 0.1,
    "reconstruction": 0.3,
    "contrastive": 0.05,
    "demographic": 0.1,
    "fusion": 1.0,
}


class Encoder(nn.Module):
    """Backbone trunk + 1 x 1 channel adapter (conv + BN + ReLU) to ``out_ch`` channels."""

    def __init__(
        self, backbone: str, out_ch: int, pretrained: str | None, backbone_options: dict[str, Any]
    ) -> None:
        super().__init__()
        self.backbone = create_backbone(
            backbone, pretrained=pretrained, final_relu=False, **backbone_options
        )
        self.adapter = ChannelAdapter(self.backbone.out_channels, out_ch)

    def forward(self, x: Tensor) -> Tensor:
        return self.adapter(self.backbone(x))


def _choose(name: str, value: Any, default: Any, allowed: Sequence[Any]) -> Any:
    value = default if value is None else value
    if value not in allowed:
        raise ConfigError(
            f"pgfdd option {name}: expected one of {', '.join(map(str, allowed))}, found {value!r}"
        )
    return value


@register_detector("pgfdd")
class PGFDD(Detector):
    """The PG-FDD detector (module docstring).

    Parameters
    ----------
    variant : {"faithful", "fixed"}
    backbone : str
        Encoder backbone (``xception`` in the paper; ``tiny_cnn`` for CPU tests).
    pretrained : str, optional
        Local ImageNet weights file loaded into each encoder's backbone.
    feature_dim : int
        Encoder output channels (512); blocks have ``feature_dim // 2``.
    head_hidden : int
        Hidden width of the heads (512).
    num_specific : int
        Manipulation classes including real (6 for FF++: real + 5 methods).
    num_groups : int
        Intersectional groups (8 for FF++).
    group_counts : sequence of int, optional
        Training samples per group for LDAM's margins (from the training CSVs).
    fusion, content_code, dropout_on_logits, overflow_guard : optional
        Override single behaviours of the variant.
    loss_weights : dict, optional
        Override entries of :data:`DEFAULT_LOSS_WEIGHTS`.

    Examples
    --------
    >>> model = PGFDD(backbone="tiny_cnn", feature_dim=32, head_hidden=16)
    >>> batch = {"image": torch.randn(4, 3, 64, 64), "label": torch.tensor([0, 0, 1, 1]),
    ...          "label_specific": torch.tensor([0, 0, 1, 2]), "group": torch.tensor([0, 1, 0, 1])}
    >>> losses = model.get_losses(batch, model(batch))
    >>> sorted(losses)
    ['contrastive', 'demographic', 'fusion', 'overall', 'reconstruction', 'shared', 'specific']
    >>> model(batch, inference=True)["logits"].shape
    torch.Size([4, 2])
    """

    def __init__(
        self,
        *,
        variant: str = "faithful",
        backbone: str = "xception",
        pretrained: str | None = None,
        backbone_options: dict[str, Any] | None = None,
        feature_dim: int = 512,
        head_hidden: int = 512,
        num_specific: int = 6,
        num_groups: int = 8,
        group_counts: Sequence[int] | None = None,
        fusion: str | None = None,
        content_code: str | None = None,
        dropout_on_logits: bool | None = None,
        overflow_guard: bool | None = None,
        cvar_solver: str | None = None,
        head_dropout: float = 0.2,
        decoder_dropout: float = 0.3,
        loss_weights: dict[str, float] | None = None,
        alpha_inner: float = 0.9,
        alpha_outer: float = 0.5,
        tau1: float = 1e-3,
        tau2: float = 1e-4,
        ldam_scale: float = 30.0,
        ldam_max_margin: float = 0.5,
        contrastive_margin: float = 3.0,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ConfigError(
                f"pgfdd option variant: expected one of {', '.join(VARIANTS)}, found {variant!r}"
            )
        if feature_dim % 16:
            raise ConfigError(
                f"pgfdd option feature_dim: expected a multiple of 16, found {feature_dim}"
            )
        base = VARIANTS[variant]
        self.variant = variant
        self.fusion = _choose("fusion", fusion, base["fusion"], ("adain", "concat"))
        self.content_code = _choose(
            "content_code", content_code, base["content_code"], ("adain", "raw")
        )
        logit_dropout = _choose(
            "dropout_on_logits", dropout_on_logits, base["dropout_on_logits"], (True, False)
        )
        self.overflow_guard = _choose(
            "overflow_guard", overflow_guard, base["overflow_guard"], (True, False)
        )
        solver = _choose("cvar_solver", cvar_solver, base["cvar_solver"], SOLVERS)
        spec = backbone_spec(backbone)
        self.input_size, self.mean, self.std = spec.input_size, spec.mean, spec.std
        self.input_multiple = 32  # the decoder upsamples the 1/32 feature map by 32
        self.num_groups, self.num_specific = num_groups, num_specific
        unknown = set(loss_weights or {}) - set(DEFAULT_LOSS_WEIGHTS)
        if unknown:
            raise ConfigError(
                f"pgfdd option loss_weights: unknown term(s) {', '.join(sorted(unknown))} (known: "
                f"{', '.join(DEFAULT_LOSS_WEIGHTS)})"
            )
        self.loss_weights = {**DEFAULT_LOSS_WEIGHTS, **(loss_weights or {})}
        self.cvar_options = dict(
            alpha_inner=alpha_inner, alpha_outer=alpha_outer, tau1=tau1, tau2=tau2, solver=solver
        )
        self.contrastive_margin = contrastive_margin

        opts = dict(backbone_options or {})
        self.encoder_forgery = Encoder(backbone, feature_dim, pretrained, opts)
        self.encoder_content = Encoder(backbone, feature_dim, pretrained, opts)
        self.encoder_demographic = Encoder(backbone, feature_dim, pretrained, opts)
        half = feature_dim // 2
        self.block_specific = PointwiseMLP(feature_dim, half, half)
        self.block_shared = PointwiseMLP(feature_dim, half, half)
        self.block_demographic = PointwiseMLP(feature_dim, half, half)
        if self.fusion == "concat":
            self.block_fused = PointwiseMLP(feature_dim, half, half)

        def head(k: int) -> ClassifierHead:
            return ClassifierHead(half, head_hidden, k, head_dropout, logit_dropout)

        self.head_specific = head(num_specific)
        self.head_shared = head(2)
        self.head_demographic = head(num_groups)
        self.head_fused = head(2)
        self.decoder = ReconstructionDecoder(feature_dim, decoder_dropout)
        self.ldam = LDAMLoss(
            group_counts if group_counts is not None else [1] * num_groups,
            ldam_max_margin,
            ldam_scale,
        )

    def _fuse(self, demographic: Tensor, shared: Tensor) -> Tensor:
        if self.fusion == "adain":
            return adain(demographic, shared)  # pooled, this equals pool(shared) exactly
        return self.block_fused(torch.cat([demographic, shared], dim=1))

    def forward(self, batch: dict[str, Tensor], inference: bool = False) -> dict[str, Any]:
        """Outputs: ``logits`` (fused head, scoring), ``logits_shared``, ``feat_fused``,
        ``feat_shared``; in training also ``logits_specific``, ``logits_demographic``,
        ``feat_specific`` and ``reconstructions`` (dict of four images batches)."""
        x = batch["image"]
        forgery = self.encoder_forgery(x)
        demographic_map = self.encoder_demographic(x)
        specific, shared = self.block_specific(forgery), self.block_shared(forgery)
        demographic = self.block_demographic(demographic_map)
        logits_fused, feat_fused = self.head_fused(self._fuse(demographic, shared))
        logits_shared, feat_shared = self.head_shared(shared)
        out: dict[str, Any] = {
            "logits": logits_fused,
            "logits_shared": logits_shared,
            "feat_fused": feat_fused,
            "feat_shared": feat_shared,
        }
        if inference:
            return out
        out["logits_specific"], out["feat_specific"] = self.head_specific(specific)
        out["logits_demographic"], _ = self.head_demographic(demographic)
        out["reconstructions"] = self._reconstruct(
            torch.cat([specific, shared], 1), self.encoder_content(x), demographic_map
        )
        return out

    def _reconstruct(
        self, forgery_code: Tensor, content: Tensor, demographic_map: Tensor
    ) -> dict[str, Tensor]:
        n = forgery_code.shape[0] // 2
        if self.content_code == "adain":
            content_code = adain(demographic_map, content)  # research: raw D styled by C, per half
        else:
            content_code = content
        f_real, f_fake = forgery_code[:n], forgery_code[n:]
        c_real, c_fake = content_code[:n], content_code[n:]
        # one decoder call for the four decodings (the decoder is per-sample)
        images = self.decoder(
            torch.cat([f_fake, f_real, f_fake, f_real]), torch.cat([c_fake, c_real, c_real, c_fake])
        )
        self_fake, self_real, cross_to_real, cross_to_fake = images.split(n)
        return {
            "self_fake": self_fake,
            "self_real": self_real,
            "cross_to_real": cross_to_real,
            "cross_to_fake": cross_to_fake,
        }

    def get_losses(self, batch: dict[str, Tensor], outputs: dict[str, Any]) -> dict[str, Tensor]:
        """All loss terms and their weighted sum ``overall`` (needs a training forward pass).

        Every term is computed in float32, also when the forward pass ran under bf16 autocast.
        """
        label = batch["label"]
        out = {k: v.float() for k, v in outputs.items() if isinstance(v, Tensor)}
        if "reconstructions" not in outputs:
            ce = F.cross_entropy(out["logits"], label)
            return {"overall": ce, "fusion_ce": ce}
        image = batch["image"].float()
        n = image.shape[0] // 2
        rec = {k: v.float() for k, v in outputs["reconstructions"].items()}
        if rec["self_real"].shape[-2:] != image.shape[-2:]:
            raise ConfigError(
                f"pgfdd reconstructs {tuple(rec['self_real'].shape[-2:])} images from "
                f"{tuple(image.shape[-2:])} inputs: "
                "use an input size of 32 x the feature map (e.g. 256 for xception, 64 for tiny_cnn)"
            )
        per_sample = F.cross_entropy(out["logits"], label, reduction="none")
        terms = {
            "shared": F.cross_entropy(out["logits_shared"], label),
            "specific": F.cross_entropy(out["logits_specific"], batch["label_specific"]),
            "reconstruction": reconstruction_l1(
                image[:n],
                image[n:],
                rec["self_real"],
                rec["self_fake"],
                rec["cross_to_real"],
                rec["cross_to_fake"],
            ),
            "contrastive": contrastive_regularization(
                out["feat_shared"],
                out["feat_specific"],
                batch["label_specific"],
                self.contrastive_margin,
            ),
            "demographic": self.ldam(out["logits_demographic"], batch["group"]),
            "fusion": bilevel_cvar_loss(
                per_sample,
                batch["group"],
                self.num_groups,
                overflow_guard=self.overflow_guard,
                **self.cvar_options,
            ),
        }
        terms["overall"] = sum(self.loss_weights[k] * v for k, v in terms.items())
        return terms
