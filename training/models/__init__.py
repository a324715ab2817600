"""Segmentation networks chosen by name in the config: ``unet`` (MONAI), ``deeplab`` (DeepLabV3+, plain torch) and
``swin_unetr`` (MONAI, 2-D).

Every network maps a float32 batch (N, 1, rows, columns) of grey images in [0, 1] to class logits
(N, classes, rows, columns): the contract of :mod:`analysis.model`. Rows and columns must be multiples of
:data:`SIZE_MULTIPLE` (prediction pads or tiles to it).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from semcoat.errors import InvalidArgument
from training.models.deeplab import DeepLabV3Plus
from training.models.swin_unetr import swin_unetr
from training.models.unet import unet

SIZE_MULTIPLE = 32

_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "unet": unet,
    "deeplab": DeepLabV3Plus,
    "swin_unetr": swin_unetr,
}
MODEL_NAMES = tuple(_BUILDERS)


class ScaledInput(nn.Module):
    """A network behind a fixed input scaling: grey [0, 1] to roughly zero mean and unit spread (mean 0.5, std 0.25),
    so that exported models take the [0, 1] images prediction gives them."""

    def __init__(self, net: nn.Module, mean: float = 0.5, std: float = 0.25) -> None:
        super().__init__()
        self.net = net
        self.mean = mean
        self.std = std

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, classes, rows, columns) of grey images (N, 1, rows, columns) in [0, 1]."""
        return self.net((x - self.mean) / self.std)


def build_model(name: str, num_classes: int, in_channels: int = 1, **options: Any) -> nn.Module:
    """The network ``name`` with ``num_classes`` outputs; ``options`` go to its builder.

    Raises
    ------
    InvalidArgument
        For an unknown name or an option the builder does not take, listing what is accepted, or option values the
        network cannot be built with (the builder's reason).
    """
    if name not in _BUILDERS:
        raise InvalidArgument(f"unknown model {name!r}; accepted: {', '.join(MODEL_NAMES)}", argument="model")
    builder = _BUILDERS[name]
    accepted = [p for p in inspect.signature(builder).parameters if p not in ("in_channels", "num_classes")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InvalidArgument(f"model {name!r} takes no option(s) {unknown}; accepted: {', '.join(accepted)}",
                              argument="model_options")
    try:
        net = builder(in_channels=in_channels, num_classes=num_classes, **options)
    except (ValueError, TypeError, AssertionError, RuntimeError) as exc:  # a value the network cannot be built with
        raise InvalidArgument(f"model {name!r} cannot be built with {options}: {str(exc)[:300]}",
                              argument="model_options") from exc
    return ScaledInput(net)
