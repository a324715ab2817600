"""The dashboard's trainings: rows on the overview (the user's own only) with a progress bar and scores, a
training's page with its progress and its loss and Dice curves drawn from the log so far while it runs and from the
collected ``metrics.csv`` once finished (classes in their table colours; sent to the page's script only when they
changed), escaped names and errors, no data without a token; the overview's batches in one tasks query."""

from __future__ import annotations

import datetime as dt
import html
import re
import time
from pathlib import Path

import yaml
from sqlalchemy import event

from render_service.db.models import Batch, Training
from render_service.store import create_batch
from render_service.training_metrics import training_work_dir
from render_service.training_progress import fold_window, with_source
from render_service.training_store import create_training
from semcoat.batch import BatchSpec
from semcoat.classes import CLASSES, PORE
from tests.render_service.api.conftest import Api
from tests.render_service.api.test_dashboard import HOSTILE, sign_in
from tests.render_service.api.test_dashboard_curves import METRICS
from tests.render_service.test_training_progress import DEMO_LOG, window


def add_training(api: Api, owner: str = "alice", name: str = "unet-p91", state: str = "running",
                 error: str | None = None, config_yaml: str = "model: {}\n") -> str:
    with api.database.session() as session:
        training: Training = create_training(session, owner, name, "local", "unet", config_yaml,
                                             [{"path": "/data/p91", "batch_id": None}], {})
        training.state, training.error = state, error
        training_id: str = training.id
    return training_id


def test_trainings_show_on_the_overview_for_their_owner_only(api: Api) -> None:
    mine = add_training(api, name="unet-p91")
    theirs = add_training(api, owner="bob", name="bobs-unet")
    sign_in(api)
    page = api.client.get("/").text
    assert "<h1>Trainings</h1>" in page and f'href="/ui/trainings/{mine}"' in page and "unet-p91" in page
    assert theirs not in page and "bobs-unet" not in page
    data = api.client.get("/ui/data/overview").json()
    assert [t["id"] for t in data["trainings"]] == [mine]
    assert data["trainings"][0]["summary"] == "unet, 1 dataset, 1 node x 1 CPU process"
    assert api.client.get(f"/ui/trainings/{theirs}").status_code == 404
    assert api.client.get(f"/ui/data/trainings/{theirs}").status_code == 404


def test_a_training_page_draws_its_curves_once_the_metrics_are_collected(api: Api) -> None:
    training_id = add_training(api, state="running")
    sign_in(api)
    page = api.client.get(f"/ui/trainings/{training_id}").text
    assert "The curves appear once the training has logged its first steps" in page and "<polyline" not in page
    assert api.client.get(f"/ui/data/trainings/{training_id}").json()["has_curves"] is False
    folder: Path = api.settings.trainings_dir / training_id
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text(METRICS)
    with api.database.session() as session:
        row = session.get(Training, training_id)
        assert row is not None
        row.state = "succeeded"
    page = api.client.get(f"/ui/trainings/{training_id}").text
    assert page.count("<polyline") == 2 + 3 and 'id="curves"' in page
    assert "Validation Dice" in page and CLASSES[PORE].label in page
    data = api.client.get(f"/ui/data/trainings/{training_id}").json()
    assert data["has_curves"] is True and data["training"]["final"] is True
    assert data["training"]["weights_from"] == "scratch" and '<dd data-text="weights_from">scratch</dd>' in page


def test_training_strings_are_escaped_and_nothing_shows_signed_out(api: Api) -> None:
    training_id = add_training(api, name=HOSTILE, state="failed", error=f"exit 1: {HOSTILE}",
                               config_yaml=yaml.safe_dump({"model": {"init_from": f"/runs/{HOSTILE}.ckpt"}}))
    folder = api.settings.trainings_dir / training_id
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_bytes(b"\xff\xfe not text")
    assert api.client.get(f"/ui/trainings/{training_id}", follow_redirects=False).status_code == 303
    assert api.client.get(f"/ui/data/trainings/{training_id}").status_code == 401
    sign_in(api)
    for path in ("/", f"/ui/trainings/{training_id}"):
        page = api.client.get(path)
        assert page.status_code == 200 and "<script>alert" not in page.text and "&lt;script&gt;" in page.text
        markup = page.text.replace(html.escape(HOSTILE), "")  # the text may say onerror=; no attribute may
        assert re.findall(r"\son[a-z]+\s*=", markup) == [] and " style=" not in markup
    assert "The curves appear" in api.client.get(f"/ui/trainings/{training_id}").text  # undecodable CSV: none
    assert f"/runs/{html.escape(HOSTILE)}.ckpt</dd>" in api.client.get(f"/ui/trainings/{training_id}").text
    assert "curves_html" in api.client.get(f"/ui/data/trainings/{training_id}").json()


def _running_with_log(api: Api, text: str, config: str = "trainer: {max_steps: 400}\n") -> str:
    """A running local training whose fit has logged ``text`` (in its run folder) and whose record the worker
    folded from it."""
    with api.database.session() as session:
        training: Training = create_training(session, "alice", "unet-live", "local", "unet", config,
                                             [{"path": "/data/p91", "batch_id": None}], {})
        training.state, training.job_state = "running", "running"
        training.started_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=75)
        training.progress = with_source(fold_window(training.progress, window(text)), time.time(), len(text), 1.0)
        training_id: str = training.id
    log = training_work_dir(api.settings.data_dir) / training_id / "run" / "logs" / "version_0" / "metrics.csv"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(text)
    return training_id


def test_the_overview_shows_a_trainings_progress_bar_and_scores(api: Api) -> None:
    training_id = _running_with_log(api, DEMO_LOG.read_text())
    waiting = add_training(api, name="no-log-yet", state="running")
    sign_in(api)
    page = api.client.get("/").text
    row = page[page.index(f'<tr data-key="{training_id}"'):]
    row = row[:row.index("</tr>")]
    assert '<progress data-progress max="1000" value="185">' in row  # 74 steps of 400
    assert "step 73 / 400 · epoch 2 · 0:01:" in row and "18 %" in row
    assert "loss 1.865 · Dice 0.523 (best 0.523 at step 73)" in row
    rows = {t["id"]: t for t in api.client.get("/ui/data/overview").json()["trainings"]}
    assert (rows[training_id]["done"], rows[training_id]["count"]) == (185, 1000)
    assert rows[waiting]["done"] is None and rows[waiting]["progress"].startswith("no step logged yet")
    later = page[page.index(f'<tr data-key="{waiting}"'):]
    assert '<progress data-progress max="1000"></progress>' in later[:later.index("</tr>")]  # indeterminate


def test_a_running_trainings_page_draws_the_log_so_far_and_sends_new_curves_only(api: Api) -> None:
    text = DEMO_LOG.read_text()
    half = text[:text.index("1,,39,")]
    training_id = _running_with_log(api, half)
    sign_in(api)
    page = api.client.get(f"/ui/trainings/{training_id}").text
    series = 2 + 1 + len(CLASSES) - 1  # training and validation loss; Dice mean and each class but the background
    assert page.count("<polyline") == series
    version = re.search(r'id="curves-box" data-version="([^"]+)"', page)
    assert version is not None and version.group(1).startswith("live-")
    assert "fe2al5 0.717" in page and "step 32 / 400" in page
    url = f"/ui/data/trainings/{training_id}"
    same = api.client.get(url, params={"curves": version.group(1)}).json()
    assert "curves_html" not in same and same["curves_version"] == version.group(1)
    log = training_work_dir(api.settings.data_dir) / training_id / "run" / "logs" / "version_0" / "metrics.csv"
    log.write_text(text + "3,,80")  # more rows, and a line still being written
    fresh = api.client.get(url, params={"curves": version.group(1)}).json()
    assert fresh["curves_version"] != version.group(1) and fresh["has_curves"] is True
    assert fresh["curves_html"].count("<polyline") == series and fresh["training"]["final"] is False
    assert fresh["curves_html"].count("<circle") == 0 < page.count("<circle")  # one validation: a point each
    assert "<script" not in fresh["curves_html"] and " on" not in fresh["curves_html"].replace(" one", "")
    with api.database.session() as session:
        row = session.get(Training, training_id)
        assert row is not None
        row.state = "succeeded"
    folder = api.settings.trainings_dir / training_id
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text(text)
    final = api.client.get(url, params={"curves": fresh["curves_version"]}).json()
    assert final["curves_version"].startswith("final-") and "curves_html" in final
    assert final["training"]["final"] is True and final["training"]["done"] == 1000


def test_the_overview_reads_its_batches_tasks_in_one_query(api: Api) -> None:
    with api.database.session() as session:
        for i in range(50):
            create_batch(session, "alice", BatchSpec(name=f"b{i}", count=4), "local", {}, 2)
    sign_in(api)
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(api.database.engine, "before_cursor_execute", record)
    try:
        data = api.client.get("/ui/data/overview").json()
    finally:
        event.remove(api.database.engine, "before_cursor_execute", record)
    assert len(data["batches"]) == 50 and data["batches"][0]["tasks"] == "2 tasks: 0 done, 0 running, 2 pending"
    assert sum("FROM render_tasks" in s for s in statements) == 1, statements
    assert len(statements) < 10
    with api.database.session() as session:
        assert session.query(Batch).count() == 50
