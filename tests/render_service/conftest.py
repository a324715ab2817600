"""Fixtures the service's unit tests share: a fresh SQLite database, a fake login node with a fake Slurm on it, and a
clock the tests move by hand. A module that needs another start (a clock at a real date) defines its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from render_service.db.session import Database
from render_service.slurm.fake import FakeRunner
from tests.render_service.fake_slurm import Clock, FakeSlurm


@pytest.fixture()
def db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'svc.db'}")


@pytest.fixture()
def runner() -> FakeRunner:
    return FakeRunner("login.example")


@pytest.fixture()
def slurm(runner: FakeRunner) -> FakeSlurm:
    return FakeSlurm(runner)


@pytest.fixture()
def clock() -> Clock:
    return Clock()
