"""Trainings in the database: create one from a checked request, find the caller's, show one as the API does.

Plain functions over a SQLAlchemy session, shared by the API and the workers, as :mod:`render_service.store` is
for batches. Owners only ever see their own trainings: every lookup takes the owner.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from render_service.backends.training_base import devices_per_node
from render_service.db.models import Training, utc_now
from render_service.store import as_utc, new_batch_id
from render_service.training_progress import config_limits, leading_limit, new_record
from render_service.training_schemas import DatasetFolder, TrainingProgress, TrainingPublic, TrainingResourcesPublic

log = logging.getLogger(__name__)

ACTIVE_STATES = ("queued", "submitted", "running")


def create_training(session: Session, owner: str, name: str, backend: str, config_name: str | None,
                    config_yaml: str, datasets: list[dict[str, Any]], resources: dict[str, Any]) -> Training:
    """Store a new ``queued`` training (its job pending, not handed over); the inputs are already checked."""
    training = Training(id=new_batch_id(), owner=owner, name=name, backend=backend, state="queued",
                        config_name=config_name, config_yaml=config_yaml, datasets_json=json.dumps(datasets),
                        resources_json=json.dumps(resources, sort_keys=True), job_state="pending", attempts=0,
                        cancel_requested=False, init_from=config_init_from(config_yaml))
    training.progress = new_record(config_limits(config_yaml))
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


def _elapsed_s(training: Training, now: dt.datetime) -> float | None:
    started, finished = as_utc(training.started_at), as_utc(training.finished_at)
    if started is None:
        return None
    return max(0.0, ((finished or now) - started).total_seconds())


def progress_public(training: Training, now: dt.datetime | None = None) -> TrainingProgress | None:
    """The API's view of a training's progress record (limits from its config where none is stored)."""
    record = training.progress
    if record is None:
        record = new_record(config_limits(training.config_yaml))
    elapsed = _elapsed_s(training, now or utc_now())
    limit, fraction = leading_limit(record, elapsed)
    if training.state == "succeeded":  # it ran to one of its limits or stopped early: done either way
        fraction = 1.0 if limit is not None else None
    source = record.get("source")
    updated = source.get("updated_at") if isinstance(source, dict) else None
    values = {k: v for k, v in record.items() if k in TrainingProgress.model_fields and k != "updated_at"}
    try:
        return TrainingProgress(**values, elapsed_s=elapsed, fraction=fraction, limit=limit,
                                updated_at=dt.datetime.fromtimestamp(updated, dt.UTC)
                                if isinstance(updated, int | float) else None)
    except ValidationError:  # a record this version cannot read (written by another): the limits only
        log.warning("training %s: its progress record is unreadable; showing its config's limits", training.id)
        return TrainingProgress(**new_record(config_limits(training.config_yaml)), elapsed_s=elapsed)


def config_init_from(config_yaml: str) -> str | None:
    """The checkpoint a training config starts its weights from (``model.init_from``); None when it names none or
    does not parse. Read once, when a training is stored (:attr:`Training.init_from`): a list of trainings parses no
    YAML."""
    try:
        doc = yaml.safe_load(config_yaml)
    except yaml.YAMLError:
        return None
    model = doc.get("model") if isinstance(doc, dict) else None
    init_from = model.get("init_from") if isinstance(model, dict) else None
    return init_from if isinstance(init_from, str) and init_from else None


def training_public(training: Training, now: dt.datetime | None = None) -> TrainingPublic:
    """The API's view of a training (``now``: the time its elapsed time runs to while it runs)."""
    resources = training.resources
    return TrainingPublic(
        id=training.id, name=training.name, state=training.state, backend=training.backend,  # type: ignore[arg-type]
        config=training.config_name, init_from=training.init_from,
        datasets=[DatasetFolder(batch_id=d.get("batch_id"), path=d["path"]) for d in training.datasets],
        resources=TrainingResourcesPublic(
            nodes=int(resources.get("nodes") or 1), devices_per_node=devices_per_node(resources),
            gpus_per_node=int(resources.get("gpus_per_node") or 0), cpus_per_task=resources.get("cpus_per_task"),
            mem_per_node_mb=resources.get("mem_per_node_mb"), partition=resources.get("partition"),
            account=resources.get("account"), time_limit=resources.get("time_limit")),
        slurm_job_id=training.job_id, created_at=as_utc(training.created_at),  # type: ignore[arg-type]
        submitted_at=as_utc(training.submitted_at), started_at=as_utc(training.started_at),
        finished_at=as_utc(training.finished_at), error=training.error, progress=progress_public(training, now))
