"""``/health``: open to all (no token), so a monitor or the add-on's "Test connection" can call it."""

from __future__ import annotations

from fastapi import APIRouter

from render_service.api.deps import ContextDep
from render_service.api.health import check_health
from render_service.schemas import Health
from semcoat import __version__

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health(context: ContextDep) -> Health:
    """Version, database, Redis, live workers and each backend's reachability as the workers last saw it.
    Always 200; ``status`` is ``degraded`` when any part is down."""
    backends = ["local", "slurm"] if context.settings.slurm_configured else ["local"]
    return check_health(__version__, context.database, context.probe, backends)
