"""The render service as its users run it, for integration tests: ``semcoat serve`` (API only) and ``semcoat
worker`` as separate processes on the real stack (its Redis, Slurm and sshd), with a temporary data folder."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from tests.conftest import REPO

SEMCOAT = [sys.executable, "-m", "semcoat_cli"]
FINAL = ("succeeded", "failed", "cancelled")


_REDIS_DBS = itertools.cycle(range(1, 16))  # database 0 is the stack's own


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Service:
    """One API and one worker sharing a data folder and a Redis database of their own (so tests do not see each
    other's queued tasks). ``worker_env`` adds settings for the worker only (setup lines, a known_hosts file)."""

    def __init__(self, stack_env: dict[str, str], data_dir: Path, worker_env: dict[str, str] | None = None) -> None:
        # Services alive at the same time (a module's and a test's own) must not share a database: a worker's health
        # report would show in the other's /health. Hand them out in turn, and empty each before use (reports and
        # queued tasks of an earlier run linger for minutes).
        redis_db = next(_REDIS_DBS)
        base = stack_env["SEMCOAT_REDIS_URL"].rsplit("/", 1)[0]
        redis.Redis.from_url(f"{base}/{redis_db}").flushdb()
        self.env = {**os.environ, **stack_env, "SEMCOAT_REDIS_URL": f"{base}/{redis_db}",
                    "SEMCOAT_DATA_DIR": str(data_dir), "SEMCOAT_POLL_INTERVAL_S": "0.5",
                    "SEMCOAT_SLURM_TIME_LIMIT": "5", "SEMCOAT_SLURM_CPUS_PER_TASK": "1", "PYTHONUNBUFFERED": "1"}
        self.worker_env = {**self.env, **(worker_env or {})}
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.token = ""
        self.logs = data_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self._worker_starts = 0

    def start(self) -> Service:
        """Start both processes, make a token for ``alice`` and wait until the API answers."""
        made = subprocess.run([*SEMCOAT, "token", "create", "alice"], env=self.env, capture_output=True, text=True,
                              cwd=REPO, timeout=60)
        assert made.returncode == 0, made.stderr
        self.token = made.stdout.split()[-1]
        with open(self.logs / "api.log", "wb") as log:
            self.api = subprocess.Popen([*SEMCOAT, "serve", "--port", str(self.port)], env=self.env, cwd=REPO,
                                        stdout=log, stderr=subprocess.STDOUT)
        self.start_worker()
        self._wait_for_api(self.logs / "api.log")
        return self

    def _wait_for_api(self, log: Path, timeout_s: float = 30) -> None:
        """Wait until the API answers /health; fail with its log if it exits or stays silent."""
        assert self.api is not None
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.api.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)

    def restart_api(self) -> None:
        """Stop the API (SIGTERM) and start it again on the same port and data folder; wait until it answers."""
        assert self.api is not None
        self.api.terminate()
        self.api.wait(timeout=20)
        with open(self.logs / "api-restarted.log", "wb") as log:
            self.api = subprocess.Popen([*SEMCOAT, "serve", "--port", str(self.port)], env=self.env, cwd=REPO,
                                        stdout=log, stderr=subprocess.STDOUT)
        self._wait_for_api(self.logs / "api-restarted.log")

    def start_worker(self) -> None:
        """Start (or start again) the worker."""
        self._worker_starts += 1
        with open(self.logs / f"worker-{self._worker_starts}.log", "wb") as log:
            self.worker = subprocess.Popen([*SEMCOAT, "worker", "--concurrency", "2", "--loglevel", "INFO"],
                                           env=self.worker_env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True)

    def kill_worker(self) -> None:
        """SIGKILL the worker and all it started (Celery's beat process too), as a machine crash would."""
        assert self.worker is not None
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait(timeout=10)

    def worker_log(self) -> str:
        """Every worker start's log, for assertion messages."""
        return "\n".join(p.read_text(errors="replace")[-6000:] for p in sorted(self.logs.glob("worker-*.log")))

    def stop(self) -> None:
        """Stop both (SIGTERM, then SIGKILL after 10 s)."""
        for proc, group in ((self.worker, True), (self.api, False)):
            if proc is None or proc.poll() is not None:
                continue
            if group:
                os.killpg(proc.pid, signal.SIGTERM)
            else:
                proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                if group:
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    proc.kill()
                proc.wait(timeout=10)

    # -- HTTP ----------------------------------------------------------------------------------------------------
    def client(self) -> httpx.Client:
        """An HTTP client of the API with alice's token."""
        return httpx.Client(base_url=f"{self.url}/api/v1", headers={"Authorization": f"Bearer {self.token}"},
                            timeout=30)

    def submit(self, spec: dict[str, Any], **slurm: Any) -> dict[str, Any]:
        """POST a Slurm batch; return the batch resource."""
        with self.client() as http:
            answer = http.post("/batches", json={"spec": spec, "backend": "slurm", "slurm": slurm})
        assert answer.status_code == 202, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def batch(self, batch_id: str) -> dict[str, Any]:
        """GET the batch resource."""
        with self.client() as http:
            answer = http.get(f"/batches/{batch_id}")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def wait(self, batch_id: str, timeout_s: float, until: tuple[str, ...] = FINAL,
             images: int | None = None) -> dict[str, Any]:
        """Poll the batch until its state is in ``until`` (or ``images`` images are done); fail after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            batch = self.batch(batch_id)
            if batch["state"] in until or (images is not None and batch["images_done"] >= images):
                return batch
            assert time.monotonic() < deadline, f"batch {batch_id} after {timeout_s} s: {batch}\n{self.worker_log()}"
            time.sleep(0.25)
