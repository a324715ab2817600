"""Training through the service end to end on the real stack, over HTTP: ``semcoat serve`` (API only) and
``semcoat worker`` as separate processes, a small batch rendered on the loopback cluster first, then a training on
it as one Slurm job of two CPU processes (gloo DDP under srun, Lightning's SLURMEnvironment) run by the cluster
user from the cluster's own environment (/opt/semcoat-cluster, the `train` extra), packaged in the same job, collected,
and its checkpoint and ONNX model downloaded through the API and run; its progress (step, loss, validation Dice read
from the run's metrics.csv on the cluster) and its live log seen through the API before it succeeded. And a running
training cancelled.

The admin's set-up line keeps gloo on the loopback interface (nothing leaves 127.0.0.1).
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from render_service.slurm.ssh import SSHRunner
from tests.blender_addon.specs import small_batch
from tests.integration.service import FINAL, Service

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SETUP_LINES = ["export GLOO_SOCKET_IFNAME=lo"]
# A few steps of a small U-Net on 64 px crops of 256x192 renders: 2 ranks x 2 steps x 2 epochs, whole-image
# validation of 2 images, bf16 autocast as the ready config asks.
FAST = {"trainer.max_epochs": 2, "trainer.log_every_n_steps": 1, "trainer.enable_model_summary": False,
        "trainer.num_sanity_val_steps": 0, "data.crop_px": 64, "data.batch_size": 2, "data.crops_per_epoch": 8,
        "data.num_workers": 0, "data.val_fraction": 0.34, "data.test_fraction": 0.17, "model.warmup_steps": 1,
        "model.model_options": {"channels": [8, 16, 32], "num_res_units": 1}}
RESOURCES = {"processes_per_node": 2, "cpus_per_task": 1, "time_limit": "20"}


@pytest.fixture(scope="module")
def service(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    # the logs of running trainings read every 2 s (not 30): this training runs well under a minute
    svc = Service(stack_env, tmp_path_factory.mktemp("training-service"),
                  worker_env={"SEMCOAT_SLURM_SETUP_LINES": json.dumps(SETUP_LINES),
                              "SEMCOAT_SLURM_PROGRESS_S": "2"}).start()
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def rendered(service: Service) -> dict[str, Any]:
    """Six 256x192 images rendered as a Slurm array through the same service (the training's dataset)."""
    data = small_batch(count=6).to_dict()
    data["name"] = "it-train-data"
    batch = service.submit(data, images_per_task=3)
    done = service.wait(batch["id"], timeout_s=120)
    assert (done["state"], done["images_done"]) == ("succeeded", 6), done
    return done


def submit_training(service: Service, body: dict[str, Any]) -> dict[str, Any]:
    with service.client() as http:
        answer = http.post("/trainings", json=body)
    assert answer.status_code == 202, answer.text
    result: dict[str, Any] = answer.json()
    return result


def training(service: Service, training_id: str) -> dict[str, Any]:
    with service.client() as http:
        answer = http.get(f"/trainings/{training_id}")
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def wait_training(service: Service, training_id: str, timeout_s: float, until: tuple[str, ...] = FINAL,
                  seen: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Poll until the training is in one of ``until``; every answer before goes into ``seen``."""
    deadline = time.monotonic() + timeout_s
    while True:
        current = training(service, training_id)
        if current["state"] in until:
            return current
        if seen is not None:
            seen.append(current)
        assert time.monotonic() < deadline, f"training after {timeout_s} s: {current}\n{service.worker_log()}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def trained(service: Service, rendered: dict[str, Any]) -> dict[str, Any]:
    """A training of the small U-Net on the rendered batch, followed to its end: the last answer (``done``), every
    answer before it (``seen``) and the first one (``submitted``)."""
    submitted = submit_training(service, {"name": "it-unet", "dataset": {"batches": [rendered["id"]]},
                                          "config": "unet", "overrides": FAST, "backend": "slurm",
                                          "resources": RESOURCES})
    seen: list[dict[str, Any]] = []
    done = wait_training(service, submitted["id"], timeout_s=360, seen=seen)
    return {"submitted": submitted, "seen": seen, "done": done}


@pytest.mark.timeout(420)
def test_a_training_runs_as_one_ddp_job_and_its_model_comes_back_through_the_api(
        trained: dict[str, Any], service: Service, rendered: dict[str, Any], ssh: SSHRunner,
        stack_env: dict[str, str], tmp_path: Path) -> None:
    submitted, seen, done = trained["submitted"], trained["seen"], trained["done"]
    assert submitted["progress"]["max_epochs"] == 2 and submitted["progress"]["step"] is None
    remote = f"{stack_env['SEMCOAT_CLUSTER_HOME']}/semcoat-trainings/{submitted['id']}"
    log = ssh.run(["cat", f"{remote}/logs/train-{done['slurm_job_id']}.out"]).stdout
    assert (done["state"], done["error"]) == ("succeeded", None), f"{done}\n{log[-3000:]}"

    # while it ran, the worker read the run's log on the cluster: step, epoch and loss before it succeeded
    running = [t["progress"] for t in seen if t["state"] == "running" and t["progress"]["step"] is not None]
    assert running, f"no progress seen while running: {[(t['state'], t['progress']) for t in seen]}"
    assert running[0]["train_loss"] is not None and running[0]["max_epochs"] == 2
    # max_epochs is the run's only limit: the fraction is the epochs validated out of 2 (0 during the first epoch)
    first = running[0]
    validated = first["epoch"] + 1 if first["val_epoch"] == first["epoch"] else first["epoch"]
    assert first["fraction"] == pytest.approx(validated / 2) and first["elapsed_s"] > 0
    final = done["progress"]
    assert (final["epoch"], final["val_epoch"], final["fraction"]) == (1, 1, 1.0)  # 2 epochs, both validated
    assert final["step"] >= running[-1]["step"] and 0 <= final["best_val_dice_mean"] <= 1
    assert set(final["val_dice"]) >= {"fe2al5", "substrate"}
    assert done["datasets"] == [{"batch_id": rendered["id"],
                                 "path": f"{stack_env['SEMCOAT_CLUSTER_HOME']}/semcoat-batches/{rendered['id']}/"
                                         "dataset"}]

    # one job (not an array) of two tasks, run by the cluster user, every rank placed by Slurm
    script = ssh.read_text(f"{remote}/job.sh")
    assert "--array" not in script and "#SBATCH --ntasks-per-node=2" in script and "srun " in script
    record = ssh.run(["grep", "-E", f"(^| )JobId={done['slurm_job_id']}( |$)",
                      stack_env["SEMCOAT_SLURM_JOBCOMP_LOG"]]).check().stdout
    assert "JobState=COMPLETED" in record and "ProcCnt=2" in record and "UserId=semcoat-hpc" in record
    assert "MEMBER: 1/2" in log and "MEMBER: 2/2" in log, log[-3000:]

    with service.client() as http:
        files = {f["path"]: f["size_bytes"] for f in http.get(f"/trainings/{done['id']}/files").json()}
        checkpoint = next(p for p in files if p.startswith("checkpoints/best") and p.endswith(".ckpt"))
        assert {"model.onnx", "metrics.json", "metrics.csv", "config.yaml", "train.log"} <= set(files), files
        for name in ("model.onnx", checkpoint, "metrics.json"):
            answer = http.get(f"/trainings/{done['id']}/files/{name}")
            assert answer.status_code == 200 and len(answer.content) == files[name], name
            (tmp_path / Path(name).name).write_bytes(answer.content)
        archive = http.get(f"/trainings/{done['id']}/archive")
        image = http.get(f"/batches/{rendered['id']}/files/images/000000.png").content
    assert f"{done['id']}/model.onnx" in zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["monitor"] == "val/dice_mean" and 0.0 <= metrics["best"]["value"] <= 1.0
    assert metrics["last"]["step"] >= 1 and metrics["checkpoint"] == checkpoint
    assert (final["best_val_dice_mean"], final["best_step"]) == (metrics["best"]["value"], metrics["best"]["step"])
    with service.client() as http:
        logged = http.get(f"/trainings/{done['id']}/metrics")
        collected = http.get(f"/trainings/{done['id']}/files/metrics.csv")
    assert logged.headers["x-semcoat-metrics"] == "final" and logged.text == collected.text

    # the model predicts: the ONNX export and the checkpoint itself, on a rendered image, agree
    import cv2
    import numpy as np

    from analysis.model import load_model
    from analysis.predict import predict_mask

    grey = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_GRAYSCALE)
    onnx_mask = predict_mask(load_model(tmp_path / "model.onnx"), grey)
    ckpt_mask = predict_mask(load_model(tmp_path / Path(checkpoint).name), grey)
    assert onnx_mask.shape == grey.shape == (192, 256) and int(onnx_mask.max()) < 7
    assert (onnx_mask == ckpt_mask).mean() > 0.999


@pytest.mark.timeout(420)
def test_a_training_fine_tunes_from_an_earlier_ones_checkpoint_on_the_cluster(
        trained: dict[str, Any], service: Service, rendered: dict[str, Any], ssh: SSHRunner,
        stack_env: dict[str, str]) -> None:
    earlier = trained["done"]
    assert earlier["state"] == "succeeded", earlier
    with service.client() as http:
        best = json.loads(http.get(f"/trainings/{earlier['id']}/files/metrics.json").content)["checkpoint"]
    tuned = submit_training(service, {"name": "it-tuned", "dataset": {"batches": [rendered["id"]]},
                                      "config": "unet", "overrides": {**FAST, "trainer.max_epochs": 1},
                                      "backend": "slurm", "resources": {**RESOURCES, "processes_per_node": 1},
                                      "init_from_training": earlier["id"]})  # one process: DDP is tested above
    done = wait_training(service, tuned["id"], timeout_s=360)
    home = stack_env["SEMCOAT_CLUSTER_HOME"]
    remote = f"{home}/semcoat-trainings/{tuned['id']}"
    log = ssh.run(["cat", f"{remote}/logs/train-{done['slurm_job_id']}.out"]).stdout
    assert (done["state"], done["error"]) == ("succeeded", None), f"{done}\n{log[-3000:]}"
    # the job on the cluster read the earlier training's packaged checkpoint, where the cluster holds it
    source = f"{home}/semcoat-trainings/{earlier['id']}/outputs/{best}"
    assert f"init_from: {source}" in ssh.read_text(f"{remote}/config.yaml")
    assert f"starting weights from {source}" in log, log[-3000:]
    assert done["init_from"] == source and earlier["init_from"] is None  # the API says what each started from


@pytest.mark.timeout(300)
def test_a_running_training_is_cancelled_and_its_processes_end(
        service: Service, rendered: dict[str, Any], ssh: SSHRunner, stack_env: dict[str, str]) -> None:
    long = {**FAST, "trainer.max_epochs": 100000, "data.crops_per_epoch": 4096}
    submitted = submit_training(service, {"name": "it-cancel", "dataset": {"batches": [rendered["id"]]},
                                          "config": "unet", "overrides": long, "backend": "slurm",
                                          "resources": RESOURCES})
    remote = f"{stack_env['SEMCOAT_CLUSTER_HOME']}/semcoat-trainings/{submitted['id']}"
    running = wait_training(service, submitted["id"], timeout_s=180, until=("running", *FINAL))
    assert running["state"] == "running", running
    with service.client() as http:
        assert http.delete(f"/trainings/{submitted['id']}").status_code == 202
    done = wait_training(service, submitted["id"], timeout_s=90)
    assert done["state"] == "cancelled", done
    record = ssh.run(["grep", "-E", f"(^| )JobId={done['slurm_job_id']}( |$)",
                      stack_env["SEMCOAT_SLURM_JOBCOMP_LOG"]]).check().stdout
    assert "JobState=CANCELLED" in record
    # Slurm shows the job COMPLETING while it ends its processes (SIGTERM, SIGKILL after KillWait): then nothing of
    # it is queued, and no process is left working in its folder
    name = f"semcoat-train-{submitted['id']}"
    deadline = time.monotonic() + 60
    while True:
        queued = ssh.run(["squeue", "-h", f"--name={name}", "-o", "%i %T"]).check().stdout.strip()
        left = ssh.run(["sh", "-c", 'for p in /proc/[0-9]*; do readlink "$p/cwd"; done 2>/dev/null']).stdout
        if not queued and remote not in left.split("\n"):
            break
        assert time.monotonic() < deadline, f"60 s after the cancel: squeue {queued!r}"
        time.sleep(0.5)
    with service.client() as http:
        assert http.get(f"/trainings/{submitted['id']}/files").json() == []
