"""The real stack: paramiko to sshd (host key verified), SFTP file operations, Slurm arrays as the cluster user built
by the sbatch builder, states from squeue + jobcomp, refusals, scancel."""

from __future__ import annotations

import base64
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from render_service.slurm.errors import JobFailedError, RemoteFileError, SubmissionError, TransportError
from render_service.slurm.jobs import cancel, poll, raise_for_failed, submit_array
from render_service.slurm.sbatch import RenderArrayJob, sbatch_script
from render_service.slurm.ssh import SSHRunner
from tests.integration.arrays import wait_for_array
from tests.render_service.runner_contract import CONTRACT, RunnerSetup, check_fetch_failure_leaves_no_folder

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

# a hand-written array: task 2 fails on purpose; the others write a marker file
ARRAY_SCRIPT = """#!/bin/bash
#SBATCH --job-name=semcoat-it
#SBATCH --array=0-3
#SBATCH --output={workdir}/task-%A_%a.out
#SBATCH --time=2
if [ "$SLURM_ARRAY_TASK_ID" = 2 ]; then echo failing on purpose >&2; exit 3; fi
echo "task $SLURM_ARRAY_TASK_ID ran as $(id -un)" > {workdir}/done-$SLURM_ARRAY_TASK_ID
"""


@pytest.fixture()
def workdir(ssh: SSHRunner, stack_env: dict[str, str]) -> str:
    path = f"{stack_env['SEMCOAT_CLUSTER_HOME']}/it-{uuid.uuid4().hex[:8]}"
    ssh.make_dirs(path)
    return path


def _write_bytes(ssh: SSHRunner) -> Callable[[str, bytes], None]:
    # through the shell, not SFTP: the contract's set-up must not depend on the operations it checks
    def write(path: str, data: bytes) -> None:
        ssh.run(["sh", "-c", 'base64 -d > "$0"', path], stdin=base64.b64encode(data).decode()).check()
    return write



def test_stack_status_reports_every_part_up() -> None:
    proc = subprocess.run(["bash", str(REPO / "scripts" / "stack.sh"), "status"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [line.split()[1] for line in proc.stdout.splitlines()] == ["up"] * 5


def test_ssh_runs_as_the_unprivileged_cluster_user(ssh: SSHRunner, stack_env: dict[str, str]) -> None:
    result = ssh.run(["id", "-un"]).check()
    assert result.stdout.strip() == stack_env["SEMCOAT_SSH_USER"]
    assert ssh.run(["id", "-u"]).check().stdout.strip() != "0"


def test_unknown_host_key_is_refused(stack_env: dict[str, str], tmp_path: Path) -> None:
    # a known_hosts file that names another key for the same host must make the connection fail
    other_key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True)
    known = tmp_path / "known_hosts"
    pub = " ".join(other_key.with_suffix(".pub").read_text().split()[:2])
    known.write_text(f"[{stack_env['SEMCOAT_SSH_HOST']}]:{stack_env['SEMCOAT_SSH_PORT']} {pub}\n")
    runner = SSHRunner(stack_env["SEMCOAT_SSH_HOST"], int(stack_env["SEMCOAT_SSH_PORT"]), stack_env["SEMCOAT_SSH_USER"],
                       stack_env["SEMCOAT_SSH_KEY"], known)
    with pytest.raises(TransportError, match="SSH to"):
        runner.run(["true"])
    with pytest.raises(TransportError, match="SSH to"):
        runner.list_dir("/")  # file operations go through the same verified connection


@pytest.mark.parametrize("check", CONTRACT, ids=lambda c: c.__name__.removeprefix("check_"))
def test_sftp_file_operations(check: Callable[[RunnerSetup], None], ssh: SSHRunner, workdir: str,
                              tmp_path: Path) -> None:
    check(RunnerSetup(ssh, workdir, tmp_path, _write_bytes(ssh)))


def test_sftp_fetch_failure_leaves_no_folder(ssh: SSHRunner, workdir: str, tmp_path: Path) -> None:
    check_fetch_failure_leaves_no_folder(RunnerSetup(ssh, workdir, tmp_path, _write_bytes(ssh)),
                                         lambda path: ssh.run(["mkfifo", path]).check())


def test_one_sftp_session_is_reused_and_a_dropped_connection_reopened(ssh: SSHRunner, workdir: str) -> None:
    ssh.put_text(f"{workdir}/a", "a")
    session = ssh._sftp()
    assert ssh.list_dir(workdir) == ["a"] and ssh._sftp() is session
    transport = ssh._connect().get_transport()
    assert transport is not None
    transport.close()  # the server side is gone as far as this client can tell
    assert ssh.read_text(f"{workdir}/a") == "a"
    assert ssh._sftp() is not session


def test_unwritable_remote_path_is_a_remote_file_error_naming_host_and_path(ssh: SSHRunner) -> None:
    with pytest.raises(RemoteFileError, match="cannot write /root/x.txt on 127.0.0.1: Permission denied") as info:
        ssh.put_text("/root/x.txt", "the cluster user may not write here")
    assert not isinstance(info.value, TransportError)


def test_missing_key_is_a_transport_error(stack_env: dict[str, str], tmp_path: Path) -> None:
    runner = SSHRunner(stack_env["SEMCOAT_SSH_HOST"], int(stack_env["SEMCOAT_SSH_PORT"]), stack_env["SEMCOAT_SSH_USER"],
                       tmp_path / "no-such-key", stack_env["SEMCOAT_SSH_KNOWN_HOSTS"])
    with pytest.raises(TransportError, match="no-such-key does not exist"):
        runner.run(["true"])


def test_built_array_renders_each_chunk_with_paths_quoted(ssh: SSHRunner, workdir: str,
                                                          stack_env: dict[str, str]) -> None:
    # /bin/echo stands in for semcoat: each task's log shows the exact argv its chunk got
    root = f"{workdir}/it's a $(touch owned) dir"
    ssh.make_dirs(f"{root}/logs")
    job = RenderArrayJob(job_name="semcoat-it-built", semcoat_command="/bin/echo", batch_file=f"{root}/batch.json",
                         out_dir=f"{root}/data set", batch_count=5, images_per_task=2,
                         log_path=f"{root}/logs/task-%A_%a.out", work_dir=root, time_limit="2", cpus_per_task=1,
                         mem_per_task_mb=100, max_parallel_tasks=2, setup_lines=("echo set-up ran in $(pwd)",))
    ssh.put_text(f"{root}/job.sh", sbatch_script(job))
    job_id = submit_array(ssh, f"{root}/job.sh")
    states = wait_for_array(ssh, job_id, 3, stack_env["SEMCOAT_SLURM_JOBCOMP_LOG"], timeout_s=60)
    assert {k: (s.state, s.exit_code) for k, s in states.items()} == {
        (job_id, i): ("COMPLETED", 0) for i in range(3)}
    assert ssh.list_dir(f"{root}/logs") == [f"task-{job_id}_{i}.out" for i in range(3)]
    for task_id, (start, count) in enumerate([(0, 2), (2, 2), (4, 1)]):
        log = ssh.read_text(f"{root}/logs/task-{job_id}_{task_id}.out").splitlines()
        assert log == [f"set-up ran in {root}",
                       f"render {root}/batch.json --out {root}/data set --start {start} --count {count} --threads 1"]
    assert not ssh.exists(f"{workdir}/owned") and not ssh.exists(f"{root}/owned")


def test_sbatch_to_a_missing_partition_is_a_submission_error_quoting_slurm(ssh: SSHRunner, workdir: str) -> None:
    job = RenderArrayJob(job_name="semcoat-it-refused", semcoat_command="/bin/true", batch_file=f"{workdir}/b.json",
                         out_dir=f"{workdir}/ds", batch_count=2, images_per_task=1, log_path=f"{workdir}/%a.out",
                         partition="no-such-partition")
    ssh.put_text(f"{workdir}/job.sh", sbatch_script(job))
    with pytest.raises(SubmissionError) as info:
        submit_array(ssh, f"{workdir}/job.sh")
    assert "Invalid partition name specified" in info.value.slurm_message
    assert "Invalid partition name specified" in str(info.value) and "sinfo" in str(info.value)
    assert not isinstance(info.value, TransportError)


def test_failed_task_reports_its_state_exit_code_and_log_tail(
        ssh: SSHRunner, workdir: str, stack_env: dict[str, str]) -> None:
    script = f"{workdir}/array.sh"
    ssh.put_text(script, ARRAY_SCRIPT.format(workdir=shlex.quote(workdir)))
    job_id = submit_array(ssh, script)
    states = wait_for_array(ssh, job_id, 4, stack_env["SEMCOAT_SLURM_JOBCOMP_LOG"], timeout_s=90)
    assert {k[1]: (s.state, s.exit_code) for k, s in states.items()} == {
        0: ("COMPLETED", 0), 1: ("COMPLETED", 0), 2: ("FAILED", 3), 3: ("COMPLETED", 0)}
    marker = ssh.read_text(f"{workdir}/done-1")
    assert marker.strip() == f"task 1 ran as {stack_env['SEMCOAT_SSH_USER']}"
    assert not ssh.exists(f"{workdir}/done-2")
    tail = ssh.read_text(f"{workdir}/task-{job_id}_2.out", max_bytes=200, tail=True)
    with pytest.raises(JobFailedError) as info:
        raise_for_failed(job_id, states.values(), log_tails={2: tail})
    assert f"Slurm job {job_id}: 1 task(s) failed: task 2 (FAILED, exit code 3)" in str(info.value)
    assert str(info.value).endswith("failing on purpose")


def test_cancel_of_a_pending_array_cancels_every_task(ssh: SSHRunner, workdir: str) -> None:
    script = f"{workdir}/array.sh"
    held = ARRAY_SCRIPT.format(workdir=shlex.quote(workdir)).replace("#SBATCH --time=2\n",
                                                                     "#SBATCH --time=2\n#SBATCH --hold\n")
    ssh.put_text(script, held)
    job_id = submit_array(ssh, script)
    before = poll(ssh, [job_id])
    assert sorted(before) == [(job_id, i) for i in range(4)]
    assert {s.state for s in before.values()} == {"PENDING"}
    cancel(ssh, [job_id])
    deadline = time.monotonic() + 20
    while True:
        after = poll(ssh, [job_id])
        if after and {s.state for s in after.values()} == {"CANCELLED"}:
            break
        assert time.monotonic() < deadline, f"array {job_id} not cancelled: {after}"
        time.sleep(0.2)
    assert sorted(after) == [(job_id, i) for i in range(4)]
    assert ssh.list_dir(workdir) == ["array.sh"]
