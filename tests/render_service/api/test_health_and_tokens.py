"""``/health`` (open to all, each part with a sentence) and the admin's token commands."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from render_service.health import HEALTH_KEY, BackendStatus, parse_backend_health, write_backend_health
from semcoat_cli.app import app
from tests.render_service.api.conftest import Api
from tests.render_service.fake_store import MemoryStore


def test_health_is_open_and_ok_when_every_part_answers(api: Api) -> None:
    api.probe.reports["local"] = BackendStatus(True, "4 render processes",
                                               dt.datetime.now(dt.UTC) - dt.timedelta(seconds=3))
    body = api.client.get("/api/v1/health").json()
    assert body["status"] == "ok" and body["version"] and body["workers"] == 1
    assert body["database"]["reachable"] and body["redis"]["reachable"]
    detail = body["backends"]["local"]["detail"]  # 3 s, or a little more on a stalled machine
    assert body["backends"]["local"]["reachable"] and re.search(r"reported [345] s ago", detail), detail


def test_health_is_degraded_and_says_why(api: Api) -> None:
    api.probe.worker_count = 0
    api.probe.reports = {}
    body = api.client.get("/api/v1/health").json()
    assert body["status"] == "degraded" and body["workers"] == 0
    assert "semcoat worker" in body["backends"]["local"]["detail"]
    api.probe.redis_up = False
    assert api.client.get("/api/v1/health").json()["redis"]["reachable"] is False


def test_a_workers_report_reads_back_as_it_was_written() -> None:
    store = MemoryStore()
    before = dt.datetime.now(dt.UTC)
    write_backend_health(store, "slurm", False, "host key unknown", ttl_s=60)
    key = HEALTH_KEY.format(backend="slurm")
    assert (store.expiry_s[key] or 0) > 0  # a record that expires: a dead worker's report goes stale
    status = parse_backend_health(store.values[key])
    assert status is not None and (status.reachable, status.detail) == (False, "host key unknown")
    assert status.checked_at is not None and before <= status.checked_at <= dt.datetime.now(dt.UTC)
    assert parse_backend_health("{not json") is None and parse_backend_health(None) is None
    assert parse_backend_health(json.dumps({"reachable": True, "detail": "ok"})) is None


def test_token_create_prints_once_list_hides_it_revoke_gives_401(api: Api, monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("SEMCOAT_DATA_DIR", str(api.settings.data_dir))
    runner = CliRunner()
    created = runner.invoke(app, ["token", "create", "carol"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("sct_") and "shown once" in created.stderr
    assert api.client.get("/api/v1/batches", headers=api.auth(token)).status_code == 200
    listed = runner.invoke(app, ["token", "list"])
    assert listed.exit_code == 0 and "carol" in listed.stdout and token not in listed.output
    token_id = next(line.split()[0] for line in listed.stdout.splitlines() if "carol" in line)
    assert runner.invoke(app, ["token", "revoke", token_id]).exit_code == 0
    assert api.client.get("/api/v1/batches", headers=api.auth(token)).status_code == 401
    again = runner.invoke(app, ["token", "revoke", token_id])
    assert again.exit_code == 1 and "no active token" in again.stderr
    bad = runner.invoke(app, ["token", "create", "bad name;"])
    assert bad.exit_code == 2 and "not accepted" in bad.stderr
    assert runner.invoke(app, ["token", "revoke"]).exit_code == 2
    assert runner.invoke(app, ["token", "revoke", "--owner", "alice"]).exit_code == 0
    assert api.client.get("/api/v1/batches", headers=api.auth()).status_code == 401
