"""Batches in the database: create one from a validated spec, find the caller's, show one as the API does.

Plain functions over a SQLAlchemy session, shared by the API (routes) and the workers (tasks). Owners only ever see
their own batches: every lookup takes the owner.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from render_service.db.models import Batch, RenderTask
from render_service.schemas import BatchPublic, TaskCountsPublic
from render_service.states import count_tasks
from semcoat.batch import BatchSpec


def new_batch_id() -> str:
    """A fresh batch id: 16 hex digits (it names the Slurm job, so it stays short and shell-safe)."""
    return uuid.uuid4().hex[:16]


def create_batch(session: Session, owner: str, spec: BatchSpec, backend: str, options: dict[str, Any],
                 images_per_task: int) -> Batch:
    """Store a new ``queued`` batch and one pending render task per chunk of ``images_per_task`` images.

    ``spec`` is already validated; its ``render.images_per_task`` is replaced by ``images_per_task`` (the chunking the
    service chose: the user's Slurm option, the admin's default or the spec's own), which changes no pixel.
    """
    spec.render.images_per_task = images_per_task
    batch = Batch(id=new_batch_id(), owner=owner, name=spec.name, backend=backend, state="queued", count=spec.count,
                  images_per_task=images_per_task, images_done=0, spec_json=spec.to_json(indent=None),
                  options_json=json.dumps(options, sort_keys=True), cancel_requested=False)
    batch.slurm_job_ids = []
    batch.tasks = [RenderTask(index=i, start=start, count=count, state="pending", attempts=0)
                   for i, (start, count) in enumerate(spec.task_ranges())]
    session.add(batch)
    session.flush()
    return batch


def get_batch(session: Session, batch_id: str, owner: str | None) -> Batch | None:
    """The batch ``batch_id`` if it exists and belongs to ``owner`` (None: any owner, for workers)."""
    batch = session.get(Batch, batch_id)
    if batch is None or (owner is not None and batch.owner != owner):
        return None
    return batch


def list_batches(session: Session, owner: str, limit: int, offset: int, state: str | None = None) -> tuple[
        list[Batch], int]:
    """The owner's batches, newest first, one page of them (with their tasks, loaded for the whole page in one
    query: the list and the dashboard's overview show every batch's task counts at each poll), and how many there
    are in all."""
    query = select(Batch).where(Batch.owner == owner)
    if state is not None:
        query = query.where(Batch.state == state)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.options(selectinload(Batch.tasks))
                           .order_by(Batch.created_at.desc(), Batch.id).limit(limit).offset(offset))
    return list(rows), total


def active_batches(session: Session, backend: str) -> list[Batch]:
    """Every batch of ``backend`` that is not in a final state (what a periodic poll looks at)."""
    return list(session.scalars(select(Batch).where(
        Batch.backend == backend, Batch.state.in_(("queued", "submitted", "running"))).order_by(Batch.created_at)))


def as_utc(when: dt.datetime | None) -> dt.datetime | None:
    """``when`` as timezone-aware UTC: SQLite hands back naive datetimes even for ``DateTime(timezone=True)``
    columns, and the API promises RFC 3339 date-times with an offset."""
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=dt.UTC)
    return when


def batch_public(batch: Batch) -> BatchPublic:
    """The API's view of a batch."""
    counts = count_tasks((t.state for t in batch.tasks), (t.attempts for t in batch.tasks))
    return BatchPublic(
        id=batch.id, name=batch.name, state=batch.state, backend=batch.backend,  # type: ignore[arg-type]
        count=batch.count, images_done=batch.images_done,
        tasks=TaskCountsPublic(total=counts.total, pending=counts.pending, running=counts.running, done=counts.done,
                               failed=counts.failed, retried=counts.retried),
        slurm_job_ids=batch.slurm_job_ids, created_at=as_utc(batch.created_at),  # type: ignore[arg-type]
        started_at=as_utc(batch.started_at), finished_at=as_utc(batch.finished_at), error=batch.error)
