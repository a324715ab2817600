"""The orchestration of trainings over a fake cluster and a temporary SQLite database: one job (not an array) with
the resources asked for, submitted once even after a crash, followed through the batches' states, collected
(model, checkpoint, metrics, log) before it succeeds, failed with its log tail, refused by the cluster, cancelled,
and left as it was while the cluster is unreachable."""

from __future__ import annotations

import json
from pathlib import Path

from render_service.backends.slurm import SlurmBackend, SlurmConfig
from render_service.backends.slurm_training import SlurmTrainingBackend, training_job_name
from render_service.db.models import Training
from render_service.db.session import Database
from render_service.slurm.fake import FakeRunner
from render_service.train_orchestrate import TrainingOrchestrator
from render_service.training_store import create_training, training_public
from tests.render_service.fake_slurm import JOBCOMP_LOG, FakeSlurm

HOME = "/home/hpc"
CONFIG = "model: {model: unet}\ndata: {datasets: [/home/hpc/semcoat-batches/b1/dataset]}\n"


def orchestrator(db: Database, runner: FakeRunner, tmp_path: Path, **config: object) -> TrainingOrchestrator:
    settings = {"cluster_home": HOME, "cluster_semcoat": "/opt/semcoat/bin/semcoat", "jobcomp_log": JOBCOMP_LOG,
                "setup_lines": ("module load cuda",), **config}
    cluster = SlurmBackend(runner, SlurmConfig(**settings), tmp_path / "batches",  # type: ignore[arg-type]
                           retry_delays_s=(0.0,), sleep=lambda _s: None)
    return TrainingOrchestrator(db, SlurmTrainingBackend(cluster, tmp_path / "trainings"))


def new_training(db: Database, resources: dict[str, object] | None = None) -> str:
    with db.session() as session:
        return create_training(session, "alice", "unet", "slurm", "unet", CONFIG,
                               [{"batch_id": "b1", "path": f"{HOME}/semcoat-batches/b1/dataset"}],
                               resources if resources is not None else {"processes_per_node": 2,
                                                                        "cpus_per_task": 1}).id


def stored(db: Database, training_id: str) -> Training:
    with db.session() as session:
        training = session.get(Training, training_id)
        assert training is not None
        return training


def remote(training_id: str) -> str:
    return f"{HOME}/semcoat-trainings/{training_id}"


def package(runner: FakeRunner, training_id: str, job_id: int) -> None:
    """What `semcoat train package` and the job log leave on the cluster."""
    out = f"{remote(training_id)}/outputs"
    runner.add_file(f"{out}/model.onnx", b"onnx")
    runner.add_file(f"{out}/checkpoints/best-epoch003-dice0.9100.ckpt", b"ckpt")
    runner.add_file(f"{out}/metrics.json", json.dumps({"monitor": "val/dice_mean"}))
    runner.add_file(f"{remote(training_id)}/logs/train-{job_id}.out", "epoch 3 done\n")


def test_a_training_is_one_job_of_the_tasks_asked_for_submitted_once(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path) -> None:
    training_id = new_training(db, {"nodes": 2, "gpus_per_node": 4, "partition": "gpu", "time_limit": "4:00:00"})
    orch = orchestrator(db, runner, tmp_path, account="materials")
    assert orch.step().launched == 1 and len(slurm.submissions) == 1
    job = slurm.submissions[0]
    assert not job.array and job.name == training_job_name(training_id)
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4", "#SBATCH --gres=gpu:4", "#SBATCH --partition=gpu",
                 "#SBATCH --account=materials", "#SBATCH --time=4:00:00", "module load cuda",
                 "srun --kill-on-bad-exit=1 /opt/semcoat/bin/semcoat train fit --config config.yaml "
                 "--trainer.accelerator gpu --trainer.devices 4 --trainer.num_nodes 2 --trainer.strategy ddp "
                 "--trainer.default_root_dir run",
                 "/opt/semcoat/bin/semcoat train package run --out outputs"):
        assert line in job.script, line
    assert runner.files[f"{remote(training_id)}/config.yaml"].decode() == CONFIG
    training = stored(db, training_id)
    assert (training.state, training.job_state, training.job_id, training.attempts) == \
        ("submitted", "pending", job.job_id, 1)
    assert training.remote_dir == remote(training_id)

    orch.step()  # again: nothing new is submitted
    assert len(slurm.submissions) == 1


def test_the_admins_defaults_apply_but_not_a_render_tasks_time_limit(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path) -> None:
    new_training(db, {"processes_per_node": 2})
    orchestrator(db, runner, tmp_path, partition="cpu", cpus_per_task=3, time_limit="10").step()
    script = slurm.submissions[0].script
    assert "#SBATCH --partition=cpu" in script and "#SBATCH --cpus-per-task=3" in script
    assert "--time" not in script and "export OMP_NUM_THREADS=3" in script


def test_a_worker_that_died_after_sbatch_finds_its_job_by_name(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path) -> None:
    training_id = new_training(db)
    orch = orchestrator(db, runner, tmp_path)
    orch.step()
    job_id = slurm.submissions[0].job_id
    with db.session() as session:  # as if the worker died before recording the job id
        training = session.get(Training, training_id)
        assert training is not None
        training.job_id, training.attempts, training.state = None, 0, "queued"
    orch.step()
    assert len(slurm.submissions) == 1 and stored(db, training_id).job_id == job_id


def test_a_finished_job_is_collected_before_the_training_succeeds(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path) -> None:
    training_id = new_training(db)
    orch = orchestrator(db, runner, tmp_path)
    orch.step()
    job_id = slurm.submissions[0].job_id
    slurm.set(job_id, 0, "RUNNING")
    orch.step()
    assert (stored(db, training_id).state, stored(db, training_id).job_state) == ("running", "running")
    package(runner, training_id, job_id)
    slurm.set(job_id, 0, "COMPLETED")
    orch.step()
    training = stored(db, training_id)
    assert (training.state, training.error) == ("succeeded", None)
    local = tmp_path / "trainings" / training_id
    assert sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file()) == [
        "checkpoints/best-epoch003-dice0.9100.ckpt", "metrics.json", "model.onnx", "train.log"]
    public = training_public(training)
    assert public.slurm_job_id == job_id and public.resources.devices_per_node == 2


def test_a_completed_job_without_its_model_fails_the_training(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path) -> None:
    training_id = new_training(db)
    orch = orchestrator(db, runner, tmp_path)
    orch.step()
    slurm.set(slurm.submissions[0].job_id, 0, "COMPLETED")
    orch.step()
    training = stored(db, training_id)
    assert training.state == "failed" and "left no model.onnx" in (training.error or "")


def test_a_failed_job_fails_the_training_with_its_log_tail_and_is_not_resubmitted(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path) -> None:
    training_id = new_training(db)
    orch = orchestrator(db, runner, tmp_path)
    orch.step()
    job_id = slurm.submissions[0].job_id
    runner.add_file(f"{remote(training_id)}/logs/train-{job_id}.out",
                    "Traceback ...\nValueError: crop_px 512 is larger than the 256x192 images\n")
    slurm.set(job_id, 0, "FAILED", "1:0")
    orch.step()
    training = stored(db, training_id)
    assert (training.state, training.job_state, training.exit_code) == ("failed", "failed", 1)
    assert f"Slurm job {job_id} failed with exit code 1" in (training.error or "")
    assert "crop_px 512 is larger" in (training.error or "") and training.finished_at is not None
    orch.step()
    assert len(slurm.submissions) == 1


def test_a_job_the_cluster_refuses_fails_the_training_at_once(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path) -> None:
    training_id = new_training(db, {"partition": "nope"})
    runner.answer("sbatch", exit_code=1, stderr="sbatch: error: invalid partition specified: nope")
    runner._answers.insert(0, runner._answers.pop())  # before the fake cluster's own sbatch
    orchestrator(db, runner, tmp_path).step()
    training = stored(db, training_id)
    assert training.state == "failed" and "invalid partition specified: nope" in (training.error or "")
    assert slurm.submissions == []


def test_cancel_scancels_the_job_and_ends_cancelled(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path) -> None:
    training_id = new_training(db)
    orch = orchestrator(db, runner, tmp_path)
    orch.step()
    job_id = slurm.submissions[0].job_id
    slurm.set(job_id, 0, "RUNNING")
    orch.step()
    orch.cancel(training_id)
    assert any(c.startswith("scancel") and str(job_id) in c for c in slurm.commands("scancel"))
    assert stored(db, training_id).state == "cancelled"
    assert slurm.jobs[job_id].states[0] == "CANCELLED"


def test_cancel_before_submission_submits_nothing(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path) -> None:
    training_id = new_training(db)
    orch = orchestrator(db, runner, tmp_path)
    orch.cancel(training_id)
    assert stored(db, training_id).state == "cancelled" and slurm.submissions == []


def test_an_unreachable_cluster_changes_nothing(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path) -> None:
    training_id = new_training(db)
    orch = orchestrator(db, runner, tmp_path)
    orch.step()
    slurm.set(slurm.submissions[0].job_id, 0, "RUNNING")
    runner.reachable = False
    report = orch.step()
    assert not report.reachable and report.problems
    assert (stored(db, training_id).state, stored(db, training_id).job_state) == ("submitted", "pending")
