"""docker/compose.yaml as the static checks read it: the services, and the environment each container gets (its
env files, then its ``environment``, which wins, as Compose does)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker" / "compose.yaml"
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
ENV_LINE = re.compile(r"^\s*(#\s*)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def env_files(service: dict[str, Any]) -> list[Path]:
    """The env files a service reads, in order (paths relative to the compose file's folder)."""
    entries = service.get("env_file", [])
    entries = [entries] if isinstance(entries, str | dict) else entries
    return [COMPOSE_FILE.parent / (e["path"] if isinstance(e, dict) else e) for e in entries]


def read_env_file(path: Path, commented: bool = False) -> dict[str, str]:
    """``NAME=value`` lines of an env file; with ``commented``, the names in commented-out lines instead."""
    found = {}
    for line in path.read_text().splitlines():
        match = ENV_LINE.match(line)
        if match and bool(match.group(1)) == commented:
            found[match.group(2)] = match.group(3)
    return found


def environment(name: str) -> dict[str, str]:
    """The variables service ``name``'s container gets from the compose file."""
    service = SERVICES[name]
    env: dict[str, str] = {}
    for path in env_files(service):
        env.update(read_env_file(path))
    given = service.get("environment", {})
    if isinstance(given, list):
        given = dict(item.split("=", 1) for item in given)
    env.update({key: str(value) for key, value in given.items()})
    return env


def mounts(name: str) -> dict[str, str]:
    """A service's volumes: container path -> source (a named volume or a host path)."""
    found = {}
    for spec in SERVICES[name].get("volumes", []):
        source, target = spec.split(":")[:2]
        found[target] = source
    return found
