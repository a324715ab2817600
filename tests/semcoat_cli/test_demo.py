"""``semcoat demo``: its plan (batches, training arguments), the folders it refuses before doing anything, the
service it would use, and its summary. The whole journey runs in tests/integration/test_demo.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from render_service.embedded import free_port
from semcoat_cli.app import app
from semcoat_cli.demo import out_folder_problem, plan_json
from semcoat_cli.demo_service import DemoServiceError, running_service
from semcoat_cli.journey import DemoPlan, score_lines
from tests.render_service.api.conftest import Api, api  # noqa: F401 (fixtures of the live API)
from tests.render_service.api.test_client_commands import live  # noqa: F401

runner = CliRunner()


def test_the_held_out_batch_is_other_images_of_the_same_preset() -> None:
    train, heldout = DemoPlan("5h_650C", 40, 8, 3, 240).batches()
    assert (train.count, heldout.count) == (40, 8) and (train.seed, heldout.seed) == (3, 4)
    assert train.base == heldout.base and train.randomize == heldout.randomize
    assert train.name != heldout.name
    assert (train.render.images_per_task, heldout.render.images_per_task) == (20, 8)  # three tasks, two at once
    assert train.base.imaging.width_px == 1024
    quick_train, quick_heldout = DemoPlan("20h_650C", 4, 2, 0, 15, quick=True).batches()
    assert quick_train.base.imaging.width_px == 256 and quick_train.base.imaging.height_px == 768
    assert (quick_train.render.images_per_task, quick_heldout.render.images_per_task) == (4, 2)  # two Blenders


def test_training_arguments_follow_the_unet_config_and_the_time_limit(tmp_path: Path) -> None:
    args = DemoPlan("20h_650C", 40, 8, 0, 150).fit_args(tmp_path / "train", tmp_path / "run")
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    assert Path(pairs["--config"]).name == "unet.yaml" and Path(pairs["--config"]).is_file()
    assert pairs["--data.datasets"] == f"[{tmp_path / 'train'}]" and pairs["--data.test_fraction"] == "0"
    assert pairs["--trainer.max_time"] == "00:00:02:30" and pairs["--trainer.default_root_dir"] == str(tmp_path / "run")
    # The config's own network (six levels: a receptive field that reaches from the steel to the interface), as the
    # user's `semcoat train fit --config unet.yaml` trains it.
    assert "--model.model_options" not in pairs
    quick = dict(zip(*[iter(DemoPlan("20h_650C", 4, 2, 0, 15, quick=True).fit_args(tmp_path, tmp_path))] * 2,
                     strict=True))
    assert quick["--trainer.max_time"] == "00:00:00:15" and quick["--data.crop_px"] == "128"
    hours = dict(zip(*[iter(DemoPlan("20h_650C", 4, 2, 0, 3725).fit_args(tmp_path, tmp_path))] * 2, strict=True))
    assert hours["--trainer.max_time"] == "00:01:02:05"


def test_demo_reruns_in_its_own_folder_and_refuses_others(tmp_path: Path) -> None:
    plan = DemoPlan("20h_650C", 4, 2, 0, 15, quick=True)
    text = plan_json(plan)
    assert json.loads(text)["heldout"]["seed"] == 1
    assert out_folder_problem(tmp_path / "new", text) is None
    own = tmp_path / "own"
    own.mkdir()
    (own / "demo.json").write_text(text)
    (own / "report").mkdir()
    assert out_folder_problem(own, text) is None
    other = plan_json(DemoPlan("20h_650C", 5, 2, 0, 15, quick=True))
    assert "holds a demo of other batches" in (out_folder_problem(own, other) or "")


def test_demo_refuses_a_folder_of_another_demo(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "demo.json").write_text('{"train": {}}\n')
    result = runner.invoke(app, ["demo", "--out", str(out), "--quick"])
    assert result.exit_code == 2 and "other batches" in result.output
    assert (out / "demo.json").read_text() == '{"train": {}}\n'
    assert sorted(p.name for p in out.iterdir()) == ["demo.json"]


def test_demo_refuses_a_foreign_non_empty_folder_and_an_unwritable_one(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--quick"])
    assert result.exit_code == 2 and "not empty" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    result = runner.invoke(app, ["demo", "--out", "/proc/semcoat-demo", "--quick"])
    assert result.exit_code == 2 and "cannot write the demo folder" in result.output


def test_demo_rejects_an_unknown_preset_and_sizes_out_of_range(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "d"), "--preset", "1h_900C"])
    assert result.exit_code == 2 and "accepted: 5h_650C, 20h_650C" in result.output
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "d"), "--count", "1"])
    assert result.exit_code == 2 and "--count" in result.output
    assert not (tmp_path / "d").exists()


def test_a_chosen_service_that_does_not_answer_is_an_error_the_default_address_is_not(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEMCOAT_TOKEN", "not-a-real-token")
    monkeypatch.setenv("SEMCOAT_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(DemoServiceError, match="cannot reach the service at .*unset SEMCOAT_URL"):
        running_service()
    monkeypatch.delenv("SEMCOAT_TOKEN")
    monkeypatch.setenv("SEMCOAT_DATA_DIR", str(tmp_path))  # no token file there
    with pytest.raises(DemoServiceError, match="no token is set"):
        running_service()
    monkeypatch.delenv("SEMCOAT_URL")
    assert running_service() == (None, None)  # no token for the default address: the demo starts its own


def test_a_running_service_is_used_when_it_has_a_worker_and_takes_the_token(
        live: Api, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    service, why_not = running_service()
    assert service is not None and why_not is None and not service.started
    assert service.token == live.token and service.url.startswith("http://127.0.0.1:")
    live.probe.worker_count = 0
    with pytest.raises(DemoServiceError, match="has no worker running, so batches would stay queued"):
        running_service()
    live.probe.worker_count = 1
    monkeypatch.setenv("SEMCOAT_TOKEN", "wrong")
    with pytest.raises(DemoServiceError, match="SEMCOAT_URL=http://127.0.0.1:.*unset SEMCOAT_URL"):
        running_service()


def test_score_lines_put_the_models_side_by_side() -> None:
    table = {"U-Net": {"dice": {"fe2al5": 0.98, "pore": 0.9}, "mae": {}, "accuracy": {}},
             "classical": {"dice": {"fe2al5": 0.97, "pore": 0.88}, "mae": {"pore_fraction_pct": 0.34},
                           "accuracy": {"feal_present": 1.0}}}
    lines = score_lines(table)
    assert lines[0].split()[-2:] == ["U-Net", "classical"]
    assert lines[1].split()[-2:] == ["0.980", "0.970"] and lines[1].strip().startswith("Dice Fe2Al5")
    assert lines[3].split()[-2:] == ["–", "0.34"] and "MAE Pores (%)" in lines[3]
    assert lines[4].split()[-2:] == ["–", "100%"]
