"""What the orchestration asks of a backend, and the plain data it passes: snapshots in, observations out.

A backend never touches the database: :mod:`render_service.orchestrate` gives it :class:`BatchView` snapshots and
records what it answers, so the backends stay testable without SQL and the database is never locked while a
backend talks to a cluster.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

# What a backend can say about one task's current attempt.
#   pending: handed over, not started yet;  running;  done: exited 0;  failed: ended otherwise;
#   cancelled: stopped because the user cancelled;  unknown: the backend has no record of it (yet or any more).
ObservedState = Literal["pending", "running", "done", "failed", "cancelled", "unknown"]


@dataclass(frozen=True)
class TaskView:
    """One render task as the database holds it: images ``start``..``start + count - 1`` of the batch.

    ``index`` is also the Slurm array task id (the sbatch builder maps task ``i`` to chunk ``i``). A task is in the
    backend's hands when it has a handle: ``job_id`` (Slurm) or ``pid`` (local).
    """

    index: int
    start: int
    count: int
    state: str
    attempts: int
    job_id: int | None = None
    array_task_id: int | None = None
    pid: int | None = None

    @property
    def handed_over(self) -> bool:
        """True when the current attempt was given to the backend (it has a job id or a process id)."""
        return self.job_id is not None or self.pid is not None


@dataclass(frozen=True)
class BatchView:
    """A snapshot of one batch: what a backend needs to submit, follow, collect or stop it."""

    id: str
    spec_json: str
    count: int
    images_per_task: int
    options_json: str = "{}"
    slurm_job_ids: tuple[int, ...] = ()
    remote_dir: str | None = None
    cancel_requested: bool = False
    tasks: tuple[TaskView, ...] = ()

    @property
    def options(self) -> dict[str, Any]:
        """The user's backend options (Slurm: partition, account, ...), admin defaults not merged in."""
        value: dict[str, Any] = json.loads(self.options_json or "{}")
        return value


@dataclass(frozen=True)
class Observation:
    """What the backend saw of one task's current attempt; ``exit_code`` and ``log_tail`` once it has ended."""

    state: ObservedState
    exit_code: int | None = None
    log_tail: str | None = None


@dataclass(frozen=True)
class Handle:
    """Where a launched task runs: a Slurm array task (``job_id``, ``array_task_id``) or a local process (``pid``)."""

    job_id: int | None = None
    array_task_id: int | None = None
    pid: int | None = None


@dataclass(frozen=True)
class Launch:
    """What a launch handed over: a handle per task index; ``job_id`` of the array (Slurm) and the batch's folder
    on the cluster (``remote_dir``) where there is one."""

    handles: Mapping[int, Handle]
    job_id: int | None = None
    remote_dir: str | None = None


@dataclass(frozen=True)
class HealthReport:
    """Whether a backend can take work now; ``detail`` is a sentence (what was checked, or what is wrong)."""

    reachable: bool
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    """A place where render tasks run. Every method that talks to a cluster may raise
    :class:`~render_service.slurm.errors.TransportError` (unreachable: nothing about the batch is known to be wrong).
    """

    name: str
    # At most this many tasks handed over and unfinished at once across all batches (None: the backend's scheduler
    # queues them itself, as Slurm does).
    max_in_flight: int | None

    def observe(self, batches: Sequence[BatchView]) -> dict[str, dict[int, Observation]]:
        """The current attempt's state of every handed-over task of ``batches`` (batch id → task index →
        observation), in as few calls as the backend allows (Slurm: one squeue)."""
        ...

    def launch(self, batch: BatchView, tasks: Sequence[TaskView]) -> Launch:
        """Hand ``tasks`` (pending, no handle) of ``batch`` to the backend. Idempotent: a launch that was done but
        not recorded (the worker died in between) is found and returned, never done twice."""
        ...

    def collect(self, batch: BatchView) -> int:
        """Bring the batch's complete samples into the service's dataset folder; return how many it holds."""
        ...

    def stop(self, batch: BatchView) -> None:
        """Stop every handed-over task of ``batch`` (finished images stay)."""
        ...

    def check(self) -> HealthReport:
        """Whether the backend can take work now (Slurm: SSH login and ``sinfo``)."""
        ...
