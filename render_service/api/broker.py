"""The API's own small Celery app: it only sends tasks by name and pings workers, so it imports no worker code."""

from __future__ import annotations

from typing import Any

# Publishing gives up quickly when Redis is down, so a request fails with a 503 instead of hanging.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.0, "interval_step": 0.2, "interval_max": 0.5}


def make_sender(redis_url: str) -> Any:
    """A ``celery.Celery`` on the broker at ``redis_url`` for ``send_task`` and ``control.ping`` (JSON messages to
    Celery's default queue, which ``semcoat worker`` consumes)."""
    from celery import Celery

    app = Celery("semcoat-api", broker=redis_url, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], broker_connection_timeout=2.0,
                    broker_connection_retry_on_startup=False, task_publish_retry_policy=PUBLISH_RETRY_POLICY,
                    broker_transport_options={"socket_timeout": 2.0, "socket_connect_timeout": 2.0})
    return app
