"""A training's ``progress`` in the API (its limits from the config at submit, what the worker read from the log,
the fraction of the leading limit, elapsed time), documented in the OpenAPI schema; ``GET .../metrics``: the log
so far while it runs (the local run's own, a Slurm run's live copy), complete lines only, the collected log once
it has succeeded, nothing through a symlink, nothing of another user's."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from render_service.db.models import Training
from render_service.training_metrics import training_work_dir
from render_service.training_progress import fold_window, with_source
from tests.render_service.api.conftest import Api
from tests.render_service.api.test_trainings import URL, post, succeeded_batch
from tests.render_service.test_training_progress import DEMO_LOG, window

LOG = DEMO_LOG.read_text()


def submitted(api: Api, overrides: dict[str, object] | None = None) -> dict[str, object]:
    batch_id = succeeded_batch(api)
    response = post(api, {"dataset": {"batches": [batch_id]}, "config": "unet", "overrides": overrides or {}})
    assert response.status_code == 202, response.text
    body: dict[str, object] = response.json()
    return body


def test_progress_starts_with_the_limits_and_shows_what_the_worker_read(api: Api) -> None:
    training = submitted(api, {"trainer.max_steps": 400, "trainer.max_time": "00:01:00:00"})
    assert training["progress"] == {
        "step": None, "epoch": None, "max_steps": 400, "max_epochs": 200, "max_time_s": 3600.0, "elapsed_s": None,
        "fraction": None, "limit": None, "train_loss": None, "val_dice_mean": None, "val_step": None,
        "val_epoch": None, "val_dice": {}, "best_val_dice_mean": None, "best_step": None, "best_epoch": None,
        "warning": None, "updated_at": None}
    started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=15)
    with api.database.session() as session:
        row = session.get(Training, str(training["id"]))
        assert row is not None
        row.state, row.job_state, row.started_at = "running", "running", started
        read_at = started.timestamp() + 600
        row.progress = with_source(fold_window(row.progress, window(LOG)), read_at, len(LOG), 5.0)
    shown = api.client.get(f"{URL}/{training['id']}", headers=api.auth()).json()["progress"]
    assert (shown["step"], shown["epoch"], shown["val_step"], shown["best_step"]) == (73, 2, 73, 73)
    assert shown["limit"] == "max_time" and 0.24 < shown["fraction"] < 0.26  # 15 of 60 minutes; 74 of 400 steps
    assert 890 < shown["elapsed_s"] < 960 and "source" not in shown
    assert dt.datetime.fromisoformat(shown["updated_at"]).timestamp() == read_at
    assert set(shown["val_dice"]) == {"background", "crack", "fe2al5", "feal", "pore", "precipitate", "substrate"}
    listed = api.client.get(URL, headers=api.auth()).json()["items"][0]["progress"]
    assert listed["step"] == 73


def test_a_training_stored_before_progress_existed_or_with_an_unreadable_record_shows_its_limits(api: Api) -> None:
    training = submitted(api, {"trainer.max_steps": 50})
    for stored in (None, "not json", '{"step": "many"}', "[1, 2]"):
        with api.database.session() as session:
            row = session.get(Training, str(training["id"]))
            assert row is not None
            row.progress_json = stored
        answer = api.client.get(f"{URL}/{training['id']}", headers=api.auth())
        assert answer.status_code == 200, stored
        assert (answer.json()["progress"]["max_steps"], answer.json()["progress"]["step"]) == (50, None)


def test_the_openapi_schema_documents_progress_and_the_metrics_route(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    progress = schema["components"]["schemas"]["TrainingProgress"]
    assert {"step", "max_steps", "fraction", "train_loss", "val_dice_mean", "best_val_dice_mean", "val_dice"} <= \
        set(progress["properties"])
    assert all(p.get("description") for p in progress["properties"].values())
    public = schema["components"]["schemas"]["TrainingPublic"]["properties"]
    assert "progress" in public and "error" in public and "slurm_job_id" in public  # every field kept
    route = schema["paths"]["/api/v1/trainings/{training_id}/metrics"]["get"]
    assert "text/csv" in route["responses"]["200"]["content"] and "404" in route["responses"]


def test_metrics_serve_the_live_log_while_running_then_the_collected_one(api: Api) -> None:
    training = submitted(api)
    url = f"{URL}/{training['id']}/metrics"
    missing = api.client.get(url, headers=api.auth())
    assert missing.status_code == 404 and "logged no metrics yet" in missing.json()["detail"]
    job = training_work_dir(api.settings.data_dir) / str(training["id"])
    log = job / "run" / "logs" / "version_0" / "metrics.csv"
    log.parent.mkdir(parents=True)
    cut = LOG.index("1,,39,") + 4
    log.write_text(LOG[:cut])  # a last line still being written
    live = api.client.get(url, headers=api.auth())
    assert live.status_code == 200 and live.headers["x-semcoat-metrics"] == "live"
    assert live.text == LOG[:LOG.index("1,,39,")] and live.headers["content-type"].startswith("text/csv")
    (job / "run" / "logs" / "version_1").mkdir()
    (job / "run" / "logs" / "version_1" / "metrics.csv").write_text("epoch,step\n0,1\n")  # the newest version
    assert api.client.get(url, headers=api.auth()).text == "epoch,step\n0,1\n"
    (job / "live").mkdir()
    (job / "live" / "metrics.csv").write_text(LOG)  # a Slurm worker's copy
    assert api.client.get(url, headers=api.auth()).text == LOG
    bob = api.new_token("bob")
    assert api.client.get(url, headers=api.auth(bob)).status_code == 404
    collected = api.settings.trainings_dir / str(training["id"])
    collected.mkdir(parents=True)
    (collected / "metrics.csv").write_text(LOG + "3,,80")
    final = api.client.get(url, headers=api.auth())
    assert final.headers["x-semcoat-metrics"] == "final" and final.text == LOG


def test_metrics_follow_no_symlink(api: Api, tmp_path: Path) -> None:
    training = submitted(api)
    secret = tmp_path / "secret.csv"
    secret.write_text("password,hunter2\n")
    job = training_work_dir(api.settings.data_dir) / str(training["id"])
    (job / "live").mkdir(parents=True)
    (job / "live" / "metrics.csv").symlink_to(secret)
    response = api.client.get(f"{URL}/{training['id']}/metrics", headers=api.auth())
    assert response.status_code == 404 and "hunter2" not in response.text
