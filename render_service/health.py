"""Each backend's reachability as the workers last saw it, for ``GET /health``: the one record both sides use.

Workers write it into Redis after every periodic poll (key ``semcoat:health:<backend>``, JSON ``{"reachable",
"detail", "checked_at"}``, expiring after :func:`health_ttl_s`); the API reads it with :func:`read_backend_health`
or :func:`parse_backend_health`. A key that is missing means no worker has looked lately, which ``/health`` shows as
unreachable with that reason. Only ``redis`` is imported here: the API may import this module.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

HEALTH_KEY = "semcoat:health:{backend}"


class KeyValueStore(Protocol):
    """What is needed of a Redis client (``redis.Redis``): get and set with expiry."""

    def get(self, name: str) -> Any:
        """The value stored at ``name``, or None."""
        ...

    def set(self, name: str, value: str, ex: int | None = None) -> Any:
        """Store ``value`` at ``name``, expiring after ``ex`` seconds."""
        ...


@dataclass(frozen=True)
class BackendStatus:
    """A backend's reachability: ``detail`` says what was checked or what is wrong; ``checked_at`` is when (UTC)."""

    reachable: bool
    detail: str
    checked_at: dt.datetime | None = None


def health_ttl_s(poll_interval_s: float) -> int:
    """How long a report stays: ten polls, at least a minute (longer than any one poll takes)."""
    return max(60, int(10 * poll_interval_s))


def configured_backends(slurm_configured: bool) -> list[str]:
    """The backends a service runs: ``local`` always, ``slurm`` when its settings are given."""
    return ["local", "slurm"] if slurm_configured else ["local"]


def write_backend_health(store: KeyValueStore, backend: str, reachable: bool, detail: str, ttl_s: int) -> None:
    """Record a backend's reachability now (a worker calls this after each poll)."""
    record = {"reachable": reachable, "detail": detail, "checked_at": dt.datetime.now(dt.UTC).isoformat()}
    store.set(HEALTH_KEY.format(backend=backend), json.dumps(record), ex=ttl_s)


def parse_backend_health(raw: str | bytes | None) -> BackendStatus | None:
    """A stored record read back; None when it is absent or unreadable (it is rewritten at the next poll)."""
    if raw is None:
        return None
    try:
        record = json.loads(raw)
        checked_at = dt.datetime.fromisoformat(record["checked_at"])
        return BackendStatus(bool(record["reachable"]), str(record["detail"]), checked_at)
    except (ValueError, KeyError, TypeError):
        return None


def read_backend_health(store: KeyValueStore, backends: Iterable[str]) -> dict[str, BackendStatus | None]:
    """What the workers last saw of each backend (None: no worker reported on it lately, or its record is
    unreadable)."""
    return {backend: parse_backend_health(store.get(HEALTH_KEY.format(backend=backend))) for backend in backends}


def read_backend_health_from_url(redis_url: str, backends: Iterable[str]) -> dict[str, BackendStatus | None]:
    """:func:`read_backend_health` through a fresh Redis connection to ``redis_url``."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        return read_backend_health(client, backends)
    finally:
        client.close()
