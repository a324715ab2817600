"""The add-on against a real `semcoat serve` (the embedded default: its own Redis, SQLite and a local worker that runs
`semcoat render`): Test connection, Render on cluster, the Jobs state reaching `succeeded` by draining the queue, and
Download results giving a folder the dataset checker accepts; a wrong token is a clear 401 report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from render_service.embedded import free_port, worker_available
from semcoat.batch import BatchSpec
from semcoat.dataset import check_dataset
from semcoat.spec import CoatingSpec, ImagingSpec
from tests.blender_addon.addon_session import drain_until, enabled_addon

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.blender, pytest.mark.slow]


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """``semcoat serve`` with no configuration; yields (URL, the first user's token)."""
    assert worker_available(), "the local worker cannot start here (Celery missing?): the test needs it"
    tmp = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEMCOAT_")}
    env.update(HOME=str(tmp / "home"), SEMCOAT_DATA_DIR=str(tmp / "data"), PYTHONPATH=str(REPO),
               SEMCOAT_POLL_INTERVAL_S="0.5")
    log = (tmp / "serve.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "semcoat_cli", "serve", "--port", str(port)], env=env,
                               cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v1/health", timeout=2) as response:
                    if json.load(response)["workers"] >= 1:
                        break
            except OSError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (tmp / "serve.log").read_text()
            time.sleep(0.3)
        yield url, (tmp / "data" / "token").read_text().strip()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def bpy(serve: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with enabled_addon() as bpy_module:
        prefs = bpy_module.context.preferences.addons["blender_addon"].preferences
        prefs.service_url, prefs.token = serve
        prefs.default_backend = "local"
        prefs.download_folder = str(tmp_path_factory.mktemp("downloads"))
        yield bpy_module



def test_render_on_cluster_follow_and_download(bpy: Any) -> None:
    from blender_addon import runtime
    from blender_addon.properties import write_batch

    assert bpy.ops.semcoat.test_connection() == {"FINISHED"}
    settings = bpy.context.scene.semcoat
    batch = BatchSpec(name="addon-e2e", count=2, seed=3,
                      base=CoatingSpec(imaging=ImagingSpec(width_px=160, height_px=128, pixel_size_um=0.8)))
    batch.render.images_per_task = 1
    batch.validate()
    write_batch(batch, settings)
    settings.batch.backend = "PREFERENCES"
    settings.batch.batches.clear()
    assert bpy.ops.semcoat.render_on_cluster() == {"FINISHED"}
    (ref,) = settings.batch.batches  # the id is kept on the Scene (saved with the file)
    job = runtime.job_entry(bpy.context.window_manager, ref.batch_id, create=False)
    assert job is not None and job.backend == "local" and job.count == 2
    drain_until(bpy, lambda: job.state in ("succeeded", "failed", "cancelled"), 240, "the batch to end")
    assert job.state == "succeeded", job.error
    assert (job.images_done, job.progress) == (2, 1.0)

    assert bpy.ops.semcoat.download_results(batch_id=ref.batch_id) == {"FINISHED"}
    drain_until(bpy, lambda: bool(job.folder) or job.download.startswith("download failed"), 60, "the download")
    assert job.download == "downloaded; the dataset check passed", job.download
    folder = Path(job.folder)
    assert folder.name == f"addon-e2e-{ref.batch_id}"
    report = check_dataset(folder)
    assert report.ok and report.complete == 2, report.problems
    assert json.loads((folder / "dataset.json").read_text())["spec"] == batch.to_dict()


def test_wrong_token_against_the_real_service(bpy: Any) -> None:
    prefs = bpy.context.preferences.addons["blender_addon"].preferences
    good = prefs.token
    prefs.token = "sct_not_a_token"
    try:
        with pytest.raises(RuntimeError, match=r"refused the token \(401"):
            bpy.ops.semcoat.test_connection()
    finally:
        prefs.token = good
