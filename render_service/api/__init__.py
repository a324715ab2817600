"""The REST API (FastAPI) under ``/api/v1``: batches, their files, health. :func:`create_app` builds it."""

from render_service.api.app import API_PREFIX, create_app
from render_service.api.context import ApiContext

__all__ = ["API_PREFIX", "ApiContext", "create_app"]
