"""Xception (Chollet, CVPR 2017) with the parameter names of the Cadene ImageNet checkpoint.

The module and parameter names (``conv1``, ``bn1``, ``block1.rep.0.pointwise``,
``block1.skip``, ``conv3.conv1``, ``bn4`` ...) follow the layout of the common
PyTorch ImageNet file ``xception-b5690688.pth`` so that it loads without
renaming; that file stores the pointwise weights 2-D and carries a 1000-class
head ``fc`` which the backbone does not have (see :func:`load_xception_weights`).

Spatial sizes for a 256 x 256 input: 127 -> 125 -> 63 -> 32 -> 16 -> 8
(output 2048 x 8 x 8); any multiple of 32 from 64 up works.
"""

from __future__ import annotations

from torch import Tensor, nn

from ._weights import WeightsReport, load_weights

__all__ = ["Xception", "load_xception_weights"]


class SeparableConv2d(nn.Module):
    """Depthwise ``k x k`` convolution (``conv1``) followed by a 1 x 1 pointwise one
    (``pointwise``)."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, padding: int = 1
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, in_ch, kernel_size, stride, padding, groups=in_ch, bias=False)
        self.pointwise = nn.Conv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.conv1(x))


class Block(nn.Module):
    """Residual block: ``reps`` x (ReLU, separable conv, BN), optional strided max-pool, 1 x 1 skip.

    ``grow_first`` puts the channel change in the first repetition, otherwise in
    the last; ``start_with_relu=False`` drops the leading ReLU (entry block).
    The ``rep`` indices match the checkpoint layout.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        reps: int,
        stride: int = 1,
        start_with_relu: bool = True,
        grow_first: bool = True,
    ) -> None:
        super().__init__()
        if out_ch != in_ch or stride != 1:
            self.skip = nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)
            self.skipbn = nn.BatchNorm2d(out_ch)
        else:
            self.skip = None
        widths = (
            [(in_ch, out_ch)] + [(out_ch, out_ch)] * (reps - 1)
            if grow_first
            else [(in_ch, in_ch)] * (reps - 1) + [(in_ch, out_ch)]
        )
        layers: list[nn.Module] = []
        for a, b in widths:
            layers += [nn.ReLU(inplace=True), SeparableConv2d(a, b), nn.BatchNorm2d(b)]
        if start_with_relu:
            layers[0] = nn.ReLU(inplace=False)  # the input is also used by the skip path
        else:
            layers = layers[1:]
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, 1))
        self.rep = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        skip = self.skipbn(self.skip(x)) if self.skip is not None else x
        return self.rep(x) + skip


class Xception(nn.Module):
    """Xception trunk: entry flow, 8 middle blocks, exit flow up to ``bn4``.

    2048 channels, stride 32.

    Parameters
    ----------
    final_relu : bool
        Apply a ReLU after ``bn4`` (classification use). The PG-FDD encoders feed
        the raw ``bn4`` output to their channel adapter, as the research code does.

    Examples
    --------
    >>> import torch
    >>> net = Xception()
    >>> net(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 2048, 2, 2])
    """

    out_channels = 2048

    def __init__(self, *, final_relu: bool = True) -> None:
        super().__init__()
        self.final_relu = final_relu
        self.conv1 = nn.Conv2d(3, 32, 3, 2, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.block1 = Block(64, 128, 2, 2, start_with_relu=False)
        self.block2 = Block(128, 256, 2, 2)
        self.block3 = Block(256, 728, 2, 2)
        for i in range(4, 12):
            setattr(self, f"block{i}", Block(728, 728, 3, 1))
        self.block12 = Block(728, 1024, 2, 2, grow_first=False)
        self.conv3 = SeparableConv2d(1024, 1536)
        self.bn3 = nn.BatchNorm2d(1536)
        self.conv4 = SeparableConv2d(1536, 2048)
        self.bn4 = nn.BatchNorm2d(2048)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        for i in range(1, 13):
            x = getattr(self, f"block{i}")(x)
        x = self.relu(self.bn3(self.conv3(x)))
        x = self.bn4(self.conv4(x))
        return self.relu(x) if self.final_relu else x


def load_xception_weights(model: Xception, path: str, *, strict: bool = True) -> WeightsReport:
    """Load a Cadene-layout ImageNet Xception file (2-D pointwise weights reshaped, no ``fc``).

    Examples
    --------
    A file with two of the Cadene file's tensors (its pointwise weights are 2-D):

    >>> import tempfile, os, torch
    >>> weights = {"conv3.pointwise.weight": torch.zeros(1536, 1024),
    ...            "fc.weight": torch.zeros(1000, 2048)}
    >>> path = os.path.join(tempfile.mkdtemp(), "xception.pth")
    >>> torch.save(weights, path)
    >>> net = Xception()
    >>> report = load_xception_weights(net, path, strict=False)
    >>> report.reshaped, report.dropped, net.conv3.pointwise.weight.abs().sum().item()
    (['conv3.pointwise.weight'], ['fc.weight'], 0.0)
    """
    return load_weights(
        model, path, drop_prefixes=("fc.", "last_linear."), reshape_pointwise=True, strict=strict
    )
