"""Scores of models against one ground truth, for reports that compare them: per-measurement MAE and R² (yes/no
measurements: accuracy), per-class Dice of predicted masks against true masks, and which model does better at what.

Pure numbers over tables and masks; :mod:`analysis.report_compare` shows them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis import files, plots
from analysis.report_data import Table
from semcoat.classes import BACKGROUND, CLASSES
from semcoat.measurements import NUMERIC_NAMES, YES_NO_NAMES

# Two scores closer than this (MAE relative to the larger one; Dice absolute) are a tie: neither model is "better".
MAE_TIE_RELATIVE = 0.02
DICE_TIE = 0.002


@dataclass(frozen=True)
class MeasurementScore:
    """One model's agreement with the truth on one measurement, over the images where both have a value.

    For numbers ``mae`` (in the measurement's unit) and ``r2`` (NaN when undefined, see
    :func:`analysis.plots.regression_metrics`); for yes/no measurements ``accuracy`` (0-1), ``missed`` (true yes
    predicted no) and ``false`` (predicted yes where the truth says no).
    """

    name: str
    n: int
    mae: float = math.nan
    r2: float = math.nan
    accuracy: float | None = None
    missed: int = 0
    false: int = 0


def value_pairs(results: Table, truth: Table, name: str) -> tuple[list[Any], list[Any]]:
    """(predicted, true) values of ``name`` for the images both tables have a value for, in the results' order."""
    both = [(results[k].get(name), truth[k].get(name)) for k in results if k in truth]
    kept = [(p, t) for p, t in both if p is not None and t is not None]
    return [p for p, _ in kept], [t for _, t in kept]


def measurement_scores(results: Table, truth: Table) -> dict[str, MeasurementScore]:
    """Scores of every measurement with at least one (predicted, true) pair, numbers first, then yes/no."""
    scores: dict[str, MeasurementScore] = {}
    for name in NUMERIC_NAMES:
        predicted, true = value_pairs(results, truth, name)
        if predicted:
            mae, r2 = plots.regression_metrics([float(v) for v in predicted], [float(v) for v in true])
            scores[name] = MeasurementScore(name, len(predicted), mae=mae, r2=r2)
    for name in YES_NO_NAMES:
        predicted, true = value_pairs(results, truth, name)
        if predicted:
            agree = sum(p == t for p, t in zip(predicted, true, strict=True)) / len(predicted)
            missed = sum(bool(t) and not p for p, t in zip(predicted, true, strict=True))
            false = sum(bool(p) and not t for p, t in zip(predicted, true, strict=True))
            scores[name] = MeasurementScore(name, len(predicted), accuracy=agree, missed=missed, false=false)
    return scores


def image_dice(predicted: np.ndarray, truth: np.ndarray, class_id: int) -> float | None:
    """Dice 2|P∩T| / (|P| + |T|) of one class in one image; None when the true mask does not hold the class (the
    benchmarks' convention: a class is scored on the images that have it, its false alarms elsewhere are not)."""
    t = truth == class_id
    if not t.any():
        return None
    p = predicted == class_id
    return 2.0 * float(np.count_nonzero(p & t)) / float(np.count_nonzero(p) + np.count_nonzero(t))


def aligned_truth(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray | None:
    """The part of the true mask the predicted one covers: all of it, or its top rows when prediction cropped a data
    bar off the bottom; None when the two cannot be the same image (other width, or more predicted rows)."""
    if predicted.shape[1] != truth.shape[1] or predicted.shape[0] > truth.shape[0]:
        return None
    return truth[: predicted.shape[0]]


@dataclass(frozen=True)
class DiceScore:
    """Mean per-image Dice of one class over ``n_images`` images whose true mask holds it."""

    mean: float
    n_images: int


@dataclass(frozen=True)
class SegmentationScores:
    """Per-class Dice by class id (classes no true mask holds are absent), and the images that could not be scored
    with the reason."""

    dice: dict[int, DiceScore]
    skipped: dict[str, str]


def segmentation_scores(predicted_masks: Mapping[str, Path], true_masks: Mapping[str, Path],
                        images: Sequence[str]) -> SegmentationScores:
    """Per-class Dice of the predicted masks of ``images`` against their true masks (files of class ids).

    Background is left out (it is the resin around the specimen). An image without a predicted mask (it failed
    before one was made), without a true mask, or whose masks differ in size is skipped and named with the reason.
    """
    per_class: dict[int, list[float]] = {}
    skipped: dict[str, str] = {}
    for name in images:
        if name not in predicted_masks:
            skipped[name] = "no predicted mask"
            continue
        if name not in true_masks:
            skipped[name] = "no true mask"
            continue
        predicted = files.read_mask(predicted_masks[name])
        truth = aligned_truth(predicted, files.read_mask(true_masks[name]))
        if truth is None:
            skipped[name] = "predicted and true masks differ in size"
            continue
        for c in CLASSES:
            if c.id == BACKGROUND:
                continue
            d = image_dice(predicted, truth, c.id)
            if d is not None:
                per_class.setdefault(c.id, []).append(d)
    dice = {cid: DiceScore(float(np.mean(v)), len(v)) for cid, v in sorted(per_class.items())}
    return SegmentationScores(dice, skipped)


def better_model(values: Mapping[str, float], lower_is_better: bool, tie: float, relative: bool) -> str | None:
    """The model whose score is best by more than ``tie`` (relative to the larger score when ``relative``), or None
    for fewer than two finite scores or a tie."""
    finite = {k: v for k, v in values.items() if math.isfinite(v)}
    if len(finite) < 2:
        return None
    ranked = sorted(finite.items(), key=lambda kv: kv[1], reverse=not lower_is_better)
    (best, first), (_, second) = ranked[0], ranked[1]
    margin = abs(second - first)
    limit = tie * max(abs(first), abs(second)) if relative else tie
    return best if margin > limit else None


def who_is_better(measurements: Mapping[str, Mapping[str, MeasurementScore]],
                  dice: Mapping[str, Mapping[int, DiceScore]]) -> dict[str, dict[str, list[str]]]:
    """For each model: the measurements it gets closer to the truth (lower MAE, higher accuracy) and the classes it
    segments better (higher Dice) than every other model, beyond a tie ({model: {"measurements": [names],
    "classes": [class names]}}). ``measurements`` and ``dice`` are by model."""
    wins: dict[str, dict[str, list[str]]] = {m: {"measurements": [], "classes": []} for m in measurements}
    names = [n for n in (*NUMERIC_NAMES, *YES_NO_NAMES) if any(n in s for s in measurements.values())]
    for name in names:
        if name in YES_NO_NAMES:
            acc = {m: s[name].accuracy for m, s in measurements.items() if name in s}
            winner = better_model({m: float(a) for m, a in acc.items() if a is not None}, False, 1e-9, False)
        else:
            mae = {m: s[name].mae for m, s in measurements.items() if name in s}
            winner = better_model(mae, True, MAE_TIE_RELATIVE, True)
        if winner is not None:
            wins[winner]["measurements"].append(name)
    for c in CLASSES:
        scored = {m: d[c.id].mean for m, d in dice.items() if c.id in d}
        winner = better_model(scored, False, DICE_TIE, False)
        if winner is not None:
            wins.setdefault(winner, {"measurements": [], "classes": []})["classes"].append(c.name)
    return wins
