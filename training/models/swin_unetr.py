"""Swin UNETR in 2-D (MONAI): a shifted-window transformer encoder with a convolutional decoder."""

from __future__ import annotations

from collections.abc import Sequence

from monai.networks.nets import SwinUNETR
from torch import nn


def swin_unetr(in_channels: int, num_classes: int, feature_size: int = 12, depths: Sequence[int] = (2, 2, 2, 2),
               num_heads: Sequence[int] = (3, 6, 12, 24), window_size: int = 7) -> nn.Module:
    """A 2-D Swin UNETR; inputs must be multiples of 32 pixels.

    Parameters
    ----------
    feature_size : channels of the first stage (a multiple of 12), doubled at each of the four stages.
    depths, num_heads : transformer blocks and attention heads per stage.
    window_size : attention window edge, in patches of 2 x 2 pixels at the first stage.
    """
    return SwinUNETR(in_channels=in_channels, out_channels=num_classes, feature_size=feature_size,
                     depths=tuple(depths), num_heads=tuple(num_heads), window_size=window_size, spatial_dims=2)
