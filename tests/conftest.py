"""Shared fixtures. Integration tests read the settings of the real stack that scripts/stack.sh started."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STACK_ENV_FILE = Path(os.environ.get("SEMCOAT_STACK_DIR", "/var/lib/semcoat-stack")) / "stack.env"


@pytest.fixture(scope="session")
def stack_env() -> Iterator[dict[str, str]]:
    """SEMCOAT_* settings of the running stack, brought up if it is down. Fails (never skips) without it.

    The session holds the stack alone: two test sessions on one machine would share its Redis databases (each
    ``Service`` empties the ones it takes), its Slurm partition and ``stack.sh down``. A second session waits here.
    """
    if not STACK_ENV_FILE.is_file():
        pytest.fail(f"the real stack is not installed ({STACK_ENV_FILE} missing): run `bash scripts/stack.sh install` "
                    "as root, or deselect with -m 'not integration'")
    with open(STACK_ENV_FILE.parent / "tests.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.stderr.write(f"waiting for another test session to release the loopback stack ({lock.name})\n")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield _start_stack()


def _start_stack() -> dict[str, str]:
    # idempotent: returns at once when every part already answers
    up = subprocess.run(["bash", str(REPO / "scripts" / "stack.sh"), "up"], capture_output=True, text=True)
    if up.returncode != 0:
        pytest.fail(f"scripts/stack.sh up failed:\n{up.stderr}")
    env: dict[str, str] = {}
    for line in STACK_ENV_FILE.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = value
    return env
