"""The Blender add-on against the service's Slurm backend on the real loopback cluster: *Render on cluster* with the
Slurm options of the Batch panel becomes one job array run by the cluster user, the Jobs entry follows it to
``succeeded`` as the queue is drained, and *Download results* gives a folder the dataset checker accepts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from semcoat.batch import BatchSpec
from semcoat.dataset import check_dataset
from semcoat.spec import CoatingSpec, ImagingSpec
from tests.blender_addon.addon_session import drain_until, enabled_addon
from tests.integration.service import Service

pytestmark = [pytest.mark.integration, pytest.mark.blender, pytest.mark.slow]


@pytest.fixture(scope="module")
def service(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = Service(stack_env, tmp_path_factory.mktemp("addon-slurm")).start()
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def bpy(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with enabled_addon() as bpy_module:
        prefs = bpy_module.context.preferences.addons["blender_addon"].preferences
        prefs.service_url, prefs.token = service.url, service.token
        prefs.default_backend = "slurm"
        prefs.download_folder = str(tmp_path_factory.mktemp("downloads"))
        yield bpy_module



@pytest.mark.timeout(240)
def test_render_on_cluster_with_slurm_options_follows_the_array_and_downloads(bpy: Any, service: Service) -> None:
    from blender_addon import runtime
    from blender_addon.properties import write_batch

    assert bpy.ops.semcoat.test_connection() == {"FINISHED"}
    settings = bpy.context.scene.semcoat
    batch = BatchSpec(name="addon-slurm", count=4, seed=5,
                      base=CoatingSpec(imaging=ImagingSpec(width_px=160, height_px=128, pixel_size_um=0.8)))
    batch.render.images_per_task = 2
    batch.validate()
    write_batch(batch, settings)
    settings.batch.backend = "PREFERENCES"
    settings.batch.slurm_partition = "debug"
    settings.batch.slurm_time_limit = "5"
    settings.batch.slurm_max_parallel_tasks = 2
    settings.batch.batches.clear()
    assert bpy.ops.semcoat.render_on_cluster() == {"FINISHED"}
    (ref,) = settings.batch.batches
    job = runtime.job_entry(bpy.context.window_manager, ref.batch_id, create=False)
    assert job is not None and job.backend == "slurm" and job.count == 4
    drain_until(bpy, lambda: job.state in ("succeeded", "failed", "cancelled"), 200, "the array to end",
                service.worker_log)
    assert job.state == "succeeded", job.error
    assert service.batch(ref.batch_id)["slurm_job_ids"]  # it really went through Slurm

    assert bpy.ops.semcoat.download_results(batch_id=ref.batch_id) == {"FINISHED"}
    drain_until(bpy, lambda: bool(job.folder) or job.download.startswith("download failed"), 60, "the download",
                service.worker_log)
    assert job.download == "downloaded; the dataset check passed", job.download
    folder = Path(job.folder)
    report = check_dataset(folder)
    assert report.ok and report.complete == 4, report.problems
    assert json.loads((folder / "dataset.json").read_text())["spec"]["count"] == 4
