"""The local backend's trainings, driven by the training orchestration with a stand-in semcoat (a small script that
acts as `semcoat train fit` and `semcoat train package` would): one process running the same commands as a Slurm
job, collected before the training succeeds, a failure with its log tail, a cancel that stops every process of the
job, a launch repeated after a crash that starts nothing twice, and a job lost with its worker."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from render_service.backends.local_training import LocalTrainingBackend
from render_service.db.models import Training
from render_service.db.session import Database
from render_service.train_orchestrate import TrainingOrchestrator, view_of_training
from render_service.training_store import create_training, training_public

# Acts on the config it is given: `fail: true` ends the fit with exit 3, `sleep_s: N` makes the fit take N s
# (it starts a child, as Lightning's DDP launcher does, whose pid it writes to run/child.pid).
STAND_IN = '''
import json, os, pathlib, subprocess, sys, time
argv = sys.argv[1:]
if argv[:2] == ["train", "fit"]:
    config = pathlib.Path(argv[argv.index("--config") + 1]).read_text()
    run = pathlib.Path(argv[argv.index("--trainer.default_root_dir") + 1])
    run.mkdir(exist_ok=True)
    (run / "argv.json").write_text(json.dumps(argv))
    if "fail: true" in config:
        print("ValueError: crop_px 512 is larger than the images", file=sys.stderr)
        sys.exit(3)
    log = run / "logs" / "version_0"
    if "metrics_from:" in config:  # the first epoch's rows, then (after the sleep) the whole log
        log.mkdir(parents=True)
        text = pathlib.Path(config.split("metrics_from:")[1].split()[0]).read_text()
        (log / "metrics.csv").write_text(text[:text.index("1,,39,")])
    if "sleep_s:" in config:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        (run / "child.pid").write_text(str(child.pid))
        time.sleep(float(config.split("sleep_s:")[1].split()[0]))
    if "metrics_from:" in config:
        (log / "metrics.csv").write_text(text)
    print("fit done")
elif argv[:2] == ["train", "package"]:
    out = pathlib.Path(argv[argv.index("--out") + 1])
    (out / "checkpoints").mkdir(parents=True)
    (out / "model.onnx").write_bytes(b"onnx")
    (out / "checkpoints" / "best.ckpt").write_bytes(b"ckpt")
    (out / "metrics.json").write_text("{}")
    log = pathlib.Path(argv[2]) / "logs" / "version_0" / "metrics.csv"
    if log.is_file():
        (out / "metrics.csv").write_text(log.read_text())
    print("packaged")
'''


@pytest.fixture()
def backend(tmp_path: Path) -> LocalTrainingBackend:
    stand_in = tmp_path / "semcoat_stand_in.py"
    stand_in.write_text(STAND_IN)
    return LocalTrainingBackend(tmp_path / "trainings", tmp_path / "work", max_trainings=1,
                                semcoat_command=(sys.executable, str(stand_in)), cpu_count=4)


def new_training(db: Database, config: str = "model: {model: unet}\n", resources: dict[str, object] | None = None
                 ) -> str:
    with db.session() as session:
        return create_training(session, "alice", "t", "local", None, config, [],
                               resources or {"processes_per_node": 2}).id


def stored(db: Database, training_id: str) -> Training:
    with db.session() as session:
        training = session.get(Training, training_id)
        assert training is not None
        return training


def follow(orch: TrainingOrchestrator, db: Database, training_id: str, until: tuple[str, ...],
           timeout_s: float = 60) -> Training:
    deadline = time.monotonic() + timeout_s
    while True:
        orch.step()
        training = stored(db, training_id)
        if training.state in until:
            return training
        assert time.monotonic() < deadline, (training.state, training.job_state, training.error)
        time.sleep(0.1)


def test_a_local_training_runs_fit_then_package_and_is_collected(db: Database, backend: LocalTrainingBackend,
                                                                 tmp_path: Path) -> None:
    training_id = new_training(db)
    orch = TrainingOrchestrator(db, backend)
    done = follow(orch, db, training_id, ("succeeded", "failed"))
    assert (done.state, done.error, done.attempts) == ("succeeded", None, 1)
    argv = (tmp_path / "work" / training_id / "run" / "argv.json").read_text()
    assert '"--trainer.devices", "2"' in argv and '"--trainer.strategy", "ddp"' in argv
    assert "OMP_NUM_THREADS=2" in (tmp_path / "work" / training_id / "job.sh").read_text()  # 4 cores, 2 processes
    collected = tmp_path / "trainings" / training_id
    assert sorted(str(p.relative_to(collected)) for p in collected.rglob("*") if p.is_file()) == [
        "checkpoints/best.ckpt", "metrics.json", "model.onnx", "train.log"]
    assert "packaged" in (collected / "train.log").read_text()


def test_a_failed_fit_fails_with_its_log_tail_and_nothing_is_collected(db: Database, backend: LocalTrainingBackend,
                                                                      tmp_path: Path) -> None:
    training_id = new_training(db, "fail: true\n")
    done = follow(TrainingOrchestrator(db, backend), db, training_id, ("succeeded", "failed"))
    assert done.state == "failed" and done.exit_code == 3
    assert "exit code 3" in (done.error or "") and "crop_px 512 is larger" in (done.error or "")
    assert not (tmp_path / "trainings" / training_id).exists()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_cancel_stops_every_process_of_the_job(db: Database, backend: LocalTrainingBackend, tmp_path: Path) -> None:
    training_id = new_training(db, "sleep_s: 60\n")
    orch = TrainingOrchestrator(db, backend)
    follow(orch, db, training_id, ("running",))
    child_pid_file = tmp_path / "work" / training_id / "run" / "child.pid"
    deadline = time.monotonic() + 30
    while not child_pid_file.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child = int(child_pid_file.read_text())
    orch.cancel(training_id)
    done = follow(orch, db, training_id, ("cancelled", "failed", "succeeded"), timeout_s=30)
    assert done.state == "cancelled"
    deadline = time.monotonic() + 10
    while _alive(child):  # the fit's own child process too: the whole process group got SIGTERM
        assert time.monotonic() < deadline, "the job's child process outlived the cancel"
        time.sleep(0.05)


def test_a_repeated_launch_finds_the_running_job_and_a_lost_one_fails(db: Database,
                                                                      backend: LocalTrainingBackend) -> None:
    training_id = new_training(db, "sleep_s: 60\n")
    orch = TrainingOrchestrator(db, backend)
    orch.step()
    first = stored(db, training_id)
    assert first.pid is not None
    again = backend.launch(view_of_training(first))  # as if the worker died before recording the pid
    assert again.handle.pid == first.pid
    os.killpg(first.pid, signal.SIGKILL)  # the job dies without leaving an exit code
    done = follow(orch, db, training_id, ("failed", "succeeded", "cancelled"), timeout_s=30)
    assert done.state == "failed" and "without leaving an exit code" in (done.error or "")


def test_one_local_training_at_a_time(db: Database, backend: LocalTrainingBackend) -> None:
    first = new_training(db, "sleep_s: 60\n")
    second = new_training(db)
    orch = TrainingOrchestrator(db, backend)
    orch.step()
    assert stored(db, first).pid is not None and stored(db, second).pid is None
    assert stored(db, second).state == "queued"
    orch.cancel(first)
    follow(orch, db, first, ("cancelled",), timeout_s=30)
    assert follow(orch, db, second, ("succeeded", "failed")).state == "succeeded"


def test_a_running_trainings_progress_is_read_from_its_log_in_place(db: Database, backend: LocalTrainingBackend,
                                                                     tmp_path: Path) -> None:
    log = Path(__file__).parent / "fixtures" / "lightning_metrics.csv"
    # the stand-in holds the first epoch's rows for 4 s: the loop below must read them in that window
    training_id = new_training(db, f"trainer: {{max_time: '00:00:03:00'}}\nmetrics_from: {log}\nsleep_s: 4\n")
    orch = TrainingOrchestrator(db, backend)
    deadline = time.monotonic() + 60
    while True:  # the first epoch's rows, while the fit still runs
        orch.step()
        training = stored(db, training_id)
        progress = training_public(training).progress
        assert progress is not None and progress.max_time_s == 180.0
        if progress.step is not None:
            break
        assert training.state not in ("succeeded", "failed"), training.error
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert (training.state, progress.step, progress.val_step, progress.limit) == ("running", 32, 31, "max_time")
    assert progress.elapsed_s is not None and 0 < progress.elapsed_s < 60
    done = follow(orch, db, training_id, ("succeeded", "failed"))
    final = training_public(done).progress
    assert done.state == "succeeded" and final is not None
    assert (final.step, final.val_step, final.fraction) == (73, 73, 1.0)
