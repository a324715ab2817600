"""Per-class logit offsets chosen so that a model's measurements match the ground truth of labelled images.

A segmentation checkpoint is chosen on Dice, but users read measurements off its masks, and a class the network
over-reads by a pixel or two costs little Dice and much of a thin layer's thickness: the adopted U-Net calls FeAl where
the truth has little or none, so its FeAl thickness is off by 0.30 µm on held-out renders and its FeAl presence wrong
on 6 of 36. :func:`calibrate` predicts every image once, tries each offset of a grid on each asked class's logit in
turn, measures the masks as ``semcoat predict`` would (tiled, layer islands relabelled, :func:`analysis.measure.
measure`) and keeps, per class, the offset whose measurement is closest to the truth (mean absolute error over the
images), preferring the smallest offset among those within :data:`TOLERANCE` of the best. The offsets are saved in a
new checkpoint (hyperparameter ``class_offsets``), so validation, test, predict and exported models all use them.

Calibrate on images the model was not trained on and that the final figures do not use (a calibration split).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semcoat.dataset import DatasetError, read_dataset
from semcoat.errors import InvalidArgument

# The measurement each calibratable class is judged by (names of :mod:`semcoat.measurements`).
MEASUREMENT_OF_CLASS = {"feal": "feal_thickness_um", "pore": "pore_fraction_pct",
                        "precipitate": "precipitate_fraction_pct"}
DEFAULT_OFFSETS = tuple(round(-2.0 + 0.25 * k, 2) for k in range(13))  # -2.0 .. +1.0
# Offsets whose error is within this share of the best count as equally good; the smallest of them is kept, so that
# a noisy grid does not move a model for nothing.
TOLERANCE = 0.02
MAX_IMAGES = 500


@dataclass(frozen=True)
class ClassCalibration:
    """The search's outcome for one class: the offset added, and its measurement's error before and after."""

    class_name: str
    measurement: str
    offset: float
    mae_before: float
    mae_after: float
    images: int
    mae_by_offset: dict[float, float]


def _labelled_images(datasets: Sequence[str | Path]) -> list[tuple[Path, float, dict[str, Any]]]:
    """(image path, pixel size in µm, truth) of every complete sample of the dataset folders."""
    out = []
    for folder in datasets:
        ds = read_dataset(folder)
        for sid in ds.ids:
            try:
                truth = ds.meta(sid).get("truth")
            except (OSError, ValueError, RecursionError) as exc:
                raise DatasetError(f"{folder}: the meta file of sample {sid} is unreadable ({exc})") from exc
            if not isinstance(truth, dict):
                raise DatasetError(f"{folder}: sample {sid} has no ground truth ('truth' in its meta file); "
                                   "calibration needs measured truth, as renders give it")
            out.append((ds.image_path(sid), ds.info.pixel_size_um, truth))
    if not out:
        raise DatasetError(f"no labelled image in {', '.join(map(str, datasets))}")
    if len(out) > MAX_IMAGES:
        raise InvalidArgument(f"{len(out)} images: calibration keeps every image's probabilities in memory; give at "
                              f"most {MAX_IMAGES}", argument="datasets")
    return out


def _measured(log_probabilities: np.ndarray, pixel_size_um: float, name: str) -> float:
    """The measurement ``name`` of the mask the (offset) log-probabilities give, as ``semcoat predict`` makes it;
    0 where no coating is found (the truth then counts as the whole error)."""
    from analysis.layer_islands import remove_layer_islands
    from analysis.measure import NoCoatingError, measure

    try:
        value = measure(remove_layer_islands(log_probabilities), pixel_size_um).as_dict()[name]
    except NoCoatingError:
        return 0.0
    return float(value) if value is not None else 0.0


def _error(measured: float, truth: Any) -> float:
    return abs(measured - (float(truth) if truth is not None else 0.0))


def choose_offset(mae_by_offset: dict[float, float], tolerance: float = TOLERANCE) -> float:
    """The smallest offset (in size) whose error is within ``tolerance`` (a share) of the least error."""
    best = min(mae_by_offset.values())
    near = [off for off, mae in mae_by_offset.items() if mae <= best * (1 + tolerance) + 1e-12]
    return min(near, key=lambda off: (abs(off), off))


def calibrate(checkpoint: str | Path, datasets: Sequence[str | Path], class_names: Sequence[str] = ("feal",),
              offsets: Sequence[float] = DEFAULT_OFFSETS) -> list[ClassCalibration]:
    """Offsets for ``class_names`` (of :data:`MEASUREMENT_OF_CLASS`) that bring the checkpoint's measurements closest
    to the truth of the images in ``datasets``; each class is searched with the others at their current offsets.

    Raises
    ------
    InvalidArgument
        For a class that cannot be calibrated or that the model lacks, or an empty offset grid.
    DatasetError, training.export.CheckpointError
        For unusable folders or checkpoints.
    """
    from analysis.files import read_grey_image
    from analysis.predict import class_probabilities
    from training.export import CheckpointModel

    unknown = [c for c in class_names if c not in MEASUREMENT_OF_CLASS]
    if unknown or not class_names:
        raise InvalidArgument(f"cannot calibrate {unknown or 'no class'}; accepted: {', '.join(MEASUREMENT_OF_CLASS)}",
                              argument="classes")
    grid = sorted({float(o) for o in offsets} | {0.0})
    if not all(math.isfinite(o) and abs(o) <= 10 for o in grid):
        raise InvalidArgument(f"offsets must be finite logits within [-10, 10] (got {list(offsets)})",
                              argument="offsets")
    model = CheckpointModel(checkpoint)
    missing = [c for c in class_names if c not in model.class_names]
    if missing:
        raise InvalidArgument(f"the model has no class {missing}; its classes: {', '.join(model.class_names)}",
                              argument="classes")
    images = _labelled_images(datasets)
    errors: dict[str, dict[float, list[float]]] = {c: {o: [] for o in grid} for c in class_names}  # per image
    for path, pixel_size_um, truth in images:
        probabilities = class_probabilities(model, read_grey_image(path))
        log_p = np.log(np.maximum(probabilities, 1e-12, out=probabilities), out=probabilities)
        for name in class_names:
            cid, measurement = model.class_names.index(name), MEASUREMENT_OF_CLASS[name]
            original = log_p[cid].copy()
            for offset in grid:
                log_p[cid] = original + offset
                measured = _measured(log_p, pixel_size_um, measurement)
                errors[name][offset].append(_error(measured, truth.get(measurement)))
            log_p[cid] = original
    out = []
    for name in class_names:
        mae = {o: float(np.mean(e)) for o, e in errors[name].items()}
        chosen = choose_offset(mae)
        out.append(ClassCalibration(name, MEASUREMENT_OF_CLASS[name], chosen, mae[0.0], mae[chosen], len(images), mae))
    return out


def check_output(out: Path) -> None:
    """Refuse an output that exists (the checkpoint itself among them: a calibration never overwrites) or is no
    ``.ckpt`` file name.

    Raises
    ------
    InvalidArgument
        Naming the path and what is accepted.
    """
    if out.exists():
        raise InvalidArgument(f"{out} exists already; give a new file for the calibrated checkpoint", argument="out")
    if out.suffix != ".ckpt":
        raise InvalidArgument(f"{out}: the calibrated checkpoint's name must end in .ckpt", argument="out")


def write_calibrated(checkpoint: str | Path, out: str | Path, found: Sequence[ClassCalibration]) -> Path:
    """A copy of ``checkpoint`` at ``out`` with the offsets added to its ``class_offsets`` hyperparameter.

    Raises
    ------
    InvalidArgument
        For an ``out`` :func:`check_output` refuses.
    """
    import torch

    src, dst = Path(checkpoint), Path(out)
    check_output(dst)
    state = torch.load(src, map_location="cpu", weights_only=False)
    hparams = state.setdefault("hyper_parameters", {})
    offsets = dict(hparams.get("class_offsets") or {})
    for item in found:
        offsets[item.class_name] = round(float(offsets.get(item.class_name, 0.0)) + item.offset, 4)
    hparams["class_offsets"] = offsets
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.writing")
    try:
        torch.save(state, tmp)
        tmp.replace(dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dst

