"""DeepLabV3+ in plain torch (torchvision cannot be installed here): a ResNet-style encoder at output stride 16 with
a dilated last stage, atrous spatial pyramid pooling (ASPP), and a decoder that joins the stride-4 features.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _conv_bn(cin: int, cout: int, kernel: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (kernel - 1) // 2
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, pad, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions and a shortcut (1x1 where the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv_bn(cin, cout, 3, stride, dilation)
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, dilation, dilation=dilation, bias=False),
                                   nn.BatchNorm2d(cout))
        self.short: nn.Module = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        """Block output."""
        return F.relu(self.conv2(self.conv1(x)) + self.short(x))


def _stage(cin: int, cout: int, blocks: int, stride: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(BasicBlock(cin, cout, stride, dilation),
                         *[BasicBlock(cout, cout, 1, dilation) for _ in range(blocks - 1)])


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: a 1x1 branch, dilated 3x3 branches and an image-pooling branch."""

    def __init__(self, cin: int, cout: int, rates: Sequence[int]) -> None:
        super().__init__()
        self.branches = nn.ModuleList([_conv_bn(cin, cout, 1), *[_conv_bn(cin, cout, 3, 1, r) for r in rates]])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False), nn.ReLU(inplace=True))
        self.project = _conv_bn(cout * (len(rates) + 2), cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Pyramid features, ``cout`` channels at the input's size."""
        pooled = self.pool(x).expand(-1, -1, x.shape[2], x.shape[3])
        return self.project(torch.cat([*(b(x) for b in self.branches), pooled], dim=1))


class DeepLabV3Plus(nn.Module):
    """DeepLabV3+ for grey micrographs.

    Parameters
    ----------
    in_channels, num_classes : input channels and output classes.
    widths : channels of the four encoder stages (strides 4, 8, 16, 16 with dilation 2 in the last).
    blocks : residual blocks per stage (2, 2, 2, 2 is ResNet-18's layout).
    aspp_channels : channels of the ASPP and the decoder.
    rates : ASPP dilation rates at output stride 16 (6, 12, 18 in the paper for 513 px crops; smaller for 256 px).
    low_channels : channels the stride-4 features are reduced to before the decoder joins them.
    """

    def __init__(self, in_channels: int, num_classes: int, widths: Sequence[int] = (32, 64, 128, 256),
                 blocks: Sequence[int] = (2, 2, 2, 2), aspp_channels: int = 128, rates: Sequence[int] = (3, 6, 9),
                 low_channels: int = 32) -> None:
        super().__init__()
        w = list(widths)
        self.stem = nn.Sequential(_conv_bn(in_channels, w[0] // 2, 3, 2), _conv_bn(w[0] // 2, w[0], 3, 1),
                                  _conv_bn(w[0], w[0], 3, 2))
        self.layer1 = _stage(w[0], w[0], blocks[0], 1)
        self.layer2 = _stage(w[0], w[1], blocks[1], 2)
        self.layer3 = _stage(w[1], w[2], blocks[2], 2)
        self.layer4 = _stage(w[2], w[3], blocks[3], 1, dilation=2)
        self.aspp = ASPP(w[3], aspp_channels, rates)
        self.low = _conv_bn(w[0], low_channels, 1)
        self.decoder = nn.Sequential(_conv_bn(aspp_channels + low_channels, aspp_channels),
                                     _conv_bn(aspp_channels, aspp_channels))
        self.classifier = nn.Conv2d(aspp_channels, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, classes, rows, columns)."""
        low = self.layer1(self.stem(x))
        deep = self.aspp(self.layer4(self.layer3(self.layer2(low))))
        deep = F.interpolate(deep, size=low.shape[2:], mode="bilinear", align_corners=False)
        out = self.classifier(self.decoder(torch.cat([deep, self.low(low)], dim=1)))
        return F.interpolate(out, size=x.shape[2:], mode="bilinear", align_corners=False)
