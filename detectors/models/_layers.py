"""Building blocks of the PG-FDD detector (spec sections 1.1-1.4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["adain", "PointwiseMLP", "ClassifierHead", "ReconstructionDecoder", "ChannelAdapter"]


def adain(pattern: Tensor, style: Tensor, eps: float = 1e-5) -> Tensor:
    """Adaptive instance normalisation.

    The spatial pattern of ``pattern`` with the statistics of ``style``.

    For each sample and channel, over the ``H*W`` positions::

        AdaIN(x, y) = sigma_y * (x - mu_x) / sigma_x + mu_y,
        sigma = sqrt(var_unbiased + eps)   (divisor H*W - 1)

    Note the spatial mean of the result is exactly ``mu_y``: a global average
    pool after AdaIN sees only ``style`` (the fusion degeneracy of spec 1.8).

    Examples
    --------
    >>> pattern, style = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8) * 3 + 1
    >>> out = adain(pattern, style)
    >>> torch.allclose(out.mean((2, 3)), style.mean((2, 3)), atol=1e-5)  # pooling sees only style
    True
    """

    def stats(t: Tensor) -> tuple[Tensor, Tensor]:
        flat = t.flatten(2)
        mean = flat.mean(-1)[..., None, None]
        std = (flat.var(-1, correction=1) + eps).sqrt()[..., None, None]
        return mean, std

    mu_x, sigma_x = stats(pattern)
    mu_y, sigma_y = stats(style)
    return sigma_y * (pattern - mu_x) / sigma_x + mu_y


class PointwiseMLP(nn.Sequential):
    """Three 1 x 1 convolutions with LeakyReLU(0.01) between them: ``in -> hidden -> hidden ->
    out``."""

    def __init__(self, in_ch: int, hidden: int, out_ch: int) -> None:
        super().__init__(
            nn.Conv2d(in_ch, hidden, 1),
            nn.LeakyReLU(0.01, inplace=True),
            nn.Conv2d(hidden, hidden, 1),
            nn.LeakyReLU(0.01, inplace=True),
            nn.Conv2d(hidden, out_ch, 1),
        )


class ChannelAdapter(nn.Sequential):
    """1 x 1 convolution (with bias) + BN + ReLU bringing a backbone map to ``out_ch`` channels."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(nn.Conv2d(in_ch, out_ch, 1), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class ClassifierHead(nn.Module):
    """Global average pool -> Linear(in, hidden) -> LeakyReLU -> Linear(hidden, k), with dropout.

    Parameters
    ----------
    dropout_on_logits : bool
        True (research code): dropout is applied to the output logits. False:
        dropout on the hidden layer, before the last linear map.

    Returns
    -------
    (logits, pooled) : (Tensor (B, k), Tensor (B, in))
    """

    def __init__(
        self,
        in_ch: int,
        hidden: int,
        num_classes: int,
        dropout: float = 0.2,
        dropout_on_logits: bool = True,
    ) -> None:
        super().__init__()
        self.hidden = nn.Linear(in_ch, hidden)
        self.out = nn.Linear(hidden, num_classes)
        self.dropout = nn.Dropout(dropout)
        self.dropout_on_logits = dropout_on_logits

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        pooled = x.mean(dim=(2, 3))
        h = F.leaky_relu(self.hidden(pooled), 0.01)
        if self.dropout_on_logits:
            return self.dropout(self.out(h)), pooled
        return self.out(self.dropout(h)), pooled


class _DoubleConv(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1),
            nn.ReLU(inplace=True),
        )


def _up(x: Tensor, factor: int) -> Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=True)


class ReconstructionDecoder(nn.Module):
    """AdaIN-conditioned decoder (spec 1.4): forgery code + content code -> image in (-1, 1).

    With ``c`` channels in (512 in the paper) the stages have c/2, c/4, c/8
    channels; three x2 upsamplings and a final x4 give an image 32 times the
    feature map's side. The two branches share their convolution weights. At
    each stage the content branch takes the statistics of the forgery branch::

        x = AdaIN(x, f); x = conv(dropout(up2(x))); f = conv(dropout(up2(f)))   (twice)
        x = AdaIN(x, f); x = conv(dropout(up2(x)))
        out = tanh(up4(conv1x1(x)))
    """

    def __init__(self, channels: int = 512, dropout: float = 0.3) -> None:
        super().__init__()
        c = channels
        self.stage3 = _DoubleConv(c, c // 2)
        self.stage2 = _DoubleConv(c // 2, c // 4)
        self.stage1 = _DoubleConv(c // 4, c // 8)
        self.to_rgb = nn.Conv2d(c // 8, 3, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, forgery: Tensor, content: Tensor) -> Tensor:
        x, f = content, forgery
        for stage in (self.stage3, self.stage2):
            x = stage(self.dropout(_up(adain(x, f), 2)))
            f = stage(self.dropout(_up(f, 2)))
        x = self.stage1(self.dropout(_up(adain(x, f), 2)))
        return torch.tanh(_up(self.to_rgb(x), 4))
