"""U-Net (MONAI's residual U-Net), the published best on these coatings."""

from __future__ import annotations

from collections.abc import Sequence

from monai.networks.nets import UNet
from torch import nn


def unet(in_channels: int, num_classes: int, channels: Sequence[int] = (16, 32, 64, 128, 256),
         num_res_units: int = 2, dropout: float = 0.0) -> nn.Module:
    """A 2-D residual U-Net: ``channels`` features per level, each level halving rows and columns.

    Parameters
    ----------
    channels : feature channels per level, from full resolution down (len(channels) - 1 halvings; inputs must be
        multiples of 2 ** (len(channels) - 1) pixels).
    num_res_units : residual units per level.
    dropout : dropout probability.
    """
    return UNet(spatial_dims=2, in_channels=in_channels, out_channels=num_classes, channels=tuple(channels),
                strides=(2,) * (len(channels) - 1), num_res_units=num_res_units, norm="batch", dropout=dropout)
