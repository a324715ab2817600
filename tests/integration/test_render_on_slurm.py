"""What one Slurm array task runs, run by Slurm: the service's sbatch script (the builder's) renders `semcoat render
--start --count` chunks of one batch, submitted over SSH as the unprivileged cluster user with the cluster's render
environment, into one shared dataset folder that SFTP fetches back whole."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from blender_addon.render_node.batch_render import render_range
from render_service.slurm.jobs import submit_array
from render_service.slurm.sbatch import RenderArrayJob, sbatch_script
from render_service.slurm.ssh import SSHRunner
from semcoat.dataset import check_dataset
from tests.blender_addon.specs import small_batch
from tests.integration.arrays import wait_for_array

pytestmark = [pytest.mark.integration, pytest.mark.blender, pytest.mark.slow]



def test_array_tasks_render_chunks_of_one_batch_into_one_dataset(
        ssh: SSHRunner, stack_env: dict[str, str], tmp_path: Path) -> None:
    workdir = f"{stack_env['SEMCOAT_CLUSTER_HOME']}/render-it-{uuid.uuid4().hex[:8]}"
    batch = small_batch(count=5)  # 3 tasks of 2, 2 and 1 images: the last chunk is short
    ssh.make_dirs(f"{workdir}/logs")
    ssh.put_text(f"{workdir}/batch.json", batch.to_json())
    job = RenderArrayJob(job_name="semcoat-render-it", semcoat_command=stack_env["SEMCOAT_CLUSTER_SEMCOAT"],
                         batch_file=f"{workdir}/batch.json", out_dir=f"{workdir}/ds", batch_count=batch.count,
                         images_per_task=2, log_path=f"{workdir}/logs/render-%A_%a.out", work_dir=workdir,
                         time_limit="5", cpus_per_task=1)
    ssh.put_text(f"{workdir}/task.sh", sbatch_script(job))
    job_id = submit_array(ssh, f"{workdir}/task.sh")

    states = wait_for_array(ssh, job_id, 3, stack_env["SEMCOAT_SLURM_JOBCOMP_LOG"], timeout_s=180)
    logs = {k: ssh.read_text(f"{workdir}/logs/render-{job_id}_{k[1]}.out", max_bytes=4000, tail=True) for k in states}
    assert {k[1]: (s.state, s.exit_code) for k, s in states.items()} == {
        i: ("COMPLETED", 0) for i in range(3)}, logs

    checked = ssh.run([stack_env["SEMCOAT_CLUSTER_SEMCOAT"], "dataset", "check", f"{workdir}/ds"])
    assert checked.exit_code == 0 and "5 of 5 samples complete" in checked.stdout, checked.stderr
    owner = ssh.run(["stat", "-c", "%U", f"{workdir}/ds/meta/000004.json"]).check().stdout.strip()
    assert owner == stack_env["SEMCOAT_SSH_USER"]

    fetched = tmp_path / "fetched"
    copied = ssh.fetch(f"{workdir}/ds", fetched)
    assert check_dataset(fetched).ok
    assert copied == sum(1 for p in fetched.rglob("*") if p.is_file()) >= 1 + 3 * batch.count

    # the cluster's images are the ones this machine renders for the same (seed, index), bit for bit
    from blender_addon.render_node.renderer import Renderer

    local = tmp_path / "local"
    render_range(batch, local, lambda: Renderer(threads=1), start=3, count=2)
    for index in (3, 4):
        for sub, ext in (("images", "png"), ("masks", "png"), ("meta", "json")):
            name = f"{index:06d}.{ext}"
            assert (local / sub / name).read_bytes() == (fetched / sub / name).read_bytes(), (sub, name)
