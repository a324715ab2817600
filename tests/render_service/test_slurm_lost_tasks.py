"""A task that squeue, the jobcomp log and sacct have all forgotten (a cluster without accounting, a worker that was
down longer than MinJobAge) is waited for ``lost_task_s`` (``SEMCOAT_SLURM_LOST_TASK_S``), then taken as failed with
a sentence saying Slurm lost track of it, so the retry logic resubmits it as a new array of just those indices."""

from __future__ import annotations

from pathlib import Path

import pytest

from render_service.backends.slurm import SlurmBackend, SlurmConfig
from render_service.backends.slurm_training import SlurmTrainingBackend
from render_service.db.models import Batch, Training
from render_service.db.session import Database
from render_service.orchestrate import Orchestrator
from render_service.settings import SettingsError, load_settings
from render_service.slurm.fake import FakeRunner
from render_service.store import create_batch
from render_service.train_orchestrate import TrainingOrchestrator
from render_service.training_store import create_training
from semcoat.batch import BatchSpec
from tests.render_service.fake_slurm import CLUSTER_SEMCOAT, JOBCOMP_LOG, Clock, FakeSlurm

HOME = "/home/hpc"
GRACE_S = 600.0


def make_backend(runner: FakeRunner, tmp_path: Path, clock: Clock, jobcomp: bool = False) -> SlurmBackend:
    config = SlurmConfig(cluster_home=HOME, cluster_semcoat=CLUSTER_SEMCOAT, lost_task_s=GRACE_S,
                         jobcomp_log=JOBCOMP_LOG if jobcomp else None)
    return SlurmBackend(runner, config, tmp_path / "batches", retry_delays_s=(0.0,), sleep=lambda _s: None,
                        clock=clock)


def new_batch(db: Database) -> str:
    with db.session() as session:
        spec = BatchSpec.from_dict({"name": "p91", "count": 4, "seed": 3})
        return create_batch(session, "alice", spec, "slurm", {}, images_per_task=2).id


def tasks_of(db: Database, batch_id: str) -> tuple[Batch, list[tuple[str, int]], list[str | None]]:
    with db.session() as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        return batch, [(t.state, t.attempts) for t in batch.tasks], [t.log_tail for t in batch.tasks]


def start(db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path, clock: Clock, max_retries: int = 2,
          jobcomp: bool = False) -> tuple[Orchestrator, str, int]:
    """A batch of two tasks: task 0 completed, task 1 running, then forgotten by squeue (past MinJobAge)."""
    batch_id = new_batch(db)
    orch = Orchestrator(db, make_backend(runner, tmp_path, clock, jobcomp), max_retries=max_retries)
    orch.step()
    job = slurm.submissions[0].job_id
    slurm.set(job, 0, "COMPLETED")
    slurm.set(job, 1, "RUNNING")
    orch.step()
    slurm.squeue_forgets.add(job)
    slurm.jobcomp_forgets.add(job)
    return orch, batch_id, job


def test_a_task_nobody_remembers_is_taken_as_failed_after_the_grace_and_resubmitted_alone(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path, clock: Clock) -> None:
    orch, batch_id, job = start(db, runner, slurm, tmp_path, clock)
    runner.add_file(f"{HOME}/semcoat-batches/{batch_id}/logs/task-{job}_1.out", "rendering image 2\n")
    for waited in (0.0, GRACE_S - 1):  # within the grace: unknown, left as it was
        clock.now += waited
        orch.step()
        assert tasks_of(db, batch_id)[1] == [("done", 1), ("running", 1)] and len(slurm.submissions) == 1

    clock.now += 1
    orch.step()
    batch, tasks, tails = tasks_of(db, batch_id)
    assert tasks == [("done", 1), ("pending", 2)] and batch.state == "running"
    assert len(slurm.submissions) == 2
    retry = slurm.submissions[1]
    assert retry.name == f"semcoat-{batch_id}.retry_1" and sorted(retry.states) == [1]
    assert "--array=1\n" in retry.script
    assert tails[1] == (f"rendering image 2\nSlurm lost track of array task {job}_1: squeue had no record of it for "
                        "600 s (the limit is SEMCOAT_SLURM_LOST_TASK_S, 600 s), so it is taken as failed")

    slurm.set(retry.job_id, 1, "COMPLETED")  # the retry is followed as any array
    slurm.render(f"{HOME}/semcoat-batches/{batch_id}/dataset", 0, 4)
    orch.step()
    assert tasks_of(db, batch_id)[0].state == "succeeded"


def test_a_task_lost_once_too_often_fails_the_batch_saying_slurm_lost_it(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path, clock: Clock) -> None:
    orch, batch_id, job = start(db, runner, slurm, tmp_path, clock, max_retries=0, jobcomp=True)
    orch.step()
    clock.now += GRACE_S
    orch.step()
    batch, tasks, _tails = tasks_of(db, batch_id)
    assert batch.state == "failed" and tasks == [("done", 1), ("failed", 1)] and len(slurm.submissions) == 1
    assert batch.error is not None
    for words in ("images 2-3 (render task 1) failed 1 time(s), last with no exit code (the process was lost)",
                  f"(no log at {HOME}/semcoat-batches/{batch_id}/logs/task-{job}_1.out)",
                  f"Slurm lost track of array task {job}_1: squeue and the jobcomp log had no record of it"):
        assert words in batch.error, (words, batch.error)


def test_a_task_seen_again_within_the_grace_starts_it_afresh(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path, clock: Clock) -> None:
    orch, batch_id, job = start(db, runner, slurm, tmp_path, clock)
    orch.step()
    clock.now += GRACE_S - 1
    slurm.squeue_forgets.discard(job)  # a slow controller answered again
    orch.step()
    slurm.squeue_forgets.add(job)
    for _ in range(2):
        clock.now += GRACE_S - 1
        orch.step()
    assert tasks_of(db, batch_id)[1] == [("done", 1), ("running", 1)]


def test_a_gap_longer_than_the_grace_between_two_polls_starts_it_afresh(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path, clock: Clock) -> None:
    """Another worker may have polled (and seen the task) in between: this one's count starts again."""
    orch, batch_id, _job = start(db, runner, slurm, tmp_path, clock)
    orch.step()
    clock.now += GRACE_S + 5
    orch.step()
    assert tasks_of(db, batch_id)[1] == [("done", 1), ("running", 1)]
    clock.now += GRACE_S
    orch.step()
    assert tasks_of(db, batch_id)[1] == [("done", 1), ("pending", 2)]


def test_a_lost_training_job_fails_the_training(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path, clock: Clock) -> None:
    with db.session() as session:
        training_id = create_training(session, "alice", "unet", "slurm", "unet", "model: {model: unet}\n",
                                      [{"batch_id": "b1", "path": f"{HOME}/semcoat-batches/b1/dataset"}], {}).id
    orch = TrainingOrchestrator(db, SlurmTrainingBackend(make_backend(runner, tmp_path, clock), tmp_path / "t"))
    orch.step()
    job = slurm.submissions[0].job_id
    slurm.squeue_forgets.add(job)
    orch.step()
    clock.now += GRACE_S
    orch.step()
    with db.session() as session:
        training = session.get(Training, training_id)
        assert training is not None
        assert training.state == "failed" and training.error is not None
        assert f"Slurm lost track of job {job}: squeue had no record of it" in training.error


def test_the_grace_is_a_setting_longer_than_a_minute(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, slurm_lost_task_s=900)
    assert settings.slurm_lost_task_s == 900.0
    assert load_settings(data_dir=tmp_path).slurm_lost_task_s == GRACE_S
    config = SlurmConfig.from_settings(settings.model_copy(update={"cluster_home": HOME}))
    assert config.lost_task_s == 900.0
    with pytest.raises(SettingsError, match="SEMCOAT_SLURM_LOST_TASK_S"):
        load_settings(data_dir=tmp_path, slurm_lost_task_s=5)
