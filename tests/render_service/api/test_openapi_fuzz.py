"""Schemathesis over ``/openapi.json`` with a valid token: no 5xx, and every response matches its documented status
codes, content type and schema (bounded: 50 examples per operation, the whole test within two minutes)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.checks import CHECKS
from schemathesis.openapi import from_asgi

from render_service.schemas import BatchPublic
from tests.render_service.api.conftest import make_api
from tests.render_service.api.test_files import write_dataset

CHECK_NAMES = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
               "response_schema_conformance")
TIME_LIMIT_S = 120  # 14 operations (batches, files, trainings, health) x 50 examples on two busy cores


def test_no_server_error_and_every_response_matches_the_schema(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    api = make_api(tmp_path, monkeypatch)
    created = api.client.post("/api/v1/batches", json={"spec": {"name": "f", "count": 2}}, headers=api.auth())
    write_dataset(api.settings.batches_dir / BatchPublic.model_validate(created.json()).id, count=2)
    schema = from_asgi("/openapi.json", api.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "POST /api/v1/batches", "GET /api/v1/batches/{batch_id}/files/{path}", "GET /api/v1/health"}
    checks = [c for c in CHECKS.get_all() if c.__name__ in CHECK_NAMES]
    assert len(checks) == len(CHECK_NAMES)
    started = time.monotonic()
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=50, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: Case) -> None:
            case.call_and_validate(headers=api.auth(), checks=checks)

        fuzz()
    assert time.monotonic() - started < TIME_LIMIT_S
