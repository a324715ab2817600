"""The dashboard's trainings: rows of the overview, a training's page values and its curves, from the trainings the
API serves at ``/api/v1/trainings`` (:mod:`render_service.training_store`) and the metrics a finished training's
folder holds (``<data dir>/trainings/<id>/metrics.csv``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from render_service.dashboard.curves import MAX_CSV_BYTES, Series, curves
from render_service.dashboard.views import when
from render_service.files import FileRefused, open_file
from render_service.states import FINAL_BATCH_STATES
from render_service.training_schemas import TrainingPublic
from render_service.training_store import get_training, list_trainings, training_public

METRICS_FILE = "metrics.csv"


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
            "summary": f"{config}, {_plural(len(training.datasets), 'dataset')}, {resources}", "job": job,
            "created": when(training.created_at), "started": when(training.started_at) or "not yet",
            "finished": when(training.finished_at) or "not yet", "error": training.error or "",
            "final": training.state in FINAL_BATCH_STATES}


def overview_trainings(session: Session, owner: str, limit: int) -> list[dict[str, Any]]:
    """The owner's newest trainings as overview rows."""
    rows, _ = list_trainings(session, owner, limit, 0, None)
    return [training_view(training_public(t)) for t in rows]


def training_curves(folder: Path) -> tuple[list[Series], list[Series]]:
    """(loss, Dice) curves of a training's collected folder; empty before its metrics are there (or when the file
    is too big or not text)."""
    try:
        handle, size = open_file(folder, METRICS_FILE)
    except FileRefused:
        return [], []
    with handle:
        if size > MAX_CSV_BYTES:
            return [], []
        try:
            text = handle.read().decode("utf-8")
        except UnicodeDecodeError:
            return [], []
    return curves(text)


def training_data(session: Session, trainings_dir: Path, owner: str, training_id: str) -> dict[str, Any] | None:
    """A training page's values and curves (None: no training of ``owner``'s has this id)."""
    training = get_training(session, training_id, owner)
    if training is None:
        return None
    loss, dice = training_curves(trainings_dir / training.id)
    return {"training": training_view(training_public(training)), "loss": loss, "dice": dice}
