"""Trained models out of Lightning checkpoints: ONNX and TorchScript files for ``semcoat predict``, and a checkpoint
loaded directly as a model.

Every exported model takes float32 (N, 1, rows, columns) grey images in [0, 1] and returns class logits
(N, classes, rows, columns), classes in the order of the class table (the contract of :mod:`analysis.model`); the
class names travel with the file (ONNX metadata ``semcoat_classes``, TorchScript extra file
``semcoat_classes.json``). Rows and columns are free (ONNX: dynamic axes), multiples of 32 for the U-Nets.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from semcoat.errors import SemcoatError
from training.init_weights import LOAD_ERRORS, load_refusal
from training.module import SegmentationModule

CLASSES_KEY = "semcoat_classes"
ONNX_OPSET = 17
EXPORT_SUFFIXES = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript", ".torchscript": "torchscript"}


class CheckpointError(SemcoatError):
    """A file that is not a checkpoint of :class:`training.module.SegmentationModule`."""


def load_module(path: str | Path) -> SegmentationModule:
    """The LightningModule of a checkpoint, on CPU, in eval mode, float32.

    Raises
    ------
    CheckpointError
        When the file is missing or is no checkpoint of a semcoat segmentation module.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:  # weights and plain values only: a checkpoint someone sent runs no code when it is loaded
        module = SegmentationModule.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except LOAD_ERRORS as exc:
        raise CheckpointError(f"{path}: not a checkpoint of a semcoat segmentation model "
                              f"({load_refusal(exc)})") from exc
    broken = [name for name, value in module.net.state_dict().items()
              if value.is_floating_point() and not torch.isfinite(value).all()]
    if broken:  # its every prediction would be NaN, read as "no coating" in every image
        listed = ", ".join(broken[:3]) + (f" and {len(broken) - 3} more" if len(broken) > 3 else "")
        raise CheckpointError(f"{path}: holds non-finite weights ({listed}): its training diverged (a lower "
                              "--model.lr, or finite class weights, may train it)")
    return module.float().eval()


class ExportNet(nn.Module):
    """The network of a module with its logit offsets (:meth:`SegmentationModule.predict_logits`), contiguous
    float32 in and out (no channels-last, no autocast)."""

    offsets: torch.Tensor

    def __init__(self, module: SegmentationModule) -> None:
        super().__init__()
        self.net = module.net.to(memory_format=torch.contiguous_format).float().eval()  # type: ignore[call-overload]
        self.register_buffer("offsets", module.logit_offsets().detach().float()[None, :, None, None].clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, classes, rows, columns) of float32 (N, 1, rows, columns) in [0, 1]."""
        return self.net(x) + self.offsets


def export_onnx(module: SegmentationModule, out: str | Path, sample_px: tuple[int, int] = (256, 256)) -> Path:
    """Write the module's network as ONNX (legacy exporter, one file, dynamic batch, rows and columns)."""
    import onnx

    out = Path(out)
    net = ExportNet(module)
    example = torch.rand(1, 1, *sample_px)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape arithmetic in the networks
        torch.onnx.export(
            net, (example,), str(out), dynamo=False, opset_version=ONNX_OPSET, input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "n", 2: "rows", 3: "columns"}, "logits": {0: "n", 2: "rows", 3: "columns"}})
    model = onnx.load(str(out))
    entry = model.metadata_props.add()
    entry.key, entry.value = CLASSES_KEY, json.dumps(module.class_names)
    onnx.save(model, str(out))
    return out


def export_torchscript(module: SegmentationModule, out: str | Path, sample_px: tuple[int, int] = (256, 256)) -> Path:
    """Write the module's network as a traced TorchScript module with the class names as an extra file."""
    out = Path(out)
    net = ExportNet(module)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, torch.rand(1, 1, *sample_px))
    torch.jit.save(traced, str(out), _extra_files={f"{CLASSES_KEY}.json": json.dumps(module.class_names)})
    return out


def export(checkpoint: str | Path, out: str | Path, sample_px: tuple[int, int] = (256, 256)) -> Path:
    """Export a checkpoint to ``out``; the kind follows the suffix (:data:`EXPORT_SUFFIXES`).

    Raises
    ------
    CheckpointError
        For an unusable checkpoint or an unknown output suffix.
    """
    out = Path(out)
    kind = EXPORT_SUFFIXES.get(out.suffix.lower())
    if kind is None:
        raise CheckpointError(f"{out}: unknown export kind {out.suffix!r}; accepted: "
                              f"{', '.join(EXPORT_SUFFIXES)}", argument="out")
    if out.is_dir():
        raise CheckpointError(f"{out} is a folder; give the model file to write, e.g. {out / 'model.onnx'}",
                              argument="out")
    if len(sample_px) != 2 or not all(isinstance(p, int) and 32 <= p <= 4096 and p % 32 == 0 for p in sample_px):
        raise CheckpointError(f"the example input must be 32 to 4096 pixels a side, in multiples of 32 (the "
                              f"networks halve it five times; got {tuple(sample_px)})", argument="sample_px")
    module = load_module(checkpoint)
    # written under a temporary name and renamed into place: ONNX is written twice (the export, then its class names)
    # and an interrupted write must not leave a model file that looks whole
    staging = out.with_name(f".{out.stem}.partial-{os.getpid()}{out.suffix}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        (export_onnx if kind == "onnx" else export_torchscript)(module, staging, sample_px)
        os.replace(staging, out)
    except OSError as exc:
        raise CheckpointError(f"{out}: cannot write the model there ({exc.strerror or exc})", argument="out") from exc
    finally:
        staging.unlink(missing_ok=True)
    return out


class CheckpointModel:
    """A checkpoint used directly for inference (the :class:`analysis.model.SegmentationModel` interface).

    Attributes
    ----------
    n_classes : classes of the model's output.
    class_names : their names.
    """

    def __init__(self, path: str | Path) -> None:
        self._module = load_module(path)
        self.n_classes = int(self._module.hp.num_classes)
        self.class_names = list(self._module.class_names)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Logits (N, classes, rows, columns) of a float32 batch (N, 1, rows, columns) in [0, 1]; any size."""
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
            return self._module.predict_logits(x).float().numpy()
