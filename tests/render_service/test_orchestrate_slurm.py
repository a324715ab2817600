"""The orchestration of Slurm batches over a fake cluster and a temporary SQLite database: submission (once, even
after a crash), task states, retries as new arrays of just the failed tasks, failure with the log tail, cancel,
collection while the array runs, and an unreachable cluster that changes nothing."""

from __future__ import annotations

from pathlib import Path

from render_service.backends.slurm import SlurmBackend, SlurmConfig
from render_service.db.models import Batch
from render_service.db.session import Database
from render_service.health import read_backend_health, write_backend_health
from render_service.orchestrate import Orchestrator, view_of
from render_service.slurm.fake import FakeRunner
from render_service.store import batch_public, create_batch
from semcoat.batch import BatchSpec
from tests.render_service.fake_slurm import JOBCOMP_LOG, FakeSlurm
from tests.render_service.fake_store import MemoryStore

HOME = "/home/hpc"


def make_backend(runner: FakeRunner, tmp_path: Path, **config: object) -> SlurmBackend:
    settings = {"cluster_home": HOME, "cluster_semcoat": "/opt/semcoat/bin/semcoat", "jobcomp_log": JOBCOMP_LOG,
                "setup_lines": ("module load blender",), **config}
    return SlurmBackend(runner, SlurmConfig(**settings), tmp_path / "batches",  # type: ignore[arg-type]
                        retry_delays_s=(0.0,), sleep=lambda _s: None)


def new_batch(db: Database, count: int = 6, per_task: int = 2, options: dict[str, object] | None = None) -> str:
    with db.session() as session:
        spec = BatchSpec.from_dict({"name": "p91", "count": count, "seed": 3})
        return create_batch(session, "alice", spec, "slurm", options or {}, images_per_task=per_task).id


def batch_state(db: Database, batch_id: str) -> tuple[Batch, list[tuple[str, int]]]:
    with db.session() as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        return batch, [(t.state, t.attempts) for t in batch.tasks]


def dataset(batch_id: str) -> str:
    return f"{HOME}/semcoat-batches/{batch_id}/dataset"


def test_submission_is_one_array_with_the_admins_settings_and_the_users_options(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path) -> None:
    batch_id = new_batch(db, options={"partition": "debug", "max_parallel_tasks": 2})
    orch = Orchestrator(db, make_backend(runner, tmp_path, cpus_per_task=4, time_limit="10"), max_retries=2)
    report = orch.step()

    assert report.launched == 3 and len(slurm.submissions) == 1
    job = slurm.submissions[0]
    assert job.name == f"semcoat-{batch_id}" and sorted(job.states) == [0, 1, 2]
    for line in ("--array=0-2%2", "--partition=debug", "--time=10", "--cpus-per-task=4", "module load blender",
                 "--threads 4", f"{HOME}/semcoat-batches/{batch_id}/batch.json"):
        assert line in job.script, line
    assert runner.files[f"{HOME}/semcoat-batches/{batch_id}/batch.json"].decode().startswith("{")
    batch, tasks = batch_state(db, batch_id)
    assert batch.state == "submitted" and batch.slurm_job_ids == [job.job_id]
    assert tasks == [("pending", 1)] * 3 and batch.remote_dir == f"{HOME}/semcoat-batches/{batch_id}"

    orch.step()  # again: nothing new is submitted
    assert len(slurm.submissions) == 1


def test_a_submission_not_recorded_is_found_by_its_job_name_and_not_repeated(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path) -> None:
    batch_id = new_batch(db)
    backend = make_backend(runner, tmp_path)
    with db.session() as session:  # a worker that died after sbatch, before the job id reached the database
        batch = session.get(Batch, batch_id)
        assert batch is not None
        view = view_of(batch)
    backend.launch(view, view.tasks)
    assert len(slurm.submissions) == 1

    Orchestrator(db, backend, max_retries=2).step()
    assert len(slurm.submissions) == 1 and len(slurm.commands("sbatch")) == 1
    batch, tasks = batch_state(db, batch_id)
    assert batch.slurm_job_ids == [slurm.submissions[0].job_id] and tasks == [("pending", 1)] * 3

    # also once squeue has forgotten the job (MinJobAge): the jobcomp log still names it
    slurm.squeue_forgets.add(slurm.submissions[0].job_id)
    for task in range(3):
        slurm.set(slurm.submissions[0].job_id, task, "COMPLETED")
    assert backend.launch(view, view.tasks).job_id == slurm.submissions[0].job_id
    assert len(slurm.commands("sbatch")) == 1


def test_poll_follows_task_states_and_collects_complete_samples_while_the_array_runs(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path) -> None:
    batch_id = new_batch(db)
    orch = Orchestrator(db, make_backend(runner, tmp_path), max_retries=2)
    orch.step()
    job = slurm.submissions[0].job_id
    slurm.set(job, 0, "COMPLETED")
    slurm.render(dataset(batch_id), 0, 2)
    slurm.set(job, 1, "RUNNING")
    slurm.render(dataset(batch_id), 2, 1, phase_maps=False)  # one of task 1's two images is complete
    runner.add_file(f"{dataset(batch_id)}/meta/.000003.json.tmp-1", "{")  # being written: not complete
    orch.step()

    batch, tasks = batch_state(db, batch_id)
    assert batch.state == "running" and batch.started_at is not None
    assert tasks == [("done", 1), ("running", 1), ("pending", 1)]
    assert batch.images_done == 3
    local = tmp_path / "batches" / batch_id
    assert (local / "dataset.json").is_file()
    assert sorted(p.name for p in (local / "meta").iterdir()) == ["000000.json", "000001.json", "000002.json"]
    assert (local / "images" / "000002.png").read_bytes() == b"image 2"
    # the optional phase maps come along where the render wrote them (not image 2's: an older renderer's)
    assert sorted(p.name for p in (local / "phases").iterdir()) == ["000000.png", "000001.png"]
    assert (local / "phases" / "000001.png").read_bytes() == b"phases 1"

    slurm.set(job, 1, "COMPLETED")
    slurm.set(job, 2, "COMPLETED")
    slurm.render(dataset(batch_id), 3, 3)
    orch.step()
    batch, tasks = batch_state(db, batch_id)
    assert (batch.state, batch.images_done, batch.error) == ("succeeded", 6, None)
    assert batch.finished_at is not None and len(slurm.commands("squeue")) == 3  # one per step, for all jobs


def test_a_failed_task_is_resubmitted_alone_as_a_new_array(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path) -> None:
    batch_id = new_batch(db)
    orch = Orchestrator(db, make_backend(runner, tmp_path), max_retries=2)
    orch.step()
    first = slurm.submissions[0].job_id
    slurm.set(first, 0, "COMPLETED")
    slurm.set(first, 1, "FAILED", "3:0")
    slurm.set(first, 2, "RUNNING")
    orch.step()

    assert len(slurm.submissions) == 2
    retry = slurm.submissions[1]
    assert retry.name == f"semcoat-{batch_id}.retry_1" and sorted(retry.states) == [1]
    assert "--array=1\n" in retry.script
    batch, tasks = batch_state(db, batch_id)
    assert batch.slurm_job_ids == [first, retry.job_id]
    assert tasks == [("done", 1), ("pending", 2), ("running", 1)]
    assert batch_public(batch).tasks.retried == 1 and batch.state == "running"


def test_a_task_that_keeps_failing_ends_the_batch_failed_with_its_log_tail(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path) -> None:
    batch_id = new_batch(db)
    orch = Orchestrator(db, make_backend(runner, tmp_path), max_retries=1)
    orch.step()
    for round_, job in enumerate((slurm.submissions[0].job_id, 101)):
        if round_ == 0:
            slurm.set(job, 0, "COMPLETED")
            slurm.set(job, 2, "COMPLETED")
        runner.add_file(f"{HOME}/semcoat-batches/{batch_id}/logs/task-{job}_1.out",
                        f"rendering image 2\nerror: out of luck in round {round_}\n")
        slurm.set(job, 1, "FAILED", "3:0")
        orch.step()

    batch, tasks = batch_state(db, batch_id)
    assert batch.state == "failed" and tasks == [("done", 1), ("failed", 2), ("done", 1)]
    assert batch.error is not None
    for words in ("images 2-3", "render task 1", "failed 2 time(s)", "exit code 3", "out of luck in round 1",
                  "4 of 6 images were rendered"):
        assert words in batch.error, (words, batch.error)
    assert len(slurm.submissions) == 2  # one retry only: max_retries=1


def test_cancel_stops_the_arrays_and_keeps_finished_images(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path) -> None:
    batch_id = new_batch(db)
    orch = Orchestrator(db, make_backend(runner, tmp_path), max_retries=2)
    orch.step()
    job = slurm.submissions[0].job_id
    slurm.set(job, 0, "COMPLETED")
    slurm.render(dataset(batch_id), 0, 2)
    slurm.set(job, 1, "RUNNING")
    orch.step()

    orch.cancel(batch_id)
    assert f"scancel {job}" in slurm.commands("scancel")
    batch, tasks = batch_state(db, batch_id)
    assert batch.state == "cancelled" and tasks == [("done", 1), ("cancelled", 1), ("cancelled", 1)]
    assert batch.images_done == 2 and (tmp_path / "batches" / batch_id / "images" / "000001.png").is_file()
    assert all(s in ("COMPLETED", "CANCELLED") for s in slurm.submissions[0].states.values())
    orch.step()  # a final batch is left alone
    assert batch_state(db, batch_id)[0].state == "cancelled" and len(slurm.submissions) == 1


def test_a_cancelled_batch_waits_for_its_completing_tasks(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path) -> None:
    # Slurm logs a cancelled running task's final record at scancel, while squeue still shows it COMPLETING (its
    # processes being killed): the batch is cancelled only once nothing of it runs.
    batch_id = new_batch(db)
    orch = Orchestrator(db, make_backend(runner, tmp_path), max_retries=2)
    orch.step()
    job = slurm.submissions[0].job_id
    slurm.set(job, 0, "RUNNING")
    orch.step()
    slurm.completing_on_cancel = True

    orch.cancel(batch_id)
    assert any("JobState=CANCELLED" in line for line in slurm.jobcomp_lines())  # the log says it ended ...
    assert slurm.submissions[0].states[0] == "COMPLETING"  # ... squeue says it has not
    batch, tasks = batch_state(db, batch_id)
    assert batch.state != "cancelled" and tasks[0] == ("running", 1), (batch.state, tasks)
    assert tasks[1:] == [("cancelled", 1), ("cancelled", 1)]  # pending ones never ran: cancelled at once

    slurm.end_completing()
    orch.step()
    batch, tasks = batch_state(db, batch_id)
    assert batch.state == "cancelled" and tasks == [("cancelled", 1)] * 3


def test_an_unreachable_cluster_changes_nothing_and_shows_in_health(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path) -> None:
    batch_id = new_batch(db)
    backend = make_backend(runner, tmp_path)
    orch = Orchestrator(db, backend, max_retries=0)
    runner.reachable = False
    report = orch.step()  # the submission cannot be made: the batch stays queued, not failed
    assert not report.reachable and "unreachable" in report.detail
    assert batch_state(db, batch_id)[0].state == "queued"

    backend._next_try = 0.0  # the backoff has passed
    runner.reachable = True
    orch.step()
    job = slurm.submissions[0].job_id
    slurm.set(job, 0, "FAILED", "1:0")
    runner.reachable = False
    backend._next_try = 0.0
    report = orch.step()
    batch, tasks = batch_state(db, batch_id)
    assert batch.state == "submitted" and tasks == [("pending", 1)] * 3 and batch.error is None

    store = MemoryStore()
    write_backend_health(store, "slurm", report.reachable, report.detail, ttl_s=60)
    health = read_backend_health(store, ["slurm", "local"])
    slurm_health = health["slurm"]
    assert slurm_health is not None and not slurm_health.reachable and "login.example" in slurm_health.detail
    assert health["local"] is None  # no worker reported on it


def test_a_dropped_connection_is_reopened_within_the_call(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path) -> None:
    batch_id = new_batch(db)
    calls = {"n": 0}
    original = runner.run

    def flaky(argv: object, stdin: str | None = None, timeout_s: float = 60.0) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            from render_service.slurm.errors import TransportError

            raise TransportError("connection reset")
        return original(argv, stdin, timeout_s)  # type: ignore[arg-type]

    runner.run = flaky  # type: ignore[method-assign]
    report = Orchestrator(db, make_backend(runner, tmp_path), max_retries=2).step()
    assert report.reachable and len(slurm.submissions) == 1
    assert batch_state(db, batch_id)[0].state == "submitted"


def test_a_job_slurm_refuses_fails_the_batch_with_slurms_words(
        db: Database, runner: FakeRunner, tmp_path: Path) -> None:
    slurm = FakeSlurm(runner)
    runner._answers.insert(0, runner._answers.pop(0))  # keep order; then script a refusal before the fake sbatch
    runner.answer("sbatch", exit_code=1, stderr="sbatch: error: invalid partition specified: gpu")
    runner._answers.insert(0, runner._answers.pop())
    batch_id = new_batch(db, options={"partition": "gpu"})
    Orchestrator(db, make_backend(runner, tmp_path), max_retries=2).step()
    batch, _ = batch_state(db, batch_id)
    assert batch.state == "failed" and batch.error is not None and "invalid partition specified: gpu" in batch.error
    assert slurm.submissions == []
