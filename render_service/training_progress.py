"""A running training's progress, from its Lightning CSV log (``metrics.csv``), as a small record the service stores.

Pure functions: the worker reads a *window* of the log (its header line and its last bytes, never more, however
long the log grows; :mod:`render_service.training_metrics` reads it from disk or the cluster) and folds it into the
training's record (``trainings.progress_json``). Lightning's CSV logger writes one row per logging call, a column per
metric, blank cells elsewhere (``epoch, lr-AdamW, step, train/loss, val/dice_<class>, val/dice_mean, ...``), appends
rows as the fit runs and rewrites the whole file with a longer header when a new metric appears; a reader can
therefore meet a partial last line or rows of another width than the header it read, and skips them.

The record holds the limits of the run (``trainer.max_steps``, ``max_epochs``, ``max_time`` of the config, set once
at submit), the latest step and epoch, the latest training loss, the latest validation (mean and per-class Dice) and
the best mean Dice seen so far, and, under ``source``, what the worker needs to throttle its reads (when it last
looked, the size and modification time it saw). Its size is bounded (:data:`MAX_CLASSES` classes of at most
:data:`MAX_NAME_CHARS` characters, one warning sentence).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

MONITOR = "val/dice_mean"
DICE_PREFIX = "val/dice_"
LOSS_COLUMNS = ("train/loss", "train/loss_step", "train_loss", "loss")
MAX_CLASSES = 32
MAX_NAME_CHARS = 64
# Lightning's default when neither max_epochs, max_steps nor max_time is given
LIGHTNING_DEFAULT_MAX_EPOCHS = 1000
_DURATION = re.compile(r"(\d+):(\d\d):(\d\d):(\d\d)")


@dataclass(frozen=True)
class Limits:
    """When the fit stops (whichever comes first); None: no such limit."""

    max_steps: int | None = None
    max_epochs: int | None = None
    max_time_s: float | None = None


def max_time_seconds(value: Any) -> float | None:
    """Lightning's ``trainer.max_time`` in seconds: ``"DD:HH:MM:SS"`` or ``{days, hours, minutes, seconds}``; None
    for anything else (the config check refuses what Lightning would)."""
    if isinstance(value, str) and (match := _DURATION.fullmatch(value.strip())):
        days, hours, minutes, seconds = (int(g) for g in match.groups())
        return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)
    if isinstance(value, dict):
        units = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1, "milliseconds": 1e-3}
        if value and all(k in units and isinstance(v, int | float) and not isinstance(v, bool)
                         for k, v in value.items()):
            return float(sum(units[k] * v for k, v in value.items()))
    return None


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def config_limits(config_yaml: str) -> Limits:
    """The limits of a training config (the YAML the job runs), with Lightning's defaults: no ``max_epochs`` and no
    other limit means 1000 epochs; -1 means none. A config that does not parse has no known limit."""
    try:
        doc = yaml.safe_load(config_yaml)
    except yaml.YAMLError:
        return Limits()
    trainer = doc.get("trainer") if isinstance(doc, dict) else None
    if not isinstance(trainer, dict):
        trainer = {}
    max_steps = _positive_int(trainer.get("max_steps"))
    max_time_s = max_time_seconds(trainer.get("max_time"))
    max_epochs = _positive_int(trainer.get("max_epochs"))
    if trainer.get("max_epochs") is None and max_steps is None and max_time_s is None:
        max_epochs = LIGHTNING_DEFAULT_MAX_EPOCHS
    return Limits(max_steps, max_epochs, max_time_s)


def new_record(limits: Limits) -> dict[str, Any]:
    """The record of a training that has logged nothing yet."""
    return {"max_steps": limits.max_steps, "max_epochs": limits.max_epochs, "max_time_s": limits.max_time_s}


# -- reading rows -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricsWindow:
    """What was read of a log: its header line (None: not complete yet), the bytes read from its end (decoded), and
    whether they start at a line's start (else the first, partial line is dropped). ``size``/``mtime`` are the
    file's when read (what the next read compares with)."""

    header: str | None
    body: str
    at_line_start: bool
    size: int
    mtime: float


def header_of(head: str) -> str | None:
    """The first line of a file's head (None while it is not complete: no newline yet)."""
    end = head.find("\n")
    return head[:end].rstrip("\r") if end >= 0 else None


def _rows(reader: Iterator[list[str]], width: int) -> Iterator[list[str]]:
    """The rows of ``reader`` as wide as the header, up to a line the csv module refuses (a field over its limit:
    not a log Lightning wrote)."""
    try:
        for row in reader:
            if len(row) == width:
                yield row
    except csv.Error:
        return


def window_rows(window: MetricsWindow) -> tuple[list[str], Iterator[list[str]]]:
    """(column names, rows) of a window: only complete lines, only rows as wide as the header (a file being
    rewritten under a new header can hand the reader rows of the other width)."""
    if window.header is None:
        return [], iter(())
    try:
        names = next(csv.reader([window.header]), [])
    except csv.Error:
        return [], iter(())
    body = window.body
    if not window.at_line_start:
        first = body.find("\n")
        body = body[first + 1:] if first >= 0 else ""
    body = body[:body.rfind("\n") + 1]  # a last line still being written is left for the next read
    return names, _rows(csv.reader(io.StringIO(body)), len(names))


def file_rows(lines: Iterable[str]) -> tuple[list[str], Iterator[list[str]]]:
    """(column names, rows) of a whole log given as lines (a file opened with ``newline=""``), streamed."""
    reader = csv.reader(lines)
    try:
        names = next(reader, [])
    except csv.Error:
        return [], iter(())
    return names, _rows(reader, len(names))


# -- folding rows into the record ---------------------------------------------------------------------------------
def _number(text: str) -> float | None:
    """A cell as a number: None for a blank cell or text; NaN and infinities are numbers (a diverged loss)."""
    try:
        return float(text) if text.strip() else None
    except ValueError:
        return None


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _whole(value: float | None) -> int | None:
    return int(value) if value is not None and math.isfinite(value) and value >= 0 else None


@dataclass
class _Seen:
    step: int | None = None
    epoch: int | None = None
    loss: float | None = None  # the latest logged, NaN included
    loss_step: int | None = None
    val: dict[str, Any] | None = None
    best: tuple[float, int | None, int | None] | None = None


def _scan(names: list[str], rows: Iterable[list[str]]) -> _Seen:
    at = {name: i for i, name in enumerate(names)}
    step_i, epoch_i = at.get("step"), at.get("epoch")
    loss_i = next((at[c] for c in LOSS_COLUMNS if c in at), None)
    mean_i = at.get(MONITOR)
    # the first classes, by name of reasonable length (a class table has a handful; the record stays small)
    class_cols = [(name[len(DICE_PREFIX):], i) for name, i in at.items()
                  if name.startswith(DICE_PREFIX) and name != MONITOR
                  and len(name) - len(DICE_PREFIX) <= MAX_NAME_CHARS][:MAX_CLASSES]
    seen = _Seen()
    for row in rows:
        step = _whole(_number(row[step_i])) if step_i is not None else None
        epoch = _whole(_number(row[epoch_i])) if epoch_i is not None else None
        if step is not None and (seen.step is None or step >= seen.step):
            seen.step = step
        if epoch is not None and (seen.epoch is None or epoch >= seen.epoch):
            seen.epoch = epoch
        if loss_i is not None and (loss := _number(row[loss_i])) is not None:
            seen.loss, seen.loss_step = loss, step
        if mean_i is not None and (mean := _finite(_number(row[mean_i]))) is not None:
            dice = {name: value for name, i in class_cols if (value := _finite(_number(row[i]))) is not None}
            seen.val = {"val_dice_mean": mean, "val_step": step, "val_epoch": epoch, "val_dice": dice}
            if seen.best is None or mean > seen.best[0]:  # a tie keeps the earlier, as ModelCheckpoint does
                seen.best = (mean, step, epoch)
    return seen


def fold(record: dict[str, Any] | None, names: list[str], rows: Iterable[list[str]]) -> dict[str, Any]:
    """``record`` updated with the rows of a log (a window of it, or all of it): the latest step, epoch, training
    loss and validation, the best mean Dice of the record's and of these rows. Values the rows do not hold (a
    window without a validation row) are kept from ``record``; nothing else of it is changed."""
    out = dict(record or {})
    seen = _scan(names, rows)
    if seen.step is not None:
        out["step"] = seen.step
    if seen.epoch is not None:
        out["epoch"] = seen.epoch
    if seen.loss is not None:
        out["train_loss"] = _finite(seen.loss)
        out["warning"] = None if math.isfinite(seen.loss) else (
            f"the latest training loss logged is {seen.loss} (step {seen.loss_step}): the training may have "
            "diverged; a lower learning rate or 32-bit precision may help")
    if seen.val is not None:
        out.update(seen.val)
    if seen.best is not None:
        old = out.get("best_val_dice_mean")
        if not isinstance(old, int | float) or seen.best[0] > old:
            out["best_val_dice_mean"], out["best_step"], out["best_epoch"] = seen.best
    return out


def fold_window(record: dict[str, Any] | None, window: MetricsWindow) -> dict[str, Any]:
    """``record`` updated with a window of the log (see :func:`fold`)."""
    names, rows = window_rows(window)
    return fold(record, names, rows)


# -- throttling ---------------------------------------------------------------------------------------------------
def checked_at(record: dict[str, Any] | None) -> float | None:
    """When the worker last looked at the training's log (Unix seconds), or None."""
    source = (record or {}).get("source")
    value = source.get("checked_at") if isinstance(source, dict) else None
    return float(value) if isinstance(value, int | float) else None


def due(record: dict[str, Any] | None, now: float, interval_s: float) -> bool:
    """Whether the log should be looked at again: never looked at, or ``interval_s`` ago (or the clock went back)."""
    last = checked_at(record)
    return last is None or now - last >= interval_s or now < last


def seen_source(record: dict[str, Any] | None) -> tuple[int, float] | None:
    """(size, mtime) of the log when it was last read, or None."""
    source = (record or {}).get("source")
    if not isinstance(source, dict) or not isinstance(source.get("size"), int):
        return None
    mtime = source.get("mtime")
    return int(source["size"]), float(mtime) if isinstance(mtime, int | float) else 0.0


def with_source(record: dict[str, Any], now: float, size: int | None = None, mtime: float | None = None
                ) -> dict[str, Any]:
    """``record`` with its ``source`` updated: looked at ``now``; when ``size`` is given, read (``updated_at``) at
    that size and mtime."""
    source = dict(record.get("source") or {})
    source["checked_at"] = now
    if size is not None:
        source["size"], source["mtime"], source["updated_at"] = size, mtime, now
    return {**record, "source": source}


# -- what the API shows -------------------------------------------------------------------------------------------
def fractions(record: dict[str, Any], elapsed_s: float | None) -> dict[str, float]:
    """How far the run is towards each limit it has (0..1): ``max_steps`` (steps done: the logged step counts from
    0), ``max_epochs`` (epochs done: an epoch counts once validated), ``max_time`` (time since the job started)."""
    out: dict[str, float] = {}
    step, epoch = record.get("step"), record.get("epoch")
    if isinstance(record.get("max_steps"), int) and isinstance(step, int):
        out["max_steps"] = (step + 1) / record["max_steps"]
    if isinstance(record.get("max_epochs"), int) and isinstance(epoch, int):
        done = epoch + 1 if record.get("val_epoch") == epoch else epoch
        out["max_epochs"] = done / record["max_epochs"]
    if isinstance(record.get("max_time_s"), int | float) and record["max_time_s"] > 0 and elapsed_s is not None:
        out["max_time"] = elapsed_s / record["max_time_s"]
    return {k: min(1.0, max(0.0, v)) for k, v in out.items()}


def leading_limit(record: dict[str, Any], elapsed_s: float | None) -> tuple[str | None, float | None]:
    """The limit the run is closest to (the one that will most likely stop it) and the fraction of it done."""
    found = fractions(record, elapsed_s)
    if not found:
        return None, None
    name = max(found, key=lambda k: found[k])
    return name, found[name]
