"""Training routes over a temp SQLite database and a fake task sender: submit (the config the job will run, 202 and
the queued task), list, show, cancel, files and archive, and every kind of bad request as a 422 naming each
problem (config, overrides, dataset, backend, resources), 401/404/413/415/503 as for batches."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from render_service.db.models import Batch, Training
from render_service.queue import CANCEL_TRAINING, SUBMIT_TRAINING
from tests.render_service.api.conftest import Api, make_api

URL = "/api/v1/trainings"


def succeeded_batch(api: Api, owner_token: str | None = None, state: str = "succeeded",
                    remote_dir: str | None = None, backend: str = "local") -> str:
    response = api.client.post("/api/v1/batches", json={"spec": {"name": "p91", "count": 2}},
                               headers=api.auth(owner_token))
    assert response.status_code == 202, response.text
    batch_id: str = response.json()["id"]
    with api.database.session() as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        batch.state, batch.remote_dir, batch.backend = state, remote_dir, backend
    return batch_id


def training_tasks(api: Api) -> list[tuple[str, tuple[object, ...]]]:
    return [(name, args) for name, args in api.sender.sent if "training" in name]


def post(api: Api, body: dict[str, Any], token: str | None = None) -> Any:
    return api.client.post(URL, json=body, headers=api.auth(token))


def problems_of(response: Any) -> dict[tuple[Any, ...], dict[str, Any]]:
    assert response.status_code == 422, response.text
    return {tuple(p["loc"]): p for p in response.json()["detail"]}


def test_submit_stores_the_config_the_job_runs_and_enqueues_it(api: Api) -> None:
    batch_id = succeeded_batch(api)
    response = post(api, {"dataset": {"batches": [batch_id]}, "config": "unet",
                          "overrides": {"trainer.max_steps": 20, "data.crop_px": 128, "model.lr": 0.001},
                          "resources": {"processes_per_node": 2, "cpus_per_task": 1}})
    assert response.status_code == 202, response.text
    training = response.json()
    assert (training["state"], training["backend"], training["config"], training["name"]) == \
        ("queued", "local", "unet", "unet")
    assert training["datasets"] == [{"batch_id": batch_id, "path": str(api.settings.batches_dir / batch_id)}]
    assert training["resources"]["devices_per_node"] == 2 and training["resources"]["nodes"] == 1
    assert training["slurm_job_id"] is None and training["error"] is None
    assert training_tasks(api) == [(SUBMIT_TRAINING, (training["id"],))]
    with api.database.session() as session:
        stored = session.get(Training, training["id"])
        assert stored is not None and stored.owner == "alice"
        doc = yaml.safe_load(stored.config_yaml)
    # the service's own keys are gone from the config (they go on the job's command line), the overrides are in
    assert "devices" not in doc["trainer"] and "default_root_dir" not in doc["trainer"]
    assert doc["trainer"]["max_steps"] == 20 and doc["model"]["lr"] == 0.001 and doc["data"]["crop_px"] == 128
    assert doc["data"]["datasets"] == [str(api.settings.batches_dir / batch_id)]
    assert doc["trainer"]["enable_progress_bar"] is False and doc["model"]["model"] == "unet"


def test_a_yaml_config_is_accepted_and_the_slurm_dataset_is_the_batch_folder_on_the_cluster(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = make_api(tmp_path, monkeypatch, ssh_host="127.0.0.1", ssh_user="u", ssh_key=tmp_path / "key",
                   ssh_known_hosts=tmp_path / "known", cluster_home="/home/u")
    batch_id = succeeded_batch(api, remote_dir="/home/u/semcoat-batches/x", backend="slurm")
    text = (Path(__file__).parents[3] / "training" / "configs" / "deeplab.yaml").read_text()
    response = post(api, {"name": "deeplab-p91", "dataset": {"batches": [batch_id], "folders": ["/shared/real"]},
                          "config_yaml": text, "backend": "slurm", "overrides": {"data.weights": [1, 3]},
                          "resources": {"nodes": 2, "gpus_per_node": 4, "partition": "gpu", "time_limit": "4:00:00"}})
    assert response.status_code == 202, response.text
    training = response.json()
    assert training["config"] is None and training["name"] == "deeplab-p91"
    assert [d["path"] for d in training["datasets"]] == ["/home/u/semcoat-batches/x/dataset", "/shared/real"]
    assert training["resources"] == {"nodes": 2, "devices_per_node": 4, "gpus_per_node": 4, "cpus_per_task": None,
                                     "mem_per_node_mb": None, "partition": "gpu", "account": None,
                                     "time_limit": "4:00:00"}
    api.client.close()


def test_every_problem_of_a_request_is_named(api: Api) -> None:
    mine = succeeded_batch(api)
    running = succeeded_batch(api, state="running")
    others = succeeded_batch(api, owner_token=api.new_token("bob"))
    response = post(api, {
        "dataset": {"batches": [mine, running, others], "folders": ["/shared/x"]},
        "config": "unet",
        "overrides": {"model.loss": "dice_bce", "trainer.devices": 4, "model.model": "resnet", "trainer.logger": False,
                      "trainer.max_steps": "many", "data.weights": [1, 2], "bad key": 1},
        "resources": {"nodes": 2, "partition": "debug", "gpus_per_node": 2, "processes_per_node": 3}})
    problems = problems_of(response)
    assert "no batch of yours" in problems[("body", "dataset", "batches", 2)]["msg"]
    assert "is running" in problems[("body", "dataset", "batches", 1)]["msg"]
    assert "backend 'slurm' only" in problems[("body", "dataset", "folders")]["msg"]
    assert "set by the service" in problems[("body", "overrides", "trainer.devices")]["msg"]
    assert "dotted name" in problems[("body", "overrides", "bad key")]["msg"]
    assert ("body", "resources", "nodes") in problems and ("body", "resources", "partition") in problems
    assert "one process per GPU" in problems[("body", "resources", "processes_per_node")]["msg"]
    assert training_tasks(api) == [] and _trainings(api) == 0


def test_config_values_are_checked_where_they_were_given(api: Api) -> None:
    batch_id = succeeded_batch(api)
    response = post(api, {"dataset": {"batches": [batch_id]}, "config": "unet",
                          "overrides": {"model.loss": "dice_bce", "model.model": "resnet", "trainer.logger": "wandb",
                                        "trainer.max_steps": "many", "data.weights": [1, 2], "optimizer": {"lr": 1},
                                        "data.augment_config": "/etc/passwd", "model.num_classes": 3}})
    problems = problems_of(response)
    assert "dice_ce" in problems[("body", "overrides", "model.loss")]["msg"]
    assert problems[("body", "overrides", "model.loss")]["value"] == "'dice_bce'"
    assert "unet" in problems[("body", "overrides", "model.model")]["msg"]
    assert "logs itself" in problems[("body", "overrides", "trainer.logger")]["msg"]
    assert "whole number" in problems[("body", "overrides", "trainer.max_steps")]["msg"]
    assert "one per folder" in problems[("body", "overrides", "data.weights")]["msg"]
    assert "unknown section" in problems[("body", "overrides", "optimizer")]["msg"]
    assert "mapping" in problems[("body", "overrides", "data.augment_config")]["msg"]
    assert "class table" in problems[("body", "overrides", "model.num_classes")]["msg"]


@pytest.mark.parametrize(("text", "where", "words"), [
    ("trainer: [1, 2", ("body", "config_yaml"), "not valid YAML (line"),
    ("- a\n- b\n", ("body", "config_yaml"), "mapping of sections"),
    ("a: &x [1]\nb: *x\n", ("body", "config_yaml"), "anchors and aliases"),
    ("model: !!python/object/apply:os.system ['true']\n", ("body", "config_yaml"), "not valid YAML"),
    ("model: {model: unet, loss: lovasz}\n", ("body", "config_yaml", "model", "loss"), "expected one of"),
    ("model: model.yaml\n", ("body", "config_yaml", "model"), "mapping"),
    ("trainer: {callbacks: [{class_path: os.system}]}\n", ("body", "config_yaml", "trainer", "callbacks", 0,
                                                          "class_path"), "callback of Lightning"),
    ("trainer: {callbacks: [{class_path: ModelCheckpoint, init_args: {dirpath: /tmp}}]}\n",
     ("body", "config_yaml", "trainer", "callbacks", 0, "init_args", "dirpath"), "drop dirpath"),
    ("data: {val_datasets: [/x]}\n", ("body", "config_yaml", "data", "val_datasets"), "by seed"),
    ("trainer: {fast_dev_run: true}\n", ("body", "config_yaml", "trainer", "fast_dev_run"), "no checkpoint"),
    ("trainer: {enable_checkpointing: false}\n", ("body", "config_yaml", "trainer", "enable_checkpointing"),
     "best checkpoint"),
    ("model: {__path__: /etc}\n", ("body", "config_yaml", "model", "__path__"), "plain names"),
    ("[" * 40 + "]" * 40, ("body", "config_yaml"), "deeper than"),
])
def test_a_config_lightnings_cli_would_refuse_is_refused_at_submit(api: Api, text: str, where: tuple[Any, ...],
                                                                   words: str) -> None:
    batch_id = succeeded_batch(api)
    problems = problems_of(post(api, {"dataset": {"batches": [batch_id]}, "config_yaml": text}))
    assert where in problems, problems
    assert words in problems[where]["msg"], problems[where]


def test_a_config_by_name_and_as_text_are_exclusive_and_names_are_known(api: Api) -> None:
    batch_id = succeeded_batch(api)
    both = problems_of(post(api, {"dataset": {"batches": [batch_id]}, "config": "unet", "config_yaml": "{}"}))
    assert "not both" in both[("body", "config")]["msg"]
    neither = problems_of(post(api, {"dataset": {"batches": [batch_id]}}))
    assert "not neither" in neither[("body", "config")]["msg"]
    unknown = problems_of(post(api, {"dataset": {"batches": [batch_id]}, "config": "resnet"}))
    assert "unet, deeplab, swin_unetr" in unknown[("body", "config")]["msg"]
    empty = problems_of(post(api, {"dataset": {}, "config": "unet"}))
    assert "at least one" in empty[("body", "dataset")]["msg"]
    twice = problems_of(post(api, {"dataset": {"batches": [batch_id, batch_id], "folders": ["/a", "/b", "/a"]},
                                   "config": "unet", "backend": "slurm"}))
    assert f"'{batch_id}' is given twice; give each once" in twice[("body", "dataset", "batches")]["msg"]
    assert "'/a' is given twice; give each once" in twice[("body", "dataset", "folders")]["msg"]


@pytest.mark.parametrize(("field", "value"), [
    ("partition", "debug; rm -rf ~"), ("account", "$(id)"), ("time_limit", "1:00:00\n#SBATCH --uid=0"),
    ("nodes", 0), ("gpus_per_node", -1), ("cpus_per_task", 4.5), ("mem_per_node_mb", "lots"), ("colour", "red"),
])
def test_hostile_or_bad_resources_are_422(api: Api, field: str, value: object) -> None:
    batch_id = succeeded_batch(api)
    problems = problems_of(post(api, {"dataset": {"batches": [batch_id]}, "config": "unet",
                                      "resources": {field: value}}))
    assert ("body", "resources", field) in problems


@pytest.mark.parametrize("folder", ["relative/path", "/a/../etc", "/a//b", "/a/b\n#SBATCH", "/" + "x" * 2000])
def test_folders_must_be_plain_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: str) -> None:
    api = make_api(tmp_path, monkeypatch, ssh_host="127.0.0.1", ssh_user="u", ssh_key=tmp_path / "key",
                   ssh_known_hosts=tmp_path / "known", cluster_home="/home/u")
    problems = problems_of(post(api, {"dataset": {"folders": [folder]}, "config": "unet", "backend": "slurm"}))
    assert ("body", "dataset", "folders") in problems
    api.client.close()


def test_slurm_needs_a_cluster_and_local_batches_are_not_on_it(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    api = make_api(tmp_path, monkeypatch)
    batch_id = succeeded_batch(api)
    problems = problems_of(post(api, {"dataset": {"batches": [batch_id]}, "config": "unet", "backend": "slurm"}))
    assert "no cluster configured" in problems[("body", "backend")]["msg"]
    api.client.close()
    slurm = make_api(tmp_path / "s", monkeypatch, ssh_host="127.0.0.1", ssh_user="u", ssh_key=tmp_path / "key",
                     ssh_known_hosts=tmp_path / "known", cluster_home="/home/u")
    local_batch = succeeded_batch(slurm)
    problems = problems_of(post(slurm, {"dataset": {"batches": [local_batch]}, "config": "unet",
                                        "backend": "slurm"}))
    assert "train on it with backend 'local'" in problems[("body", "dataset", "batches", 0)]["msg"]
    slurm.client.close()


def _trainings(api: Api) -> int:
    with api.database.session() as session:
        return session.query(Training).count()


def _submitted(api: Api, token: str | None = None) -> dict[str, Any]:
    batch_id = succeeded_batch(api, owner_token=token)
    response = post(api, {"dataset": {"batches": [batch_id]}, "config": "unet"}, token)
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


def test_list_show_and_cancel_see_the_owners_trainings_only(api: Api) -> None:
    first, second = _submitted(api), _submitted(api)
    bob = api.new_token("bob")
    _submitted(api, bob)
    page = api.client.get(URL, headers=api.auth(), params={"limit": 1}).json()
    assert page["total"] == 2 and [t["id"] for t in page["items"]] == [second["id"]]
    assert api.client.get(URL, headers=api.auth(), params={"state": "succeeded"}).json()["total"] == 0
    assert api.client.get(f"{URL}/{first['id']}", headers=api.auth()).json()["id"] == first["id"]
    assert api.client.get(f"{URL}/{first['id']}", headers=api.auth(bob)).status_code == 404
    assert api.client.delete(f"{URL}/{first['id']}", headers=api.auth(bob)).status_code == 404
    cancelled = api.client.delete(f"{URL}/{first['id']}", headers=api.auth())
    assert cancelled.status_code == 202 and (CANCEL_TRAINING, (first["id"],)) in api.sender.sent
    with api.database.session() as session:
        stored = session.get(Training, first["id"])
        assert stored is not None and stored.cancel_requested


def test_auth_body_limit_media_type_and_a_broker_that_is_down(api: Api) -> None:
    batch_id = succeeded_batch(api)
    body = {"dataset": {"batches": [batch_id]}, "config": "unet"}
    assert api.client.post(URL, json=body).status_code == 401
    assert api.client.post(URL, json=body, headers=api.auth("sct_wrong")).status_code == 401
    assert api.client.get(f"{URL}/0123456789abcdef", headers=api.auth()).status_code == 404
    big = {**body, "config_yaml": "a: " + "x" * 1_100_000}
    del big["config"]
    assert api.client.post(URL, json=big, headers=api.auth()).status_code == 413
    assert api.client.post(URL, content=b"config=unet", headers={**api.auth(),
                           "Content-Type": "application/x-www-form-urlencoded"}).status_code == 415
    api.sender.fail = True
    response = post(api, body)
    assert response.status_code == 503
    with api.database.session() as session:
        stored = session.query(Training).one()
        assert stored.state == "failed" and "task queue" in (stored.error or "")


def test_files_and_archive_serve_the_collected_training_only(api: Api) -> None:
    training = _submitted(api)
    url = f"{URL}/{training['id']}"
    assert api.client.get(f"{url}/files", headers=api.auth()).json() == []
    folder = api.settings.trainings_dir / training["id"]
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"onnx bytes")
    (folder / "checkpoints" / "best-epoch001.ckpt").write_bytes(b"ckpt")
    (folder / "metrics.json").write_text('{"monitor": "val/dice_mean"}')
    listing = api.client.get(f"{url}/files", headers=api.auth()).json()
    assert {f["path"]: f["size_bytes"] for f in listing} == {"checkpoints/best-epoch001.ckpt": 4, "metrics.json": 28,
                                                             "model.onnx": 10}
    assert api.client.get(f"{url}/files/model.onnx", headers=api.auth()).content == b"onnx bytes"
    assert api.client.get(f"{url}/files/../../token", headers=api.auth()).status_code == 404
    assert api.client.get(f"{url}/files/%2e%2e/%2e%2e/token", headers=api.auth()).status_code == 404
    archive = api.client.get(f"{url}/archive", headers=api.auth())
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert sorted(names) == [f"{training['id']}/checkpoints/best-epoch001.ckpt", f"{training['id']}/metrics.json",
                             f"{training['id']}/model.onnx"]


def _finished(api: Api, training_id: str, summary: object, state: str = "succeeded",
              remote_dir: str | None = None, backend: str | None = None) -> None:
    """Mark a training ``state`` with a collected package whose metrics.json holds ``summary`` (and the checkpoint
    it names, when that is a plain name)."""
    folder = api.settings.trainings_dir / training_id
    (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(summary))
    named = summary.get("checkpoint") if isinstance(summary, dict) else None
    if isinstance(named, str) and named.startswith("checkpoints/") and named.count("/") == 1 and len(named) < 200:
        (folder / named).write_bytes(b"ckpt")
    with api.database.session() as session:
        stored = session.get(Training, training_id)
        assert stored is not None
        stored.state, stored.remote_dir = state, remote_dir
        stored.backend = backend or stored.backend


def test_a_training_starts_from_an_earlier_trainings_checkpoint(api: Api) -> None:
    earlier = _submitted(api)
    _finished(api, earlier["id"], {"checkpoint": "checkpoints/best-epoch007.ckpt"})
    batch_id = succeeded_batch(api)
    response = post(api, {"dataset": {"batches": [batch_id]}, "config": "unet", "init_from_training": earlier["id"],
                          "overrides": {"model.lr": 0.001}})
    assert response.status_code == 202, response.text
    with api.database.session() as session:
        stored = session.get(Training, response.json()["id"])
        assert stored is not None
        doc = yaml.safe_load(stored.config_yaml)
    expected = (api.settings.trainings_dir / earlier["id"] / "checkpoints" / "best-epoch007.ckpt").absolute()
    assert doc["model"]["init_from"] == str(expected) and doc["model"]["lr"] == 0.001
    # what it started from is shown with it, and the earlier one shows none
    assert response.json()["init_from"] == str(expected)
    assert api.client.get(f"{URL}/{response.json()['id']}", headers=api.auth()).json()["init_from"] == str(expected)
    assert api.client.get(f"{URL}/{earlier['id']}", headers=api.auth()).json()["init_from"] is None


def test_a_slurm_training_starts_from_the_package_on_the_cluster(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    api = make_api(tmp_path, monkeypatch, ssh_host="127.0.0.1", ssh_user="u", ssh_key=tmp_path / "key",
                   ssh_known_hosts=tmp_path / "known", cluster_home="/home/u")
    batch_id = succeeded_batch(api, remote_dir="/home/u/semcoat-batches/x", backend="slurm")
    body = {"dataset": {"batches": [batch_id]}, "config": "unet", "backend": "slurm"}
    earlier = post(api, body).json()
    _finished(api, earlier["id"], {"checkpoint": "checkpoints/best.ckpt"},
              remote_dir=f"/home/u/semcoat-trainings/{earlier['id']}")
    response = post(api, {**body, "init_from_training": earlier["id"]})
    assert response.status_code == 202, response.text
    with api.database.session() as session:
        stored = session.get(Training, response.json()["id"])
        assert stored is not None
        init_from = yaml.safe_load(stored.config_yaml)["model"]["init_from"]
    assert init_from == f"/home/u/semcoat-trainings/{earlier['id']}/outputs/checkpoints/best.ckpt"
    api.client.close()


def test_init_from_training_is_refused_with_the_reason(api: Api) -> None:
    batch_id = succeeded_batch(api)
    body = {"dataset": {"batches": [batch_id]}, "config": "unet"}

    def problem(source: str, **extra: Any) -> str:
        stored = _trainings(api)
        found = problems_of(post(api, {**body, "init_from_training": source, **extra}))
        assert _trainings(api) == stored  # a refused request stores nothing
        msg: str = found[("body", "init_from_training")]["msg"]
        return msg

    running = _submitted(api)
    assert "is queued; fine-tune from a training that succeeded" in problem(running["id"])
    others = _submitted(api, api.new_token("bob"))
    _finished(api, others["id"], {"checkpoint": "checkpoints/best.ckpt"})
    assert "no training of yours" in problem(others["id"])
    assert "no training of yours" in problem("0123456789abcdef")
    elsewhere = _submitted(api)
    _finished(api, elsewhere["id"], {"checkpoint": "checkpoints/best.ckpt"}, backend="slurm",
              remote_dir="/home/u/semcoat-trainings/x")
    assert "ran on the slurm backend" in problem(elsewhere["id"])
    for summary in ({}, {"checkpoint": "../../../etc/passwd.ckpt"}, {"checkpoint": "checkpoints/a/../../b.ckpt"},
                    {"checkpoint": 7}, ["checkpoints/best.ckpt"], {"checkpoint": "checkpoints/" + "a" * 300 + ".ckpt"}):
        broken = _submitted(api)
        _finished(api, broken["id"], summary)
        assert "names no usable checkpoint" in problem(broken["id"]), summary
    gone = _submitted(api)
    _finished(api, gone["id"], {"checkpoint": "checkpoints/best.ckpt"})
    (api.settings.trainings_dir / gone["id"] / "checkpoints" / "best.ckpt").unlink()
    assert "is gone from this server" in problem(gone["id"])
    good = _submitted(api)
    _finished(api, good["id"], {"checkpoint": "checkpoints/best.ckpt"})
    assert "trained a unet; this config builds a deeplab: fine-tuning needs the same network" in problem(
        good["id"], overrides={"model.model": "deeplab"})
    # options that change no weight may differ: the job compares the weights' names and shapes
    assert post(api, {**body, "init_from_training": good["id"],
                      "overrides": {"model.model_options": {"dropout": 0.1}}}).status_code == 202
    bad_id = problems_of(post(api, {**body, "init_from_training": "../x"}))
    assert "is not a training id" in bad_id[("body", "init_from_training")]["msg"]

    # a checkpoint path the config gives itself: not with init_from_training, and not a path on this server
    unet_yaml = (Path(__file__).parents[3] / "training" / "configs" / "unet.yaml").read_text()
    mine = unet_yaml.replace("init_from: null", "init_from: /mine/keep.ckpt")
    both = problems_of(post(api, {**body, "config": None, "config_yaml": mine, "init_from_training": good["id"]}))
    assert "not both" in both[("body", "config_yaml", "model", "init_from")]["msg"]
    stored = str((api.settings.trainings_dir / good["id"] / "checkpoints" / "best.ckpt").absolute())
    local = problems_of(post(api, {**body, "overrides": {"model.init_from": stored}}))
    assert "backend 'slurm' only" in local[("body", "overrides", "model.init_from")]["msg"]
    # a malformed model section is named once, by the config check, not also as another network
    odd = problems_of(post(api, {**body, "config": None, "config_yaml": "model: 5\ndata: {}\n",
                                 "init_from_training": good["id"]}))
    assert ("body", "config_yaml", "model") in odd and ("body", "init_from_training") not in odd
