"""docker/healthcheck.py, the health checks compose runs in the API and worker containers: against a stand-in API
for each way /health can go wrong, then (integration) the compose file's own commands against a real `semcoat serve`
and `semcoat worker` on the stack's Redis, and again after the worker is killed."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

from tests.docker.composefile import SERVICES, environment

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "docker" / "healthcheck.py"
HEALTHY = {"status": "degraded", "version": "0.1.0", "workers": 0, "backends": {},
           "database": {"reachable": True, "detail": "the database answers"},
           "redis": {"reachable": True, "detail": "Redis answers"}}


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("semcoat_docker_healthcheck", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


healthcheck = _load()


class _Answers:
    status = 200
    body = b""


@pytest.fixture
def fake_api() -> Iterator[tuple[str, type[_Answers]]]:
    """A stand-in API on loopback answering /api/v1/health with whatever the test sets."""
    class answers(_Answers):  # noqa: N801 (one per test)
        pass

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(answers.status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(answers.body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/health", answers
    server.shutdown()
    server.server_close()


def test_api_healthy_when_database_and_redis_answer(fake_api: tuple[str, type[_Answers]],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    url, answers = fake_api
    answers.body = json.dumps(HEALTHY).encode()
    assert healthcheck.main(["api", "--url", url]) == 0  # 'degraded' (no worker yet) is still a live API
    assert "healthy: API up (degraded, 0 worker(s))" in capsys.readouterr().out


@pytest.mark.parametrize(("status", "body", "reason"), [
    (200, {**HEALTHY, "redis": {"reachable": False, "detail": "Redis does not answer: refused"}},
     "the API's redis is not reachable: Redis does not answer: refused"),
    (200, {**HEALTHY, "database": {"reachable": False, "detail": "the database does not answer"}},
     "the API's database is not reachable"),
    (200, {"status": "ok"}, "the API's database is not reachable: missing from the report"),
    (200, [1, 2], "answered list, not a health report"),
    (500, {"detail": "boom"}, "answered HTTP 500"),
])
def test_api_unhealthy_says_why(fake_api: tuple[str, type[_Answers]], capsys: pytest.CaptureFixture[str],
                                status: int, body: object, reason: str) -> None:
    url, answers = fake_api
    answers.status, answers.body = status, json.dumps(body).encode()
    assert healthcheck.main(["api", "--url", url]) == 1
    assert reason in capsys.readouterr().err


def test_api_not_json_or_not_listening(fake_api: tuple[str, type[_Answers]],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    url, answers = fake_api
    answers.body = b"<html>"
    assert healthcheck.main(["api", "--url", url]) == 1
    assert "not JSON" in capsys.readouterr().err
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    assert healthcheck.main(["api", "--url", f"http://127.0.0.1:{closed}/api/v1/health"]) == 1
    assert "does not answer" in capsys.readouterr().err


def test_worker_names_are_matched_by_host() -> None:
    replies = [{"semcoat-7@c0ffee": {"ok": "pong"}}, {"semcoat-9@other": {"ok": "pong"}}]
    assert healthcheck.worker_names_on(replies, "c0ffee") == ["semcoat-7@c0ffee"]
    assert healthcheck.worker_names_on(replies, "c0f") == []


def test_worker_without_a_broker_is_unhealthy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("SEMCOAT_REDIS_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert healthcheck.main(["worker"]) == 1
    assert "SEMCOAT_REDIS_URL is not set" in capsys.readouterr().err
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("SEMCOAT_REDIS_URL", f"redis://127.0.0.1:{closed}/0")
    started = time.monotonic()
    assert healthcheck.main(["worker"]) == 1
    assert "does not answer" in capsys.readouterr().err
    assert time.monotonic() - started < 10  # well inside the compose check's timeout


# -- the compose file's own commands against the real service --------------------------------------------------------
def _compose_check(name: str, url: str | None = None) -> list[str]:
    """The service's health check from compose.yaml, with the image's paths replaced by this checkout's."""
    test = list(SERVICES[name]["healthcheck"]["test"][1:])
    assert test[:2] == ["/opt/semcoat/.venv/bin/python", "/opt/semcoat/docker/healthcheck.py"], test
    test[:2] = [sys.executable, str(SCRIPT)]
    if url is not None:
        assert test[-1] == "http://127.0.0.1:8000/api/v1/health", test
        test[-1] = url
    return test


def _until_healthy(argv: list[str], env: dict[str, str], timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        ran = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, cwd=REPO)
        if ran.returncode == 0 or time.monotonic() > deadline:
            return ran
        time.sleep(0.5)


@pytest.mark.integration
def test_compose_health_checks_on_a_real_api_and_worker(stack_env: dict[str, str], tmp_path: Path) -> None:
    from tests.integration.service import Service

    assert environment("worker")["SEMCOAT_REDIS_URL"].startswith("redis://")  # what the real check reads
    service = Service(stack_env, tmp_path).start()
    try:
        api = _until_healthy(_compose_check("api", f"{service.url}/api/v1/health"), service.env)
        assert api.returncode == 0, api.stderr
        worker = _until_healthy(_compose_check("worker"), service.env, timeout_s=90)  # Celery: 10-30 s here
        assert worker.returncode == 0, worker.stderr + service.worker_log()
        assert f"@{socket.gethostname()} answers" in worker.stdout
        service.kill_worker()
        gone = subprocess.run(_compose_check("worker"), env=service.env, capture_output=True, text=True, timeout=60,
                              cwd=REPO)
        assert gone.returncode == 1 and f"no worker on {socket.gethostname()} answered" in gone.stderr
    finally:
        service.stop()
