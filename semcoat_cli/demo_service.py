"""The render service ``semcoat demo`` talks to: one that already answers at ``SEMCOAT_URL`` with a token, or the
embedded default started for the demo (``semcoat serve`` with its own Redis, API and local worker on loopback, its
data folder inside the demo's) and stopped by it.

The started service runs in its own session (Ctrl-C in the terminal reaches only the demo, which stops it in order)
and is asked by the kernel to stop should the demo itself die (``render_service.embedded.spawn``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from render_service.client import DEFAULT_URL, ServiceClient, ServiceError, default_token
from render_service.embedded import Child, free_port, spawn, stop
from semcoat.errors import SemcoatError

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
# Settings that would turn the started service into something other than the embedded default (an API alone on
# another Redis, another database or data folder): the started service never takes them from the demo's environment.
_NOT_INHERITED = ("SEMCOAT_REDIS_URL", "SEMCOAT_DATABASE_URL", "SEMCOAT_DATA_DIR", "SEMCOAT_URL", "SEMCOAT_TOKEN")
SERVE_LOG = "serve.log"


class DemoServiceError(SemcoatError):
    """The service cannot be used or started; the message says what was wrong and where its log is."""


@dataclass
class DemoService:
    """A service the demo uses: its URL and token, and (when the demo started it) the ``semcoat serve`` process,
    its data folder and log."""

    url: str
    token: str
    child: Child | None = None
    data_dir: Path | None = None
    log: Path | None = None

    @property
    def started(self) -> bool:
        """Whether the demo started this service (and so stops it)."""
        return self.child is not None

    def client(self) -> ServiceClient:
        """A REST client of this service with its token."""
        return ServiceClient(self.url, self.token)


def usable_problem(client: ServiceClient) -> str | None:
    """Why the service behind ``client`` cannot run the demo's batches, or None: it must answer, have a worker and
    take the token."""
    health = client.health()
    if health.workers < 1:
        return f"the service at {client.url} has no worker running, so batches would stay queued"
    client.batches(limit=1)  # /health is open to all: only this proves the token
    return None


def running_service() -> tuple[DemoService | None, str | None]:
    """The service at ``SEMCOAT_URL`` (default http://127.0.0.1:8000) with ``SEMCOAT_TOKEN`` (default: the embedded
    token file) when it answers, has a worker and takes the token; else None and why not (None when nothing
    answers there or there is no token).

    Raises
    ------
    DemoServiceError
        When ``SEMCOAT_URL`` is set and the service there cannot be used: the user asked for that one.
    """
    chosen = os.environ.get("SEMCOAT_URL", "").strip()
    url = (chosen or DEFAULT_URL).rstrip("/")
    token = default_token()
    if not token:
        if chosen:
            raise DemoServiceError(f"SEMCOAT_URL is {url} but no token is set: set SEMCOAT_TOKEN (from `semcoat "
                                   "token create NAME` on that service), or unset SEMCOAT_URL to let the demo start "
                                   "its own service")
        return None, None
    with ServiceClient(url, token, timeout_s=5.0) as client:
        try:
            problem = usable_problem(client)
        except ServiceError as exc:
            if not chosen and exc.status_code is None:
                return None, None  # nothing listens at the default address: start one
            problem = str(exc)
    if problem is None:
        return DemoService(url, token), None
    if chosen:
        raise DemoServiceError(f"{problem} (SEMCOAT_URL={url}); fix it, or unset SEMCOAT_URL to let the demo start "
                               "its own service")
    return None, problem


def _log_tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def start_service(data_dir: Path, echo: Callable[[str], None], timeout_s: float = START_TIMEOUT_S) -> DemoService:
    """Start ``semcoat serve`` (the embedded default) on a free loopback port with ``data_dir`` as its data folder;
    return once it answers with a worker, with the first user's token from its token file.

    Raises
    ------
    DemoServiceError
        When it exits or does not answer within ``timeout_s`` seconds (it is stopped; the message ends with its log).
    """
    data_dir = data_dir.absolute()  # the service runs inside it (cwd): a relative path would nest in itself
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / SERVE_LOG
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    env.update(SEMCOAT_DATA_DIR=str(data_dir), SEMCOAT_POLL_INTERVAL_S=env.get("SEMCOAT_POLL_INTERVAL_S", "1"),
               PYTHONUNBUFFERED="1")
    # cwd: the data folder, so no stray .env of the caller's folder changes the embedded default's settings
    child = spawn("semcoat serve", [sys.executable, "-m", "semcoat_cli", "serve", "--port", str(port)], env=env,
                  log_file=log, cwd=data_dir)
    service = DemoService(f"http://127.0.0.1:{port}", "", child, data_dir, log)
    deadline = time.monotonic() + timeout_s
    token_file = data_dir / "token"
    try:
        while True:
            if child.process.poll() is not None:
                raise DemoServiceError(f"`semcoat serve` exited with code {child.process.returncode} before it "
                                       f"answered; its log ({log}) ends:\n{_log_tail(log)}")
            if token_file.is_file():
                service.token = token_file.read_text().strip()
                with ServiceClient(service.url, service.token, timeout_s=2.0) as client:
                    try:
                        if usable_problem(client) is None:
                            echo(f"started `semcoat serve` at {service.url} (pid {child.process.pid}: its own Redis, "
                                 f"API and a local worker; data and logs in {data_dir})")
                            return service
                    except ServiceError:
                        pass  # not listening yet, or the worker has not said hello
            if time.monotonic() > deadline:
                raise DemoServiceError(f"`semcoat serve` did not answer with a worker within {timeout_s:.0f} s; its "
                                       f"log ({log}) ends:\n{_log_tail(log)}")
            time.sleep(0.25)
    except BaseException:
        stop_service(service)
        raise


def stop_service(service: DemoService, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stop a service the demo started (SIGTERM: it stops its worker and Redis, then itself); nothing for one it
    found running."""
    if service.child is not None:
        stop(service.child, timeout_s)
