"""Trainings in the database: create one from a checked request, find the caller's, show one as the API does.

Plain functions over a SQLAlchemy session, shared by the API and the workers, as :mod:`render_service.store` is
for batches. Owners only ever see their own trainings: every lookup takes the owner.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from render_service.backends.training_base import devices_per_node
from render_service.db.models import Training
from render_service.store import as_utc, new_batch_id
from render_service.training_schemas import DatasetFolder, TrainingPublic, TrainingResourcesPublic

ACTIVE_STATES = ("queued", "submitted", "running")


def create_training(session: Session, owner: str, name: str, backend: str, config_name: str | None,
                    config_yaml: str, datasets: list[dict[str, Any]], resources: dict[str, Any]) -> Training:
    """Store a new ``queued`` training (its job pending, not handed over); the inputs are already checked."""
    training = Training(id=new_batch_id(), owner=owner, name=name, backend=backend, state="queued",
                        config_name=config_name, config_yaml=config_yaml, datasets_json=json.dumps(datasets),
                        resources_json=json.dumps(resources, sort_keys=True), job_state="pending", attempts=0,
                        cancel_requested=False)
    session.add(training)
    session.flush()
    return training


def get_training(session: Session, training_id: str, owner: str | None) -> Training | None:
    """The training ``training_id`` if it exists and belongs to ``owner`` (None: any owner, for workers)."""
    training = session.get(Training, training_id)
    if training is None or (owner is not None and training.owner != owner):
        return None
    return training


def list_trainings(session: Session, owner: str, limit: int, offset: int,
                   state: str | None = None) -> tuple[list[Training], int]:
    """The owner's trainings, newest first, one page of them, and how many there are in all."""
    query = select(Training).where(Training.owner == owner)
    if state is not None:
        query = query.where(Training.state == state)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Training.created_at.desc(), Training.id).limit(limit).offset(offset))
    return list(rows), total


def active_trainings(session: Session, backend: str) -> list[Training]:
    """Every training of ``backend`` that is not in a final state (what a periodic poll looks at)."""
    return list(session.scalars(select(Training).where(
        Training.backend == backend, Training.state.in_(ACTIVE_STATES)).order_by(Training.created_at)))


def training_public(training: Training) -> TrainingPublic:
    """The API's view of a training."""
    resources = training.resources
    return TrainingPublic(
        id=training.id, name=training.name, state=training.state, backend=training.backend,  # type: ignore[arg-type]
        config=training.config_name,
        datasets=[DatasetFolder(batch_id=d.get("batch_id"), path=d["path"]) for d in training.datasets],
        resources=TrainingResourcesPublic(
            nodes=int(resources.get("nodes") or 1), devices_per_node=devices_per_node(resources),
            gpus_per_node=int(resources.get("gpus_per_node") or 0), cpus_per_task=resources.get("cpus_per_task"),
            mem_per_node_mb=resources.get("mem_per_node_mb"), partition=resources.get("partition"),
            account=resources.get("account"), time_limit=resources.get("time_limit")),
        slurm_job_id=training.job_id, created_at=as_utc(training.created_at),  # type: ignore[arg-type]
        submitted_at=as_utc(training.submitted_at), started_at=as_utc(training.started_at),
        finished_at=as_utc(training.finished_at), error=training.error)
