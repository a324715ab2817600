"""What the dashboard shows, as plain dicts of display values: made once here, rendered into the page by
:mod:`render_service.dashboard.pages` and sent as JSON to the page's script, which only copies them into the page
(as text), so the two can never format a value differently.

Every value a user chose (a batch name, an error sentence, a truth value in a meta file) stays a plain string here;
escaping is the page's job (``html.escape``) and the script's (``textContent``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from pathlib import Path
from typing import Any

from render_service.files import FileRefused, open_file
from render_service.schemas import BatchPublic, TaskCountsPublic
from render_service.states import FINAL_BATCH_STATES
from semcoat.classes import BACKGROUND, CLASSES
from semcoat.measurements import MEASUREMENTS
from semcoat.predictions import OVERLAY_ALPHA

SAMPLES_PER_PAGE = 24
MAX_META_BYTES = 1_000_000
MAX_CELL_CHARS = 40
TRUTH_COLUMNS: tuple[tuple[str, str], ...] = tuple((m.name, m.label) for m in MEASUREMENTS)
OVERLAY_PERCENT = round(OVERLAY_ALPHA * 100)


def when(moment: dt.datetime | None) -> str:
    """A time as ``2026-12-07 13:05:02 UTC`` ("" for none)."""
    if moment is None:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def tasks_text(tasks: TaskCountsPublic) -> str:
    """``"4 tasks: 2 done, 1 running, 1 pending"`` (failed and retried only when there are some)."""
    parts = [f"{tasks.done} done", f"{tasks.running} running", f"{tasks.pending} pending"]
    parts += [f"{n} {what}" for n, what in ((tasks.failed, "failed"), (tasks.retried, "retried")) if n]
    return f"{tasks.total} task{'' if tasks.total == 1 else 's'}: {', '.join(parts)}"


def batch_view(batch: BatchPublic) -> dict[str, Any]:
    """One batch for the overview's row and the batch page's header."""
    return {"id": batch.id, "url": f"/ui/batches/{batch.id}", "name": batch.name, "state": batch.state,
            "backend": batch.backend, "done": batch.images_done, "count": batch.count,
            "progress": f"{batch.images_done} / {batch.count}", "tasks": tasks_text(batch.tasks),
            "created": when(batch.created_at), "started": when(batch.started_at) or "not yet",
            "finished": when(batch.finished_at) or "not yet", "error": batch.error or "",
            "final": batch.state in FINAL_BATCH_STATES}


def complete_samples(dataset_dir: Path) -> list[str]:
    """Ids of the complete samples of a dataset folder (their meta file exists: it is written last), sorted.

    Only regular files named ``<6-12 digits>.json`` count; a symlink or anything else is ignored.
    """
    try:
        entries = list(os.scandir(dataset_dir / "meta"))
    except (FileNotFoundError, NotADirectoryError):
        return []
    ids = [e.name[:-5] for e in entries
           if e.name.endswith(".json") and e.name[:-5].isdigit() and 6 <= len(e.name) - 5 <= 12
           and e.is_file(follow_symlinks=False)]
    return sorted(ids)


def cell(value: Any) -> str:
    """A truth value for a table cell: "–" for none, yes/no, 3 significant digits; anything else as short text."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:.3g}"
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= MAX_CELL_CHARS else text[:MAX_CELL_CHARS - 1] + "…"


def sample_truth(dataset_dir: Path, sample: str) -> dict[str, Any] | None:
    """The ``truth`` object of ``meta/<sample>.json`` (None when the file is missing, too big, not JSON or has no
    truth object): the dashboard shows what there is and never fails a page over one sample."""
    try:
        handle, size = open_file(dataset_dir, f"meta/{sample}.json")
    except FileRefused:
        return None
    with handle:
        if size > MAX_META_BYTES:
            return None
        try:
            meta = json.loads(handle.read())
        except (ValueError, RecursionError):
            return None
    truth = meta.get("truth") if isinstance(meta, dict) else None
    return truth if isinstance(truth, dict) else None


def sample_view(batch_id: str, sample: str, truth: dict[str, Any] | None) -> dict[str, Any]:
    """One sample: its thumbnails' URLs and its truth as table cells (in the order of :data:`TRUTH_COLUMNS`)."""
    base = f"/ui/thumbs/{batch_id}/{sample}"
    cells = [cell(truth.get(name)) if truth is not None else "–" for name, _ in TRUTH_COLUMNS]
    return {"id": sample, "image": f"{base}/image.png", "overlay": f"{base}/overlay.png", "cells": cells}


def samples_page(dataset_dir: Path, batch_id: str, start: int) -> dict[str, Any]:
    """The window of samples a batch page shows: up to :data:`SAMPLES_PER_PAGE` complete samples from the
    ``start``-th, with how many are complete in all."""
    ids = complete_samples(dataset_dir)
    window = ids[start:start + SAMPLES_PER_PAGE]
    return {"start": start, "total": len(ids), "per_page": SAMPLES_PER_PAGE,
            "samples": [sample_view(batch_id, s, sample_truth(dataset_dir, s)) for s in window]}


def legend() -> list[dict[str, Any]]:
    """The overlay's classes: name, label and colour (from :mod:`semcoat.classes`), background left out as the
    overlay leaves it uncoloured."""
    return [{"name": c.name, "label": c.label, "rgb": c.color_rgb} for c in CLASSES if c.id != BACKGROUND]

