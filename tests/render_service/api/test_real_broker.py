"""The API's own Celery sender and health probe against the real Redis of scripts/stack.sh (on a database number
of its own, so no worker of another test takes the messages)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from render_service.api import create_app
from render_service.api.health import WORKER_PING_TIMEOUT_S
from render_service.db.session import Database
from render_service.health import write_backend_health
from render_service.queue import SUBMIT_BATCH
from render_service.settings import load_settings
from render_service.tokens import create_token

pytestmark = pytest.mark.integration
TEST_DB = 13


def test_submit_puts_a_task_on_the_real_broker_and_health_reads_it(stack_env: dict[str, str], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    url = stack_env["SEMCOAT_REDIS_URL"].rsplit("/", 1)[0] + f"/{TEST_DB}"
    for name in list(stack_env):
        monkeypatch.delenv(name, raising=False)
    store = redis.Redis.from_url(url)
    store.flushdb()
    settings = load_settings(data_dir=tmp_path / "data", redis_url=url)
    database = Database(settings.database)
    with database.session() as session:
        token = create_token(session, "alice")[1]
    client = TestClient(create_app(settings, database=database))
    auth = {"Authorization": f"Bearer {token}"}
    try:
        response = client.post("/api/v1/batches", json={"spec": {"name": "q", "count": 2}}, headers=auth)
        assert response.status_code == 202, response.text
        messages = store.lrange("celery", 0, -1)
        assert len(messages) == 1
        headers = json.loads(messages[0])["headers"]
        assert headers["task"] == SUBMIT_BATCH and response.json()["id"] in headers["argsrepr"]

        write_backend_health(store, "local", True, "2 render processes free", ttl_s=60)  # as a worker does
        started = time.monotonic()
        health = client.get("/api/v1/health").json()
        assert health["redis"]["reachable"] and health["workers"] == 0  # nobody consumes this database
        assert time.monotonic() - started < WORKER_PING_TIMEOUT_S + 5  # no hang waiting for a worker
        assert health["backends"]["local"]["reachable"] and "2 render processes free" in health["backends"]["local"][
            "detail"]
    finally:
        store.flushdb()
        client.close()
