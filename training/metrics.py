"""Per-class Dice and IoU from a pixel confusion matrix, with stage-prefixed names (``val/dice_pore``).

The confusion matrix (rows: true class, columns: predicted class, pixel counts over a whole stage) is accumulated by
torchmetrics (synchronised across DDP processes); Dice and IoU follow from it exactly:
``Dice_c = 2 TP / (2 TP + FP + FN)``, ``IoU_c = TP / (TP + FP + FN)``. A class neither present nor predicted has no
Dice (NaN, not logged); the mean Dice is over the classes present in the targets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def dice_iou(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Dice, IoU) per class from a confusion matrix (true x predicted counts); NaN where a class is neither
    present nor predicted."""
    cm = np.asarray(confusion, np.float64)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
        iou = np.where(tp + fp + fn > 0, tp / (tp + fp + fn), np.nan)
    return dice, iou


def stage_metrics(stage: str, confusion: np.ndarray, class_names: Sequence[str]) -> dict[str, float]:
    """``{stage}/dice_{name}``, ``{stage}/iou_{name}`` per class, ``{stage}/dice_mean``, ``{stage}/iou_mean`` (over
    classes present in the targets) and ``{stage}/pixel_accuracy``."""
    cm = np.asarray(confusion, np.float64)
    dice, iou = dice_iou(cm)
    present = cm.sum(axis=1) > 0
    out: dict[str, float] = {}
    for k, name in enumerate(class_names):
        if not np.isnan(dice[k]):
            out[f"{stage}/dice_{name}"] = float(dice[k])
            out[f"{stage}/iou_{name}"] = float(iou[k])
    out[f"{stage}/dice_mean"] = float(dice[present].mean()) if present.any() else 0.0
    out[f"{stage}/iou_mean"] = float(iou[present].mean()) if present.any() else 0.0
    out[f"{stage}/pixel_accuracy"] = float(np.trace(cm) / max(cm.sum(), 1.0))
    return out


def confusion_csv(confusion: np.ndarray, class_names: Sequence[str]) -> str:
    """The confusion matrix as CSV text: a header of predicted class names, one row per true class."""
    lines = ["true\\predicted," + ",".join(class_names)]
    for name, row in zip(class_names, np.asarray(confusion, np.int64), strict=True):
        lines.append(name + "," + ",".join(str(int(v)) for v in row))
    return "\n".join(lines) + "\n"
