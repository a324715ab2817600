"""Shared fixtures. Integration tests read the settings of the real stack that scripts/stack.sh started."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

STACK_ENV_FILE = Path(os.environ.get("SEMCOAT_STACK_DIR", "/var/lib/semcoat-stack")) / "stack.env"


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    """SEMCOAT_* settings of the running stack. Fails (never skips) when the stack is not there."""
    if not STACK_ENV_FILE.is_file():
        pytest.fail(f"the real stack is not installed ({STACK_ENV_FILE} missing): run `bash scripts/stack.sh install "
                    "&& bash scripts/stack.sh up` as root, or deselect with -m 'not integration'")
    env: dict[str, str] = {}
    for line in STACK_ENV_FILE.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = value
    return env
