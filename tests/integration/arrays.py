"""Waiting for Slurm arrays in integration tests."""

from __future__ import annotations

import time

from render_service.slurm.jobs import TaskKey, poll
from render_service.slurm.parsers import TaskState
from render_service.slurm.ssh import SSHRunner


def wait_for_array(ssh: SSHRunner, job_id: int, tasks: int, jobcomp_log: str,
                   timeout_s: float) -> dict[TaskKey, TaskState]:
    """Poll until all ``tasks`` tasks of array ``job_id`` are final with an exit code; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        states = poll(ssh, [job_id], jobcomp_log=jobcomp_log)
        if len(states) == tasks and all(s.is_final and s.exit_code is not None for s in states.values()):
            return states
        assert time.monotonic() < deadline, f"array {job_id} did not finish in {timeout_s} s: {states}"
        time.sleep(0.3)
