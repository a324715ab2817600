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
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semcoat.dataset import DatasetError, read_dataset
from semcoat.errors import InvalidArgument, SemcoatError
from semcoat.measurements import value_problems

# The measurement each calibratable class is judged by (names of :mod:`semcoat.measurements`).
MEASUREMENT_OF_CLASS = {"feal": "feal_thickness_um", "pore": "pore_fraction_pct",
                        "precipitate": "precipitate_fraction_pct"}
DEFAULT_OFFSETS = tuple(round(-2.0 + 0.25 * k, 2) for k in range(13))  # -2.0 .. +1.0
# Offsets whose error is within this share of the best count as equally good; the smallest of them is kept, so that
# a noisy grid does not move a model for nothing.
TOLERANCE = 0.02
# Each image takes about 0.4 s to predict and 0.1 s per offset and class to measure: these bound a run to hours.
MAX_IMAGES = 500
MAX_OFFSETS = 41


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
    at_edge: bool = False  # the chosen offset is the grid's lowest or highest: a wider grid may do better


def _labelled_images(datasets: Sequence[str | Path]) -> list[tuple[Path, float, dict[str, Any]]]:
    """(image path, pixel size in µm, truth) of every complete sample of the dataset folders (each folder once).

    Raises
    ------
    DatasetError
        For a folder that is no dataset, a meta file without a usable truth, or no image at all.
    """
    out, seen = [], set()
    for folder in datasets:
        if Path(folder).resolve() in seen:
            continue
        seen.add(Path(folder).resolve())
        ds = read_dataset(folder)
        for sid in ds.ids:
            truth = ds.meta(sid).get("truth")  # DatasetError for a broken meta file
            if not isinstance(truth, dict):
                raise DatasetError(f"{folder}: sample {sid} has no ground truth ('truth' in its meta file); "
                                   "calibration needs measured truth, as renders give it")
            problems = value_problems(truth)
            if problems:
                raise DatasetError(f"{folder}: sample {sid}'s truth is unusable: {problems[0]}")
            out.append((ds.image_path(sid), ds.info.pixel_size_um, truth))
    if not out:
        raise DatasetError(f"no labelled image in {', '.join(map(str, datasets))}")
    if len(out) > MAX_IMAGES:
        raise InvalidArgument(f"{len(out)} images: give at most {MAX_IMAGES} (each takes about 0.4 s to predict and "
                              "0.1 s per offset and class to measure)", argument="datasets")
    return out


def _measured(log_probabilities: np.ndarray, pixel_size_um: float, name: str) -> tuple[float, bool]:
    """The measurement ``name`` of the mask the (offset) log-probabilities give, as ``semcoat predict`` makes it
    (islands relabelled, measured, the layered check), and whether the mask passed that check; a mask that does not
    pass gives 0 (``semcoat predict`` would report no measurement for it)."""
    from analysis.layer_islands import remove_layer_islands
    from analysis.measure import MaskError, check_layered, measure

    mask = remove_layer_islands(log_probabilities)
    try:
        value = measure(mask, pixel_size_um).as_dict()[name]
        check_layered(mask)
    except MaskError:
        return 0.0, False
    return (float(value) if value is not None else 0.0), True


def choose_offset(mae_by_offset: dict[float, float], tolerance: float = TOLERANCE) -> float:
    """The smallest offset (in size) whose error is within ``tolerance`` (a share) of the least error; the offsets
    given are the candidates (leave out those that are disqualified)."""
    best = min(mae_by_offset.values())
    near = [off for off, mae in mae_by_offset.items() if mae <= best * (1 + tolerance) + 1e-12]
    return min(near, key=lambda off: (abs(off), off))


def calibrate(checkpoint: str | Path, datasets: Sequence[str | Path], class_names: Sequence[str] = ("feal",),
              offsets: Sequence[float] = DEFAULT_OFFSETS, flip_average: bool = False) -> list[ClassCalibration]:
    """Offsets for ``class_names`` (of :data:`MEASUREMENT_OF_CLASS`) that bring the checkpoint's measurements closest
    to the truth of the images in ``datasets``; each class is searched with the others at their current offsets.
    ``flip_average``: predict as ``semcoat predict --flip-average`` does (the offsets then suit masks made so).

    Images are read as ``semcoat predict`` reads them (:func:`analysis.predict.load_input`: the data bar cropped).
    An image whose truth for a class is unknown (None: e.g. the frame does not show the FeAl's end) does not count for
    that class. An offset under which more masks fail the layered check than at 0 is not chosen.

    Raises
    ------
    InvalidArgument
        For a class that cannot be calibrated or that the model lacks, or an empty offset grid.
    DatasetError, training.export.CheckpointError
        For unusable folders or checkpoints.
    """
    from analysis.predict import class_probabilities, load_input
    from training.export import CheckpointModel

    class_names = list(dict.fromkeys(class_names))  # each class once: offsets of a repeated one would add up
    unknown = [c for c in class_names if c not in MEASUREMENT_OF_CLASS]
    if unknown or not class_names:
        raise InvalidArgument(f"cannot calibrate {unknown or 'no class'}; accepted: {', '.join(MEASUREMENT_OF_CLASS)}",
                              argument="classes")
    if not offsets or len(offsets) > MAX_OFFSETS:
        raise InvalidArgument(f"give 1 to {MAX_OFFSETS} offsets to try (got {len(offsets)})", argument="offsets")
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
    for name in class_names:
        if all(truth.get(MEASUREMENT_OF_CLASS[name]) is None for _, _, truth in images):
            raise InvalidArgument(f"no image's truth knows {MEASUREMENT_OF_CLASS[name]}, so {name} cannot be "
                                  "calibrated on these folders", argument="classes")
    errors: dict[str, dict[float, list[float]]] = {c: {o: [] for o in grid} for c in class_names}  # per image
    failed: dict[str, dict[float, int]] = {c: dict.fromkeys(grid, 0) for c in class_names}  # layered check
    for path, pixel_size_um, truth in images:
        try:
            image = load_input(path, pixel_size_um).image
        except SemcoatError as exc:
            raise DatasetError(f"{path}: cannot be read for calibration ({exc})") from exc
        probabilities = class_probabilities(model, image, flip_average=flip_average)
        log_p = np.log(np.maximum(probabilities, 1e-12, out=probabilities), out=probabilities)
        for name in class_names:
            cid, measurement = model.class_names.index(name), MEASUREMENT_OF_CLASS[name]
            original = log_p[cid].copy()
            for offset in grid:
                log_p[cid] = original + offset
                value, layered = _measured(log_p, pixel_size_um, measurement)
                failed[name][offset] += not layered
                if truth.get(measurement) is not None:
                    errors[name][offset].append(abs(value - float(truth[measurement])))
            log_p[cid] = original
    out = []
    for name in class_names:
        mae = {o: float(np.mean(e)) for o, e in errors[name].items()}
        allowed = {o: m for o, m in mae.items() if failed[name][o] <= failed[name][0.0]}
        chosen = choose_offset(allowed)
        at_edge = chosen != 0.0 and chosen in (grid[0], grid[-1])
        out.append(ClassCalibration(name, MEASUREMENT_OF_CLASS[name], chosen, mae[0.0], mae[chosen],
                                    len(errors[name][0.0]), mae, at_edge))
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
    folder = out.absolute().parent
    while not folder.exists():  # the first existing folder above: the write makes the rest
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidArgument(f"{out}: cannot write there ({folder} is no folder this user may write to)",
                              argument="out")


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
    state = torch.load(src, map_location="cpu", weights_only=True)
    hparams = state.setdefault("hyper_parameters", {})
    offsets = dict(hparams.get("class_offsets") or {})
    for item in found:
        offsets[item.class_name] = round(float(offsets.get(item.class_name, 0.0)) + item.offset, 4)
    hparams["class_offsets"] = offsets
    tmp = dst.with_name(f".{dst.name}.writing")
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, tmp)
        tmp.replace(dst)
    except (OSError, RuntimeError) as exc:  # torch reports a failed write as a RuntimeError
        tmp.unlink(missing_ok=True)
        raise InvalidArgument(f"{dst}: cannot write the calibrated checkpoint ({exc})", argument="out") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dst

