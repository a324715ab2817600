"""The Celery app: Redis as broker only (state lives in the database), late acks, one task at a time per slot,
and a periodic poll per backend (Celery beat, embedded in ``semcoat worker`` with ``-B``).

The API makes the same app to send tasks by name (:mod:`render_service.queue`); it never imports the tasks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from celery import Celery

from render_service.health import configured_backends
from render_service.queue import POLL_BACKEND

if TYPE_CHECKING:
    from render_service.settings import Settings

# A message a worker took and did not acknowledge (it died) goes back to the queue after this long. Every task is
# idempotent, and the periodic poll takes up whatever a lost message would have done, so this can be short.
VISIBILITY_TIMEOUT_S = 300


def make_celery(broker_url: str, settings: Settings | None = None) -> Celery:
    """The service's Celery app on ``broker_url``.

    With ``settings`` (the worker's), the beat schedule polls each configured backend every
    ``settings.poll_interval_s`` seconds; a poll not started within one interval is dropped (the next one comes).
    """
    app = Celery("semcoat", broker=broker_url, include=["render_service.worker.tasks"])
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
        worker_hijack_root_logger=False,
        timezone="UTC",
    )
    if settings is not None:
        interval_s = settings.poll_interval_s
        app.conf.beat_schedule = {
            f"poll-{backend}": {"task": POLL_BACKEND, "schedule": interval_s, "args": (backend,),
                                "options": {"expires": max(interval_s, 1.0)}}
            for backend in configured_backends(settings.slurm_configured)
        }
        app.conf.beat_schedule_filename = str(settings.data_dir / "celerybeat-schedule")
    return app
