"""Submit, follow, retry, collect and cancel batches: the database on one side, a backend on the other.

The Celery tasks in :mod:`render_service.worker.tasks` are thin wrappers over :class:`Orchestrator`; unit tests
drive it directly with a fake cluster and a temporary SQLite database.

One :meth:`Orchestrator.step` looks at every active batch of its backend (or the ones named): it asks the backend
for all their tasks' states at once (Slurm: one ``squeue``), records them (a failed attempt goes back to pending
while retries are left, :func:`render_service.states.after_failure`), hands pending tasks to the backend (the first
submission and each retry, as a new array of just those tasks), collects the complete samples into the service's
dataset folder, and moves the batch along the state machine (:func:`render_service.states.next_batch_state`).

Nothing here marks a batch failed because the cluster could not be reached: a :class:`TransportError` leaves every
batch as it was, and the step's report says why (the worker shows it in ``/health``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from render_service.backends.base import Backend, BatchView, Observation, TaskView
from render_service.backends.cluster_semcoat import IncompatibleCluster
from render_service.db.models import Batch, RenderTask, utc_now
from render_service.db.session import Database
from render_service.slurm.errors import SubmissionError, TransportError
from render_service.states import FINAL_BATCH_STATES, FINAL_TASK_STATES, after_failure, count_tasks, next_batch_state
from render_service.store import active_batches

log = logging.getLogger(__name__)

# The error sentence quotes at most this much of each failed task's log, and names at most this many tasks.
LOG_TAIL_LINES = 12
_LISTED_FAILURES = 5


@dataclass
class StepReport:
    """What one step did: batches looked at, tasks handed over, and whether the backend answered."""

    batches: int = 0
    launched: int = 0
    reachable: bool = True
    problems: list[str] = field(default_factory=list)

    @property
    def detail(self) -> str:
        """A sentence for ``/health``: the first problem met, or that all went well."""
        return self.problems[0] if self.problems else f"followed {self.batches} active batch(es)"


def view_of(batch: Batch) -> BatchView:
    """A plain snapshot of ``batch`` and its tasks (safe to use after the session ends)."""
    return BatchView(
        id=batch.id, spec_json=batch.spec_json, count=batch.count, images_per_task=batch.images_per_task,
        options_json=batch.options_json, slurm_job_ids=tuple(batch.slurm_job_ids), remote_dir=batch.remote_dir,
        cancel_requested=batch.cancel_requested,
        tasks=tuple(TaskView(index=t.index, start=t.start, count=t.count, state=t.state, attempts=t.attempts,
                             job_id=t.job_id, array_task_id=t.array_task_id, pid=t.pid) for t in batch.tasks))


class JobRecord(Protocol):
    """What :func:`apply_observation` reads and writes of one job's current attempt: a render task, or a training
    (one job)."""

    state: str
    attempts: int
    job_id: int | None
    array_task_id: int | None
    pid: int | None
    exit_code: int | None
    log_tail: str | None


def _handed_over(task: JobRecord) -> bool:
    return task.job_id is not None or task.pid is not None


def tail_lines(text: str | None, lines: int = LOG_TAIL_LINES) -> str | None:
    """The last ``lines`` non-empty lines of a log (None stays None)."""
    if text is None:
        return None
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def apply_observation(task: JobRecord, seen: Observation | None, cancel_requested: bool, max_retries: int) -> None:
    """Record what the backend saw of ``task``'s current attempt.

    A failed attempt goes back to ``pending`` with its handle cleared (so it is resubmitted) while retries are left,
    else to ``failed``. Once the user cancelled, an attempt that ends any other way than done is ``cancelled``, and a
    task never handed over (or no longer known to the backend) is ``cancelled`` at once.
    """
    if task.state in FINAL_TASK_STATES:
        return
    state = seen.state if seen is not None else "unknown"
    if not _handed_over(task) or state == "unknown":
        if cancel_requested:
            task.state = "cancelled"
        return
    if state in ("pending", "running"):
        task.state = state
        return
    assert seen is not None
    task.exit_code = seen.exit_code
    if seen.log_tail is not None:
        task.log_tail = tail_lines(seen.log_tail)
    if state == "done":
        task.state = "done"
    elif cancel_requested:
        task.state = "cancelled"
    else:  # failed, or cancelled by someone other than the user (an admin's scancel): a failed attempt
        task.state = after_failure(task.attempts, max_retries)
        if task.state == "pending":
            task.job_id = task.array_task_id = task.pid = None


def _images(start: int, count: int) -> str:
    return f"image {start}" if count == 1 else f"images {start}-{start + count - 1}"


def failure_sentence(batch: Batch) -> str | None:
    """The batch's ``error`` when tasks failed for good: which images, how often tried, the exit code, the log tail."""
    failed = [t for t in batch.tasks if t.state == "failed"]
    if not failed:
        return None
    parts = []
    for task in failed[:_LISTED_FAILURES]:
        how = f"exit code {task.exit_code}" if task.exit_code is not None else "no exit code (the process was lost)"
        part = f"{_images(task.start, task.count)} (render task {task.index}) failed {task.attempts} time(s), last " \
               f"with {how}"
        if task.log_tail:
            part += f"; end of its log:\n{task.log_tail}"
        parts.append(part)
    more = len(failed) - len(parts)
    done = sum(t.count for t in batch.tasks if t.state == "done")
    text = "; ".join(parts) + (f"; and {more} more task(s) failed" if more else "")
    return (f"{text}\n{done} of {batch.count} images were rendered and are kept. Read the log above, fix its cause "
            "(the spec, the cluster's render environment, the time or memory limit) and submit the batch again.")


def _missing_sentence(batch: Batch) -> str:
    return (f"every render task ended successfully but only {batch.images_done} of {batch.count} images reached the "
            "service's dataset folder; check the batch folder on the cluster and submit the batch again")


class Orchestrator:
    """Drives the batches of one backend; every method is safe to repeat (Celery may run a task twice)."""

    def __init__(self, db: Database, backend: Backend, max_retries: int,
                 keepalive: Callable[[], object] = lambda: None) -> None:
        """``keepalive`` is called between batches (the worker extends its lock on the backend there)."""
        self.db = db
        self.backend = backend
        self.max_retries = max_retries
        self.keepalive = keepalive

    # -- the periodic step ---------------------------------------------------------------------------------------
    def step(self, batch_ids: Collection[str] | None = None) -> StepReport:
        """Follow every active batch of the backend (or only ``batch_ids``) one step."""
        report = StepReport()
        with self.db.session() as session:
            views = [view_of(b) for b in active_batches(session, self.backend.name)
                     if batch_ids is None or b.id in batch_ids]
            in_flight = self._in_flight(session)
        report.batches = len(views)
        if not views:
            return report
        followed = [v for v in views if any(t.handed_over for t in v.tasks)]
        try:
            seen = self.backend.observe(followed) if followed else {}
        except TransportError as exc:
            log.warning("%s backend unreachable, batches left as they were: %s", self.backend.name, exc)
            report.reachable = False
            report.problems.append(str(exc))
            return report
        for view in views:
            self.keepalive()
            try:
                in_flight += self._advance(view, seen.get(view.id, {}), in_flight, report)
            except TransportError as exc:
                log.warning("%s backend unreachable while following batch %s: %s", self.backend.name, view.id, exc)
                report.reachable = False
                report.problems.append(str(exc))
                break  # the rest would meet the same wall; they are left as they were
        return report

    def _in_flight(self, session: Session) -> int:
        """Tasks of the backend handed over and not finished (what ``max_in_flight`` limits)."""
        return session.scalar(
            select(func.count()).select_from(RenderTask).join(Batch).where(
                Batch.backend == self.backend.name, Batch.state.in_(("queued", "submitted", "running")),
                RenderTask.state.in_(("pending", "running")),
                (RenderTask.job_id.is_not(None)) | (RenderTask.pid.is_not(None)))) or 0

    def _advance(self, view: BatchView, seen: dict[int, Observation], in_flight: int, report: StepReport) -> int:
        """One step of one batch; returns how many tasks it handed over. May raise TransportError (nothing lost:
        what was recorded before stays, the rest waits for the next step)."""
        with self.db.session() as session:
            batch = session.get(Batch, view.id)
            if batch is None or batch.state in FINAL_BATCH_STATES:
                return 0
            for task in batch.tasks:
                apply_observation(task, seen.get(task.index), batch.cancel_requested, self.max_retries)
            cancel = batch.cancel_requested
            live = [t for t in batch.tasks if t.state in ("pending", "running") and _handed_over(t)]
            waiting = [t for t in batch.tasks if t.state == "pending" and not _handed_over(t)]
            view = view_of(batch)
        if cancel and live:
            self.backend.stop(view)
        launched = 0
        if not cancel and waiting:
            room = len(waiting) if self.backend.max_in_flight is None else self.backend.max_in_flight - in_flight
            chosen = [t for t in view.tasks if t.state == "pending" and not t.handed_over][:max(room, 0)]
            if chosen:
                launched = self._launch(view, chosen)
                report.launched += launched
        try:
            images = self.backend.collect(view)
        except TransportError as exc:
            report.reachable = False
            report.problems.append(str(exc))
            images = None
        self._settle(view.id, images)
        return launched

    def _launch(self, view: BatchView, tasks: Sequence[TaskView]) -> int:
        try:
            launch = self.backend.launch(view, tasks)
        except IncompatibleCluster as exc:  # the cluster's semcoat is not the service's: its sentence says so
            self._fail(view.id, str(exc))
            return 0
        except SubmissionError as exc:
            # the cluster refused the job itself (bad partition, account, limits): retrying the same job cannot help
            self._fail(view.id, f"the cluster refused the batch's job: {exc}")
            return 0
        with self.db.session() as session:
            batch = session.get(Batch, view.id)
            if batch is None:
                return 0
            for task in batch.tasks:
                handle = launch.handles.get(task.index)
                if handle is None or _handed_over(task) or task.state != "pending":
                    continue
                task.job_id, task.array_task_id, task.pid = handle.job_id, handle.array_task_id, handle.pid
                task.attempts += 1
                task.exit_code = None
            if launch.job_id is not None and launch.job_id not in batch.slurm_job_ids:
                batch.slurm_job_ids = [*batch.slurm_job_ids, launch.job_id]
            if launch.remote_dir is not None:
                batch.remote_dir = launch.remote_dir
            batch.submitted_at = batch.submitted_at or utc_now()
        return len(launch.handles)

    def _settle(self, batch_id: str, images: int | None) -> None:
        """Count images and move the batch along the state machine (success waits until every image is here)."""
        with self.db.session() as session:
            batch = session.get(Batch, batch_id)
            if batch is None or batch.state in FINAL_BATCH_STATES:
                return
            if images is not None:
                batch.images_done = images
            states = [t.state for t in batch.tasks]
            if batch.cancel_requested:  # a handed-over task still pending may yet start: wait for it to leave
                states = ["running" if t.state == "pending" and _handed_over(t) else t.state for t in batch.tasks]
            counts = count_tasks(states, (t.attempts for t in batch.tasks))
            waiting = any(t.state == "pending" and not _handed_over(t) for t in batch.tasks)
            wanted = next_batch_state(batch.state, counts, all_submitted=not waiting,
                                      cancel_requested=batch.cancel_requested)
            if wanted == "succeeded" and batch.images_done < batch.count:
                if images is None:  # the cluster did not answer the collection: succeed once it has
                    wanted = "running"
                else:
                    wanted, batch.error = "failed", _missing_sentence(batch)
            if wanted == "failed" and batch.error is None:
                batch.error = failure_sentence(batch)
            if wanted in ("running", "succeeded", "failed") and batch.started_at is None:
                batch.started_at = utc_now()
            if wanted in FINAL_BATCH_STATES:
                batch.finished_at = utc_now()
            batch.state = wanted

    def _fail(self, batch_id: str, error: str) -> None:
        with self.db.session() as session:
            batch = session.get(Batch, batch_id)
            if batch is None or batch.state in FINAL_BATCH_STATES:
                return
            for task in batch.tasks:
                if task.state == "pending" and not _handed_over(task):
                    task.state = "failed"
            batch.error, batch.state, batch.finished_at = error, "failed", utc_now()

    # -- actions the API asks for --------------------------------------------------------------------------------
    def cancel(self, batch_id: str) -> StepReport:
        """Cancel a batch: mark it (if the API has not), stop what runs, and follow it one step.

        The batch becomes ``cancelled`` once nothing of it runs; finished images stay.
        """
        with self.db.session() as session:
            batch = session.get(Batch, batch_id)
            if batch is None or batch.state in FINAL_BATCH_STATES:
                return StepReport()
            batch.cancel_requested = True
            view = view_of(batch)
        report = StepReport(batches=1)
        try:
            self.backend.stop(view)
        except TransportError as exc:
            report.reachable = False
            report.problems.append(str(exc))
            return report
        return self.step([batch_id])

    def collect(self, batch_id: str) -> int | None:
        """Collect a batch's complete samples now; return how many the service holds (None: unknown batch)."""
        with self.db.session() as session:
            batch = session.get(Batch, batch_id)
            if batch is None:
                return None
            view = view_of(batch)
        images = self.backend.collect(view)
        with self.db.session() as session:
            batch = session.get(Batch, batch_id)
            if batch is not None:
                batch.images_done = images
        return images

