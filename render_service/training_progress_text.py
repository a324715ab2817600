"""A training's progress as short text, the same for ``semcoat train status`` and the dashboard:
``step 399 / 2000 · epoch 6 / 200 · 0:12:03 · 20 %`` and ``loss 0.412 · Dice 0.812 (best 0.830 at step 320)``."""

from __future__ import annotations

from render_service.training_schemas import TrainingProgress

SEPARATOR = " · "


def duration(seconds: float) -> str:
    """``H:MM:SS`` (days as hours: a week is ``168:00:00``)."""
    whole = int(round(max(0.0, seconds)))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _of(value: int | None, limit: int | None, word: str) -> str | None:
    if value is None:
        return None
    return f"{word} {value} / {limit}" if limit is not None else f"{word} {value}"


def where_text(progress: TrainingProgress) -> str:
    """Step, epoch and time against the run's limits, and how far it is (``""`` before anything is known)."""
    parts = [_of(progress.step, progress.max_steps, "step"), _of(progress.epoch, progress.max_epochs, "epoch")]
    if progress.elapsed_s is not None:
        parts.append(duration(progress.elapsed_s) + (f" / {duration(progress.max_time_s)}"
                                                     if progress.max_time_s is not None else ""))
    if progress.fraction is not None and (progress.step is not None or progress.limit == "max_time"):
        parts.append(f"{progress.fraction * 100:.0f} %")
    return SEPARATOR.join(p for p in parts if p)


def scores_text(progress: TrainingProgress) -> str:
    """The latest training loss and validation Dice, the best Dice and where (``""`` before any is logged)."""
    parts = []
    if progress.train_loss is not None:
        parts.append(f"loss {progress.train_loss:.4g}")
    if progress.val_dice_mean is not None:
        best = ""
        if progress.best_val_dice_mean is not None:
            at = f" at step {progress.best_step}" if progress.best_step is not None else ""
            best = f" (best {progress.best_val_dice_mean:.3f}{at})"
        parts.append(f"Dice {progress.val_dice_mean:.3f}{best}")
    return SEPARATOR.join(parts)


def classes_text(progress: TrainingProgress) -> str:
    """Per-class Dice of the latest validation: ``fe2al5 0.971, pore 0.812`` (``""`` before one)."""
    return ", ".join(f"{name} {value:.3f}" for name, value in progress.val_dice.items())


def one_line(progress: TrainingProgress | None) -> str:
    """Where the run is and its scores, on one line (``""`` when nothing is known)."""
    if progress is None:
        return ""
    return SEPARATOR.join(p for p in (where_text(progress), scores_text(progress)) if p)
