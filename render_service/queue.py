"""What the API asks of the workers: the Celery task names and how to enqueue them.

The API never imports the tasks' code (it needs no paramiko, no render node); it sends tasks by name through the
broker. The names are the contract with :mod:`render_service.worker.tasks`, which registers tasks under them.
"""

from __future__ import annotations

from typing import Protocol

SUBMIT_BATCH = "semcoat.submit_batch"
CANCEL_BATCH = "semcoat.cancel_batch"
POLL_BACKEND = "semcoat.poll_backend"
COLLECT_BATCH = "semcoat.collect_batch"
SUBMIT_TRAINING = "semcoat.submit_training"
CANCEL_TRAINING = "semcoat.cancel_training"


class TaskSender(Protocol):
    """What the API needs of a Celery app: sending a task by name (a fake in unit tests)."""

    def send_task(self, name: str, args: tuple[object, ...] = ...) -> object:
        """Queue task ``name`` with ``args``."""
        ...


def enqueue_submit(sender: TaskSender, batch_id: str) -> None:
    """Ask a worker to hand batch ``batch_id`` to its backend (idempotent: a repeat never submits twice)."""
    sender.send_task(SUBMIT_BATCH, args=(batch_id,))


def enqueue_cancel(sender: TaskSender, batch_id: str) -> None:
    """Ask a worker to stop batch ``batch_id`` (scancel, or stop the local processes)."""
    sender.send_task(CANCEL_BATCH, args=(batch_id,))


def enqueue_submit_training(sender: TaskSender, training_id: str) -> None:
    """Ask a worker to hand training ``training_id``'s job to its backend (a repeat never submits twice)."""
    sender.send_task(SUBMIT_TRAINING, args=(training_id,))


def enqueue_cancel_training(sender: TaskSender, training_id: str) -> None:
    """Ask a worker to stop training ``training_id`` (scancel, or stop the local processes)."""
    sender.send_task(CANCEL_TRAINING, args=(training_id,))
