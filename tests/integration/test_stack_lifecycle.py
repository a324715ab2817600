"""scripts/stack.sh stops everything by PID file and comes back up, idempotently, on loopback only."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PORTS = {"sshd": 2222, "redis": 6390, "slurmctld": 6817, "slurmd": 6818}


def _stack(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(REPO / "scripts" / "stack.sh"), *args], capture_output=True, text=True,
                          timeout=120)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _listen_addresses() -> set[str]:
    out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
    return {line.split()[3] for line in out.splitlines() if line.strip()}


def test_down_then_up_twice(stack_env: dict[str, str]) -> None:
    down = _stack("down")
    assert down.returncode == 0, down.stderr
    status = _stack("status")
    assert status.returncode != 0
    assert all(line.endswith("down") for line in status.stdout.splitlines()), status.stdout
    assert not any(_listening(p) for p in PORTS.values())

    first = _stack("up")
    assert first.returncode == 0, first.stderr
    started = time.monotonic()
    again = _stack("up")  # idempotent: everything already answers
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - started < 10
    assert _stack("status").returncode == 0
    assert all(_listening(p) for p in PORTS.values())


def test_every_stack_port_binds_loopback_only(stack_env: dict[str, str]) -> None:
    addresses = _listen_addresses()
    for name, port in PORTS.items():
        bound = {a for a in addresses if a.rsplit(":", 1)[1] == str(port)}
        assert bound, f"{name} is not listening on {port}"
        assert bound == {f"127.0.0.1:{port}"}, f"{name} listens on {bound}, not on 127.0.0.1 only"
