"""The Celery tasks, registered under the names of :mod:`render_service.queue`: thin and idempotent, each one
lock, one call of :class:`render_service.orchestrate.Orchestrator` (batches) or
:class:`render_service.train_orchestrate.TrainingOrchestrator` (trainings).

A task that finds its backend busy (another worker or thread holds the lock) is retried shortly (submit, cancel,
collect) or dropped (a periodic poll: the one running does the work, and another comes).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from render_service.orchestrate import StepReport
from render_service.queue import (
    CANCEL_BATCH,
    CANCEL_TRAINING,
    COLLECT_BATCH,
    POLL_BACKEND,
    SUBMIT_BATCH,
    SUBMIT_TRAINING,
)
from render_service.worker.runtime import runtime

log = logging.getLogger(__name__)

BUSY_RETRY_S = 0.5
BUSY_RETRIES = 120


def _on_batch(task: Any, batch_id: str, action: str) -> None:
    rt = runtime()
    backend = rt.backend_of(batch_id)
    if backend is None:
        log.warning("%s: no batch %s (deleted?); nothing to do", action, batch_id)
        return
    with rt.orchestrator(backend) as orchestrator:
        if orchestrator is None:
            raise task.retry(countdown=BUSY_RETRY_S, max_retries=BUSY_RETRIES)
        if action == "submit":
            rt.record_health(backend, orchestrator.step([batch_id]))
        elif action == "cancel":
            orchestrator.cancel(batch_id)
        else:
            orchestrator.collect(batch_id)


@shared_task(name=SUBMIT_BATCH, bind=True)
def submit_batch(self: Any, batch_id: str) -> None:
    """Hand a queued batch to its backend (a repeat finds the job it submitted and never submits twice)."""
    _on_batch(self, batch_id, "submit")


@shared_task(name=CANCEL_BATCH, bind=True)
def cancel_batch(self: Any, batch_id: str) -> None:
    """Stop a batch (scancel, or SIGTERM to the local processes); it becomes cancelled once nothing of it runs."""
    _on_batch(self, batch_id, "cancel")


@shared_task(name=COLLECT_BATCH, bind=True)
def collect_batch(self: Any, batch_id: str) -> None:
    """Fetch a batch's complete samples into the service's dataset folder now."""
    _on_batch(self, batch_id, "collect")


def _on_training(task: Any, training_id: str, action: str) -> None:
    rt = runtime()
    backend = rt.training_backend_of(training_id)
    if backend is None:
        log.warning("%s: no training %s (deleted?); nothing to do", action, training_id)
        return
    with rt.locked(backend) as lock:
        if lock is None:
            raise task.retry(countdown=BUSY_RETRY_S, max_retries=BUSY_RETRIES)
        orchestrator = rt.training_orchestrator(backend, keepalive=lock.reacquire)
        if action == "submit":
            rt.record_health(backend, orchestrator.step([training_id]))
        else:
            orchestrator.cancel(training_id)


@shared_task(name=SUBMIT_TRAINING, bind=True)
def submit_training(self: Any, training_id: str) -> None:
    """Hand a queued training's job to its backend (a repeat finds the job it submitted and never submits twice)."""
    _on_training(self, training_id, "submit")


@shared_task(name=CANCEL_TRAINING, bind=True)
def cancel_training(self: Any, training_id: str) -> None:
    """Stop a training's job (scancel, or SIGTERM to the local processes); it becomes cancelled once it has ended."""
    _on_training(self, training_id, "cancel")


def _merged(first: StepReport, second: StepReport) -> StepReport:
    """One report of a poll that followed batches, then trainings."""
    return StepReport(batches=first.batches + second.batches, launched=first.launched + second.launched,
                      reachable=first.reachable and second.reachable, problems=[*first.problems, *second.problems])


@shared_task(name=POLL_BACKEND)
def poll_backend(backend: str) -> None:
    """Follow every active batch of ``backend`` one step (one squeue for all), then every active training (one
    more), then record its health."""
    rt = runtime()
    with rt.orchestrator(backend) as orchestrator:
        if orchestrator is None:
            log.info("poll of %s skipped: another worker is polling it", backend)
            return
        report = orchestrator.step()
        trainings = rt.training_orchestrator(backend, keepalive=orchestrator.keepalive).step()
        rt.record_health(backend, _merged(report, trainings))
