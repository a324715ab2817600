"""The FastAPI app: everything under ``/api/v1``, OpenAPI at ``/openapi.json``, docs at ``/docs``."""

from __future__ import annotations

from fastapi import FastAPI

from render_service.api import errors
from render_service.api.broker import make_sender
from render_service.api.context import ApiContext
from render_service.api.health import HealthProbe, RedisProbe
from render_service.api.limits import MAX_BODY_BYTES, BodyLimitMiddleware
from render_service.api.routes import batches, files, health, trainings
from render_service.dashboard import routes as dashboard_routes
from render_service.db.session import Database
from render_service.queue import TaskSender
from render_service.settings import Settings, SettingsError
from semcoat import __version__

API_PREFIX = "/api/v1"


def create_app(settings: Settings, database: Database | None = None, sender: TaskSender | None = None,
               probe: HealthProbe | None = None) -> FastAPI:
    """The API for ``settings``. Unit tests pass a database, a fake sender and a fake probe; without them the
    database at ``settings.database`` is migrated and opened, and a Celery sender and probe use
    ``settings.redis_url`` (SettingsError when it is unset)."""
    if sender is None or probe is None:
        if settings.redis_url is None:
            raise SettingsError("SEMCOAT_REDIS_URL: the API needs the workers' Redis; set it, or run "
                                "`semcoat serve` without it to start an embedded Redis")
        celery_app = make_sender(settings.redis_url)
        sender = sender if sender is not None else celery_app
        probe = probe if probe is not None else RedisProbe(settings.redis_url, celery_app)
    context = ApiContext(settings=settings, database=database or Database(settings.database), sender=sender,
                         probe=probe)
    app = FastAPI(title="semcoat render service", version=__version__,
                  description="Render synthetic SEM datasets and train segmentation models on them, on a Slurm "
                              "cluster or locally. Authenticate with "
                              "`Authorization: Bearer <token>` (from `semcoat token create NAME`).",
                  openapi_url="/openapi.json")
    app.state.context = context
    for router in (batches.router, files.router, trainings.router, health.router):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(dashboard_routes.router)  # the web dashboard at / (render_service/dashboard)
    errors.install(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    return app
