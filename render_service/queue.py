"""What the API asks of the workers: the Celery task names and how to enqueue them.

The API never imports the tasks' code (it needs no paramiko, no render node); it sends tasks by name through the
broker. The names are the contract with :mod:`render_service.worker.tasks`, which registers tasks under them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Protocol

SUBMIT_BATCH = "semcoat.submit_batch"
CANCEL_BATCH = "semcoat.cancel_batch"
POLL_BACKEND = "semcoat.poll_backend"
COLLECT_BATCH = "semcoat.collect_batch"


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


# Backend reachability, reported by the workers and read by ``GET /health``: after each poll a worker stores what it
# found for each of its backends under ``BACKEND_HEALTH_KEY.format(backend=name)`` in the broker's Redis, as the JSON
# that :func:`backend_health_record` makes, with expiry ``BACKEND_HEALTH_TTL_S`` seconds (an expired or missing key
# reads as "no worker has reported on this backend lately").
BACKEND_HEALTH_KEY = "semcoat:health:{backend}"
BACKEND_HEALTH_TTL_S = 120


class HealthStore(Protocol):
    """What writing a backend's health needs of a Redis client (``redis.Redis`` fits; a dict-backed fake in tests)."""

    def set(self, name: str, value: str, ex: int | None = None) -> object:
        """Store ``value`` under ``name``, expiring after ``ex`` seconds."""
        ...


def backend_health_record(reachable: bool, detail: str, checked_at: float) -> str:
    """The JSON stored for one backend: ``{"reachable", "detail", "checked_at"}``; ``checked_at`` is given in Unix
    seconds and stored as ISO 8601 UTC (as :mod:`render_service.health` writes it)."""
    when = dt.datetime.fromtimestamp(checked_at, dt.UTC).isoformat()
    return json.dumps({"reachable": bool(reachable), "detail": str(detail), "checked_at": when})


def report_backend_health(store: HealthStore, backend: str, reachable: bool, detail: str, checked_at: float) -> None:
    """Store what a worker found about ``backend`` (``detail``: a sentence, e.g. why SSH failed) for ``/health``."""
    store.set(BACKEND_HEALTH_KEY.format(backend=backend), backend_health_record(reachable, detail, checked_at),
              ex=BACKEND_HEALTH_TTL_S)
