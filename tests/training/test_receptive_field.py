"""The shipped U-Net sees far enough: a pixel deep in the steel (or the Fe2Al5) must see an interface to be told from
the other, since their greys alone overlap from micrograph to micrograph."""

from __future__ import annotations

import torch
import yaml

from training.lightning_cli import CONFIG_DIR
from training.models import build_model

# The presets' steel band below the FeAl is ~170 px deep at 0.17 um/px; most of it must reach the interface.
MIN_RECEPTIVE_FIELD_PX = 160


def receptive_field_rows(net: torch.nn.Module, size: int = 384) -> int:
    """Rows of the input that the logits of the central pixel depend on (non-zero gradient)."""
    net.eval()  # batch-norm statistics of the running kind: the gradient reaches only the receptive field
    x = torch.rand(1, 1, size, size, requires_grad=True)
    net(x)[0, :, size // 2, size // 2].sum().backward()
    assert x.grad is not None
    rows = torch.nonzero(x.grad[0, 0].abs().sum(dim=1) > 0)
    return int(rows.max() - rows.min() + 1)


def test_the_unet_config_sees_across_the_steel_band() -> None:
    options = yaml.safe_load((CONFIG_DIR / "unet.yaml").read_text())["model"]["model_options"]
    torch.manual_seed(0)
    net = build_model("unet", 7, **options)
    assert receptive_field_rows(net) >= MIN_RECEPTIVE_FIELD_PX
    # the demo's former 4-level U-Net (16-128 channels) saw 47 px: it labelled most of the steel as FeAl or Fe2Al5
    assert receptive_field_rows(build_model("unet", 7, channels=[16, 32, 64, 128], num_res_units=1)) < 60
