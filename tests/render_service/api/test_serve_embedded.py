"""``semcoat serve`` with no configuration, as a subprocess with its own data folder and HOME: it starts its Redis
(and the local worker when installed), /health answers, the token file is 0600, and SIGTERM leaves no child."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from render_service.embedded import free_port, worker_available

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.integration


def _children(pid: int) -> dict[int, str]:
    """pid -> command line of each live child of ``pid``."""
    out = subprocess.run(["ps", "-o", "pid=,stat=,args=", "--ppid", str(pid)], capture_output=True, text=True)
    found = {}
    for line in out.stdout.splitlines():
        child, state, args = line.split(None, 2)
        if not state.startswith("Z"):
            found[int(child)] = args
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_serve_runs_the_embedded_default_and_stops_every_child(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEMCOAT_")}
    env.update(HOME=str(tmp_path / "home"), SEMCOAT_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(REPO))
    serve = subprocess.Popen([sys.executable, "-m", "semcoat_cli", "serve", "--port", str(port)], env=env,
                             cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        health = None
        deadline = time.monotonic() + 30
        while health is None and time.monotonic() < deadline and serve.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2) as response:
                    health = json.load(response)
            except OSError:
                time.sleep(0.2)
        assert health is not None, f"serve did not answer: rc={serve.poll()}"
        assert health["database"]["reachable"] and health["redis"]["reachable"], health
        token_file = tmp_path / "data" / "token"
        assert token_file.stat().st_mode & 0o777 == 0o600 and token_file.read_text().startswith("sct_")
        children = _children(serve.pid)
        redis_pids = [p for p, args in children.items() if "redis-server" in args]
        assert len(redis_pids) == 1 and "127.0.0.1:" in children[redis_pids[0]]
        worker_pids = [p for p, args in children.items() if "semcoat_cli worker" in args]
        assert len(worker_pids) == (1 if worker_available() else 0), children
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/batches",
                                         headers={"Authorization": f"Bearer {token_file.read_text().strip()}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.load(response)["total"] == 0
    finally:
        serve.send_signal(signal.SIGTERM)
        output, _ = serve.communicate(timeout=30)
    assert serve.returncode == 143, output
    assert "token" in output and str(tmp_path / "data" / "token") in output
    if not worker_available():
        assert "cannot start the local worker" in output
    for pid in children:
        assert not _alive(pid), f"child {pid} ({children[pid]}) outlived semcoat serve"
