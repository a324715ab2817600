"""Dockerfiles are checked statically here (no Docker engine runs on these machines): what they copy exists, the base
is Debian 12 with Python 3.11, and they set up through scripts/setup.sh, the script CI runs on a fresh machine."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((REPO / "docker").glob("*.Dockerfile"))


def _instructions(path: Path) -> list[tuple[str, str]]:
    text = path.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_there_are_dockerfiles() -> None:
    assert DOCKERFILES


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_base_is_debian12_python311(path: Path) -> None:
    bases = [rest for keyword, rest in _instructions(path) if keyword == "FROM"]
    assert bases and all(b.startswith("python:3.11-") and "bookworm" in b for b in bases), bases


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_every_copied_path_exists_and_is_not_ignored(path: Path) -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip()}
    for keyword, rest in _instructions(path):
        if keyword != "COPY":
            continue
        *sources, _dest = shlex.split(rest)
        for src in sources:
            assert (REPO / src).exists(), f"{path.name}: COPY {src}: no such path in the repository"
            assert src not in ignored, f"{path.name}: COPY {src} is excluded by .dockerignore"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_sets_up_through_the_ci_tested_script(path: Path) -> None:
    runs = " ".join(rest for keyword, rest in _instructions(path) if keyword == "RUN")
    assert "scripts/setup.sh" in runs
    users = [rest for keyword, rest in _instructions(path) if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the container must not run as root"
