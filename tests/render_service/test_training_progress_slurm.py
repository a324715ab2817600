"""Following running trainings' progress on a fake cluster: their logs looked at in one ``find`` for all trainings
due, at most once per interval per training, read only when they changed (copied whole for the live curves, or by
header and tail when long), stored in each training's record; the record of a succeeded training from its whole
collected log; an unreachable cluster leaves the records as they were."""

from __future__ import annotations

import posixpath
from pathlib import Path

import pytest

from render_service.backends import slurm_training
from render_service.backends.slurm import SlurmBackend, SlurmConfig
from render_service.backends.slurm_training import SlurmTrainingBackend, newest_logs
from render_service.backends.training_base import TrainingView
from render_service.db.session import Database
from render_service.slurm.fake import FakeRunner
from render_service.slurm.transport import CommandResult
from render_service.train_orchestrate import TrainingOrchestrator
from render_service.training_store import training_public
from tests.render_service.fake_slurm import JOBCOMP_LOG, Clock, FakeSlurm
from tests.render_service.test_orchestrate_training import HOME, new_training, package, remote, stored

FIXTURES = Path(__file__).parent / "fixtures"
LOG = (FIXTURES / "lightning_metrics.csv").read_text()
INTERVAL_S = 30.0


class ClusterFiles:
    """``find -printf '%s %T@ %p\\n'`` answered from the fake runner's files, with modification times tests set."""

    def __init__(self, runner: FakeRunner) -> None:
        self.runner = runner
        self.mtimes: dict[str, float] = {}
        runner.answer("find", handler=self._find)
        runner.answer("head", handler=self._head)

    def write(self, path: str, text: str, mtime: float) -> None:
        self.runner.add_file(path, text)
        self.mtimes[path] = mtime

    def _find(self, argv: tuple[str, ...], _stdin: str | None) -> CommandResult:
        roots = argv[1:argv.index("-mindepth")]
        assert argv[argv.index("-printf") + 1] == "%s %T@ %p\\n" and "-type" in argv
        lines, missing = [], False
        for root in roots:
            missing |= root not in self.runner.dirs
            for path, data in sorted(self.runner.files.items()):
                if posixpath.dirname(posixpath.dirname(path)) == root and path.endswith("/metrics.csv"):
                    lines.append(f"{len(data)} {self.mtimes.get(path, 1.0):.10f} {path}\n")
        return CommandResult(argv, 1 if missing else 0, "".join(lines),
                             "find: 'x': No such file or directory\n" if missing else "")

    def _head(self, argv: tuple[str, ...], _stdin: str | None) -> CommandResult:
        assert argv[1] == "-c"
        return CommandResult(argv, 0, self.runner.files[argv[3]][:int(argv[2])].decode(), "")


@pytest.fixture()
def files(runner: FakeRunner) -> ClusterFiles:
    return ClusterFiles(runner)


@pytest.fixture()
def clock() -> Clock:
    return Clock(1_800_000_000.0)  # Unix seconds: log modification times are compared with it


def orchestrator(db: Database, runner: FakeRunner, tmp_path: Path, clock: Clock) -> TrainingOrchestrator:
    config = SlurmConfig(cluster_home=HOME, cluster_semcoat="/opt/semcoat/bin/semcoat", jobcomp_log=JOBCOMP_LOG,
                         setup_lines=())
    cluster = SlurmBackend(runner, config, tmp_path / "batches", retry_delays_s=(0.0,), sleep=lambda _s: None)
    backend = SlurmTrainingBackend(cluster, tmp_path / "trainings", tmp_path / "work",
                                   progress_interval_s=INTERVAL_S)
    return TrainingOrchestrator(db, backend, clock=clock)


def running(db: Database, orch: TrainingOrchestrator, slurm: FakeSlurm, count: int = 1) -> list[str]:
    """``count`` trainings whose jobs run."""
    ids = [new_training(db) for _ in range(count)]
    orch.step()
    for job in slurm.submissions:
        slurm.set(job.job_id, 0, "RUNNING")
    orch.step()
    assert {stored(db, i).job_state for i in ids} == {"running"}
    return ids


def log_path(training_id: str, version: int = 0) -> str:
    return f"{remote(training_id)}/run/logs/version_{version}/metrics.csv"


def finds(runner: FakeRunner) -> int:
    return sum(1 for c in runner.commands if c[0] == "find")


def test_a_running_trainings_log_becomes_its_progress_and_a_live_copy(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, files: ClusterFiles, clock: Clock,
        tmp_path: Path) -> None:
    orch = orchestrator(db, runner, tmp_path, clock)
    (training_id,) = running(db, orch, slurm)
    public = training_public(stored(db, training_id))
    assert public.progress is not None and public.progress.step is None  # looked: no log folder yet
    assert public.progress.max_epochs == 1000  # the config gives no limit: Lightning's default
    half = LOG[:LOG.index("1,,39,")]  # epoch 0 validated, the next not begun
    files.write(log_path(training_id), half, mtime=100.0)
    files.write(log_path(training_id).replace("version_0", "version_x"), LOG, mtime=100.0)  # not a version
    clock.now += INTERVAL_S
    orch.step()
    progress = training_public(stored(db, training_id)).progress
    assert progress is not None
    assert (progress.step, progress.epoch, progress.val_step, progress.best_step) == (32, 0, 31, 31)
    assert progress.train_loss == pytest.approx(2.0002708435058594) and set(progress.val_dice) >= {"pore", "fe2al5"}
    assert progress.updated_at is not None and progress.updated_at.timestamp() == clock.now
    live = tmp_path / "work" / training_id / "live" / "metrics.csv"
    assert live.read_text() == half and [p.name for p in live.parent.iterdir()] == ["metrics.csv"]

    files.write(log_path(training_id), LOG, mtime=160.0)
    clock.now += INTERVAL_S - 1
    orch.step()  # not due yet: the cluster is not asked
    assert finds(runner) == 2 and training_public(stored(db, training_id)).progress.step == 32  # type: ignore[union-attr]
    clock.now += 1
    orch.step()
    assert finds(runner) == 3 and training_public(stored(db, training_id)).progress.step == 73  # type: ignore[union-attr]
    assert live.read_text() == LOG

    files.write(log_path(training_id, 1), "epoch,step,train/loss\n0,5,0.25\n", mtime=170.0)  # a newer version
    clock.now += INTERVAL_S
    orch.step()
    assert training_public(stored(db, training_id)).progress.train_loss == 0.25  # type: ignore[union-attr]


def test_an_unchanged_log_is_not_read_again_and_one_find_serves_every_training(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, files: ClusterFiles, clock: Clock,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    orch = orchestrator(db, runner, tmp_path, clock)
    ids = running(db, orch, slurm, count=20)
    for training_id in ids[:15]:  # five have not logged yet
        files.write(log_path(training_id), LOG, mtime=100.0)
    fetched: list[str] = []
    fetch = runner.fetch

    def counted_fetch(path: str, local: str | Path) -> int:
        fetched.append(path)
        return fetch(path, local)

    monkeypatch.setattr(runner, "fetch", counted_fetch)
    before = len(runner.commands)
    clock.now += INTERVAL_S
    orch.step()
    looks = [c for c in runner.commands[before:] if c[0] == "find"]
    assert len(looks) == 1 and sum(a.endswith("/run/logs") for a in looks[0]) == 20
    assert len(fetched) == 15
    clock.now += INTERVAL_S
    orch.step()
    assert finds(runner) == 3 and len(fetched) == 15  # looked at again, nothing read: unchanged
    width = LOG.partition("\n")[0].count(",")
    files.write(log_path(ids[0]), LOG + "3,,79,1.5" + "," * (width - 3) + "\n", mtime=200.0)
    clock.now += INTERVAL_S
    orch.step()
    assert fetched[15:] == [log_path(ids[0])]
    assert training_public(stored(db, ids[0])).progress.step == 79  # type: ignore[union-attr]
    assert training_public(stored(db, ids[-1])).progress.step is None  # type: ignore[union-attr]


def test_a_long_log_is_followed_by_its_header_and_tail_only(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, files: ClusterFiles, clock: Clock, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slurm_training, "LIVE_MAX_BYTES", 1000)
    orch = orchestrator(db, runner, tmp_path, clock)
    (training_id,) = running(db, orch, slurm)
    files.write(log_path(training_id), LOG, mtime=100.0)  # 1876 bytes: over the (lowered) limit
    clock.now += INTERVAL_S
    orch.step()
    assert ("head", "-c", "65536", log_path(training_id)) in runner.commands
    assert not (tmp_path / "work" / training_id / "live").exists()
    progress = training_public(stored(db, training_id)).progress
    assert progress is not None and (progress.step, progress.val_step) == (73, 73)


def test_a_succeeded_training_gets_its_record_from_the_whole_collected_log(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, files: ClusterFiles, clock: Clock,
        tmp_path: Path) -> None:
    orch = orchestrator(db, runner, tmp_path, clock)
    (training_id,) = running(db, orch, slurm)
    job_id = stored(db, training_id).job_id
    assert job_id is not None
    package(runner, training_id, job_id)
    runner.add_file(f"{remote(training_id)}/outputs/metrics.csv", LOG)
    slurm.set(job_id, 0, "COMPLETED")
    orch.step()
    training = stored(db, training_id)
    assert training.state == "succeeded"
    progress = training_public(training).progress
    assert progress is not None and (progress.step, progress.epoch, progress.fraction) == (73, 2, 1.0)
    assert progress.best_val_dice_mean == progress.val_dice_mean  # the last validation was the best


def test_an_unreachable_cluster_leaves_the_records_as_they_were(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, files: ClusterFiles, clock: Clock,
        tmp_path: Path) -> None:
    orch = orchestrator(db, runner, tmp_path, clock)
    (training_id,) = running(db, orch, slurm)
    before = stored(db, training_id).progress_json
    files.write(log_path(training_id), LOG, mtime=100.0)
    runner.reachable = False
    clock.now += INTERVAL_S
    report = orch.step()
    assert not report.reachable and stored(db, training_id).progress_json == before


def test_find_output_maps_back_to_trainings_by_their_log_folders_only() -> None:
    a, b = TrainingView("a", ""), TrainingView("b", "")
    dirs = {"/h/t/a/run/logs": a, "/h/t/b/run/logs": b}
    out = ("10 5.5 /h/t/a/run/logs/version_0/metrics.csv\n"
           "20 6.5 /h/t/a/run/logs/version_10/metrics.csv\n"
           "30 7.5 /h/t/a/run/logs/version_9/metrics.csv\n"
           "40 8.5 /h/t/b/run/logs/other/metrics.csv\n"
           "50 9.5 /elsewhere/run/logs/version_0/metrics.csv\n"
           "garbage line\nx y /h/t/b/run/logs/version_0/metrics.csv\n"
           "60 1.0 /h/t/b/run/logs/version_1/metrics.csv.tmp\n")
    assert newest_logs(out, dirs) == {a: (20, 6.5, "/h/t/a/run/logs/version_10/metrics.csv")}
