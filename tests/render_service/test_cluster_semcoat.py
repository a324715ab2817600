"""The cluster's semcoat is checked before anything is submitted: one that does not match the service's (another
batch-spec schema or renderer, too old to say, missing, without the train part) fails the batch or training at submit
with one sentence and the fix, submits nothing, and ``check()`` (what ``/health`` shows) says the same; the answer is
cached per connection and asked again after a reconnection or a few minutes."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest

from render_service.api.health import backend_health
from render_service.backends.cluster_semcoat import (
    FRESH_S,
    MISMATCH_RECHECK_S,
    RECHECK_S,
    read_cluster_version,
    version_argv,
)
from render_service.backends.slurm import SlurmBackend, SlurmConfig
from render_service.backends.slurm_training import SlurmTrainingBackend
from render_service.db.models import Batch, Training
from render_service.db.session import Database
from render_service.health import parse_backend_health, write_backend_health
from render_service.orchestrate import Orchestrator
from render_service.slurm.fake import FakeRunner
from render_service.slurm.local import LocalRunner
from render_service.slurm.transport import CommandResult
from render_service.store import create_batch
from render_service.train_orchestrate import TrainingOrchestrator
from render_service.training_store import create_training
from semcoat.batch import BatchSpec
from semcoat.versions import InstalledVersion
from semcoat_cli.versions import installed_version
from tests.render_service.fake_slurm import CLUSTER_SEMCOAT, JOBCOMP_LOG, OLD_SEMCOAT_ANSWER, Clock, FakeSlurm
from tests.render_service.fake_store import MemoryStore

HOME = "/home/hpc"
FIX = "rerun `bash scripts/install-render-env.sh /opt/semcoat --extras render"


def make_backend(runner: FakeRunner, tmp_path: Path, clock: Clock, **config: object) -> SlurmBackend:
    settings = {"cluster_home": HOME, "cluster_semcoat": CLUSTER_SEMCOAT, "jobcomp_log": JOBCOMP_LOG, **config}
    return SlurmBackend(runner, SlurmConfig(**settings), tmp_path / "batches",  # type: ignore[arg-type]
                        retry_delays_s=(0.0,), sleep=lambda _s: None, clock=clock)


def new_batch(db: Database) -> str:
    with db.session() as session:
        spec = BatchSpec.from_dict({"name": "p91", "count": 4, "seed": 3})
        return create_batch(session, "alice", spec, "slurm", {}, images_per_task=2).id


def stored_batch(db: Database, batch_id: str) -> Batch:
    with db.session() as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        batch.tasks  # noqa: B018 - loaded while the session is open
        return batch


def version_checks(runner: FakeRunner) -> int:
    return sum(1 for c in runner.commands if c[:2] == ("bash", "-c") and c[-1].endswith("version --json"))


def other_schema() -> InstalledVersion:
    return dataclasses.replace(installed_version(), batch_schema="0123456789ab" + "f" * 52)


def test_a_matching_cluster_is_asked_once_and_health_says_it_matches(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path, clock: Clock) -> None:
    backend = make_backend(runner, tmp_path, clock)
    orch = Orchestrator(db, backend, max_retries=2)
    first, second = new_batch(db), new_batch(db)
    orch.step()
    check = backend.check()
    assert len(slurm.submissions) == 2 and version_checks(runner) == 1
    assert stored_batch(db, first).state == stored_batch(db, second).state == "submitted"
    assert check.reachable and check.extra == {"compatible": True}
    assert "its semcoat matches this service's (semcoat 0.1.0, generator" in check.detail


@pytest.mark.parametrize("answer, words", [
    (other_schema, ["its batch-spec schema differs (0123456789ab, the service's "]),
    (lambda: dataclasses.replace(installed_version(), generator="semcoat 0.1.0 blender_addon renderer 1"),
     ["its renderer differs ('semcoat 0.1.0 blender_addon renderer 1', the service's 'semcoat 0.1.0 "]),
    (lambda: OLD_SEMCOAT_ANSWER, ["it is older than the service's and has no `semcoat version` command (service: "
                                  f"{installed_version().describe()})"]),
    (lambda: CommandResult((), 127, "", f"bash: line 1: {CLUSTER_SEMCOAT}: No such file or directory\n"),
     ["it does not run (`semcoat version --json` exited 127: bash: line 1: /opt/semcoat/bin/semcoat: No such"]),
    (lambda: CommandResult((), 0, "Welcome to the cluster\n", ""),
     ["its `semcoat version --json` printed no version (Welcome to the cluster)"]),
    (lambda: dataclasses.replace(installed_version(), parts=("train",)), ["it lacks the render part"]),
], ids=["schema", "renderer", "too-old", "missing", "garbage", "no-render-part"])
def test_a_cluster_semcoat_that_does_not_match_fails_the_batch_at_submit_with_one_sentence(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path, clock: Clock,
        answer: object, words: list[str]) -> None:
    slurm.version = answer()  # type: ignore[operator]
    backend = make_backend(runner, tmp_path, clock)
    batch_id = new_batch(db)
    report = Orchestrator(db, backend, max_retries=2).step()

    batch = stored_batch(db, batch_id)
    assert report.reachable and report.launched == 0
    assert batch.state == "failed" and batch.error is not None
    assert batch.error.startswith(f"The cluster's semcoat ({CLUSTER_SEMCOAT} on login.example) does not match this "
                                  "service's, so no batch or training is submitted to Slurm: ")
    assert FIX in batch.error and batch.error.endswith("matches).") and "Traceback" not in batch.error
    for word in words:
        assert word in batch.error, (word, batch.error)
    assert [t.state for t in batch.tasks] == ["failed", "failed"]
    assert slurm.submissions == [] and not any(p.startswith(f"{HOME}/") for p in runner.files)  # nothing written

    check = backend.check()  # what the worker writes for /health: the same sentence
    assert not check.reachable and check.detail == batch.error and check.extra == {"compatible": False}
    store = MemoryStore()
    write_backend_health(store, "slurm", check.reachable, check.detail, ttl_s=60)
    shown = backend_health("slurm", parse_backend_health(store.get("semcoat:health:slurm")), now=0)
    assert not shown.reachable and shown.detail.startswith(batch.error)


def test_the_answer_is_asked_again_after_a_few_minutes_and_after_a_reconnection(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path, clock: Clock) -> None:
    backend = make_backend(runner, tmp_path, clock)
    assert backend.check().reachable and version_checks(runner) == 1
    slurm.version = other_schema()  # an admin installs another semcoat while the service runs
    clock.now += RECHECK_S - 1
    assert backend.check().reachable and version_checks(runner) == 1  # cached
    clock.now += 1
    assert not backend.check().reachable and version_checks(runner) == 2

    slurm.version = installed_version()  # ... and puts the right one back; the connection drops
    runner.reachable = False
    assert not backend.check().reachable
    runner.reachable = True
    backend._next_try = 0.0  # the backoff has passed
    assert backend.check().reachable and version_checks(runner) == 3  # asked again at once on the new connection

    slurm.version = other_schema()
    clock.now += RECHECK_S
    assert not backend.check().reachable and version_checks(runner) == 4
    clock.now += MISMATCH_RECHECK_S - 1  # a mismatch is asked again sooner: the admin is probably on it
    assert not backend.check().reachable and version_checks(runner) == 4
    clock.now += 1
    assert not backend.check().reachable and version_checks(runner) == 5

    slurm.version = installed_version()  # fixed; a batch submitted now is not failed on the old answer
    clock.now += FRESH_S + 1
    batch_id = new_batch(db)
    Orchestrator(db, backend, max_retries=2).step()
    assert stored_batch(db, batch_id).state == "submitted" and len(slurm.submissions) == 1
    assert version_checks(runner) == 6 and backend.check().reachable


def test_a_retry_meets_the_check_too(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path, clock: Clock) -> None:
    backend = make_backend(runner, tmp_path, clock)
    orch = Orchestrator(db, backend, max_retries=2)
    batch_id = new_batch(db)
    orch.step()
    job = slurm.submissions[0].job_id
    slurm.set(job, 0, "COMPLETED")
    slurm.set(job, 1, "FAILED", "1:0")
    slurm.version = OLD_SEMCOAT_ANSWER  # reinstalled from an old checkout meanwhile
    clock.now += RECHECK_S
    orch.step()
    batch = stored_batch(db, batch_id)
    assert batch.state == "failed" and batch.error is not None and "no `semcoat version` command" in batch.error
    assert len(slurm.submissions) == 1


def test_a_training_fails_at_submit_when_the_cluster_lacks_the_train_part(
        db: Database, runner: FakeRunner, slurm: FakeSlurm, tmp_path: Path, clock: Clock) -> None:
    slurm.version = dataclasses.replace(installed_version(), parts=("render",))
    cluster = make_backend(runner, tmp_path, clock)
    with db.session() as session:
        training_id = create_training(session, "alice", "unet", "slurm", "unet", "model: {}\n",
                                      [{"batch_id": "b1", "path": f"{HOME}/semcoat-batches/b1/dataset"}], {}).id
    TrainingOrchestrator(db, SlurmTrainingBackend(cluster, tmp_path / "trainings")).step()
    with db.session() as session:
        training = session.get(Training, training_id)
        assert training is not None
        state, error = training.state, training.error
    assert state == "failed" and error is not None and slurm.submissions == []
    assert "it lacks the train part" in error
    assert "rerun `bash scripts/install-render-env.sh /opt/semcoat --extras render,train`" in error
    check = cluster.check()  # batches can still render: health is fine, and says what trainings lack
    assert check.reachable and "it has no train part, so trainings fail at submit" in check.detail


def test_the_version_command_runs_after_the_admins_setup_lines_whatever_they_print_or_fail(tmp_path: Path) -> None:
    """Through a real bash: set-up lines' output stays off stdout, their failures do not hide a working semcoat,
    a path with a space is quoted, and a missing semcoat is bash's 127."""
    prefix = tmp_path / "semcoat env"
    (prefix / "bin").mkdir(parents=True)
    semcoat = prefix / "bin" / "semcoat"
    line = installed_version().to_json()
    semcoat.write_text(f"#!/bin/sh\n[ \"$*\" = 'version --json' ] && [ \"$SITE\" = ok ] && echo '{line}'\n")
    semcoat.chmod(semcoat.stat().st_mode | stat.S_IXUSR)
    setup = ("echo loading modules", "module load python/3.11", "export SITE=ok")
    result = LocalRunner().run(version_argv(str(semcoat), setup))
    assert result.exit_code == 0 and result.stdout.strip() == line, result
    assert read_cluster_version(result) == installed_version()
    assert "loading modules" in result.stderr

    missing = LocalRunner().run(version_argv(str(tmp_path / "nowhere" / "semcoat")))
    reason = read_cluster_version(missing)
    assert missing.exit_code == 127 and isinstance(reason, str) and reason.startswith("it does not run (")
    assert os.fspath(tmp_path / "nowhere") in reason
