"""Backbone registry: convolutional trunks that map ``(B, 3, S, S)`` to ``(B, C, S/32, S/32)``.

Every backbone is built with random weights (``weights=None``); ImageNet weights
come only from a local file passed as ``pretrained`` (:func:`create_backbone`).
Each entry also records the input normalisation its weights expect and its
usual input size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torchvision
from torch import Tensor, nn

from .._errors import ConfigError
from ._weights import WeightsReport, load_weights
from .xception import Xception, load_xception_weights

__all__ = ["BackboneSpec", "BACKBONES", "create_backbone", "backbone_spec"]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_HALF = (0.5, 0.5, 0.5)


class TorchvisionResNet50(nn.Module):
    """torchvision ResNet-50 without its pooling and ``fc`` (2048 channels, stride 32)."""

    out_channels = 2048

    def __init__(self) -> None:
        super().__init__()
        self.body = torchvision.models.resnet50(weights=None)
        self.body.fc = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        b = self.body
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        return b.layer4(b.layer3(b.layer2(b.layer1(x))))

    def load_pretrained(self, path: str, strict: bool = True) -> WeightsReport:
        return load_weights(self.body, path, drop_prefixes=("fc.",), strict=strict)


class TorchvisionEfficientNet(nn.Module):
    """torchvision EfficientNet-B3/B4 ``features`` (1536 / 1792 channels, stride 32)."""

    def __init__(self, variant: str) -> None:
        super().__init__()
        factory = {
            "b3": torchvision.models.efficientnet_b3,
            "b4": torchvision.models.efficientnet_b4,
        }[variant]
        self.body = factory(weights=None)
        self.body.classifier = nn.Identity()
        self.out_channels = {"b3": 1536, "b4": 1792}[variant]

    def forward(self, x: Tensor) -> Tensor:
        return self.body.features(x)

    def load_pretrained(self, path: str, strict: bool = True) -> WeightsReport:
        return load_weights(self.body, path, drop_prefixes=("classifier.",), strict=strict)


class TinyConvNet(nn.Module):
    """Five stride-2 ``conv3x3 + BN + ReLU`` stages: a CPU-sized stand-in with stride 32.

    Parameters
    ----------
    widths : tuple of int
        Channels of the five stages; ``out_channels = widths[-1]``.
    """

    def __init__(
        self, widths: tuple[int, ...] = (8, 16, 32, 32, 64), *, final_relu: bool = True
    ) -> None:
        super().__init__()
        if len(widths) != 5:
            raise ConfigError(
                f"tiny_cnn widths: expected 5 stage widths (stride 32), found {len(widths)}"
            )
        layers: list[nn.Module] = []
        in_ch = 3
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(in_ch, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w)]
            if final_relu or i < len(widths) - 1:
                layers.append(nn.ReLU(inplace=True))
            in_ch = w
        self.stages = nn.Sequential(*layers)
        self.out_channels = widths[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.stages(x)

    def load_pretrained(self, path: str, strict: bool = True) -> WeightsReport:
        return load_weights(self, path, strict=strict)


class _XceptionBackbone(Xception):
    def load_pretrained(self, path: str, strict: bool = True) -> WeightsReport:
        return load_xception_weights(self, path, strict=strict)


@dataclass(frozen=True)
class BackboneSpec:
    """Registry entry: constructor, normalisation of its weights, usual input size."""

    factory: Callable[..., nn.Module]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: int


BACKBONES: dict[str, BackboneSpec] = {
    "xception": BackboneSpec(
        lambda final_relu=True: _XceptionBackbone(final_relu=final_relu), _HALF, _HALF, 256
    ),
    "resnet50": BackboneSpec(
        lambda final_relu=True: TorchvisionResNet50(), _IMAGENET_MEAN, _IMAGENET_STD, 256
    ),
    "efficientnet_b3": BackboneSpec(
        lambda final_relu=True: TorchvisionEfficientNet("b3"), _IMAGENET_MEAN, _IMAGENET_STD, 256
    ),
    "efficientnet_b4": BackboneSpec(
        lambda final_relu=True: TorchvisionEfficientNet("b4"), _IMAGENET_MEAN, _IMAGENET_STD, 256
    ),
    "tiny_cnn": BackboneSpec(
        lambda final_relu=True, widths=(8, 16, 32, 32, 64): TinyConvNet(
            tuple(widths), final_relu=final_relu
        ),
        _HALF,
        _HALF,
        64,
    ),
}


def backbone_spec(name: str) -> BackboneSpec:
    """The registry entry of ``name`` or a :class:`ConfigError` listing the known ones.

    Examples
    --------
    >>> spec = backbone_spec("xception")
    >>> spec.input_size, spec.mean
    (256, (0.5, 0.5, 0.5))
    """
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone {name!r} (known: {', '.join(BACKBONES)})")
    return BACKBONES[name]


def create_backbone(
    name: str, *, pretrained: str | None = None, strict: bool = True, **kwargs
) -> nn.Module:
    """Build backbone ``name`` with random weights, then load ``pretrained`` (a local file) if
    given.

    Examples
    --------
    >>> import torch
    >>> net = create_backbone("tiny_cnn")
    >>> net(torch.zeros(1, 3, 64, 64)).shape  # stride 32
    torch.Size([1, 64, 2, 2])
    """
    spec = backbone_spec(name)
    try:
        model = spec.factory(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"backbone {name!r}: {exc}") from None
    if pretrained:
        model.load_pretrained(pretrained, strict=strict)
    return model
