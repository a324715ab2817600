"""The service's tables: ``batches`` (one per submitted BatchSpec), ``render_tasks`` (one per chunk of
``images_per_task`` images: one Slurm array task or one local process), ``trainings`` (one per submitted training:
one Slurm job or one local process), ``tokens`` (hashed bearer tokens).

Changing a model means a new Alembic migration in ``render_service/db/migrations/versions`` (a test compares the
models with the migrated schema).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utc_now() -> dt.datetime:
    """Now, timezone-aware UTC (what every timestamp column holds)."""
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of the service's models."""


class Token(Base):
    """A bearer token: only its SHA-256 is stored; ``owner`` is the user it authenticates."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Batch(Base):
    """One submitted batch and where it stands. ``state``: see :mod:`render_service.states`."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    backend: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    count: Mapped[int] = mapped_column(Integer)
    images_per_task: Mapped[int] = mapped_column(Integer)
    images_done: Mapped[int] = mapped_column(Integer, default=0)
    spec_json: Mapped[str] = mapped_column(Text)
    options_json: Mapped[str] = mapped_column(Text, default="{}")
    slurm_job_ids_json: Mapped[str] = mapped_column(Text, default="[]")
    remote_dir: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utc_now, index=True)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    tasks: Mapped[list[RenderTask]] = relationship(
        back_populates="batch", order_by="RenderTask.index", cascade="all, delete-orphan")

    @property
    def spec(self) -> dict[str, Any]:
        """The BatchSpec as submitted (validated), a JSON object."""
        value: dict[str, Any] = json.loads(self.spec_json)
        return value

    @property
    def options(self) -> dict[str, Any]:
        """The backend options the user gave (Slurm: partition, account, ...), admin defaults not merged in."""
        value: dict[str, Any] = json.loads(self.options_json)
        return value

    @property
    def slurm_job_ids(self) -> list[int]:
        """Every Slurm job id submitted for this batch, the first array and each retry array, in order."""
        value: list[int] = json.loads(self.slurm_job_ids_json)
        return value

    @slurm_job_ids.setter
    def slurm_job_ids(self, ids: list[int]) -> None:
        self.slurm_job_ids_json = json.dumps([int(i) for i in ids])


class RenderTask(Base):
    """One chunk of a batch: images ``start``..``start + count - 1``, rendered by one array task or local process.

    ``state``: pending (not running: new, or waiting to be resubmitted), running, done, failed (for good), cancelled.
    ``attempts`` counts submissions; ``job_id``/``array_task_id`` name the Slurm task of the latest one (the local
    backend leaves them None and keeps its process id in ``pid``).
    """

    __tablename__ = "render_tasks"
    __table_args__ = (UniqueConstraint("batch_id", "index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    start: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    array_task_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    log_tail: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utc_now, onupdate=utc_now)

    batch: Mapped[Batch] = relationship(back_populates="tasks")


class Training(Base):
    """One submitted training and where it stands. ``state``: the batch states (:mod:`render_service.states`).

    A training is one job (a Slurm job of ``nodes`` x devices tasks, or one local process): ``job_state`` is that
    job's state as a render task's (pending: not running, new or handed over and queued; running; done; failed;
    cancelled), ``job_id`` / ``pid`` its handle, ``attempts`` how often it was handed over. ``config_yaml`` is the
    config the job runs (the user's YAML or a ready config, overrides and the dataset folders merged in);
    ``datasets_json`` the folders with the batches they came from; ``resources_json`` the user's resources;
    ``progress_json`` its progress read from its log while it runs (:mod:`render_service.training_progress`: the
    run's limits, latest step, loss and validation Dice, the best so far; a few hundred bytes); ``init_from`` the
    checkpoint its weights start from (its config's ``model.init_from``, read once when it is stored).
    """

    __tablename__ = "trainings"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    backend: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    config_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    config_yaml: Mapped[str] = mapped_column(Text)
    datasets_json: Mapped[str] = mapped_column(Text, default="[]")
    resources_json: Mapped[str] = mapped_column(Text, default="{}")
    job_state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    log_tail: Mapped[str | None] = mapped_column(Text, nullable=True)
    remote_dir: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utc_now, index=True)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    progress_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    init_from: Mapped[str | None] = mapped_column(Text, nullable=True)

    @property
    def progress(self) -> dict[str, Any] | None:
        """The progress record (None: none stored, as for trainings submitted before it existed, or unreadable)."""
        try:
            value = json.loads(self.progress_json) if self.progress_json else None
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    @progress.setter
    def progress(self, record: dict[str, Any] | None) -> None:
        self.progress_json = None if record is None else json.dumps(record, sort_keys=True, allow_nan=False)

    @property
    def datasets(self) -> list[dict[str, Any]]:
        """The dataset folders, in order: ``{"path": ..., "batch_id": ... or None}``."""
        value: list[dict[str, Any]] = json.loads(self.datasets_json)
        return value

    @property
    def resources(self) -> dict[str, Any]:
        """The resources as the user gave them (nodes, gpus_per_node, ...), admin defaults not merged in."""
        value: dict[str, Any] = json.loads(self.resources_json)
        return value
