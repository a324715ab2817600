"""The Slurm backend's pure parts and its guard against stale records, and the Celery app's delivery settings."""

from __future__ import annotations

from render_service.backends.slurm import exit_code_of, job_name, observed
from render_service.backends.slurm_lookup import find_job_by_name, poll_jobcomp
from render_service.queue import POLL_BACKEND
from render_service.settings import load_settings
from render_service.slurm.fake import FakeRunner
from render_service.slurm.parsers import TaskState, parse_sacct
from render_service.worker.celery_app import make_celery

LOG = "/var/log/jobcomp.log"


def test_sacct_rows_expand_pending_arrays_and_keep_exit_codes_of_final_tasks() -> None:
    rows = parse_sacct("12_3|FAILED|3:0\n12_[4-5]|PENDING|0:0\n13|CANCELLED by 1001|0:15\n")
    assert rows == [TaskState(12, 3, "FAILED", "", 3, 0), TaskState(12, 4, "PENDING"), TaskState(12, 5, "PENDING"),
                    TaskState(13, None, "CANCELLED", "", 0, 15)]


def test_slurm_states_read_as_task_states_with_shell_exit_codes() -> None:
    assert [observed(TaskState(1, 0, s)) for s in ("PENDING", "RUNNING", "COMPLETED", "TIMEOUT", "CANCELLED",
                                                   "SOMETHING_NEW")] == [
        "pending", "running", "done", "failed", "cancelled", "running"]
    assert exit_code_of(TaskState(1, 0, "FAILED", "", 0, 9)) == 137
    assert exit_code_of(TaskState(1, 0, "FAILED", "", 3, 0)) == 3
    assert job_name("abc", 0) == "semcoat-abc" and job_name("abc", 2) == "semcoat-abc.retry_2"


def test_a_jobcomp_record_of_the_same_id_under_another_name_is_ignored() -> None:
    runner = FakeRunner()
    lines = ("JobId=7 Name=old-job JobState=FAILED ArrayJobId=5 ArrayTaskId=0 ExitCode=1:0 \n"
             "JobId=8 Name=semcoat-b1.retry_1 JobState=COMPLETED ArrayJobId=5 ArrayTaskId=1 ExitCode=0:0 \n")
    runner.answer("grep", stdout=lines)
    found = poll_jobcomp(runner, LOG, {5: "semcoat-b1"})
    assert list(found) == [(5, 1)] and found[(5, 1)].state == "COMPLETED"


def test_a_submitted_job_is_found_by_name_in_squeue_then_in_the_jobcomp_log() -> None:
    runner = FakeRunner()
    runner.answer("squeue", stdout="41\n41\n", times=1)
    runner.answer("squeue", stdout="")
    runner.answer("grep", stdout="JobId=50 Name=semcoat-b1 JobState=COMPLETED ArrayJobId=42 ArrayTaskId=0 "
                                 "ExitCode=0:0 \n", times=1)
    runner.answer("grep", exit_code=1)
    assert find_job_by_name(runner, "semcoat-b1", LOG, accounting=False) == 41
    assert find_job_by_name(runner, "semcoat-b1", LOG, accounting=False) == 42
    assert find_job_by_name(runner, "semcoat-b1", LOG, accounting=False) is None
    assert ("grep", "-E", "(^| )Name=semcoat-b1( |$)", LOG) in runner.commands


def test_the_celery_app_acks_late_and_polls_each_configured_backend(tmp_path: object) -> None:
    settings = load_settings(data_dir=tmp_path, poll_interval_s=2.5, ssh_host="login", ssh_user="u", ssh_key="/k",
                             ssh_known_hosts="/kh", cluster_home="/home/u")
    app = make_celery("redis://127.0.0.1:1/0", settings)
    conf = app.conf
    assert (conf.task_acks_late, conf.task_reject_on_worker_lost, conf.worker_prefetch_multiplier) == (True, True, 1)
    assert conf.result_backend is None
    assert {k: (v["task"], v["schedule"], v["args"]) for k, v in conf.beat_schedule.items()} == {
        "poll-local": (POLL_BACKEND, 2.5, ("local",)), "poll-slurm": (POLL_BACKEND, 2.5, ("slurm",))}
    assert not make_celery("redis://127.0.0.1:1/0").conf.beat_schedule


def test_semcoat_worker_without_a_broker_names_the_setting(tmp_path: object) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "SEMCOAT_REDIS_URL"}
    env["SEMCOAT_DATA_DIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-m", "semcoat_cli", "worker"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=str(tmp_path))
    assert done.returncode == 2 and "SEMCOAT_REDIS_URL is not set" in done.stderr
