"""Shared fixtures: a tiny ONNX segmentation model and a rendered-like dataset folder."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from analysis.measure import measure
from semcoat import pngio
from semcoat.classes import NUM_CLASSES
from semcoat.dataset import DatasetInfo, DatasetWriter, sample_id
from tests.analysis.masks import slab, square_lattice

# Grey level of each class (ids 0..6) in the test micrographs; the tiny model picks the nearest one.
CLASS_GREY = np.array([0.05, 0.45, 0.60, 0.85, 0.25, 0.72, 0.15], np.float32)


def grey_image(mask: np.ndarray, rng: np.random.Generator, noise: float = 0.01) -> np.ndarray:
    """A float image in [0, 1] whose pixels are their class's grey plus a little noise."""
    return np.clip(CLASS_GREY[mask] + rng.normal(0, noise, mask.shape), 0, 1).astype(np.float32)


DYNAMIC_AXES = {"image": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h", 3: "w"}}


def export_nearest_grey_model(
    path: Path, dynamic_axes: dict[str, dict[int, str]] | None = DYNAMIC_AXES, example_batch: int = 1
) -> Path:
    """Export to ONNX a 1x1 convolution that labels each pixel with the class of the nearest grey level.

    -s (x - g_k)^2 = -s x^2 + 2 s g_k x - s g_k^2; the first term is common to every class, so the rest, linear in x,
    is a 1x1 convolution with weight 2 s g_k and bias -s g_k^2. Without ``dynamic_axes`` the model's input shape
    is fixed to (example_batch, 1, 64, 64).
    """
    import torch

    scale = 200.0
    conv = torch.nn.Conv2d(1, NUM_CLASSES, kernel_size=1)
    with torch.no_grad():
        g = torch.from_numpy(CLASS_GREY)
        conv.weight.copy_((2 * scale * g).reshape(NUM_CLASSES, 1, 1, 1))
        conv.bias.copy_(-scale * g**2)
    conv.eval()
    with warnings.catch_warnings():
        # The TorchScript-based exporter (dynamo=False) is deprecated but needs no onnxscript; the model is trivial.
        warnings.simplefilter("ignore", DeprecationWarning)
        _export(conv, path, dynamic_axes, example_batch)
    return path


def _export(conv: object, path: Path, dynamic_axes: dict[str, dict[int, str]] | None, example_batch: int) -> None:
    import torch

    torch.onnx.export(
        conv,
        (torch.zeros(example_batch, 1, 64, 64),),
        str(path),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes=dynamic_axes,
        dynamo=False,
    )


@pytest.fixture(scope="session")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of the tiny nearest-grey ONNX model."""
    return export_nearest_grey_model(tmp_path_factory.mktemp("model") / "nearest_grey.onnx")


def line_mask(seed: int) -> np.ndarray:
    """A 160 x 240 coating with FeAl and, for even seeds, a pore line; thickness varies with the seed."""
    thickness = 70 + 4 * seed
    mask = slab(height=160, width=240, surface=20, thickness=thickness, feal=6 + seed)
    depths = range(25, 26) if seed % 2 == 0 else range(10, 60, 25)
    columns = range(0, 240, 8) if seed % 2 == 0 else range(3, 237, 40)
    square_lattice(mask, np.full(240, 20), depths, columns, size=4)
    return mask


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    """A dataset folder as the renderer writes it: 4 samples at 0.5 µm/px with truth in their meta files."""
    root = tmp_path / "batch"
    info = DatasetInfo(name="test", pixel_size_um=0.5, image_width_px=240, image_height_px=160, count=4, seed=1)
    writer = DatasetWriter.open(root, info)
    rng = np.random.default_rng(0)
    for i in range(info.count):
        mask = line_mask(i)
        image = np.round(grey_image(mask, rng) * 255).astype(np.uint8)
        truth = measure(mask, info.pixel_size_um).as_dict()
        writer.write_sample(
            sample_id(i),
            pngio.encode_grey(240, 160, 8, image.tobytes()),
            pngio.encode_grey(240, 160, 8, mask.tobytes()),
            {"id": sample_id(i), "index": i, "params": {"seed": i}, "truth": truth},
        )
    return root
