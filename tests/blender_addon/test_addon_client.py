"""The add-on's bpy-free parts: the HTTP client (its payloads against the service's OpenAPI, its error sentences), the
poller and its queue, and the field table the properties are generated from."""

from __future__ import annotations

import io
import json
import queue
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from blender_addon import fields as F
from blender_addon.client import (
    BatchStatus,
    IncompatibleService,
    NotFound,
    RequestRefused,
    ServiceClient,
    ServiceError,
    ServiceUnreachable,
    Unauthorized,
    batch_payload,
    download_batch,
    version_problem,
)
from blender_addon.polling import BatchMissing, BatchUpdate, ConnectionState, Poller, drain
from render_service.schemas import BatchPublic
from semcoat import __version__
from semcoat.batch import BatchSpec
from semcoat.params import leaf_paths
from semcoat.presets import preset_batch
from semcoat.spec import CoatingSpec

TOKEN = "sct_good"


def _batch_json(batch_id: str = "0123456789abcdef", state: str = "running", done: int = 1) -> dict[str, Any]:
    return {"id": batch_id, "name": "b", "state": state, "backend": "local", "count": 4, "images_done": done,
            "tasks": {"total": 2, "pending": 0, "running": 1, "done": 1, "failed": 0, "retried": 0},
            "slurm_job_ids": [], "created_at": "2026-01-01T00:00:00Z", "started_at": None, "finished_at": None,
            "error": None}


class FakeService(BaseHTTPRequestHandler):
    """Answers like the service: /health open, everything else wants the token; a few canned behaviours."""

    version = __version__
    health_body: bytes | None = None
    states: list[str] = []

    def log_message(self, *_args: Any) -> None:
        """Quiet."""

    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {TOKEN}":
            return True
        self._send(401, {"detail": "the token is unknown or revoked; ask the admin for a new one"})
        return False

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        """Health, batches, one batch, an archive."""
        if self.path == "/api/v1/health":
            if self.health_body is not None:
                return self._send(200, self.health_body, "text/html")
            ok = {"reachable": True, "detail": "ok"}
            return self._send(200, {"status": "ok", "version": self.version, "database": ok, "redis": ok,
                                    "workers": 1, "backends": {"local": ok}})
        if not self._authorised():
            return None
        if self.path.startswith("/api/v1/batches?"):
            return self._send(200, {"items": [], "total": 0, "limit": 1, "offset": 0})
        if self.path == "/api/v1/batches/missing":
            return self._send(404, {"detail": "no batch of yours has id 'missing'"})
        if self.path.endswith("/archive"):
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as archive:
                archive.writestr("0123456789abcdef/dataset.json", "{}")
                archive.writestr("0123456789abcdef/images/000000.png", b"png")
            return self._send(200, buf.getvalue(), "application/zip")
        state = type(self).states.pop(0) if type(self).states else "succeeded"
        return self._send(200, _batch_json(state=state, done=4 if state == "succeeded" else 1))

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        """A 422 naming a field of the spec."""
        if not self._authorised():
            return
        self._send(422, {"detail": [{"loc": ["body", "spec", "base", "layers", "fe2al5_thickness_um"],
                                     "msg": "out of range: expected a value in [1.0, 1000.0] um", "value": "0.5"}]})


@dataclass
class Fake:
    """A running fake service: its URL and its handler class (whose class attributes steer its answers)."""

    url: str
    handler: type[FakeService]


@pytest.fixture()
def service() -> Iterator[Fake]:
    handler = type("Handler", (FakeService,), {"states": [], "health_body": None, "version": __version__})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Fake(f"http://127.0.0.1:{server.server_address[1]}", handler)
    server.shutdown()
    server.server_close()


def _closed_port_url() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeService)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}"


# --- payloads against the service's own schema ----------------------------------------------------------------------
def _openapi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from render_service.api import create_app
    from render_service.db.session import Database
    from render_service.settings import load_settings

    for name in ("SEMCOAT_REDIS_URL", "SEMCOAT_SSH_HOST", "SEMCOAT_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(data_dir=tmp_path / "data")
    app = create_app(settings, database=Database(settings.database), sender=object(), probe=object())  # type: ignore[arg-type]
    return app.openapi()


def _validator(openapi: dict[str, Any], schema_name: str) -> jsonschema.Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": openapi["components"]}
    return jsonschema.Draft202012Validator(schema)


def test_payloads_validate_against_the_services_openapi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    openapi = _openapi(tmp_path, monkeypatch)
    body_ref = openapi["paths"]["/api/v1/batches"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    validator = _validator(openapi, body_ref["$ref"].rsplit("/", 1)[1])
    slurm = {"partition": "debug", "account": "", "time_limit": "0:30:00", "max_parallel_tasks": 0,
             "images_per_task": 5}
    payloads = [batch_payload(preset_batch("20h_650C", count=10), "local"),
                batch_payload(BatchSpec(), "slurm", slurm), batch_payload(BatchSpec(count=1), "slurm", {})]
    for payload in payloads:
        validator.validate(payload)
    assert payloads[1]["slurm"] == {"partition": "debug", "time_limit": "0:30:00", "images_per_task": 5}
    assert "slurm" not in payloads[0]
    # the check has teeth: an option the service does not know is refused by the same schema
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**payloads[1], "slurm": {"queue": "debug"}})


def test_batch_status_reads_every_field_the_service_sends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    openapi = _openapi(tmp_path, monkeypatch)
    example = _batch_json()
    _validator(openapi, "BatchPublic").validate(example)
    assert set(example) == set(BatchPublic.model_fields)
    status = BatchStatus.from_json(example)
    assert (status.id, status.state, status.count, status.images_done, status.tasks.running) == (
        "0123456789abcdef", "running", 4, 1, 1)
    assert status.progress == 0.25 and not status.final
    with pytest.raises(IncompatibleService, match="images_done"):
        BatchStatus.from_json({k: v for k, v in example.items() if k != "images_done"})


# --- errors a user can act on ------------------------------------------------------------------------------------
def test_unreachable_service_says_so_with_the_url() -> None:
    url = _closed_port_url()
    with pytest.raises(ServiceUnreachable) as caught:
        ServiceClient(url, TOKEN, timeout_s=2).check()
    message = str(caught.value)
    assert url in message and "refused" in message and "semcoat serve" in message
    with pytest.raises(ServiceUnreachable, match="not an http"):
        ServiceClient("localhost:8000", TOKEN).health()
    with pytest.raises(ServiceUnreachable, match="unknown"):
        ServiceClient("http://no-such-host.invalid:8000", TOKEN, timeout_s=5).health()


def test_401_names_the_token_and_where_to_get_one(service: Fake) -> None:
    with pytest.raises(Unauthorized) as wrong:
        ServiceClient(service.url, "sct_wrong").check()
    assert "401" in str(wrong.value) and "semcoat token create" in str(wrong.value)
    assert "unknown or revoked" in str(wrong.value)  # the service's own sentence is passed on
    with pytest.raises(Unauthorized, match="no token is set"):
        ServiceClient(service.url, "").check()
    assert ServiceClient(service.url, TOKEN).check().version == __version__


def test_incompatible_service_version_or_not_a_semcoat_service(service: Fake) -> None:
    service.handler.version = "7.3.0"
    with pytest.raises(IncompatibleService, match="7.3.0") as caught:
        ServiceClient(service.url, TOKEN).check()
    assert __version__ in str(caught.value)
    service.handler.health_body = b"<html>hello</html>"
    with pytest.raises(IncompatibleService, match="not a semcoat service"):
        ServiceClient(service.url, TOKEN).health()


def test_version_rule() -> None:
    assert version_problem("0.1.7", "0.1.0") is None
    assert version_problem("1.4.0", "1.0.0") is None
    assert "0.2.0" in (version_problem("0.2.0", "0.1.0") or "")
    assert version_problem("2.0.0", "1.9.0") is not None
    assert "not a version" in (version_problem("dev", "0.1.0") or "")


def test_422_keeps_every_problem_with_its_path(service: Fake) -> None:
    with pytest.raises(RequestRefused) as caught:
        ServiceClient(service.url, TOKEN).submit(batch_payload(BatchSpec(), "local"))
    (problem,) = caught.value.problems
    assert problem.spec_path == "spec.base.layers.fe2al5_thickness_um"
    assert F.panel_location(problem.spec_path) == "Design > Layers > Fe2Al5 thickness [µm]"
    assert "out of range" in str(caught.value)


def test_download_extracts_the_archive_and_refuses_escaping_entries(service: Fake, tmp_path: Path) -> None:
    client = ServiceClient(service.url, TOKEN)
    folder = download_batch(client, "0123456789abcdef", tmp_path / "dl" / "b-0123456789abcdef")
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "dataset.json", "images/000000.png"]
    assert [p.name for p in (tmp_path / "dl").iterdir()] == ["b-0123456789abcdef"]  # no scratch left behind
    with pytest.raises(ServiceError, match="outside its folder"):
        download_batch(client, "another-batch", tmp_path / "dl2")
    assert not (tmp_path / "dl2").exists()


# --- the poller ------------------------------------------------------------------------------------------------------
def test_poller_posts_updates_until_the_batch_ends(service: Fake) -> None:
    service.handler.states = ["queued", "running", "succeeded"]
    messages: queue.SimpleQueue[Any] = queue.SimpleQueue()
    poller = Poller(ServiceClient(service.url, TOKEN), messages, interval_s=0.05)
    poller.follow(["0123456789abcdef", "missing", "0123456789abcdef"])
    assert poller.following() == ["0123456789abcdef", "missing"]
    seen: list[Any] = []
    poller.start()
    try:
        deadline = time.monotonic() + 10
        while not any(isinstance(m, BatchUpdate) and m.batch.final for m in seen) and time.monotonic() < deadline:
            drain(messages, seen.append)
            time.sleep(0.02)
    finally:
        poller.stop()
    assert not poller.is_alive()
    states = [m.batch.state for m in seen if isinstance(m, BatchUpdate)]
    assert states[-1] == "succeeded" and states[0] == "queued"
    assert any(isinstance(m, BatchMissing) and m.batch_id == "missing" for m in seen)
    assert poller.following() == []  # ended and unknown batches are no longer polled


def test_poller_reports_an_unreachable_service_once_per_poll_and_recovery() -> None:
    messages: queue.SimpleQueue[Any] = queue.SimpleQueue()
    poller = Poller(ServiceClient(_closed_port_url(), TOKEN, timeout_s=1), messages)
    poller.follow(["0123456789abcdef"])
    assert poller.poll_once() is False
    seen: list[Any] = []
    assert drain(messages, seen.append) == 1
    assert isinstance(seen[0], ConnectionState) and not seen[0].ok and "refused" in seen[0].message
    assert poller.following() == ["0123456789abcdef"]  # kept: the service may come back


def test_drain_hands_over_in_order_and_never_blocks() -> None:
    messages: queue.SimpleQueue[Any] = queue.SimpleQueue()
    for i in range(5):
        messages.put(i)
    got: list[int] = []
    assert drain(messages, got.append, limit=3) == 3 and got == [0, 1, 2]
    assert drain(messages, got.append) == 2 and got == [0, 1, 2, 3, 4]
    assert drain(messages, got.append) == 0


# --- the field table ---------------------------------------------------------------------------------------------
def test_field_table_is_the_cores_parameter_table() -> None:
    leaves = leaf_paths(CoatingSpec)
    assert [f.path for f in F.FIELDS] == list(leaves)
    for f in F.FIELDS:
        assert f.meta == leaves[f.path][1] and f.typ is leaves[f.path][0]
        assert f.meta["doc"] in f.description
    assert F.FIELDS_BY_PATH["layers.fe2al5_thickness_um"].label == "Fe2Al5 thickness [µm]"
    assert F.FIELDS_BY_PATH["imaging.dose_electrons_per_px"].label == "Dose electrons per px [e⁻/px]"
    assert not F.FIELDS_BY_PATH["imaging.width_px"].randomizable


def test_single_precision_values_come_back_as_typed() -> None:
    import numpy as np

    for value in (0.13, 0.3, 1e6, 0.001, 2.5, -180.0, 0.017):
        assert F.from_single(float(np.float32(value))) == value
    assert F.sanitize_batch_name("my batch!") == "my-batch-"
    assert F.sanitize_batch_name("_x") == "b_x" and F.sanitize_batch_name("") == "batch"
    assert F.parse_choice_values(F.FIELDS_BY_PATH["pore_line.present"], "true, no, maybe") == [True, False, "maybe"]


def test_refused_paths_name_the_panel_property() -> None:
    assert F.panel_location("randomize.grey.fe2al5.std") == "Batch > Randomise > Grey levels > Fe2Al5 > std"
    assert F.panel_location("base.imaging.width_px") == "Imaging > Width [px]"
    assert F.panel_location("spec.count") == "Batch > Count"
    assert F.panel_location("slurm.partition") == "Batch > Slurm partition"
    with pytest.raises(Exception) as caught:
        BatchSpec.from_dict({"base": {"layers": {"fe2al5_thickness_um": 0.5}}})
    lines = F.spec_error_lines(caught.value.errors)  # type: ignore[attr-defined]
    assert lines and lines[0].startswith("Design > Layers > Fe2Al5 thickness [µm]: out of range")


def test_not_found_is_its_own_error(service: Fake) -> None:
    with pytest.raises(NotFound, match="no batch of yours"):
        ServiceClient(service.url, TOKEN).batch("missing")
