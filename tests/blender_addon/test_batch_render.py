"""The batch loop without Blender: resume, failure clean-up, a stop inside an image, bad ranges and specs leave
nothing behind."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from blender_addon.render_node.batch_render import SampleFailed, render_range
from blender_addon.render_node.frame import RenderedFrame, RenderError
from blender_addon.scene.stopping import StopCheck
from semcoat.batch import BatchSpec
from semcoat.dataset import check_dataset, sample_id
from semcoat.errors import InvalidArgument
from semcoat.params import SpecError
from tests.blender_addon.fakes import RasterRenderer
from tests.blender_addon.specs import small_batch


def test_renders_a_complete_dataset_with_truth(tmp_path: Path) -> None:
    report = render_range(small_batch(count=3), tmp_path / "ds", RasterRenderer)
    assert report.rendered == [0, 1, 2]
    check = check_dataset(tmp_path / "ds")
    assert check.ok, check.problems
    meta = json.loads((tmp_path / "ds" / "meta" / "000001.json").read_text())
    assert meta["index"] == 1 and meta["params"]["layers"]["fe2al5_thickness_um"] == 24.0
    assert meta["truth"]["pore_line_present"] is True and "pore_fraction_pct" in meta["designed"]


def test_resume_skips_finished_samples_and_redoes_a_half_written_one(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    batch = small_batch(count=4)
    render_range(batch, out, RasterRenderer)
    before = {p.name: p.read_bytes() for p in (out / "images").iterdir()}
    # A kill between the mask and the meta file: image and mask exist, meta does not, a temporary is left.
    (out / "meta" / "000002.json").unlink()
    (out / "images" / ".000002.png.tmp-999").write_bytes(b"partial")
    report = render_range(batch, out, RasterRenderer)
    assert report.rendered == [2] and report.skipped == [0, 1, 3]
    assert check_dataset(out).ok
    assert {p.name: p.read_bytes() for p in (out / "images").iterdir()} == before


def test_a_failing_render_leaves_no_partial_sample(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    with pytest.raises(SampleFailed, match="image 1"):
        render_range(small_batch(count=3), out, lambda: RasterRenderer(fail_on_call=2))
    assert sorted(p.name for p in (out / "meta").iterdir()) == [f"{sample_id(0)}.json"]
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"{sample_id(0)}.png"]
    assert not list((out / "masks").glob(f"*{sample_id(1)}*"))


def test_a_range_outside_the_batch_is_refused_before_any_output(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"images 2\.\.6 are not inside the batch of 3 images") as caught:
        render_range(small_batch(count=3), tmp_path / "ds", RasterRenderer, start=2, count=5)
    assert caught.value.argument == "count"
    with pytest.raises(InvalidArgument, match=r"first image 4 is outside the batch of 3 images; accepted: 0 to 2"):
        render_range(small_batch(count=3), tmp_path / "ds", RasterRenderer, start=4)
    assert not (tmp_path / "ds").exists()


def test_a_drawn_spec_that_contradicts_itself_is_refused_before_any_output(tmp_path: Path) -> None:
    # Thickness drawn so large that the coating leaves the frame for some images.
    batch = small_batch(count=6, randomize={"layers.fe2al5_thickness_um": {"kind": "uniform", "low": 20, "high": 60}})
    with pytest.raises(SpecError, match="coating reaches"):
        render_range(batch, tmp_path / "ds", RasterRenderer)
    assert not (tmp_path / "ds").exists()


def test_batch_from_json_round_trip_renders_the_same(tmp_path: Path) -> None:
    batch = small_batch(count=2)
    again = BatchSpec.from_dict(json.loads(batch.to_json()))
    render_range(batch, tmp_path / "a", RasterRenderer)
    render_range(again, tmp_path / "b", RasterRenderer)
    for sub in ("images", "masks", "meta", "phases"):
        for p in (tmp_path / "a" / sub).iterdir():
            assert p.read_bytes() == (tmp_path / "b" / sub / p.name).read_bytes()


def test_a_renderer_that_cannot_start_says_why_and_what_to_install(tmp_path: Path) -> None:
    def missing_blender() -> RasterRenderer:
        raise ImportError("No module named 'bpy'")

    with pytest.raises(RenderError, match=r"cannot start: No module named 'bpy'.*semcoat\[render\]"):
        render_range(small_batch(count=2), tmp_path / "ds", missing_blender)
    assert check_dataset(tmp_path / "ds").complete == 0


class _StopDuringImage(RasterRenderer):
    """Sets the run's stop event while its ``stop_on_call``-th frame is rendered, as a signal handler would."""

    def __init__(self, stop: threading.Event, stop_on_call: int) -> None:
        super().__init__()
        self.stop, self.stop_on_call = stop, stop_on_call

    def render(self, should_stop: StopCheck | None = None) -> RenderedFrame:
        if self.calls + 1 == self.stop_on_call:
            self.stop.set()
        return super().render(should_stop)


def test_a_stop_inside_an_image_abandons_it_and_the_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    batch = small_batch(count=4)
    stop = threading.Event()
    report = render_range(batch, tmp_path / "ds", lambda: _StopDuringImage(stop, 3), stop=stop)
    assert report.interrupted and report.rendered == [0, 1]
    check = check_dataset(tmp_path / "ds")
    assert check.complete == 2 and not list((tmp_path / "ds").rglob("*.tmp*"))
    assert not list((tmp_path / "ds").rglob(f"{sample_id(2)}*"))  # nothing of the image in hand
    resumed = render_range(batch, tmp_path / "ds", RasterRenderer)
    assert resumed.rendered == [2, 3] and resumed.skipped == [0, 1]
    render_range(batch, tmp_path / "whole", RasterRenderer)
    for folder in ("images", "masks", "meta", "phases"):
        for path in sorted((tmp_path / "whole" / folder).iterdir()):
            assert (tmp_path / "ds" / folder / path.name).read_bytes() == path.read_bytes(), path.name


def test_a_stop_before_the_first_image_renders_nothing(tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()  # as if the signal came before the first image: nothing is rendered
    renderer = RasterRenderer()
    report = render_range(small_batch(count=2), tmp_path / "ds", lambda: renderer, stop=stop)
    assert report.interrupted and report.rendered == [] and renderer.calls == 0 and renderer.closed
