"""Loading a trained segmentation model for inference, behind one small interface.

A model maps a float32 batch (N, 1, rows, columns) of grey images scaled to [0, 1] to class logits
(N, 6, rows, columns), classes in the order of :mod:`semcoat.classes`. Two file kinds load, and one name:

- ONNX (``.onnx``), run by onnxruntime (CUDA when available, else CPU);
- TorchScript (``.pt``, ``.ts``, ``.torchscript``), loaded with ``torch.jit.load``;
- ``classical`` (no file): the non-learned baseline of :mod:`analysis.baseline`, which segments whole images
  (:class:`WholeImageModel`) rather than tiles.

Lightning checkpoints (``.ckpt``) hold weights without the network's code; they are refused with a message saying
how to export one, until the training package provides that export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from semcoat.classes import NUM_CLASSES

ONNX_SUFFIXES = (".onnx",)
TORCHSCRIPT_SUFFIXES = (".pt", ".ts", ".torchscript")


class ModelLoadError(ValueError):
    """A model file that cannot be used (with the file, the reason and the accepted kinds)."""


class SegmentationModel(Protocol):
    """What inference needs from a model."""

    n_classes: int

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Logits (N, n_classes, rows, columns) of a float32 batch (N, 1, rows, columns) in [0, 1]."""
        ...


@runtime_checkable
class WholeImageModel(Protocol):
    """A model that must see the whole micrograph (it reasons about the top and bottom edges): no tiling."""

    n_classes: int

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...

    def segment(self, image: np.ndarray) -> np.ndarray:
        """Class-id mask (uint8, same shape) of a whole grey image in [0, 1]."""
        ...


class OnnxModel:
    """An ONNX segmentation model run by onnxruntime."""

    def __init__(self, path: Path, n_classes: int = NUM_CLASSES) -> None:
        import onnxruntime as ort
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

        # onnxruntime's errors derive from Exception directly; these are the ones a bad model file raises.
        load_errors = (
            ort_state.Fail,
            ort_state.InvalidArgument,
            ort_state.InvalidProtobuf,
            ort_state.NoSuchFile,
            ort_state.InvalidGraph,
            ort_state.NotImplemented,
            ort_state.RuntimeException,
        )
        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        try:
            self._session = ort.InferenceSession(str(path), providers=providers)
        except load_errors as exc:
            raise ModelLoadError(f"{path}: onnxruntime cannot load the model ({exc})") from exc
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ModelLoadError(f"{path}: expected one input (N, 1, H, W); the model has {len(inputs)}")
        self._input = inputs[0].name
        self.n_classes = n_classes

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Logits of a float32 batch (N, 1, rows, columns)."""
        return self._session.run(None, {self._input: batch.astype(np.float32, copy=False)})[0]


class TorchScriptModel:
    """A TorchScript segmentation model run by torch (CUDA when available, else CPU)."""

    def __init__(self, path: Path, n_classes: int = NUM_CLASSES) -> None:
        import torch

        self._torch = torch
        self._device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self._module = torch.jit.load(str(path), map_location=self._device).eval()
        except (RuntimeError, ValueError) as exc:
            raise ModelLoadError(f"{path}: not a TorchScript module ({exc})") from exc
        self.n_classes = n_classes

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Logits of a float32 batch (N, 1, rows, columns)."""
        with self._torch.inference_mode():
            x = self._torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self._device)
            return self._module(x).float().cpu().numpy()


def load_model(path: str | Path, n_classes: int = NUM_CLASSES) -> SegmentationModel:
    """Load an ONNX or TorchScript segmentation model, or the classical baseline for the name ``classical``.

    Raises
    ------
    ModelLoadError
        For missing files, Lightning checkpoints and unknown file kinds, saying what is accepted.
    """
    from analysis.baseline import CLASSICAL_MODEL_NAME, ClassicalSegmenter

    if str(path) == CLASSICAL_MODEL_NAME:
        return ClassicalSegmenter()
    path = Path(path)
    accepted = ", ".join((*ONNX_SUFFIXES, *TORCHSCRIPT_SUFFIXES)) + f" files, or {CLASSICAL_MODEL_NAME!r}"
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such model file (accepted: {accepted})")
    suffix = path.suffix.lower()
    if suffix in ONNX_SUFFIXES:
        return OnnxModel(path, n_classes)
    if suffix in TORCHSCRIPT_SUFFIXES:
        return TorchScriptModel(path, n_classes)
    if suffix == ".ckpt":
        raise ModelLoadError(
            f"{path}: Lightning checkpoints hold weights without the network; loading them needs the training "
            f"package, which does not provide an export yet. Export the model to ONNX (torch.onnx.export, input "
            f"float32 N x 1 x H x W in [0, 1], output logits N x {n_classes} x H x W) or TorchScript and pass that "
            f"file ({accepted})"
        )
    raise ModelLoadError(f"{path}: unknown model file kind {suffix!r}; accepted: {accepted}")
