"""``semcoat submit|status|fetch|cancel`` against a live uvicorn on a free loopback port; the worker's side (state,
images done, the collected dataset folder) is faked by writing to the database and the data folder directly."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from render_service.db.models import Batch
from render_service.embedded import free_port
from render_service.queue import CANCEL_BATCH, SUBMIT_BATCH
from semcoat_cli.app import app
from tests.render_service.api.conftest import Api
from tests.render_service.api.test_files import write_dataset

runner = CliRunner()


@pytest.fixture()
def live(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The API served by uvicorn in a thread; SEMCOAT_URL and SEMCOAT_TOKEN point the client at it."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    monkeypatch.setenv("SEMCOAT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("SEMCOAT_TOKEN", api.token)
    yield api
    server.should_exit = True
    thread.join(10)


def _set(api: Api, batch_id: str, **fields: object) -> None:
    with api.database.session() as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        for name, value in fields.items():
            setattr(batch, name, value)


@pytest.fixture()
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "batch.json"
    path.write_text(json.dumps({"name": "p91", "count": 3, "render": {"images_per_task": 2}}))
    return path


def test_submit_prints_the_id_and_status_shows_the_batch(live: Api, spec_file: Path) -> None:
    submitted = runner.invoke(app, ["submit", str(spec_file)])
    assert submitted.exit_code == 0, submitted.output
    batch_id = submitted.stdout.strip()
    assert live.sender.sent == [(SUBMIT_BATCH, (batch_id,))]
    shown = runner.invoke(app, ["status", batch_id])
    assert shown.exit_code == 0 and "queued" in shown.stdout and "0/3 done" in shown.stdout
    table = runner.invoke(app, ["status"])
    assert table.exit_code == 0 and batch_id in table.stdout and "p91" in table.stdout


def _play_worker(live: Api, *steps: dict[str, object]) -> threading.Thread:
    """The worker's side, in a thread: once the batch is submitted (however long that takes on a busy machine),
    apply ``steps`` to it 0.3 s apart."""

    def worker() -> None:
        deadline = time.monotonic() + 60
        while not live.sender.sent and time.monotonic() < deadline:
            time.sleep(0.02)
        if not live.sender.sent:
            return  # the submit itself failed: the test's own assertions say how
        batch_id = str(live.sender.sent[0][1][0])
        for k, fields in enumerate(steps):
            if k:
                time.sleep(0.3)
            _set(live, batch_id, **fields)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    return thread


def test_submit_wait_follows_progress_to_the_end(live: Api, spec_file: Path) -> None:
    thread = _play_worker(live, {"state": "running", "images_done": 1}, {"state": "succeeded", "images_done": 3})
    result = runner.invoke(app, ["submit", str(spec_file), "--wait", "--poll-s", "0.1"])
    thread.join(60)
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.stderr and "3/3" in result.stderr


def test_submit_wait_ends_1_with_the_error_when_the_batch_fails(live: Api, spec_file: Path) -> None:
    thread = _play_worker(live, {"state": "failed", "error": "task 1 (images 2-2) failed with exit code 3"})
    result = runner.invoke(app, ["submit", str(spec_file), "--wait", "--poll-s", "0.1"])
    thread.join(60)
    assert result.exit_code == 1 and "exit code 3" in result.stderr


def test_submit_reports_the_services_refusal_and_a_missing_file(live: Api, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "count": -1}))
    refused = runner.invoke(app, ["submit", str(bad)])
    assert refused.exit_code == 2 and "spec.count" in refused.stderr and "got -1" in refused.stderr
    missing = runner.invoke(app, ["submit", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "nope.json" in missing.stderr
    assert runner.invoke(app, ["submit", str(bad), "--backend", "mars"]).exit_code == 2
    assert live.sender.sent == []


def test_cancel_asks_the_service(live: Api, spec_file: Path) -> None:
    batch_id = runner.invoke(app, ["submit", str(spec_file)]).stdout.strip()
    result = runner.invoke(app, ["cancel", batch_id])
    assert result.exit_code == 0 and "cancel requested" in result.stdout
    assert live.sender.sent[-1] == (CANCEL_BATCH, (batch_id,))
    unknown = runner.invoke(app, ["cancel", "0123456789abcdef"])
    assert unknown.exit_code == 2 and "no batch of yours" in unknown.stderr


def test_fetch_copies_checks_and_resumes(live: Api, spec_file: Path, tmp_path: Path) -> None:
    batch_id = runner.invoke(app, ["submit", str(spec_file)]).stdout.strip()
    write_dataset(live.settings.batches_dir / batch_id, count=3)
    out = tmp_path / "out"
    early = runner.invoke(app, ["fetch", batch_id, "--out", str(out)])
    assert early.exit_code == 1 and "is queued" in early.stderr
    _set(live, batch_id, state="succeeded", images_done=3)
    (out / "images" / "000001.png").unlink()
    (out / "meta" / "000002.json").write_text("{")  # a damaged file of another size is fetched again
    again = runner.invoke(app, ["fetch", batch_id, "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert "2 file(s) downloaded" in again.stderr and "8 already there" in again.stderr
    assert "dataset check passed" in again.stderr
    assert (out / "meta" / "000002.json").read_bytes() == (
        live.settings.batches_dir / batch_id / "meta" / "000002.json").read_bytes()


def test_a_wrong_token_and_an_unreachable_service_say_what_to_do(live: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMCOAT_TOKEN", "sct_wrong")
    denied = runner.invoke(app, ["status"])
    assert denied.exit_code == 2 and "unknown or revoked" in denied.stderr and "sct_wrong" not in denied.output
    monkeypatch.setenv("SEMCOAT_URL", f"http://127.0.0.1:{free_port()}")
    down = runner.invoke(app, ["status"])
    assert down.exit_code == 1 and "cannot reach the service" in down.stderr and "SEMCOAT_URL" in down.stderr
