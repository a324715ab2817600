"""What one Slurm array task runs, run by Slurm: `semcoat render --start --count` chunks of one batch, submitted over
SSH as the unprivileged cluster user with the cluster's render environment, into one shared dataset folder."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from blender_addon.render_node.batch_render import render_range
from render_service.slurm.parsers import TaskState, parse_jobcomp, parse_sbatch_job_id
from render_service.slurm.transport import SSHRunner
from semcoat.dataset import check_dataset
from tests.blender_addon.specs import small_batch

pytestmark = [pytest.mark.integration, pytest.mark.blender, pytest.mark.slow]

TASK_SCRIPT = """#!/bin/bash
#SBATCH --job-name=semcoat-render-it
#SBATCH --output={workdir}/render-%A_%a.out
#SBATCH --cpus-per-task=1
#SBATCH --time=5
set -euo pipefail
start=$((SLURM_ARRAY_TASK_ID * {per_task}))
exec {semcoat} render {workdir}/batch.json --out {workdir}/ds --start "$start" --count {per_task} --threads 1
"""


def _wait_for_array(
        ssh: SSHRunner, jobcomp_log: str, job_id: int, tasks: int, timeout_s: float) -> dict[int, TaskState]:
    deadline = time.monotonic() + timeout_s
    while True:
        records = parse_jobcomp(ssh.run(["cat", jobcomp_log]).check().stdout)
        states = {r.task_id: r for r in records if r.job_id == job_id and r.task_id is not None}
        if len(states) == tasks:
            return states
        assert time.monotonic() < deadline, f"array {job_id} unfinished after {timeout_s} s: {states}"
        time.sleep(0.5)


def test_array_tasks_render_chunks_of_one_batch_into_one_dataset(
        ssh: SSHRunner, stack_env: dict[str, str], tmp_path: Path) -> None:
    workdir = f"{stack_env['SEMCOAT_CLUSTER_HOME']}/render-it-{uuid.uuid4().hex[:8]}"
    batch = small_batch(count=4)
    per_task = 2
    ssh.run(["mkdir", "-p", workdir]).check()
    ssh.put_text(f"{workdir}/batch.json", batch.to_json())
    ssh.put_text(f"{workdir}/task.sh", TASK_SCRIPT.format(
        workdir=workdir, per_task=per_task, semcoat=stack_env["SEMCOAT_CLUSTER_SEMCOAT"]))
    submitted = ssh.run(["sbatch", "--parsable", f"--array=0-{batch.count // per_task - 1}", f"{workdir}/task.sh"])
    job_id = parse_sbatch_job_id(submitted.check().stdout)

    states = _wait_for_array(ssh, stack_env["SEMCOAT_SLURM_JOBCOMP_LOG"], job_id, 2, timeout_s=180)
    logs = {i: ssh.run(["cat", f"{workdir}/render-{job_id}_{i}.out"]).stdout for i in states}
    assert {i: (s.state, s.exit_code) for i, s in states.items()} == {0: ("COMPLETED", 0), 1: ("COMPLETED", 0)}, logs

    checked = ssh.run([stack_env["SEMCOAT_CLUSTER_SEMCOAT"], "dataset", "check", f"{workdir}/ds"])
    assert checked.exit_code == 0 and "4 of 4 samples complete" in checked.stdout, checked.stderr
    owner = ssh.run(["stat", "-c", "%U", f"{workdir}/ds/meta/000003.json"]).check().stdout.strip()
    assert owner == stack_env["SEMCOAT_SSH_USER"]

    # the cluster's images are the ones this machine renders for the same (seed, index), bit for bit
    shared = Path(workdir) / "ds"
    assert check_dataset(shared).ok
    from blender_addon.render_node.renderer import Renderer

    local = tmp_path / "local"
    render_range(batch, local, lambda: Renderer(threads=1), start=3, count=1)
    for sub, ext in (("images", "png"), ("masks", "png"), ("meta", "json")):
        assert (local / sub / f"000003.{ext}").read_bytes() == (shared / sub / f"000003.{ext}").read_bytes(), sub
