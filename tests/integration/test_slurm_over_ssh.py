"""The real stack: paramiko to sshd (host key verified), Slurm array jobs as the cluster user, states, scancel."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest

from render_service.slurm.parsers import SQUEUE_FORMAT, TaskState, parse_jobcomp, parse_sbatch_job_id, parse_squeue
from render_service.slurm.transport import SSHRunner, TransportError

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

ARRAY_SCRIPT = """#!/bin/bash
#SBATCH --job-name=semcoat-it
#SBATCH --output={workdir}/task-%A_%a.out
#SBATCH --time=2
# task 2 fails on purpose; the others write a marker file
if [ "$SLURM_ARRAY_TASK_ID" = 2 ]; then echo failing on purpose >&2; exit 3; fi
echo "task $SLURM_ARRAY_TASK_ID ran as $(id -un)" > {workdir}/done-$SLURM_ARRAY_TASK_ID
"""


@pytest.fixture()
def workdir(ssh: SSHRunner, stack_env: dict[str, str]) -> str:
    path = f"{stack_env['SEMCOAT_CLUSTER_HOME']}/it-{uuid.uuid4().hex[:8]}"
    ssh.run(["mkdir", "-p", path]).check()
    return path


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


def _task_states(ssh: SSHRunner, job_id: int, jobcomp_log: str) -> dict[int, TaskState]:
    """Final states from the jobcomp log, overlaid on squeue for what has not finished."""
    states = {t.task_id: t for t in parse_squeue(
        ssh.run(["squeue", "-h", "-t", "all", "-j", str(job_id), "-o", SQUEUE_FORMAT]).stdout) if t.task_id is not None}
    log = ssh.run(["cat", jobcomp_log]).check().stdout
    for record in parse_jobcomp(log):
        if record.job_id == job_id and record.task_id is not None:
            states[record.task_id] = record
    return states


def test_array_job_runs_and_each_task_reports_its_final_state(
        ssh: SSHRunner, workdir: str, stack_env: dict[str, str]) -> None:
    script = f"{workdir}/array.sh"
    ssh.put_text(script, ARRAY_SCRIPT.format(workdir=workdir))
    job_id = parse_sbatch_job_id(ssh.run(["sbatch", "--parsable", "--array=0-3", script]).check().stdout)
    deadline = time.monotonic() + 90
    while True:
        states = _task_states(ssh, job_id, stack_env["SEMCOAT_SLURM_JOBCOMP_LOG"])
        if len(states) == 4 and all(s.is_final and s.exit_code is not None for s in states.values()):
            break
        assert time.monotonic() < deadline, f"array {job_id} did not finish in 90 s: {states}"
        time.sleep(0.5)
    assert {i: (s.state, s.exit_code) for i, s in states.items()} == {
        0: ("COMPLETED", 0), 1: ("COMPLETED", 0), 2: ("FAILED", 3), 3: ("COMPLETED", 0)}
    marker = ssh.run(["cat", f"{workdir}/done-1"]).check().stdout
    assert marker.strip() == f"task 1 ran as {stack_env['SEMCOAT_SSH_USER']}"
    assert ssh.run(["test", "-e", f"{workdir}/done-2"]).exit_code != 0


def test_scancel_of_a_pending_array_cancels_every_task(ssh: SSHRunner, workdir: str) -> None:
    script = f"{workdir}/array.sh"
    ssh.put_text(script, ARRAY_SCRIPT.format(workdir=workdir))
    job_id = parse_sbatch_job_id(ssh.run(["sbatch", "--parsable", "--hold", "--array=0-3", script]).check().stdout)
    before = parse_squeue(ssh.run(["squeue", "-h", "-t", "all", "-j", str(job_id), "-o", SQUEUE_FORMAT]).stdout)
    assert sorted(t.task_id for t in before) == [0, 1, 2, 3]
    assert {t.state for t in before} == {"PENDING"}
    ssh.run(["scancel", str(job_id)]).check()
    deadline = time.monotonic() + 20
    while True:
        after = parse_squeue(ssh.run(["squeue", "-h", "-t", "all", "-j", str(job_id), "-o", SQUEUE_FORMAT]).stdout)
        if after and {t.state for t in after} == {"CANCELLED"}:
            break
        assert time.monotonic() < deadline, f"array {job_id} not cancelled: {after}"
        time.sleep(0.2)
    assert sorted(t.task_id for t in after) == [0, 1, 2, 3]
    assert ssh.run(["ls", workdir]).check().stdout.split() == ["array.sh"]


def test_missing_key_and_unwritable_remote_path_are_clear_errors(ssh: SSHRunner, stack_env: dict[str, str],
                                                                 tmp_path: Path) -> None:
    runner = SSHRunner(stack_env["SEMCOAT_SSH_HOST"], int(stack_env["SEMCOAT_SSH_PORT"]), stack_env["SEMCOAT_SSH_USER"],
                       tmp_path / "no-such-key", stack_env["SEMCOAT_SSH_KNOWN_HOSTS"])
    with pytest.raises(TransportError, match="no-such-key does not exist"):
        runner.run(["true"])
    with pytest.raises(TransportError, match="cannot write /root/x.txt"):
        ssh.put_text("/root/x.txt", "the cluster user may not write here")
