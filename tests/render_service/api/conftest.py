"""API unit-test fixtures: a temp SQLite database, a fake task sender that records what was queued, a fake health
probe, and a TestClient with a valid token."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from render_service.api import create_app
from render_service.db.session import Database
from render_service.health import BackendStatus
from render_service.schemas import BackendHealth
from render_service.settings import Settings, load_settings
from render_service.tokens import create_token


@dataclass
class FakeSender:
    """Records every task sent; ``fail`` makes it raise as a broker that is down does."""

    sent: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    fail: bool = False

    def send_task(self, name: str, args: tuple[object, ...] = ()) -> object:
        if self.fail:
            raise ConnectionRefusedError(111, "Connection refused")
        self.sent.append((name, tuple(args)))
        return None


@dataclass
class FakeProbe:
    """Redis up, one worker, the local backend reported reachable (change the fields to see other answers)."""

    redis_up: bool = True
    worker_count: int = 1
    reports: dict[str, BackendStatus | None] = field(
        default_factory=lambda: {"local": BackendStatus(True, "4 render processes free", None)})

    def redis(self) -> BackendHealth:
        return BackendHealth(reachable=self.redis_up, detail="fake")

    def workers(self) -> int:
        return self.worker_count

    def backend_reports(self, names: list[str]) -> dict[str, BackendStatus | None]:
        return {n: self.reports.get(n) for n in names}


@dataclass
class Api:
    """One API under test and what it was built from."""

    app: FastAPI
    client: TestClient
    settings: Settings
    database: Database
    sender: FakeSender
    probe: FakeProbe
    token: str

    def auth(self, token: str | None = None) -> dict[str, str]:
        """The Authorization header for ``token`` (default: alice's)."""
        return {"Authorization": f"Bearer {token or self.token}"}

    def new_token(self, owner: str) -> str:
        """A fresh token for ``owner``."""
        with self.database.session() as session:
            return create_token(session, owner)[1]


def make_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **overrides: object) -> Api:
    """An API on a temp data folder, with ``overrides`` applied to the settings."""
    for name in ("SEMCOAT_REDIS_URL", "SEMCOAT_SSH_HOST", "SEMCOAT_SSH_USER", "SEMCOAT_SSH_KEY",
                 "SEMCOAT_SSH_KNOWN_HOSTS", "SEMCOAT_CLUSTER_HOME", "SEMCOAT_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(data_dir=tmp_path / "data", **overrides)
    database = Database(settings.database)
    sender, probe = FakeSender(), FakeProbe()
    app = create_app(settings, database=database, sender=sender, probe=probe)
    client = TestClient(app)
    api = Api(app, client, settings, database, sender, probe, token="")
    api.token = api.new_token("alice")
    return api


@pytest.fixture()
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    built = make_api(tmp_path, monkeypatch)
    yield built
    built.client.close()
    built.database.dispose()
