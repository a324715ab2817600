"""The real renderer (bpy 5.0.1; the engine a render node picks: Workbench where OpenGL starts) on small 256 x 192
images. test_render_engines.py shows that Cycles draws the same frames.

Tolerances stated here are the contract of the renderer:
- mask and rendered grey come from the same object ids: identical class at every pixel (exact);
- a flat interface: every column's Fe2Al5 thickness in the mask is the designed thickness within 1 px;
- area fractions: over a 6-image batch, the mean truth is within 10 % (relative) of the spec's target and every image
  within 25 %; against the drawn geometry (``designed``), every image is within 5 % + 0.05 points;
- pore line: found when asked, its depth below the local surface within 2 px of the spec, never found when absent.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from blender_addon.render_node.batch_render import render_range
from blender_addon.render_node.frame import RenderedFrame
from blender_addon.scene.geometry import build_geometry
from blender_addon.scene.stopping import Interrupted
from semcoat import classes
from semcoat.dataset import check_dataset, read_dataset, sample_id
from semcoat.pngio import decode_grey
from tests.blender_addon.specs import FLAT, NO_NOISE, PIXEL_UM, heavy_batch, small_batch

pytestmark = pytest.mark.blender
SEMCOAT = [str(Path(sys.executable).parent / "semcoat")]


class _Shared:
    """One Blender scene for the whole module; render_range's close() must not remove its scratch folder."""

    def __init__(self) -> None:
        from blender_addon.render_node.renderer import Renderer

        self.inner = Renderer()

    def build(self, spec, geometry):
        self.inner.build(spec, geometry)

    def render(self, should_stop=None) -> RenderedFrame:
        return self.inner.render(should_stop)

    def close(self) -> None:
        """Kept open for the next test."""


@pytest.fixture(scope="module")
def shared() -> Iterator[_Shared]:
    r = _Shared()
    yield r
    r.inner.close()


def _mask(ds: Path, sid: str) -> np.ndarray:
    header, pixels = decode_grey((ds / "masks" / f"{sid}.png").read_bytes())
    return np.frombuffer(pixels, np.uint8).reshape(header.height, header.width)


def test_mask_and_grey_come_from_the_same_rays(shared: _Shared) -> None:
    batch = small_batch(count=1, cracks={"density_per_100um": 6.0}, layers={"feal_present": True},
                        precipitates={"al8cr5_share": 1.0, "cr2al_share": 1.0, "cr23c6_share": 1.0,
                                      "pullout_fraction": 0.3, "cube_fraction": 0.5, "cluster_fraction": 0.5})
    spec = batch.sample(0)
    geometry = build_geometry(spec, np.random.default_rng(1), margin_px=3)
    shared.build(spec, geometry)
    frame = shared.render()
    assert frame.mask.shape == frame.signal.shape == (192, 256 + 6)
    assert set(np.unique(frame.mask)) == set(classes.CLASS_IDS)
    greys = np.array([spec.grey.for_class(c) for c in sorted(classes.CLASS_IDS)], np.float32)
    solid = frame.mask != classes.PRECIPITATE
    np.testing.assert_allclose(frame.signal[solid], greys[frame.mask[solid]], atol=1e-6)
    # a precipitate's grey is its phase's: every phase is seen, and nothing else
    phase_greys = np.array(spec.grey.precipitate_phase_greys(), np.float32)
    seen = frame.signal[~solid]
    nearest = np.abs(seen[:, None] - phase_greys[None, :]).argmin(1)
    np.testing.assert_allclose(seen, phase_greys[nearest], atol=1e-6)
    assert set(nearest) == {0, 1, 2}


def test_dataset_has_only_valid_class_ids_and_passes_the_check(shared: _Shared, tmp_path: Path) -> None:
    render_range(small_batch(count=3), tmp_path / "ds", lambda: shared)
    assert check_dataset(tmp_path / "ds").ok
    for sid in ("000000", "000001", "000002"):
        assert set(np.unique(_mask(tmp_path / "ds", sid))) <= set(classes.CLASS_IDS)


def test_flat_interfaces_give_the_designed_thickness_within_one_pixel(shared: _Shared, tmp_path: Path) -> None:
    batch = small_batch(count=1, layers=FLAT, imaging=NO_NOISE, pores={"area_fraction_pct": 0.0},
                        precipitates={"area_fraction_pct": 0.0}, pore_line={"present": False})
    render_range(batch, tmp_path / "ds", lambda: shared)
    mask = _mask(tmp_path / "ds", "000000")
    top = (mask != classes.BACKGROUND).argmax(0)
    bottom = (mask == classes.SUBSTRATE).argmax(0)
    assert np.all(np.abs((bottom - top) - 24.0 / PIXEL_UM) <= 1)
    assert np.all(np.abs(top - 6.0 / PIXEL_UM) <= 1)
    truth = read_dataset(tmp_path / "ds").meta("000000")["truth"]
    assert truth["fe2al5_thickness_um"] == pytest.approx(24.0, abs=PIXEL_UM)


def test_pore_and_precipitate_fractions_land_on_target_over_a_batch(shared: _Shared, tmp_path: Path) -> None:
    batch = small_batch(count=6, pore_line={"present": False})
    render_range(batch, tmp_path / "ds", lambda: shared)
    ds = read_dataset(tmp_path / "ds")
    metas = [ds.meta(sid) for sid in ds.ids]
    for key, target in (("pore_fraction_pct", 2.0), ("precipitate_fraction_pct", 3.0)):
        truth = np.array([m["truth"][key] for m in metas])
        designed = np.array([m["designed"][key] for m in metas])
        assert truth.mean() == pytest.approx(target, rel=0.10), key
        assert np.all(np.abs(truth - target) <= 0.25 * target), (key, truth)
        assert np.all(np.abs(truth - designed) <= 0.05 * designed + 0.05), (key, truth, designed)


def test_pore_line_is_where_the_spec_puts_it(shared: _Shared, tmp_path: Path) -> None:
    batch = small_batch(count=2, imaging=NO_NOISE, pores={"area_fraction_pct": 0.5},
                        randomize={"pore_line.depth_um": {"kind": "choice", "values": [8.0, 16.0]}})
    render_range(batch, tmp_path / "with", lambda: shared)
    ds = read_dataset(tmp_path / "with")
    for sid in ds.ids:
        meta = ds.meta(sid)
        assert meta["truth"]["pore_line_present"] is True
        assert meta["truth"]["pore_line_depth_um"] == pytest.approx(meta["params"]["pore_line"]["depth_um"],
                                                                   abs=2 * PIXEL_UM)
    render_range(small_batch(count=2, pore_line={"present": False}), tmp_path / "without", lambda: shared)
    ds = read_dataset(tmp_path / "without")
    assert not any(ds.meta(sid)["truth"]["pore_line_present"] for sid in ds.ids)


@pytest.mark.slow
def test_same_seed_and_index_give_the_same_files_in_any_process_and_order(shared: _Shared, tmp_path: Path) -> None:
    batch = small_batch(count=3)
    spec_file = tmp_path / "batch.json"
    spec_file.write_text(batch.to_json())
    done = subprocess.run([*SEMCOAT, "render", str(spec_file), "--out", str(tmp_path / "a"), "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    render_range(batch, tmp_path / "b", lambda: shared, start=2, count=1)
    render_range(batch, tmp_path / "b", lambda: shared, start=1, count=1)
    for sid in ("000001", "000002"):
        for sub, ext in (("images", "png"), ("masks", "png"), ("meta", "json")):
            name = f"{sid}.{ext}"
            assert (tmp_path / "a" / sub / name).read_bytes() == (tmp_path / "b" / sub / name).read_bytes(), name


def _start_render(tmp_path: Path, count: int, wait_for_done: int, **popen: Any) -> tuple[subprocess.Popen[str],
                                                                                        list[str], Path]:
    """Start ``semcoat render`` of a ``count``-image batch and return once ``wait_for_done`` samples are complete."""
    spec_file = tmp_path / "batch.json"
    spec_file.write_text(small_batch(count=count).to_json())
    out = tmp_path / "ds"
    cmd = [*SEMCOAT, "render", str(spec_file), "--out", str(out), "--threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, text=True, **popen)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list((out / "meta").glob("*.json"))) < wait_for_done:
        time.sleep(0.01)
    return proc, cmd, out


@pytest.mark.slow
def test_a_killed_render_resumes_to_a_complete_dataset(tmp_path: Path) -> None:
    proc, cmd, out = _start_render(tmp_path, 30, 3, stderr=subprocess.DEVNULL, start_new_session=True)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list((out / "meta").glob("*.json")))
    assert 3 <= finished < 30
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"skipped {finished} already complete" in done.stdout
    report = check_dataset(out)
    assert report.ok and report.complete == 30, report.problems


def test_a_bad_spec_exits_non_zero_with_the_reason_and_writes_nothing(tmp_path: Path) -> None:
    spec_file = tmp_path / "bad.json"
    data = json.loads(small_batch(count=2).to_json())
    data["base"]["pores"]["area_fraction_pct"] = 95.0
    spec_file.write_text(json.dumps(data))
    done = subprocess.run([*SEMCOAT, "render", str(spec_file), "--out", str(tmp_path / "ds")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "base.pores.area_fraction_pct" in done.stderr and "95" in done.stderr
    assert not (tmp_path / "ds").exists()


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_scancel_stops_the_render_and_says_how_many_are_complete(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    proc, _, out = _start_render(tmp_path, 40, 2, stderr=subprocess.PIPE)
    proc.send_signal(sig)  # most likely lands inside a Cycles render
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code, stderr
    finished = len(list((out / "meta").glob("*.json")))
    assert 2 <= finished < 40
    assert f"interrupted: {finished} of 40 images are complete" in stderr
    assert "Traceback" not in stderr
    report = check_dataset(out)  # the complete samples are intact; nothing half-written remains
    assert report.complete == finished
    assert len(report.problems) == 1 and f"{40 - finished} of 40 samples never written" in report.problems[0]


@pytest.mark.slow
def test_ctrl_c_inside_a_long_image_stops_within_a_second_and_the_resume_is_identical(tmp_path: Path) -> None:
    """Images of about five seconds each (placement near the work bounds): a SIGINT one second into the second image
    ends the run within 1.5 s (or a third of the image's own render time on a machine loaded enough to make that
    longer), leaves the first image only, and resuming gives what an uninterrupted run gives."""
    spec_file = tmp_path / "heavy.json"
    spec_file.write_text(heavy_batch(count=2).to_json())
    out, whole = tmp_path / "ds", tmp_path / "whole"
    cmd = [*SEMCOAT, "render", str(spec_file), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / "meta" / f"{sample_id(0)}.json").exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "the first image took over a minute"
        time.sleep(0.01)
    time.sleep(1.0)
    assert proc.poll() is None, "the second image finished within a second: the spec is too light for this test"
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    waited = time.monotonic() - sent
    assert proc.returncode == 130, stderr
    assert "interrupted: 1 of 2 images are complete" in stderr and "Traceback" not in stderr
    report = check_dataset(out)
    assert report.complete == 1
    leftovers = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != "dataset.json")
    first = sample_id(0)
    assert leftovers == [f"images/{first}.png", f"masks/{first}.png", f"meta/{first}.json", f"phases/{first}.png"]
    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0 and "rendered 1, skipped 1 already complete" in resumed.stdout, resumed.stderr
    # The stop bound scales with this machine's speed at the moment: waiting for the image to end would take about
    # its render time less the one second it had run, well over a third of it.
    took = re.search(r"image 1: rendered in ([0-9.]+) s", resumed.stdout)
    assert took, resumed.stdout
    image_s = float(took.group(1))
    assert waited < max(1.5, image_s / 3), f"the render took {waited:.2f} s to stop (the image takes {image_s:.1f} s)"
    # the interrupted image rendered in one go (image 0 was never interrupted)
    done = subprocess.run([*SEMCOAT, "render", str(spec_file), "--out", str(whole), "--start", "1", "--count", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    second = sample_id(1)
    for folder, name in (("images", f"{second}.png"), ("masks", f"{second}.png"), ("meta", f"{second}.json"),
                         ("phases", f"{second}.png")):
        assert (out / folder / name).read_bytes() == (whole / folder / name).read_bytes(), f"{folder}/{name}"


def test_cycles_strips_join_to_the_single_render_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    from blender_addon.render_node import renderer as renderer_mod

    cycles = renderer_mod.Renderer(threads=2, engine="cycles")
    try:
        spec = small_batch(count=1).sample(0)
        geometry = build_geometry(spec, np.random.default_rng(2), 3)
        cycles.build(spec, geometry)
        whole = cycles.render_ids()
        monkeypatch.setattr(renderer_mod, "STRIP_PIXELS", 262 * 29)  # 7 strips of 27 or 28 rows
        assert len(renderer_mod.strip_rows(262, 192)) == 7
        asked: list[int] = []

        def never() -> bool:
            asked.append(1)
            return False

        strips = cycles.render_ids(never)
        assert len(asked) == 7
        np.testing.assert_array_equal(strips, whole)  # the engine's own ids, before the pixel-centre rule
        assert not cycles.scene.render.use_border  # the scene is left as a single render wants it
        with pytest.raises(Interrupted):
            cycles.render(lambda: True)
    finally:
        cycles.close()


def test_a_raster_frame_is_one_draw_that_asks_to_stop_first(shared: _Shared) -> None:
    assert shared.inner.engine == "raster"  # what auto takes where OpenGL starts
    spec = small_batch(count=1).sample(0)
    shared.build(spec, build_geometry(spec, np.random.default_rng(2), 3))
    asked: list[int] = []

    def never() -> bool:
        asked.append(1)
        return False

    assert shared.inner.render_ids(never).shape == (192, 262) and asked == [1]  # one draw
    assert shared.render(never).mask.shape == (192, 262) and len(asked) > 2  # the rule asks between its steps too
    with pytest.raises(Interrupted):
        shared.render(lambda: True)
    calls = iter(range(1000))
    with pytest.raises(Interrupted):  # stopped inside the pixel-centre rule, after the render
        shared.render(lambda: next(calls) == 3)


def test_strip_rows_cover_the_frame_in_near_equal_strips() -> None:
    from blender_addon.render_node.renderer import STRIP_PIXELS, strip_rows

    assert strip_rows(1032, 768) == [(0, 768)]  # a preset frame is one render, as before strips existed
    rows = strip_rows(6152, 4096)
    assert rows[0][0] == 0 and rows[-1][1] == 4096
    assert all(a[1] == b[0] for a, b in zip(rows[:-1], rows[1:], strict=True))
    assert max((b - a) * 6152 for a, b in rows) <= STRIP_PIXELS
    assert max(b - a for a, b in rows) - min(b - a for a, b in rows) <= 1
    assert strip_rows(STRIP_PIXELS, 3) == [(0, 1), (1, 2), (2, 3)]
    assert strip_rows(4 * STRIP_PIXELS, 2) == [(0, 1), (1, 2)]  # never thinner than a row


def test_resume_renders_a_damaged_sample_again(shared: _Shared, tmp_path: Path) -> None:
    batch = small_batch(count=3)
    out = tmp_path / "ds"
    render_range(batch, out, lambda: shared)
    good = (out / "images" / "000000.png").read_bytes()
    (out / "images" / "000001.png").write_bytes(b"not a png")
    (out / "meta" / "000002.json").write_text("{")
    assert not check_dataset(out).ok
    report = render_range(batch, out, lambda: shared)
    assert report.skipped == [0] and report.rendered == [1, 2]
    assert check_dataset(out).ok
    assert (out / "images" / "000000.png").read_bytes() == good
