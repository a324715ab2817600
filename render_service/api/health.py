"""``GET /health``: what the service depends on, each part with a sentence.

The database is checked with ``SELECT 1``; Redis with a ping; workers with Celery's ``control.ping`` (which waits
its whole timeout, so the count is cached for ``WORKER_PING_CACHE_S``); each backend's reachability is what the
workers last reported (:mod:`render_service.health`; the API never opens SSH itself).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from render_service.db.session import Database
from render_service.health import HEALTH_KEY, BackendStatus, parse_backend_health
from render_service.schemas import BackendHealth, Health

log = logging.getLogger(__name__)

WORKER_PING_TIMEOUT_S = 0.5
WORKER_PING_CACHE_S = 5.0
REDIS_TIMEOUT_S = 1.0


class HealthProbe(Protocol):
    """The parts of ``/health`` that need the broker (a fake in unit tests)."""

    def redis(self) -> BackendHealth:
        """Whether Redis answers a ping, and why not."""
        ...

    def workers(self) -> int:
        """How many Celery workers answered a ping."""
        ...

    def backend_reports(self, names: list[str]) -> dict[str, BackendStatus | None]:
        """What the workers last reported about each backend (None: nothing lately)."""
        ...


class RedisProbe:
    """The real probe: a Redis client and a Celery app on the broker at ``redis_url``."""

    def __init__(self, redis_url: str, celery_app: Any) -> None:
        import redis

        self._redis = redis.Redis.from_url(redis_url, socket_timeout=REDIS_TIMEOUT_S,
                                           socket_connect_timeout=REDIS_TIMEOUT_S)
        self._celery = celery_app
        self._lock = threading.Lock()
        self._workers: tuple[float, int] | None = None  # (monotonic time, count)

    def redis(self) -> BackendHealth:
        """Ping Redis."""
        import redis

        try:
            self._redis.ping()
        except redis.RedisError as exc:
            return BackendHealth(reachable=False, detail=f"Redis does not answer: {exc}")
        return BackendHealth(reachable=True, detail="Redis answers")

    def workers(self) -> int:
        """Workers that answered ``control.ping`` within WORKER_PING_TIMEOUT_S (cached WORKER_PING_CACHE_S)."""
        with self._lock:
            now = time.monotonic()
            if self._workers is None or now - self._workers[0] > WORKER_PING_CACHE_S:
                import redis
                from kombu.exceptions import KombuError

                try:
                    replies = self._celery.control.ping(timeout=WORKER_PING_TIMEOUT_S) or []
                except (OSError, KombuError, redis.RedisError) as exc:  # a broker failure means "no worker seen"
                    log.warning("worker ping failed: %s", exc)
                    replies = []
                self._workers = (time.monotonic(), len(replies))
            return self._workers[1]

    def backend_reports(self, names: list[str]) -> dict[str, BackendStatus | None]:
        """Read each backend's key."""
        import redis

        try:
            values = self._redis.mget([HEALTH_KEY.format(backend=n) for n in names])
        except redis.RedisError:
            return dict.fromkeys(names)
        return {n: parse_backend_health(v) for n, v in zip(names, values, strict=True)}


def database_health(database: Database) -> BackendHealth:
    """Whether the database answers ``SELECT 1``."""
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return BackendHealth(reachable=False, detail=f"the database does not answer: {type(exc).__name__}")
    return BackendHealth(reachable=True, detail="the database answers")


def backend_health(name: str, report: BackendStatus | None, now: float) -> BackendHealth:
    """One backend as ``/health`` shows it: the worker's report with its age, or why there is none."""
    if report is None:
        return BackendHealth(reachable=False, detail=f"no worker has reported on the {name} backend lately; "
                                                     "start one with `semcoat worker`")
    checked_at = report.checked_at.timestamp() if report.checked_at is not None else now
    age = max(0.0, now - checked_at)
    return BackendHealth(reachable=report.reachable, detail=f"{report.detail} (reported {age:.0f} s ago)")


def check_health(version: str, database: Database, probe: HealthProbe, backends: list[str],
                 now: float | None = None) -> Health:
    """Everything ``GET /health`` shows; ``status`` is ``ok`` only when every part is reachable and a worker
    answered. ``now``: Unix seconds (default: the clock)."""
    db = database_health(database)
    redis_health = probe.redis()
    workers = probe.workers() if redis_health.reachable else 0
    reports = probe.backend_reports(backends) if redis_health.reachable else dict.fromkeys(backends)
    clock = time.time() if now is None else now
    parts = {name: backend_health(name, reports.get(name), clock) for name in backends}
    ok = db.reachable and redis_health.reachable and workers > 0 and all(p.reachable for p in parts.values())
    return Health(status="ok" if ok else "degraded", version=version, database=db, redis=redis_health,
                  workers=workers, backends=parts)
