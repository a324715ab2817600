"""Submit, follow, collect and cancel trainings: the database on one side, a training backend on the other.

The trainings' twin of :mod:`render_service.orchestrate`, built from its parts: a training is one job, recorded as a
render task is (:func:`~render_service.orchestrate.apply_observation`), whose state moves the training along the
batches' state machine (:func:`~render_service.states.next_training_state`). A training that fails is not
resubmitted (a second run would start from scratch and most likely fail the same way): it fails with its exit code
and the tail of its log. It succeeds once the finished job's outputs (``model.onnx`` among them) are in the service's
folder of the training. An unreachable cluster changes nothing: the step's report says why.

Each step also follows the progress of the running trainings (:mod:`render_service.training_progress`): the
backend looks at the logs that are due (every poll locally, throttled on Slurm) and the windows it read are folded
into each training's record; a training that succeeded gets its record from its whole collected log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from sqlalchemy import func, select

from render_service.backends.base import Observation
from render_service.backends.cluster_semcoat import IncompatibleCluster
from render_service.backends.training_base import MetricsRead, TrainingBackend, TrainingView
from render_service.db.models import Training, utc_now
from render_service.db.session import Database
from render_service.orchestrate import StepReport, apply_observation
from render_service.slurm.errors import InvalidJobSetting, SubmissionError, TransportError
from render_service.states import FINAL_BATCH_STATES, next_training_state
from render_service.training_metrics import METRICS_CSV
from render_service.training_progress import (
    config_limits,
    due,
    file_rows,
    fold,
    fold_window,
    new_record,
    with_source,
)
from render_service.training_store import ACTIVE_STATES, active_trainings

log = logging.getLogger(__name__)


@dataclass
class JobAttempt:
    """A training's job in the shape :func:`~render_service.orchestrate.apply_observation` reads and writes."""

    state: str
    attempts: int
    job_id: int | None
    pid: int | None
    exit_code: int | None
    log_tail: str | None
    array_task_id: int | None = None

    @classmethod
    def of(cls, training: Training) -> JobAttempt:
        """The job of ``training``."""
        return cls(training.job_state, training.attempts, training.job_id, training.pid, training.exit_code,
                   training.log_tail)

    def write(self, training: Training) -> None:
        """Store the job back into ``training``."""
        training.job_state, training.attempts, training.job_id = self.state, self.attempts, self.job_id
        training.pid, training.exit_code, training.log_tail = self.pid, self.exit_code, self.log_tail


def view_of_training(training: Training) -> TrainingView:
    """A plain snapshot of ``training`` (safe to use after the session ends)."""
    return TrainingView(id=training.id, config_yaml=training.config_yaml, resources_json=training.resources_json,
                        job_state=training.job_state, attempts=training.attempts, job_id=training.job_id,
                        pid=training.pid, remote_dir=training.remote_dir, cancel_requested=training.cancel_requested,
                        progress_json=training.progress_json)


def _handed_over(training: Training) -> bool:
    return training.job_id is not None or training.pid is not None


def training_failure_sentence(training: Training) -> str:
    """The training's ``error`` when its job failed: which job, the exit code, the end of its log, what to do."""
    job = f"Slurm job {training.job_id}" if training.job_id is not None else "the training process"
    how = f"exit code {training.exit_code}" if training.exit_code is not None else \
        "no exit code (the process was lost)"
    text = f"{job} failed with {how}"
    if training.log_tail:
        text += f"; end of its log:\n{training.log_tail}"
    return (f"{text}\nRead the log above, fix its cause (the config, the dataset folders, the cluster's train "
            "environment, the time or memory limit) and submit the training again.")


def _missing_sentence(training: Training) -> str:
    return ("the training job ended successfully but left no model.onnx in its outputs (the package step "
            "`semcoat train package` did not run or failed quietly); see train.log on the cluster and submit the "
            "training again")


class TrainingOrchestrator:
    """Drives the trainings of one backend; every method is safe to repeat (Celery may run a task twice)."""

    def __init__(self, db: Database, backend: TrainingBackend, keepalive: Callable[[], object] = lambda: None,
                 clock: Callable[[], float] = time.time) -> None:
        """``keepalive`` is called between trainings (the worker extends its lock on the backend there); ``clock``
        gives the time in Unix seconds (what the progress records' throttle compares)."""
        self.db = db
        self.backend = backend
        self.keepalive = keepalive
        self.clock = clock

    def step(self, training_ids: Collection[str] | None = None) -> StepReport:
        """Follow every active training of the backend (or only ``training_ids``) one step."""
        report = StepReport()
        with self.db.session() as session:
            views = [view_of_training(t) for t in active_trainings(session, self.backend.name)
                     if training_ids is None or t.id in training_ids]
            in_flight = session.scalar(select(func.count()).select_from(Training).where(
                Training.backend == self.backend.name, Training.state.in_(ACTIVE_STATES),
                Training.job_state.in_(("pending", "running")),
                Training.job_id.is_not(None) | Training.pid.is_not(None))) or 0
        report.batches = len(views)
        if not views:
            return report
        followed = [v for v in views if v.handed_over and v.job_state in ("pending", "running")]
        try:
            seen = self.backend.observe(followed) if followed else {}
        except TransportError as exc:
            log.warning("%s backend unreachable, trainings left as they were: %s", self.backend.name, exc)
            report.reachable = False
            report.problems.append(str(exc))
            return report
        for view in views:
            self.keepalive()
            try:
                in_flight += self._advance(view, seen, in_flight, report)
            except TransportError as exc:
                log.warning("%s backend unreachable while following training %s: %s", self.backend.name, view.id,
                            exc)
                report.reachable = False
                report.problems.append(str(exc))
                break
        if report.reachable:
            self._follow_progress(training_ids, report)
        return report

    def _follow_progress(self, training_ids: Collection[str] | None, report: StepReport) -> None:
        """Look at the logs of the running trainings that are due and store what they show."""
        now = self.clock()
        with self.db.session() as session:
            views = [view_of_training(t) for t in active_trainings(session, self.backend.name)
                     if (training_ids is None or t.id in training_ids) and t.job_state == "running"
                     and due(t.progress, now, self.backend.progress_interval_s)]
        if not views:
            return
        try:
            reads = self.backend.read_metrics(views)
        except TransportError as exc:
            log.warning("%s backend unreachable while reading the trainings' logs: %s", self.backend.name, exc)
            report.reachable = False
            report.problems.append(str(exc))
            return
        for view in views:
            self._store_progress(view.id, reads.get(view.id), now)

    def _store_progress(self, training_id: str, read: MetricsRead | None, now: float) -> None:
        with self.db.session() as session:
            training = session.get(Training, training_id)
            if training is None:
                return
            record = training.progress or new_record(config_limits(training.config_yaml))
            if read is None or read.window is None:  # nothing logged yet, or nothing new
                training.progress = with_source(record, now)
            else:
                training.progress = with_source(fold_window(record, read.window), now, read.size, read.mtime)

    def _final_progress(self, training: Training) -> None:
        """A succeeded training's record from its whole collected log (streamed: exact, whatever its length)."""
        path = self.backend.trainings_dir / training.id / METRICS_CSV
        try:
            info = path.stat()
            with open(path, encoding="utf-8", errors="replace", newline="") as handle:
                names, rows = file_rows(handle)
                record = fold(training.progress, names, rows)
        except OSError:
            return  # a package without its log: the last record read while it ran stays
        training.progress = with_source(record, self.clock(), info.st_size, info.st_mtime)

    def _advance(self, view: TrainingView, seen: dict[str, Observation], in_flight: int,
                 report: StepReport) -> int:
        """One step of one training; returns 1 when its job was handed over now. May raise TransportError."""
        with self.db.session() as session:
            training = session.get(Training, view.id)
            if training is None or training.state in FINAL_BATCH_STATES:
                return 0
            job = JobAttempt.of(training)
            apply_observation(job, seen.get(view.id), training.cancel_requested, max_retries=0)
            job.write(training)
            view = view_of_training(training)
        live = view.handed_over and view.job_state in ("pending", "running")
        if view.cancel_requested and live:
            self.backend.stop(view)
        launched = 0
        if not view.cancel_requested and view.job_state == "pending" and not view.handed_over:
            room = self.backend.max_in_flight
            if room is None or in_flight < room:
                launched = self._launch(view)
                report.launched += launched
        collected: bool | None = None
        if view.job_state == "done":
            try:
                collected = self.backend.collect(view)
            except TransportError as exc:
                report.reachable = False
                report.problems.append(str(exc))
        self._settle(view.id, collected)
        return launched

    def _launch(self, view: TrainingView) -> int:
        try:
            launch = self.backend.launch(view)
        except IncompatibleCluster as exc:  # the cluster's semcoat is not the service's: its sentence says so
            self._fail(view.id, str(exc))
            return 0
        except (SubmissionError, InvalidJobSetting) as exc:
            # refused as it is (bad partition, account, limits): submitting the same job again cannot help
            self._fail(view.id, f"the cluster refused the training's job: {exc}")
            return 0
        with self.db.session() as session:
            training = session.get(Training, view.id)
            if training is None or _handed_over(training) or training.job_state != "pending":
                return 0
            training.job_id, training.pid = launch.handle.job_id, launch.handle.pid
            training.attempts += 1
            training.exit_code = None
            if launch.remote_dir is not None:
                training.remote_dir = launch.remote_dir
            training.submitted_at = training.submitted_at or utc_now()
        return 1

    def _settle(self, training_id: str, collected: bool | None) -> None:
        """Move the training along the state machine (success waits until its outputs are collected)."""
        with self.db.session() as session:
            training = session.get(Training, training_id)
            if training is None or training.state in FINAL_BATCH_STATES:
                return
            wanted = next_training_state(training.state, training.job_state, training.attempts,
                                         _handed_over(training), training.cancel_requested)
            if wanted == "succeeded" and not collected:
                if collected is None:  # the cluster did not answer the collection: succeed once it has
                    wanted = "running"
                else:
                    wanted, training.error = "failed", _missing_sentence(training)
            if wanted == "failed" and training.error is None:
                training.error = training_failure_sentence(training)
            if wanted in ("running", "succeeded", "failed") and training.started_at is None:
                training.started_at = utc_now()
            if wanted in FINAL_BATCH_STATES:
                training.finished_at = utc_now()
            if wanted == "succeeded":
                self._final_progress(training)
            training.state = wanted

    def _fail(self, training_id: str, error: str) -> None:
        with self.db.session() as session:
            training = session.get(Training, training_id)
            if training is None or training.state in FINAL_BATCH_STATES:
                return
            if training.job_state == "pending" and not _handed_over(training):
                training.job_state = "failed"
            training.error, training.state, training.finished_at = error, "failed", utc_now()

    def cancel(self, training_id: str) -> StepReport:
        """Cancel a training: mark it (if the API has not), stop its job, and follow it one step; it becomes
        ``cancelled`` once its job has left the cluster's queue."""
        with self.db.session() as session:
            training = session.get(Training, training_id)
            if training is None or training.state in FINAL_BATCH_STATES:
                return StepReport()
            training.cancel_requested = True
            view = view_of_training(training)
        report = StepReport(batches=1)
        try:
            self.backend.stop(view)
        except TransportError as exc:
            report.reachable = False
            report.problems.append(str(exc))
            return report
        return self.step([training_id])
