"""``semcoat train submit|status|fetch|cancel`` against a live uvicorn on a free loopback port; the worker's side
(state, the collected files) is faked by writing to the database and the data folder directly."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from render_service.db.models import Batch, Training
from render_service.queue import CANCEL_TRAINING, SUBMIT_TRAINING
from render_service.training_progress import fold_window, with_source
from semcoat_cli.app import app
from tests.render_service.api.conftest import Api
from tests.render_service.api.test_client_commands import live  # noqa: F401 (the fixture)
from tests.render_service.test_training_progress import DEMO_LOG, window

runner = CliRunner()


def _batch(api: Api) -> str:
    response = api.client.post("/api/v1/batches", json={"spec": {"name": "p91", "count": 2}}, headers=api.auth())
    batch_id: str = response.json()["id"]
    with api.database.session() as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        batch.state = "succeeded"
    return batch_id


def _set(api: Api, training_id: str, **fields: object) -> None:
    with api.database.session() as session:
        training = session.get(Training, training_id)
        assert training is not None
        for name, value in fields.items():
            setattr(training, name, value)


def _submitted_training(api: Api, timeout_s: float = 30.0) -> str:
    """The id of the first training the API queued (the worker's side waits for it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sent = [args for name, args in api.sender.sent if name == SUBMIT_TRAINING]
        if sent:
            return str(sent[0][0])
        time.sleep(0.02)
    raise AssertionError("no training was submitted")


def test_submit_by_name_with_overrides_then_status(live: Api) -> None:  # noqa: F811
    first, second = _batch(live), _batch(live)
    submitted = runner.invoke(app, ["train", "submit", "unet", "--batches", f"{first},{second}", "--set",
                                    "trainer.max_steps=20", "--set", "data.weights=[1, 3]", "--processes-per-node",
                                    "2"])
    assert submitted.exit_code == 0, submitted.output
    training_id = submitted.stdout.strip()
    assert (SUBMIT_TRAINING, (training_id,)) in live.sender.sent
    with live.database.session() as session:
        stored = session.get(Training, training_id)
        assert stored is not None and stored.resources == {"processes_per_node": 2}
        doc = yaml.safe_load(stored.config_yaml)
    assert doc["trainer"]["max_steps"] == 20 and doc["data"]["weights"] == [1, 3]
    assert len(doc["data"]["datasets"]) == 2
    shown = runner.invoke(app, ["train", "status", training_id])
    assert shown.exit_code == 0 and "queued" in shown.stdout and "2 CPU process(es)" in shown.stdout
    assert f"(batch {first})" in shown.stdout
    table = runner.invoke(app, ["train", "status"])
    assert table.exit_code == 0 and training_id in table.stdout and "unet" in table.stdout


def test_submit_a_yaml_file_and_wait_for_the_end(live: Api, tmp_path: Path) -> None:  # noqa: F811
    config = tmp_path / "mine.yaml"
    config.write_text("model: {model: deeplab, loss: ce}\ntrainer: {max_steps: 5}\n")
    batch_id = _batch(live)

    def worker() -> None:
        training_id = _submitted_training(live)
        _set(live, training_id, state="running", job_state="running")
        time.sleep(0.3)
        _set(live, training_id, state="failed", error="Slurm job 7 failed with exit code 1; end of its log: OOM")

    thread = threading.Thread(target=worker)
    thread.start()
    result = runner.invoke(app, ["train", "submit", str(config), "--batches", batch_id, "--name", "mine", "--wait",
                                 "--poll-s", "0.1"])
    thread.join()
    assert result.exit_code == 1, result.output
    assert "failed" in result.stderr and "exit code 1" in result.stderr and "YAML given at submit" in result.stderr


def test_fetch_copies_the_files_once_the_training_succeeded(live: Api, tmp_path: Path) -> None:  # noqa: F811
    batch_id = _batch(live)
    training_id = runner.invoke(app, ["train", "submit", "unet", "--batches", batch_id]).stdout.strip()
    out = tmp_path / "model"
    early = runner.invoke(app, ["train", "fetch", training_id, "--out", str(out)])
    assert early.exit_code == 1 and "is queued" in early.stderr
    folder = live.settings.trainings_dir / training_id
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"onnx")
    (folder / "checkpoints" / "best.ckpt").write_bytes(b"ckpt")
    _set(live, training_id, state="succeeded")
    done = runner.invoke(app, ["train", "fetch", training_id, "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert (out / "model.onnx").read_bytes() == b"onnx" and (out / "checkpoints" / "best.ckpt").is_file()
    again = runner.invoke(app, ["train", "fetch", training_id, "--out", str(out)])
    assert again.exit_code == 0 and "2 already there" in again.stderr
    # a fine-tuning of it says where its weights start
    (folder / "metrics.json").write_text(json.dumps({"checkpoint": "checkpoints/best.ckpt"}))
    tuned = runner.invoke(app, ["train", "submit", "unet", "--batches", batch_id, "--init-from-training", training_id])
    assert tuned.exit_code == 0, tuned.output
    shown = runner.invoke(app, ["train", "status", tuned.stdout.strip()])
    assert f"weights from {(folder / 'checkpoints' / 'best.ckpt').absolute()}" in shown.stdout, shown.stdout
    assert "weights from" not in runner.invoke(app, ["train", "status", training_id]).stdout


def test_cancel_and_refusals(live: Api, tmp_path: Path) -> None:  # noqa: F811
    batch_id = _batch(live)
    training_id = runner.invoke(app, ["train", "submit", "unet", "--batches", batch_id]).stdout.strip()
    cancelled = runner.invoke(app, ["train", "cancel", training_id])
    assert cancelled.exit_code == 0 and "cancel requested" in cancelled.stdout
    assert live.sender.sent[-1] == (CANCEL_TRAINING, (training_id,))
    unknown = runner.invoke(app, ["train", "cancel", "0123456789abcdef"])
    assert unknown.exit_code == 2 and "no training of yours" in unknown.stderr
    assert runner.invoke(app, ["train", "submit", "resnet", "--batches", batch_id]).exit_code == 2
    assert runner.invoke(app, ["train", "submit", "unet", "--set", "max_steps"]).exit_code == 2
    refused = runner.invoke(app, ["train", "submit", "unet", "--batches", batch_id, "--set", "model.loss=lovasz",
                                  "--folders", "/shared/x"])
    assert refused.exit_code == 2
    assert "overrides.model.loss" in refused.stderr and "dataset.folders" in refused.stderr
    # fine-tuning from a training that has not succeeded: refused with the reason
    tuned = runner.invoke(app, ["train", "submit", "unet", "--batches", batch_id, "--init-from-training", training_id])
    assert tuned.exit_code == 2 and "fine-tune from a training that succeeded" in tuned.stderr


def _progress_from_log(api: Api, training_id: str, text: str, state: str = "running") -> None:
    """What the worker stores after reading ``text`` of the training's log."""
    with api.database.session() as session:
        training = session.get(Training, training_id)
        assert training is not None
        training.state, training.job_state = state, "running"
        training.started_at = training.started_at or dt.datetime.now(dt.UTC) - dt.timedelta(seconds=90)
        training.progress = with_source(fold_window(training.progress, window(text)), time.time(), len(text), 1.0)


def test_status_shows_step_epoch_loss_and_validation_dice(live: Api) -> None:  # noqa: F811
    batch_id = _batch(live)
    training_id = runner.invoke(app, ["train", "submit", "unet", "--batches", batch_id, "--set",
                                      "trainer.max_steps=400"]).stdout.strip()
    before = runner.invoke(app, ["train", "status", training_id])
    assert before.exit_code == 0 and "progress: nothing logged yet" in before.stdout
    _progress_from_log(live, training_id, DEMO_LOG.read_text())
    shown = runner.invoke(app, ["train", "status", training_id])
    assert shown.exit_code == 0, shown.output
    assert "progress: step 73 / 400 · epoch 2 / 200 · 0:01:3" in shown.stdout and "18 %" in shown.stdout
    assert "scores: loss 1.865 · Dice 0.523 (best 0.523 at step 73)" in shown.stdout
    assert "val Dice per class (step 73): background 0.898, crack 0.525, fe2al5 0.909" in shown.stdout
    table = runner.invoke(app, ["train", "status"])
    row = next(line for line in table.stdout.splitlines() if line.startswith(training_id))
    assert "73/400" in row and "1.865" in row and "0.523" in row
    assert table.stdout.splitlines()[0].split()[4:7] == ["STEP", "LOSS", "DICE"]


def test_status_wait_follows_a_training_with_its_progress(live: Api) -> None:  # noqa: F811
    batch_id = _batch(live)
    training_id = runner.invoke(app, ["train", "submit", "unet", "--batches", batch_id]).stdout.strip()
    text = DEMO_LOG.read_text()

    def worker() -> None:
        _progress_from_log(live, training_id, text[:text.index("1,,39,")])
        time.sleep(0.5)
        _progress_from_log(live, training_id, text)
        time.sleep(0.5)
        _set(live, training_id, state="succeeded")

    thread = threading.Thread(target=worker)
    thread.start()
    result = runner.invoke(app, ["train", "status", training_id, "--wait", "--poll-s", "0.1"])
    thread.join()
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.stdout and "epoch 2 / 200 · " in result.stdout and "100 %" in result.stdout
    no_id = runner.invoke(app, ["train", "status", "--wait"])
    assert no_id.exit_code == 2 and "give its id" in no_id.stderr


def test_the_wait_line_says_where_the_training_is() -> None:
    from render_service.commands.training_client import progress_line
    from render_service.training_schemas import TrainingPublic

    base: dict[str, Any] = {"id": "a" * 16, "name": "unet", "state": "running", "backend": "local", "config": "unet",
            "datasets": [], "slurm_job_id": None, "created_at": dt.datetime.now(dt.UTC), "submitted_at": None,
            "started_at": None, "finished_at": None, "error": None,
            "resources": {"nodes": 1, "devices_per_node": 1, "gpus_per_node": 0, "cpus_per_task": None,
                          "mem_per_node_mb": None, "partition": None, "account": None, "time_limit": None}}
    queued = TrainingPublic.model_validate({**base, "state": "queued", "progress": {"max_steps": 10}})
    assert progress_line(queued) == "unet queued"
    going = TrainingPublic.model_validate({**base, "progress": {
        "step": 4, "max_steps": 10, "epoch": 0, "elapsed_s": 3725.0, "fraction": 0.5, "limit": "max_steps",
        "train_loss": 0.25, "val_dice_mean": 0.8, "best_val_dice_mean": 0.85, "best_step": 2}})
    assert progress_line(going) == ("unet running: step 4 / 10 · epoch 0 · 1:02:05 · 50 % · loss 0.25 · "
                                    "Dice 0.800 (best 0.850 at step 2)")
