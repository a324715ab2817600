"""The add-on's operators in the real bpy: the preview is what the render node draws (geometry and mask), errors reach
the user as sentences through Operator.report (a 401, an unreachable service, a 422 naming the panel property),
specs export and import, and the Jobs state moves only when the queue is drained on the main thread."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from semcoat.batch import BatchSpec
from semcoat.presets import preset_batch
from tests.blender_addon.addon_session import enabled_addon

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def bpy() -> Iterator[Any]:
    """bpy with the add-on enabled from this checkout (as Blender enables an add-on package)."""
    with enabled_addon() as bpy_module:
        yield bpy_module


def small_batch() -> BatchSpec:
    """The 5h preset, randomised, on a small frame with scan jitter and drift (so the mask depends on the scan)."""
    batch = preset_batch("5h_650C", count=3, seed=7)
    img = batch.base.imaging
    img.width_px, img.height_px, img.pixel_size_um = 160, 120, 0.9
    img.scan_line_jitter_px, img.drift_px, img.data_bar, img.data_bar_height_px = 0.6, 2.5, True, 12
    del batch.randomize["cracks.density_per_100um"]  # cracks in every image, so the mask comparison covers them
    batch.base.cracks.density_per_100um = 4.0
    batch.validate()
    return batch


@pytest.fixture()
def settings(bpy: Any) -> Any:
    from blender_addon.properties import batch_from_settings, write_batch

    s = bpy.context.scene.semcoat
    write_batch(small_batch(), s)
    assert batch_from_settings(s).to_dict() == small_batch().to_dict()
    s.batch.preview_index = 2
    return s


def _mesh_arrays(collection: Any) -> dict[str, np.ndarray]:
    """the builder's role of the object -> the corners of the faces its mesh draws (the render node's meshes keep
    spare faces collapsed to a point; a preview's hold exactly the faces)."""
    from blender_addon.scene.builder import mesh_corners

    return {obj["semcoat_role"]: mesh_corners(obj.data) for obj in collection.objects if obj.type == "MESH"}


class RecordingRenderer:
    """The render node's Renderer, keeping the mesh data of what it drew for each image."""

    def __init__(self) -> None:
        from blender_addon.render_node.renderer import Renderer

        self.inner = Renderer(threads=2)
        self.drawn: dict[int, np.ndarray] = {}

    def build(self, spec: Any, geometry: Any) -> None:
        self.inner.build(spec, geometry)
        self.drawn = _mesh_arrays(self.inner.builder.collection)

    def render(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.render(*args, **kwargs)

    def close(self) -> None:
        self.inner.close()


def test_preview_is_what_the_render_node_draws_and_renders(bpy: Any, settings: Any) -> None:
    from blender_addon import preview
    from blender_addon.render_node.batch_render import PhaseTimes, render_sample

    assert bpy.ops.semcoat.generate_preview() == {"FINISHED"}
    scene = bpy.context.scene
    (coll,) = [c for c in scene.collection.children if c.get("semcoat_role")]
    from blender_addon.scene.builder import LAYOUT

    names = sorted(o.name for o in coll.objects)
    assert {"semcoat.cracks", "semcoat.feal", "semcoat.fe2al5", "semcoat.pores", "semcoat.precipitates",
            "semcoat.precipitates.al8cr5", "semcoat.precipitates.cr2al", "semcoat.resin",
            "semcoat.substrate"} <= set(names)
    assert names == sorted(["semcoat.camera", *(f"semcoat.{name}" for _class, name, _z in LAYOUT.values())])
    assert scene.camera.name == "semcoat.camera"  # "look through preview camera" is on
    first = _mesh_arrays(coll)
    # a second preview replaces the first: same collection, same objects, nothing left over
    objects_before = len(bpy.data.objects)
    settings.batch.preview_index = 1
    assert bpy.ops.semcoat.generate_preview() == {"FINISHED"}
    assert len(bpy.data.objects) == objects_before
    assert [c for c in scene.collection.children if c.get("semcoat_role")] == [coll]
    assert not np.array_equal(_mesh_arrays(coll)["class 4"], first["class 4"])  # image 1's pores are not image 2's
    settings.batch.preview_index = 2
    assert bpy.ops.semcoat.generate_preview() == {"FINISHED"}

    # the render node renders image 2 of the same batch
    batch = small_batch()
    recorder = RecordingRenderer()
    try:
        _image_png, mask_png, meta, _ = render_sample(batch, 2, batch.sample(2), recorder, PhaseTimes())  # type: ignore[arg-type]
    finally:
        recorder.close()
    preview_meshes = _mesh_arrays(coll)
    assert sorted(preview_meshes) == sorted(recorder.drawn)
    # the preview's meshes hold exactly the faces drawn (no spare faces for the user to stumble on)
    assert all(len(o.data.polygons) == len(preview_meshes[o["semcoat_role"]]) for o in coll.objects if o.type == "MESH")
    for name, vertices in recorder.drawn.items():
        assert np.array_equal(preview_meshes[name], vertices), f"{name} differs"

    # Render preview image: its mask is the render node's mask of image 2
    assert bpy.ops.semcoat.render_preview() == {"FINISHED"}
    node_mask = cv2.imdecode(np.frombuffer(mask_png, np.uint8), cv2.IMREAD_UNCHANGED)
    image, mask, sample = preview.render_preview(batch, 2)
    assert sample.image_seed == meta["image_seed"]
    assert mask.shape == node_mask.shape == (120, 160)
    assert np.array_equal(mask, node_mask)
    assert set(np.unique(mask)) >= {0, 1, 3, 4, 6}
    assert image.dtype == np.float32 and 0.0 <= image.min() and image.max() <= 1.0
    grey = bpy.data.images[preview.IMAGE_NAME]
    assert tuple(grey.size) == (160, 120) and preview.MASK_NAME in bpy.data.images
    pixels = np.empty(160 * 120 * 4, np.float32)
    grey.pixels.foreach_get(pixels)
    # the Blender image holds the preview (rows bottom-up)
    assert np.allclose(pixels.reshape(120, 160, 4)[::-1, :, 0], image, atol=1e-6)
    assert [s.name for s in bpy.data.scenes] == ["Scene"]  # the render scene was removed
    assert preview.remove_preview(scene) and not [c for c in scene.collection.children if c.get("semcoat_role")]


def test_an_invalid_design_is_refused_naming_the_panel_property(bpy: Any, settings: Any) -> None:
    settings.pore_line.depth_um = 500.0
    with pytest.raises(RuntimeError, match=r"Design > Pore line > Depth \[µm\]: the band"):
        bpy.ops.semcoat.generate_preview()
    settings.batch.preview_index = 9
    settings.pore_line.depth_um = 20.0
    with pytest.raises(RuntimeError, match="preview image 9 is outside the batch of 3 images"):
        bpy.ops.semcoat.render_preview()


# --- the service ---------------------------------------------------------------------------------------------------
class Service(BaseHTTPRequestHandler):
    """A stand-in service: 401 for a wrong token, 422 for any batch, statuses from a list."""

    states: list[str] = []

    def log_message(self, *_args: Any) -> None:
        """Quiet."""

    def _send(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") != "Bearer sct_ok":
            self._send(401, {"detail": "the token is unknown or revoked"})
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        """Health, a batch."""
        if self.path == "/api/v1/health":
            ok = {"reachable": True, "detail": "ok"}
            from semcoat import __version__

            return self._send(200, {"status": "ok", "version": __version__, "database": ok, "redis": ok,
                                    "workers": 1, "backends": {"local": ok}})
        if not self._authorised():
            return None
        if self.path.startswith("/api/v1/batches?"):
            return self._send(200, {"items": [], "total": 0, "limit": 1, "offset": 0})
        state = type(self).states.pop(0) if type(self).states else "succeeded"
        return self._send(200, {"id": self.path.rsplit("/", 1)[1], "name": "small", "state": state,
                                "backend": "local", "count": 3, "images_done": 3 if state == "succeeded" else 1,
                                "tasks": {"total": 1, "pending": 0, "running": 0, "done": 1, "failed": 0,
                                          "retried": 0},
                                "slurm_job_ids": [], "created_at": "2026-01-01T00:00:00Z", "started_at": None,
                                "finished_at": None, "error": None})

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        """Refuse the spec as the service does, naming a field."""
        if self._authorised():
            self._send(422, {"detail": [{"loc": ["body", "spec", "count"], "value": "3",
                                         "msg": "this service renders at most 2 images per batch"}]})


@pytest.fixture()
def service(bpy: Any) -> Iterator[tuple[str, type[Service]]]:
    handler = type("Handler", (Service,), {"states": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    prefs = bpy.context.preferences.addons["blender_addon"].preferences
    prefs.service_url, prefs.token = url, "sct_ok"
    yield url, handler
    server.shutdown()
    server.server_close()


def test_connection_reports_success_401_and_unreachable(bpy: Any, service: tuple[str, type[Service]]) -> None:
    url, _ = service
    prefs = bpy.context.preferences.addons["blender_addon"].preferences
    assert bpy.ops.semcoat.test_connection() == {"FINISHED"}
    prefs.token = "sct_wrong"
    with pytest.raises(RuntimeError, match=r"refused the token \(401: the token is unknown or revoked\)"):
        bpy.ops.semcoat.test_connection()
    with pytest.raises(RuntimeError, match="semcoat token create"):
        bpy.ops.semcoat.render_on_cluster()
    prefs.service_url = "http://127.0.0.1:9"
    with pytest.raises(RuntimeError, match=r"cannot reach the semcoat service at http://127.0.0.1:9: the "
                                           r"connection was refused"):
        bpy.ops.semcoat.test_connection()


def test_a_422_names_the_panel_property(bpy: Any, settings: Any, service: tuple[str, type[Service]]) -> None:
    with pytest.raises(RuntimeError, match="Batch > Count: this service renders at most 2 images per batch"):
        bpy.ops.semcoat.render_on_cluster()
    assert len(settings.batch.batches) == 0  # nothing was remembered


def test_jobs_move_only_when_the_queue_is_drained(bpy: Any, settings: Any,
                                                  service: tuple[str, type[Service]]) -> None:
    from blender_addon import runtime

    _, handler = service
    handler.states = ["running", "succeeded"]
    wm = bpy.context.window_manager
    wm.semcoat.jobs.clear()
    settings.batch.batches.clear()
    ref = settings.batch.batches.add()
    ref.batch_id, ref.name = "00ff00ff00ff00ff", "small"
    poller = runtime.follow(bpy.context, wake=False)
    assert poller.following() == ["00ff00ff00ff00ff"]
    job = runtime.job_entry(wm, "00ff00ff00ff00ff", create=False)
    assert job is not None and job.state == "unknown"
    poller.wake()
    seen = []
    deadline = time.monotonic() + 10
    while job.state != "succeeded" and time.monotonic() < deadline:
        time.sleep(0.05)
        assert job.state in ("unknown", "running", "succeeded")  # only drain() changes it, on this thread
        if runtime.drain_messages(wm):
            seen.append(job.state)
    assert job.state == "succeeded" and (job.images_done, job.count, job.progress) == (3, 3, 1.0)
    assert seen[-1] == "succeeded"
    assert poller.following() == []
    settings.batch.batches.clear()
    wm.semcoat.jobs.clear()


def test_open_folder_and_download_say_what_is_missing(bpy: Any, settings: Any) -> None:
    from blender_addon import runtime

    job = runtime.job_entry(bpy.context.window_manager, "feedfeedfeedfeed")
    job.name, job.state = "small", "running"
    with pytest.raises(RuntimeError, match="has not been downloaded here yet"):
        bpy.ops.semcoat.open_folder(batch_id="feedfeedfeedfeed")
    with pytest.raises(RuntimeError, match="has no finished images yet"):
        bpy.ops.semcoat.download_results(batch_id="feedfeedfeedfeed")
    with pytest.raises(RuntimeError, match="not among the jobs"):
        bpy.ops.semcoat.download_results(batch_id="nope")
    bpy.context.window_manager.semcoat.jobs.clear()


def test_export_then_import_gives_the_same_batch(bpy: Any, settings: Any, tmp_path: Path) -> None:
    from blender_addon.properties import batch_from_settings, write_batch

    path = tmp_path / "small.json"
    assert bpy.ops.semcoat.export_spec(filepath=str(path)) == {"FINISHED"}
    assert BatchSpec.load(path).to_dict() == small_batch().to_dict()
    write_batch(BatchSpec(), settings)
    assert bpy.ops.semcoat.import_spec(filepath=str(path)) == {"FINISHED"}
    assert batch_from_settings(settings).to_dict() == small_batch().to_dict()
    coating = tmp_path / "coating.json"
    coating.write_text(json.dumps({"layers": {"fe2al5_thickness_um": 61.5}}))
    assert bpy.ops.semcoat.import_spec(filepath=str(coating)) == {"FINISHED"}
    assert settings.layers.fe2al5_thickness_um == 61.5
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"count": 0, "base": {"pores": {"area_fraction_pct": 99}}}))
    with pytest.raises(RuntimeError, match=r"Design > Pores > Area fraction \[%\]: out of range"):
        bpy.ops.semcoat.import_spec(filepath=str(bad))
    assert settings.layers.fe2al5_thickness_um == 61.5  # a refused file changes nothing


def test_reopening_the_file_resumes_following_its_batches(bpy: Any, settings: Any, tmp_path: Path,
                                                           service: tuple[str, type[Service]]) -> None:
    from blender_addon import runtime

    settings.batch.batches.clear()
    ref = settings.batch.batches.add()
    ref.batch_id, ref.name = "abcdabcdabcdabcd", "saved"
    path = tmp_path / "design.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    settings.batch.batches.clear()
    bpy.context.window_manager.semcoat.jobs.clear()
    bpy.ops.wm.read_homefile(use_empty=True)
    assert runtime.scene_batch_ids(bpy.context.scene) == []
    bpy.ops.wm.open_mainfile(filepath=str(path))
    assert runtime.scene_batch_ids(bpy.context.scene) == ["abcdabcdabcdabcd"]
    poller = runtime.poller()
    assert poller is not None and "abcdabcdabcdabcd" in poller.following()
    job = runtime.job_entry(bpy.context.window_manager, "abcdabcdabcdabcd", create=False)
    assert job is not None and job.name == "saved"
    bpy.context.scene.semcoat.batch.batches.clear()
