"""The dashboard's trainings: rows of the overview, a training's page values and its curves, from the trainings the
API serves at ``/api/v1/trainings`` (:mod:`render_service.training_store`: state and progress) and their logged
metrics: the collected log of a finished training (``<data dir>/trainings/<id>/metrics.csv``), else the log so far
of a running one (:func:`render_service.training_metrics.live_metrics`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from render_service import training_progress_text as progress_text
from render_service.dashboard.curves import MAX_CSV_BYTES, Series, curves
from render_service.dashboard.views import when
from render_service.files import FileRefused, open_file
from render_service.states import FINAL_BATCH_STATES
from render_service.training_metrics import METRICS_CSV, live_metrics
from render_service.training_schemas import TrainingPublic
from render_service.training_store import get_training, list_trainings, training_public

# A training's progress bar counts in thousandths of its leading limit (steps, epochs or time).
BAR_MAX = 1000


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def training_view(training: TrainingPublic) -> dict[str, Any]:
    """One training for the overview's row and its page's header."""
    res = training.resources
    devices = _plural(res.devices_per_node, "GPU" if res.gpus_per_node else "CPU process")
    resources = f"{_plural(res.nodes, 'node')} x {devices}"
    config = training.config or "own YAML config"
    if training.slurm_job_id is not None:
        job = f"Slurm job {training.slurm_job_id}"
    else:
        job = "a local process" if training.backend == "local" else "not submitted yet"
    return {"id": training.id, "url": f"/ui/trainings/{training.id}", "name": training.name,
            "state": training.state, "backend": training.backend, "config": config, "resources": resources,
            "datasets": ", ".join(d.batch_id or d.path for d in training.datasets) or "none",
            "weights_from": training.init_from or "scratch",
            "summary": f"{config}, {_plural(len(training.datasets), 'dataset')}, {resources}", "job": job,
            "created": when(training.created_at), "started": when(training.started_at) or "not yet",
            "finished": when(training.finished_at) or "not yet", "error": training.error or "",
            "final": training.state in FINAL_BATCH_STATES, **progress_view(training)}


def progress_view(training: TrainingPublic) -> dict[str, Any]:
    """The progress bar (``done`` of ``count``; ``done`` None: under way, how far unknown), the text beside it, the
    scores, the latest validation per class and any warning."""
    p = training.progress
    fraction = p.fraction if p is not None else None
    running = training.state in ("submitted", "running")
    if fraction is not None:
        done: int | None = round(fraction * BAR_MAX)
    else:
        done = None if running else 0
    where = progress_text.where_text(p) if p is not None else ""
    if running and (p is None or p.step is None):
        where = "no step logged yet" + (f" · {where}" if where else "")
    return {"done": done, "count": BAR_MAX, "progress": where,
            "scores": progress_text.scores_text(p) if p is not None else "",
            "classes": progress_text.classes_text(p) if p is not None else "",
            "warning": (p.warning or "") if p is not None else ""}


def overview_trainings(session: Session, owner: str, limit: int) -> list[dict[str, Any]]:
    """The owner's newest trainings as overview rows."""
    rows, _ = list_trainings(session, owner, limit, 0, None)
    return [training_view(training_public(t)) for t in rows]


@dataclass(frozen=True)
class MetricsLog:
    """The log a training's curves are drawn from: where it is, and a version that changes when it does."""

    root: Path
    relative: str
    version: str


def metrics_log(trainings_dir: Path, work_dir: Path, training_id: str) -> MetricsLog | None:
    """The collected log of the training, else its log so far (None: nothing logged yet)."""
    found: list[tuple[str, Path, str]] = [("final", trainings_dir / training_id, METRICS_CSV)]
    live = live_metrics(work_dir / training_id)
    if live is not None:
        found.append(("live", *live))
    for kind, root, relative in found:
        try:
            info = os.lstat(root / relative)
        except OSError:
            continue
        return MetricsLog(root, relative, f"{kind}-{info.st_size}-{info.st_mtime_ns}")
    return None


def read_curves(log: MetricsLog | None) -> tuple[list[Series], list[Series]]:
    """(loss, Dice) curves of a log; empty without one, or when it is too big or not text."""
    if log is None:
        return [], []
    try:
        handle, size = open_file(log.root, log.relative)
    except FileRefused:
        return [], []
    with handle:
        if size > MAX_CSV_BYTES:
            return [], []
        try:
            text = handle.read(size).decode("utf-8")
        except UnicodeDecodeError:
            return [], []
    return curves(text[:text.rfind("\n") + 1])  # a last line still being written waits for the next read


def training_data(session: Session, trainings_dir: Path, work_dir: Path, owner: str, training_id: str,
                  known_version: str | None = None) -> dict[str, Any] | None:
    """A training page's values and, unless the page already shows this version of them (``known_version``), its
    curves (``loss``/``dice`` None then). None: no training of ``owner``'s has this id."""
    training = get_training(session, training_id, owner)
    if training is None:
        return None
    view = training_view(training_public(training))
    session.close()  # give the connection back before reading the log
    log = metrics_log(trainings_dir, work_dir, training_id)
    version = log.version if log is not None else "none"
    loss, dice = read_curves(log) if version != known_version else (None, None)
    return {"training": view, "loss": loss, "dice": dice, "curves_version": version}
