"""Health checks of the service's containers (docker/compose.yaml). Exit 0 when healthy; otherwise 1 and one line
saying why, which Docker keeps in the container's health log (`docker inspect`).

    python docker/healthcheck.py api [--url URL]   the API answers GET /api/v1/health with its database and Redis
                                                   reachable (workers are not asked for: they start after the API)
    python docker/healthcheck.py worker            a Celery worker of this host answers a ping on SEMCOAT_REDIS_URL
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import urllib.error
import urllib.request
from typing import Any

DEFAULT_API_URL = "http://127.0.0.1:8000/api/v1/health"
HTTP_TIMEOUT_S = 5.0
PING_TIMEOUT_S = 2.0


class Unhealthy(Exception):
    """The part checked is not healthy; the message says why."""


def check_api(url: str) -> str:
    """GET ``url`` (the API's /health); healthy when it answers 200 with the database and Redis reachable."""
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as answer:
            body: Any = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        raise Unhealthy(f"{url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise Unhealthy(f"{url} does not answer: {getattr(exc, 'reason', exc)}") from None
    except ValueError:
        raise Unhealthy(f"{url} answered something that is not JSON") from None
    if not isinstance(body, dict):
        raise Unhealthy(f"{url} answered {type(body).__name__}, not a health report")
    for part in ("database", "redis"):
        report = body.get(part)
        if not isinstance(report, dict) or report.get("reachable") is not True:
            detail = report.get("detail") if isinstance(report, dict) else "missing from the report"
            raise Unhealthy(f"the API's {part} is not reachable: {detail}")
    return f"API up ({body.get('status')}, {body.get('workers')} worker(s))"


def worker_names_on(replies: list[dict[str, Any]], host: str) -> list[str]:
    """Names of the workers in Celery ping ``replies`` that run on ``host`` (names are ``semcoat-PID@HOST``)."""
    return [name for reply in replies for name in reply if name.rpartition("@")[2] == host]


def check_worker(redis_url: str | None, host: str) -> str:
    """Ping the workers on ``redis_url``; healthy when one on ``host`` (this container) answers."""
    if not redis_url:
        raise Unhealthy("SEMCOAT_REDIS_URL is not set: the worker has no broker")
    import redis
    from kombu.exceptions import KombuError

    from render_service.worker.celery_app import make_celery

    try:  # a plain ping first: Celery's own connection would retry a dead broker for far longer than a check lasts
        redis.Redis.from_url(redis_url, socket_timeout=PING_TIMEOUT_S, socket_connect_timeout=PING_TIMEOUT_S).ping()
        replies = make_celery(redis_url).control.ping(timeout=PING_TIMEOUT_S) or []
    except (OSError, KombuError, redis.RedisError) as exc:
        raise Unhealthy(f"Redis at {redis_url} does not answer: {exc}") from None
    mine = worker_names_on(replies, host)
    if not mine:
        others = sorted(name for reply in replies for name in reply)
        raise Unhealthy(f"no worker on {host} answered a ping within {PING_TIMEOUT_S:.0f} s "
                        f"(answered: {', '.join(others) or 'none'})")
    return f"worker {', '.join(mine)} answers"


def main(argv: list[str] | None = None) -> int:
    """Run the check named on the command line; 0 healthy, 1 not (with the reason on stderr)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("api", "worker"))
    parser.add_argument("--url", default=DEFAULT_API_URL, help="the API's health URL (api only)")
    args = parser.parse_args(argv)
    try:
        if args.part == "api":
            line = check_api(args.url)
        else:
            from render_service.settings import SettingsError, load_settings

            try:
                redis_url = load_settings().redis_url
            except SettingsError as exc:
                raise Unhealthy(str(exc)) from None
            line = check_worker(redis_url, socket.gethostname())
    except Unhealthy as exc:
        sys.stderr.write(f"unhealthy: {exc}\n")
        return 1
    sys.stdout.write(f"healthy: {line}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
