"""``semcoat worker``: a Celery worker of the render service, with the periodic poll of each backend."""

from __future__ import annotations

import os

import typer

from semcoat_cli.errors import EXIT_USAGE, fail


def worker(concurrency: int = typer.Option(2, min=1, max=64, help="Tasks run at once (threads)."),
           loglevel: str = typer.Option("INFO", help="Celery's log level.")) -> None:
    """Run a worker: takes submit, cancel and collect tasks from Redis (SEMCOAT_REDIS_URL) and polls every
    backend every SEMCOAT_POLL_INTERVAL_S seconds."""
    from render_service.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    if settings.redis_url is None:
        raise fail("SEMCOAT_REDIS_URL is not set: a worker takes its tasks from Redis; set it to the broker the API "
                   "uses (e.g. redis://127.0.0.1:6379/0), or run `semcoat serve` alone for the embedded default",
                   EXIT_USAGE)
    from render_service.worker.celery_app import make_celery

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = make_celery(settings.redis_url, settings)
    # threads: the local backend's processes stay children of one process, and one SSH connection serves all
    app.worker_main(["worker", "--beat", "--pool=threads", f"--concurrency={concurrency}",
                     f"--loglevel={loglevel}", f"--hostname=semcoat-{os.getpid()}@%h", "--without-gossip",
                     "--without-mingle"])


def register(app: typer.Typer) -> None:
    """Add ``semcoat worker`` to the ``semcoat`` app."""
    app.command("worker")(worker)
