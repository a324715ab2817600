"""The REST API's request and response bodies (pydantic): ``XCreate`` what a client sends, ``XPublic`` what it gets.

Validation here gives 422 with every problem: a spec is checked by the core's own BatchSpec validation (its messages
name the field, the value and what is accepted), Slurm options by the same checks the sbatch builder makes, so no
user string that reaches the cluster can hold shell syntax.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from render_service.slurm.errors import InvalidJobSetting
from render_service.slurm.sbatch import check_name, check_time_limit

BackendName = Literal["local", "slurm"]
BatchStateName = Literal["queued", "submitted", "running", "succeeded", "failed", "cancelled"]


class SlurmJobFields(BaseModel):
    """Checks of the Slurm fields a job's options share (``partition``, ``account``, ``time_limit``, declared by each
    subclass), as sbatch will read them: a bad value is a 422 naming it, never a failed submission."""

    @field_validator("partition", "account", check_fields=False)
    @classmethod
    def _slurm_name(cls, value: str | None, info: Any) -> str | None:
        if value is not None:
            try:
                check_name(info.field_name, value)
            except InvalidJobSetting as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("time_limit", check_fields=False)
    @classmethod
    def _time_limit(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_time_limit(value)
            except InvalidJobSetting as exc:
                raise ValueError(str(exc)) from None
        return value


class SlurmOptions(SlurmJobFields):
    """Per-batch Slurm settings; every field is optional (None: the admin's default, else the cluster's)."""

    model_config = ConfigDict(extra="forbid")

    partition: str | None = Field(None, description="Slurm partition.", examples=["debug"])
    account: str | None = Field(None, description="Slurm account charged.", examples=["materials"])
    time_limit: str | None = Field(None, description="Per array task: minutes or [D-]H:M:S.", examples=["0:30:00"])
    cpus_per_task: int | None = Field(None, ge=1, le=1024, description="CPUs of each array task.")
    mem_per_task_mb: int | None = Field(None, ge=1, le=16_777_216, description="Memory of each array task, MB.")
    images_per_task: int | None = Field(None, ge=1, le=100_000, description="Images each array task renders.")
    max_parallel_tasks: int | None = Field(None, ge=1, le=100_000, description="Array tasks running at once (%N).")


class BatchCreate(BaseModel):
    """``POST /api/v1/batches``: a BatchSpec (as ``semcoat spec preset`` prints it) and where to render it."""

    model_config = ConfigDict(extra="forbid")

    spec: dict[str, Any] = Field(description="A BatchSpec object (see `semcoat spec schema`).")
    backend: BackendName = Field("local", description="'local' (this server's processes) or 'slurm' (the cluster).")
    slurm: SlurmOptions | None = Field(None, description="Slurm settings (backend 'slurm' only).")


class TaskCountsPublic(BaseModel):
    """How many render tasks (chunks of images) are in each state; ``retried``: tasks resubmitted at least once."""

    total: int
    pending: int
    running: int
    done: int
    failed: int
    retried: int


class BatchPublic(BaseModel):
    """A batch as the API shows it."""

    id: str
    name: str
    state: BatchStateName
    backend: BackendName
    count: int = Field(description="Images in the batch.")
    images_done: int = Field(description="Images complete in the service's copy of the dataset.")
    tasks: TaskCountsPublic
    slurm_job_ids: list[int]
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None = Field(description="What went wrong, as a sentence a user can act on; None when nothing did.")


class BatchList(BaseModel):
    """A page of the caller's batches, newest first."""

    items: list[BatchPublic]
    total: int
    limit: int
    offset: int


class FileEntry(BaseModel):
    """One file of a batch's dataset folder."""

    path: str = Field(description="Relative to the dataset folder, '/'-separated.", examples=["images/000000.png"])
    size_bytes: int


class BackendHealth(BaseModel):
    """Whether a backend can take work now, and why not."""

    reachable: bool
    detail: str


class Health(BaseModel):
    """``GET /health``: what the service depends on, each with a sentence."""

    status: Literal["ok", "degraded"]
    version: str
    database: BackendHealth
    redis: BackendHealth
    workers: int = Field(description="Celery workers that answered a ping.")
    backends: dict[str, BackendHealth]


class ErrorBody(BaseModel):
    """Every 4xx body but 422: ``detail`` says what was wrong and what is accepted."""

    detail: str


class FieldProblem(BaseModel):
    """One problem of a request: where (``loc``, e.g. ``["body", "spec", "base", "pores", "fraction"]``), what is
    wrong and accepted (``msg``, the core's own validation message for a spec), and the value given (shortened)."""

    loc: list[str | int]
    msg: str
    value: Any = None


class ValidationErrorBody(BaseModel):
    """Every 422 body: each problem found, not only the first."""

    detail: list[FieldProblem]
