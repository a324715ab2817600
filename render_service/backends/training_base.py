"""What the orchestration of trainings asks of a backend: a training is one job (one Slurm job of several tasks, or
one local process), handed over, observed, collected and stopped as one.

As for batches (:mod:`render_service.backends.base`), a backend never touches the database: it gets
:class:`TrainingView` snapshots and answers with the same :class:`~render_service.backends.base.Observation` and
:class:`~render_service.backends.base.Handle` a render task gets.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from render_service.backends.base import Handle, Observation
from render_service.training_progress import MetricsWindow, seen_source

# What a job leaves for the service (written by `semcoat train package`): a training succeeds once it is collected.
MODEL_FILE = "model.onnx"
METRICS_FILE = "metrics.json"
LOG_FILE = "train.log"


@dataclass(frozen=True)
class TrainingView:
    """A snapshot of one training: what a backend needs to start, follow, collect or stop its job."""

    id: str
    config_yaml: str
    resources_json: str = "{}"
    job_state: str = "pending"
    attempts: int = 0
    job_id: int | None = None
    pid: int | None = None
    remote_dir: str | None = None
    cancel_requested: bool = False
    progress_json: str | None = None

    @property
    def last_read(self) -> tuple[int, float] | None:
        """(size, mtime) of the training's log when the service last read it (None: never read)."""
        return seen_source(json.loads(self.progress_json)) if self.progress_json else None

    @property
    def handed_over(self) -> bool:
        """True when the job is in the backend's hands (a Slurm job id or a local process id)."""
        return self.job_id is not None or self.pid is not None

    @property
    def resources(self) -> dict[str, Any]:
        """The user's resources (nodes, gpus_per_node, processes_per_node, cpus_per_task, Slurm options)."""
        value: dict[str, Any] = json.loads(self.resources_json or "{}")
        return value


def devices_per_node(resources: dict[str, Any]) -> int:
    """Processes per node: one per GPU, else the CPU processes asked for (one by default)."""
    return int(resources.get("gpus_per_node") or resources.get("processes_per_node") or 1)


@dataclass(frozen=True)
class TrainingLaunch:
    """What a launch handed over: the job's handle, and its folder on the cluster where there is one."""

    handle: Handle
    remote_dir: str | None = None


@dataclass(frozen=True)
class MetricsRead:
    """A look at a running training's log (``metrics.csv``): its size and mtime, and what was read of it (None:
    unchanged since the read recorded in the training's progress, so not read again)."""

    size: int
    mtime: float
    window: MetricsWindow | None


class TrainingBackend(Protocol):
    """A place where training jobs run. Methods that talk to a cluster may raise
    :class:`~render_service.slurm.errors.TransportError` (unreachable: nothing about the training is known to be
    wrong); a launch the cluster refuses raises :class:`~render_service.slurm.errors.SubmissionError`."""

    name: str
    # At most this many trainings handed over and unfinished at once (None: the scheduler queues them).
    max_in_flight: int | None
    # Seconds between two looks at a running training's log (0: at every poll).
    progress_interval_s: float
    # Where finished trainings are collected, one folder per training.
    trainings_dir: Path

    def observe(self, trainings: Sequence[TrainingView]) -> dict[str, Observation]:
        """The job state of every handed-over training (id → observation), in as few calls as the backend allows."""
        ...

    def launch(self, training: TrainingView) -> TrainingLaunch:
        """Hand the training's job over. Idempotent: a launch that was done but not recorded is found and returned,
        never done twice."""
        ...

    def collect(self, training: TrainingView) -> bool:
        """Bring the finished job's outputs into the service's folder of the training; True once they are there
        (its ``model.onnx`` among them)."""
        ...

    def stop(self, training: TrainingView) -> None:
        """Stop the training's job (scancel, or SIGTERM to the local processes)."""
        ...

    def read_metrics(self, trainings: Sequence[TrainingView]) -> dict[str, MetricsRead]:
        """A look at each running training's log, reading it only where its size or mtime changed since
        :attr:`TrainingView.last_read`; a training that has logged nothing yet is left out."""
        ...
