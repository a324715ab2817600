"""Loading a trained segmentation model for inference, behind one small interface.

A model maps a float32 batch (N, 1, rows, columns) of grey images scaled to [0, 1] to class logits
(N, 6, rows, columns), classes in the order of :mod:`semcoat.classes`. Two file kinds load, and one name:

- ONNX (``.onnx``), run by onnxruntime (CUDA when available, else CPU);
- TorchScript (``.pt``, ``.ts``, ``.torchscript``), loaded with ``torch.jit.load``;
- Lightning checkpoints (``.ckpt``) of ``semcoat train fit``, loaded through the training package's public
  :class:`training.export.CheckpointModel` (needs the ``train`` extra; ``semcoat train export`` makes ONNX from one);
- ``classical`` (no file): the non-learned baseline of :mod:`analysis.baseline`, which segments whole images
  (:class:`WholeImageModel`) rather than tiles.

A trained model's class count is its own (the output channels an ONNX file declares, a checkpoint's
hyperparameters): a model trained before a class was appended to the table still loads, predicting ids below it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from semcoat.classes import NUM_CLASSES
from semcoat.errors import SemcoatError

ONNX_SUFFIXES = (".onnx",)
TORCHSCRIPT_SUFFIXES = (".pt", ".ts", ".torchscript")
CHECKPOINT_SUFFIXES = (".ckpt",)


class ModelLoadError(SemcoatError):
    """A model file that cannot be used (with the file, the reason and the accepted kinds)."""


class ModelRunError(SemcoatError):
    """A model that cannot segment an input (with the model, the input's shape and what the model expects, or why
    the input cannot be segmented). Prediction records it as a failed image and goes on."""


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


def _fixed_dim(dim: object) -> int | None:
    """An ONNX input dimension: an int when fixed, None when symbolic ('n', 'height') or unknown."""
    return dim if isinstance(dim, int) and dim > 0 else None


class OnnxModel:
    """An ONNX segmentation model run by onnxruntime.

    The input's declared shape is read from the model: a fixed batch size (models exported without a dynamic batch
    axis) makes every call run in chunks of exactly that many images (the last one padded), and fixed rows and
    columns are exposed as :attr:`input_size` so that tiling uses tiles of that size.

    Attributes
    ----------
    batch_size : the model's fixed batch size, None when it accepts any.
    input_size : the model's fixed (rows, columns), None when either is free.
    """

    def __init__(self, path: Path, n_classes: int = NUM_CLASSES) -> None:
        import onnxruntime as ort
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

        # onnxruntime's errors derive from Exception directly, one class per status code (Fail, InvalidGraph, EPFail
        # for a device failure, ...): every one of them is the model's or the runtime's problem, never our bug.
        load_errors = tuple(
            c for c in vars(ort_state).values() if isinstance(c, type) and issubclass(c, Exception)
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
        self._path = path
        self._input = inputs[0].name
        self._shape = list(inputs[0].shape)
        if len(self._shape) != 4:
            raise ModelLoadError(f"{path}: expected an input of shape (N, 1, H, W); the model's is {self._shape}")
        channels = _fixed_dim(self._shape[1])
        if channels not in (None, 1):
            raise ModelLoadError(
                f"{path}: the model takes {channels} input channels; micrographs are grey: (N, 1, H, W) is accepted"
            )
        self.batch_size = _fixed_dim(self._shape[0])
        rows, columns = _fixed_dim(self._shape[2]), _fixed_dim(self._shape[3])
        self.input_size = (rows, columns) if rows is not None and columns is not None else None
        self._run_errors = load_errors
        outputs = self._session.get_outputs()
        declared = _fixed_dim(list(outputs[0].shape)[1]) if outputs and len(outputs[0].shape) == 4 else None
        self.n_classes = declared if declared is not None else n_classes

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Logits of a float32 batch (N, 1, rows, columns), in chunks of the model's fixed batch size if it has one.

        Raises
        ------
        ModelRunError
            When onnxruntime refuses the input, with the model's declared input shape.
        """
        batch = batch.astype(np.float32, copy=False)
        if self.batch_size is None:
            return self._run(batch)
        size, n = self.batch_size, batch.shape[0]
        outputs = []
        for k in range(0, n, size):
            chunk = batch[k : k + size]
            if chunk.shape[0] < size:
                fill = np.zeros((size - chunk.shape[0], *chunk.shape[1:]), np.float32)
                chunk = np.concatenate([chunk, fill])
            outputs.append(self._run(chunk)[: min(size, n - k)])
        return np.concatenate(outputs)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        try:
            return np.asarray(self._session.run(None, {self._input: batch})[0])
        except self._run_errors as exc:
            reason = " ".join(str(exc).split())[:400] or type(exc).__name__
            raise ModelRunError(
                f"{self._path}: the model failed on an input of shape {tuple(batch.shape)}; it declares input "
                f"{self._input!r} of shape {self._shape} (N, 1, H, W; names are free sizes) ({reason})"
            ) from exc


def _class_count(names_json: str | bytes) -> int | None:
    """Number of class names in a JSON list, None when absent or not a list of names."""
    import json

    try:
        names = json.loads(names_json) if names_json else None
    except (ValueError, UnicodeDecodeError):
        return None
    return len(names) if isinstance(names, list) and names and all(isinstance(n, str) for n in names) else None


class TorchScriptModel:
    """A TorchScript segmentation model run by torch (CUDA when available, else CPU)."""

    def __init__(self, path: Path, n_classes: int = NUM_CLASSES) -> None:
        import torch

        self._torch = torch
        self._device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        extra = {"semcoat_classes.json": ""}  # written by `semcoat train export`: the model's class names
        try:
            self._module = torch.jit.load(str(path), map_location=self._device, _extra_files=extra).eval()
        except (RuntimeError, ValueError) as exc:
            raise ModelLoadError(f"{path}: not a TorchScript module ({exc})") from exc
        self._path = path
        self.n_classes = _class_count(extra["semcoat_classes.json"]) or n_classes

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Logits of a float32 batch (N, 1, rows, columns).

        Raises
        ------
        ModelRunError
            When the module fails on the input.
        """
        with self._torch.inference_mode():
            x = self._torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self._device)
            try:
                out = self._module(x)
            except RuntimeError as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ModelRunError(
                    f"{self._path}: the model failed on an input of shape {tuple(batch.shape)} ({reason})"
                ) from exc
            return out.float().cpu().numpy()


def load_model(path: str | Path, n_classes: int = NUM_CLASSES) -> SegmentationModel:
    """Load an ONNX or TorchScript segmentation model, a Lightning checkpoint of ``semcoat train fit``, or the
    classical baseline for the name ``classical``.

    Raises
    ------
    ModelLoadError
        For missing files, unusable checkpoints and unknown file kinds, saying what is accepted.
    """
    from analysis.baseline import CLASSICAL_MODEL_NAME, ClassicalSegmenter

    if str(path) == CLASSICAL_MODEL_NAME:
        return ClassicalSegmenter()
    path = Path(path)
    kinds = (*ONNX_SUFFIXES, *TORCHSCRIPT_SUFFIXES, *CHECKPOINT_SUFFIXES)
    accepted = ", ".join(kinds) + f" files, or {CLASSICAL_MODEL_NAME!r}"
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such model file (accepted: {accepted})")
    suffix = path.suffix.lower()
    model: SegmentationModel
    if suffix in ONNX_SUFFIXES:
        model = OnnxModel(path, n_classes)
    elif suffix in TORCHSCRIPT_SUFFIXES:
        model = TorchScriptModel(path, n_classes)
    elif suffix in CHECKPOINT_SUFFIXES:
        model = _load_checkpoint(path, accepted)
    else:
        raise ModelLoadError(f"{path}: unknown model file kind {suffix!r}; accepted: {accepted}")
    if not 2 <= model.n_classes <= n_classes:  # its masks could not be drawn or measured with the class table
        raise ModelLoadError(f"{path}: the model outputs {model.n_classes} class(es); a segmentation model of 2 to "
                             f"{n_classes} classes is accepted (the class table's first ones, in its order)")
    return model


def _load_checkpoint(path: Path, accepted: str) -> SegmentationModel:
    """A Lightning checkpoint as a model, through the training package (imported only here: torch, Lightning)."""
    advice = ("give a checkpoint written by `semcoat train fit`, or export one to ONNX with `semcoat train export "
              f"CKPT --out model.onnx` and pass that file ({accepted})")
    try:
        from training.export import CheckpointError, CheckpointModel
    except ImportError as exc:
        raise ModelLoadError(
            f"{path}: Lightning checkpoints load through the training package, which cannot be imported here "
            f"({exc}); install the `train` extra, or {advice}") from exc
    try:
        return CheckpointModel(path)
    except CheckpointError as exc:
        raise ModelLoadError(f"Lightning checkpoints of `semcoat train fit` load directly, this file is not one "
                             f"({exc}); {advice}") from exc
