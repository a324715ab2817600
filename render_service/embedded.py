"""The embedded default: ``semcoat serve`` with no configuration runs the API, its own Redis (a ``redis-server``
child on a free loopback port, nothing saved to disk) and one local worker (``semcoat worker`` as a child), with
SQLite in the data folder and a token for the first user in ``<data_dir>/token`` (mode 0600).

Every child runs in its own session (Ctrl-C in the terminal reaches only ``serve``, which stops the worker first
and Redis last) and is asked by the kernel to stop if ``serve`` itself dies (``PR_SET_PDEATHSIG``), so no child
outlives it.
"""

from __future__ import annotations

import contextlib
import ctypes
import getpass
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from render_service.db.session import Database
from render_service.settings import Settings
from render_service.tokens import OWNER_PATTERN, create_token
from semcoat.errors import SemcoatError

log = logging.getLogger(__name__)

REDIS_READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
WORKER_MODULE = "render_service.commands.worker"
TOKEN_FILE = "token"
_PR_SET_PDEATHSIG = 1


class EmbeddedError(SemcoatError):
    """The embedded default cannot start a part (Redis, the worker); the message says what to install or set."""


class StopRequested(Exception):
    """SIGINT or SIGTERM arrived; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum


@dataclass
class Child:
    """A process ``serve`` started and must stop."""

    name: str
    process: subprocess.Popen[bytes]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux; elsewhere nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(name: str, argv: list[str], env: dict[str, str] | None = None, log_file: Path | None = None,
          cwd: Path | None = None) -> Child:
    """Start ``argv`` as a child in its own session that dies with this process; output to ``log_file`` if given;
    in folder ``cwd`` if given."""
    output = open(log_file, "ab") if log_file is not None else None
    try:
        process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=output,
                                   stderr=subprocess.STDOUT if output else None, start_new_session=True,
                                   preexec_fn=_die_with_parent, cwd=cwd)  # only prctl, before exec
    finally:
        if output is not None:
            output.close()
    return Child(name, process)


def stop(child: Child, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, wait up to ``timeout_s`` seconds, then SIGKILL; always reaps the process."""
    if child.process.poll() is None:
        child.process.terminate()
        try:
            child.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("%s (pid %d) did not stop in %.0f s; killing it", child.name, child.process.pid, timeout_s)
            child.process.kill()
    child.process.wait()


def _redis_answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
        conn.sendall(b"PING\r\n")
        return conn.recv(16).startswith(b"+PONG")
    return False


def start_redis(data_dir: Path) -> tuple[Child, str]:
    """A ``redis-server`` on a free loopback port, saving nothing; returns it and its URL once it answers PING."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise EmbeddedError("cannot start the embedded Redis: `redis-server` is not on PATH; install it "
                            "(Debian: apt-get install redis-server, or scripts/setup.sh) or set SEMCOAT_REDIS_URL")
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    child = spawn("redis-server", [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                   "--appendonly", "no", "--dir", str(data_dir), "--protected-mode", "yes"],
                  log_file=logs / "redis.log")
    deadline = time.monotonic() + REDIS_READY_TIMEOUT_S
    while not _redis_answers(port):
        if child.process.poll() is not None or time.monotonic() > deadline:
            stop(child)
            tail = (logs / "redis.log").read_text(errors="replace")[-1500:]
            raise EmbeddedError(f"the embedded Redis did not start on 127.0.0.1:{port}; its log ends:\n{tail}")
        time.sleep(0.02)
    return child, f"redis://127.0.0.1:{port}/0"


def worker_available() -> bool:
    """Whether ``semcoat worker`` exists in this installation."""
    return importlib.util.find_spec(WORKER_MODULE) is not None


def start_worker(settings: Settings) -> Child:
    """One ``semcoat worker`` (local backend) with this process's environment plus the Redis URL and data folder."""
    if not worker_available():
        raise EmbeddedError(f"cannot start the local worker: {WORKER_MODULE} is not installed in this semcoat, so "
                            "batches will stay 'queued'; install the complete service or run `semcoat worker` "
                            "elsewhere on the same SEMCOAT_REDIS_URL")
    env = dict(os.environ, SEMCOAT_REDIS_URL=str(settings.redis_url), SEMCOAT_DATA_DIR=str(settings.data_dir))
    # The worker's banner and per-poll lines would bury the API's own; they go to a log in the data folder.
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return spawn("worker", [sys.executable, "-m", "semcoat_cli", "worker", "--loglevel", "WARNING"], env=env,
                 log_file=logs / "worker.log")


def default_owner() -> str:
    """The embedded default's first user: the login name when it is a valid user name, else ``user``."""
    with contextlib.suppress(OSError, KeyError):
        name = getpass.getuser()
        if OWNER_PATTERN.fullmatch(name):
            return name
    return "user"


def ensure_token(database: Database, data_dir: Path) -> tuple[Path, bool]:
    """``<data_dir>/token`` (mode 0600) holding a token for :func:`default_owner`, made on first start; returns the
    path and whether it was made now. The token is written only there, never printed or logged."""
    path = data_dir / TOKEN_FILE
    if path.exists():
        return path, False
    data_dir.mkdir(parents=True, exist_ok=True)
    with database.session() as session:
        _, token = create_token(session, default_owner())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return path, True


def _watch(child: Child, stopping: threading.Event) -> None:
    """Log loudly when a child dies while ``serve`` is still running."""
    code = child.process.wait()
    if not stopping.is_set():
        log.error("%s (pid %d) exited with code %d; batches will not progress. Restart `semcoat serve`",
                  child.name, child.process.pid, code)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`StopRequested` for the block (uvicorn re-raises them after its own
    graceful shutdown, so cleanup after the server still runs)."""
    def handler(signum: int, _frame: object) -> None:
        raise StopRequested(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def serve(settings: Settings, host: str, port: int, echo: Callable[[str], None]) -> None:
    """Run the API on ``host:port`` until SIGINT/SIGTERM (raised as StopRequested); with no SEMCOAT_REDIS_URL also
    the embedded Redis, one worker and the first user's token. Every child is stopped before this returns."""
    import uvicorn

    from render_service.api import create_app

    children: list[Child] = []
    stopping = threading.Event()
    with stop_on_signals():
        try:
            database = Database(settings.database)  # migrated here, before any worker opens it
            if settings.redis_url is None:
                redis_child, url = start_redis(settings.data_dir)
                children.append(redis_child)
                settings = settings.model_copy(update={"redis_url": url})
                echo(f"embedded Redis on {url} (pid {redis_child.process.pid})")
                token_path, made = ensure_token(database, settings.data_dir)
                echo(f"{'created a token' if made else 'token'} for the first user in {token_path} "
                     "(send it as 'Authorization: Bearer <token>'; the semcoat client reads it from there)")
                try:
                    worker = start_worker(settings)
                except EmbeddedError as exc:
                    echo(f"warning: {exc}")
                else:
                    children.append(worker)
                    threading.Thread(target=_watch, args=(worker, stopping), daemon=True).start()
                    worker_log = settings.data_dir / "logs" / "worker.log"
                    echo(f"local worker started (pid {worker.process.pid}; its log: {worker_log})")
            app = create_app(settings, database=database)
            echo(f"API on http://{host}:{port}/api/v1 (OpenAPI: http://{host}:{port}/openapi.json)")
            server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info", access_log=False))
            server.run()
            if not server.started:
                raise EmbeddedError(f"the API could not listen on {host}:{port} (in use?); choose --port")
        finally:
            stopping.set()
            for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the cleanup short
                signal.signal(sig, signal.SIG_IGN)
            for child in reversed(children):
                stop(child)
