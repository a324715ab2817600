"""The raster engine, Workbench and Cycles draw the same frames: the same mask and signal for the same (seed, index),
pixel for pixel.

For every spec below (small images that switch on each geometry feature, thin features at their limits, and images of
every preset) every engine renders the same geometry, and:
- the frames (mask and signal) are identical;
- each engine's raw ids equal the pixel-centre rule's answer at every pixel the rule leaves to the engine (farther
  than ``EDGE_BAND_PX`` from an edge): the engines themselves follow the rule there, the rule only takes over where
  they may waver;
- every object the builder draws (every ``LAYOUT`` role) is drawn by some spec here, so a new kind of object fails
  this module until a spec draws it.
Then the render node picks the raster engine when OpenGL starts and falls back to Cycles, with the reason, when EGL
cannot start (made unavailable through EGL's own configuration), and a batch started on one engine resumes on another
with the same files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from blender_addon.render_node.batch_render import render_range
from blender_addon.render_node.sem_image import scan_margin_px
from blender_addon.scene.builder import LAYOUT, OBJECT_IDS
from blender_addon.scene.class_map import drawn_objects
from blender_addon.scene.geometry import build_geometry
from blender_addon.scene.pixel_centres import (
    DrawnObject,
    apply_pixel_centre_rule,
    band_pixels,
    nearest_object,
    outline_edges,
)
from blender_addon.scene.placement import VERTICES_PER_INCLUSION, Inclusions
from semcoat.batch import BatchSpec
from semcoat.presets import PRESETS, preset_batch
from tests.blender_addon.specs import PIXEL_UM, small_batch

pytestmark = pytest.mark.blender
SEMCOAT = [str(Path(sys.executable).parent / "semcoat")]
NO_EGL = {"__EGL_VENDOR_LIBRARY_FILENAMES": "/nonexistent/semcoat-no-egl.json"}  # glvnd then finds no EGL driver

ALL_PHASES = {"al8cr5_share": 1.0, "cr2al_share": 1.0, "cr23c6_share": 1.0}
FEATURE_BATCHES: dict[str, BatchSpec] = {
    "pores and pore line": small_batch(count=2),
    "cracks through FeAl": small_batch(count=2, cracks={"density_per_100um": 8.0, "through_fraction": 0.5},
                                       layers={"feal_present": True}),
    "thinnest cracks": small_batch(count=1, cracks={"density_per_100um": 10.0, "width_um": 0.05}),
    "precipitate phases, pull-outs": small_batch(count=2, precipitates={**ALL_PHASES, "pullout_fraction": 0.4}),
    "precipitate groups and cubes": small_batch(count=2, precipitates={**ALL_PHASES, "cluster_fraction": 0.8,
                                                                       "cube_fraction": 0.6}),
    "tiny pores and precipitates": small_batch(count=1, pores={"radius_mean_um": 0.08, "radius_std_um": 0.04},
                                               precipitates={"radius_mean_um": 0.08, "radius_std_um": 0.04}),
    "no pore line, no FeAl": small_batch(count=1, pore_line={"present": False}),
    **{f"preset {name}": preset_batch(name, count=2, seed=3) for name in PRESETS},
}


def _sides(obj: DrawnObject, edges: np.ndarray) -> np.ndarray:
    """(E, 2) bool: whether the object covers a point just left and just right of each edge's middle."""
    mid = edges.mean(1)
    d = edges[:, 1] - edges[:, 0]
    normal = np.stack([-d[:, 1], d[:, 0]], 1) / np.hypot(d[:, 0], d[:, 1])[:, None] * 1e-3
    alone = DrawnObject(1, obj.polygons, 0.0)
    return np.stack([nearest_object(mid + normal, [alone]) == 1, nearest_object(mid - normal, [alone]) == 1], 1)


def _check_outline(obj: DrawnObject, label: str) -> None:
    """The outline the builder gives has the object on one side of each edge; every polygon edge left out of it has
    the object on both sides (inside the region) or lies on the outline."""
    assert obj.outline is not None
    sides = _sides(obj, obj.outline)
    assert np.all(sides[:, 0] != sides[:, 1]), f"{label}: an outline edge inside or outside the object"
    edges = np.stack([obj.polygons, np.roll(obj.polygons, -1, axis=1)], axis=2).reshape(-1, 2, 2)
    edges = edges[np.any(edges[:, 0] != edges[:, 1], axis=1)]
    on_outline = {tuple(e.ravel().tolist()) for e in np.concatenate([obj.outline, obj.outline[:, ::-1]])}
    left_out = np.array([tuple(e.ravel().tolist()) not in on_outline for e in edges])
    sides = _sides(obj, edges[left_out])
    assert np.all(sides[:, 0] & sides[:, 1]), f"{label}: a polygon edge on the boundary is missing from the outline"


ENGINES = ("raster", "workbench", "cycles")


class Pair:
    """A renderer of each engine (raster, Workbench, Cycles) in this process, each in a scene of its own."""

    def __init__(self) -> None:
        from blender_addon.render_node.renderer import Renderer

        self.raster = Renderer(threads=2, engine="raster")
        self.workbench = Renderer(threads=2, engine="workbench")
        self.cycles = Renderer(threads=2, engine="cycles")
        assert (self.raster.engine, self.workbench.engine, self.cycles.engine) == ENGINES
        self.seen_roles: set[str] = set()

    def close(self) -> None:
        for renderer in (self.raster, self.workbench, self.cycles):
            renderer.close()

    def compare(self, spec: Any, geometry: Any, label: str, ties: bool = False) -> None:
        """Render ``geometry`` with every engine and check the module's claims; records which roles were drawn.
        With ``ties`` (edges placed on pixel centres) an engine may part from the rule at many edge pixels."""
        frames, raws = [], []
        for renderer in (self.raster, self.workbench, self.cycles):
            renderer.build(spec, geometry)
            raws.append(renderer.render_ids())
            frames.append(renderer.builder.class_map(raws[-1])[:2])  # what render() returns, from the same render
        builder = self.workbench.builder
        self.seen_roles |= {role for role, (corners, _z, _outline) in builder.drawn.items() if len(corners)}
        for engine, (signal, mask) in zip(ENGINES[1:], frames[1:], strict=True):
            np.testing.assert_array_equal(frames[0][1], mask, err_msg=f"{label}: raster and {engine} masks differ")
            np.testing.assert_array_equal(frames[0][0], signal, err_msg=f"{label}: raster and {engine} signals differ")
        height, width = raws[0].shape
        drawn = drawn_objects(builder.drawn, OBJECT_IDS, builder.camera, width, height)
        for obj in drawn:
            if obj.outline is not None:
                _check_outline(obj, f"{label}: object {obj.object_id}")
        band = np.zeros(height * width, bool)
        band[band_pixels(np.concatenate([outline_edges(o) for o in drawn]), width, height)] = True
        for engine, raw in zip(ENGINES, raws, strict=True):
            # the rule over every pixel within 0.19 px of an edge: where the engine differs from it, it wavered
            wide, _ = apply_pixel_centre_rule(raw, drawn, band_px=0.19)
            wavered = (wide != raw).reshape(-1)
            assert not np.any(wavered & ~band), f"{label}: {engine} broke the pixel-centre rule off the edge band"
            assert ties or wavered.sum() <= max(5, band.sum() // 20), f"{label}: {engine} wavered at {wavered.sum()} px"


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    p = Pair()
    yield p
    p.close()


@pytest.mark.parametrize("name", list(FEATURE_BATCHES))
def test_every_engine_draws_the_same_frame(pair: Pair, name: str) -> None:
    batch = FEATURE_BATCHES[name]
    for index in range(batch.count):
        spec = batch.sample(index)
        geometry = build_geometry(spec, np.random.default_rng([batch.image_seed(index), 0]),
                                  scan_margin_px(spec.imaging))
        pair.compare(spec, geometry, f"{name}, image {index}")


def test_every_object_the_builder_draws_was_compared(pair: Pair) -> None:
    if not pair.seen_roles:  # run alone: draw the feature batches first
        for name in FEATURE_BATCHES:
            test_every_engine_draws_the_same_frame(pair, name)
    missing = sorted(set(LAYOUT) - pair.seen_roles)
    assert not missing, f"no spec in FEATURE_BATCHES draws {missing}: add one that does"


def _polygon_ring(points_px: np.ndarray) -> np.ndarray:
    """A closed outline (m, 2) resampled to VERTICES_PER_INCLUSION corners along its edges (collinear corners kept)."""
    closed = np.concatenate([points_px, points_px[:1]])
    seg = np.hypot(*np.diff(closed, axis=0).T)
    at = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.linspace(0.0, at[-1], VERTICES_PER_INCLUSION, endpoint=False)
    return np.stack([np.interp(s, at, closed[:, 0]), np.interp(s, at, closed[:, 1])], -1)


def _hard_shapes() -> np.ndarray:
    """Polygons (n, 32, 2) in um (x, depth) of shapes at the limits of the rule, in the Fe2Al5 of a small image:
    slivers 0.01-0.3 px wide at several angles, pores of 0.15-0.6 px radius on and off pixel centres, and rectangles
    whose edges and corners lie on pixel centres."""
    shapes = []
    for k, (angle, width) in enumerate([(0, 0.01), (90, 0.05), (30, 0.3), (45, 0.02), (60, 0.2), (1, 0.1)]):
        a = np.deg2rad(angle)
        d, n = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
        c = np.array([30.0 + 35 * k, 60.0])
        shapes.append(_polygon_ring(np.array([c - 12 * d, c + 12 * d, c + 12 * d + width * n, c - 12 * d + width * n])))
    for k, r in enumerate([0.15, 0.3, 0.45, 0.6]):
        for offset in (0.0, 0.5, 0.37):
            c = np.array([20.5 + 14 * k + offset, 100.5 + 12 * (offset > 0) + offset])
            t = np.linspace(0, 2 * np.pi, VERTICES_PER_INCLUSION, endpoint=False)
            shapes.append(np.stack([c[0] + r * np.cos(t), c[1] + r * np.sin(t)], -1))
    for k in range(4):  # x and depth of a pixel centre are half-integers (the builder adds the whole-pixel margin)
        x0, y0 = 100.5 + 10 * k, 120.5 + k
        shapes.append(_polygon_ring(np.array([[x0, y0], [x0 + 3 + k, y0], [x0 + 3 + k, y0 + 4], [x0, y0 + 4]])))
    return np.array(shapes) * PIXEL_UM


def test_thin_and_tiny_shapes_on_pixel_centres_are_drawn_alike(pair: Pair) -> None:
    batch = small_batch(count=1, precipitates={"area_fraction_pct": 0.0}, pore_line={"present": False},
                        pores={"area_fraction_pct": 0.0})
    spec = batch.sample(0)
    geometry = build_geometry(spec, np.random.default_rng([batch.image_seed(0), 0]), scan_margin_px(spec.imaging))
    polygons = _hard_shapes()
    geometry.pores = Inclusions(polygons, np.ones(len(polygons)))
    pair.compare(spec, geometry, "thin and tiny shapes", ties=True)


def test_a_frame_in_cycles_strips_equals_workbench_in_one_piece(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    from blender_addon.render_node import renderer as renderer_mod

    monkeypatch.setattr(renderer_mod, "STRIP_PIXELS", 262 * 40)  # 5 strips of 38 or 39 rows
    assert len(renderer_mod.strip_rows(262, 192)) == 5
    batch = small_batch(count=1, cracks={"density_per_100um": 6.0}, precipitates=ALL_PHASES)
    spec = batch.sample(0)
    pair.compare(spec, build_geometry(spec, np.random.default_rng([batch.image_seed(0), 0]),
                                      scan_margin_px(spec.imaging)), "Cycles in strips")


def test_workbench_strips_through_a_moved_camera_join_to_the_whole_frame(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    from blender_addon.render_node import renderer as renderer_mod

    batch = small_batch(count=1, cracks={"density_per_100um": 6.0}, precipitates=ALL_PHASES)
    spec = batch.sample(0)
    wb = pair.workbench
    wb.build(spec, build_geometry(spec, np.random.default_rng([batch.image_seed(0), 0]), scan_margin_px(spec.imaging)))
    whole_ids = wb.render_ids()
    whole = wb.render()
    camera = (wb.builder.camera.location.copy(), wb.scene.render.resolution_y)
    height, width = whole_ids.shape
    monkeypatch.setattr(renderer_mod, "WORKBENCH_STRIP_PIXELS", width * 45)  # 5 strips of 38 or 39 rows
    asked: list[int] = []

    def never() -> bool:
        asked.append(1)
        return False

    strip_ids = wb.render_ids(never)
    assert len(asked) == 5
    assert (wb.builder.camera.location.copy(), wb.scene.render.resolution_y) == camera  # put back
    drawn = drawn_objects(wb.builder.drawn, OBJECT_IDS, wb.builder.camera, width, height)
    band = np.zeros(height * width, bool)
    band[band_pixels(np.concatenate([outline_edges(o) for o in drawn]), width, height)] = True
    assert not np.any((strip_ids != whole_ids).reshape(-1) & ~band)  # any difference is float rounding at an edge
    strips = wb.render(never)
    np.testing.assert_array_equal(strips.mask, whole.mask)
    np.testing.assert_array_equal(strips.signal, whole.signal)


@pytest.mark.slow
def test_a_large_frame_is_drawn_alike(pair: Pair) -> None:
    batch = small_batch(count=1, imaging={"width_px": 1600, "height_px": 900}, cracks={"density_per_100um": 4.0},
                        precipitates=ALL_PHASES)
    spec = batch.sample(0)
    geometry = build_geometry(spec, np.random.default_rng([batch.image_seed(0), 0]), scan_margin_px(spec.imaging))
    from blender_addon.render_node.renderer import strip_rows

    assert len(strip_rows(1600 + 2 * geometry.margin_px, 900)) >= 2  # Cycles renders it in strips, Workbench whole
    pair.compare(spec, geometry, "large frame")


def test_auto_takes_the_raster_engine_where_opengl_starts(pair: Pair) -> None:
    from blender_addon.render_node.egl import probe
    from blender_addon.render_node.renderer import choose_engine

    status = probe()
    assert status.available, f"OpenGL through EGL does not start on this machine: {status.detail}"
    choice = choose_engine("auto")
    assert choice.engine == "raster" and status.detail in choice.note
    assert choose_engine("workbench").engine == "workbench" and choose_engine("cycles").engine == "cycles"


def _render_cli(tmp_path: Path, out: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[
        str]:
    spec_file = tmp_path / "batch.json"
    if not spec_file.exists():
        spec_file.write_text(small_batch(count=3, cracks={"density_per_100um": 5.0}).to_json())
    return subprocess.run([*SEMCOAT, "render", str(spec_file), "--out", str(tmp_path / out), "--threads", "2", *args],
                          capture_output=True, text=True, timeout=180, env={**os.environ, **(env or {})})


def _same_files(a: Path, b: Path) -> None:
    for sub in ("images", "masks", "meta", "phases"):
        names = sorted(p.name for p in (a / sub).iterdir())
        assert names == sorted(p.name for p in (b / sub).iterdir())
        for name in names:
            assert (a / sub / name).read_bytes() == (b / sub / name).read_bytes(), f"{sub}/{name}"


@pytest.mark.slow
def test_without_egl_auto_falls_back_to_cycles_and_says_why_and_opengl_engines_alone_fail_cleanly(
    tmp_path: Path
) -> None:
    drawn = _render_cli(tmp_path, "raster")
    assert drawn.returncode == 0, drawn.stderr
    assert drawn.stdout.startswith("render engine: the raster engine through OpenGL: ")
    assert "drawn by raster" in drawn.stdout
    fallback = _render_cli(tmp_path, "fallback", env=NO_EGL)
    assert fallback.returncode == 0, fallback.stderr  # not Blender's abort (134)
    assert "render engine: Cycles: OpenGL, which the raster engine needs, is unavailable here (no EGL display" in \
        fallback.stdout
    assert "drawn by cycles" in fallback.stdout
    _same_files(tmp_path / "raster", tmp_path / "fallback")
    for engine, name in (("raster", "raster"), ("workbench", "Workbench")):
        refused = _render_cli(tmp_path, f"refused-{engine}", "--engine", engine, env=NO_EGL)
        assert refused.returncode == 1, refused.stderr
        assert f"the {name} engine needs OpenGL through EGL, which does not start here" in refused.stderr
        assert "--engine cycles" in refused.stderr and "Traceback" not in refused.stderr
        assert not (tmp_path / f"refused-{engine}" / "images").exists() or not any(
            (tmp_path / f"refused-{engine}" / "images").iterdir())
    quiet = _render_cli(tmp_path, "quiet", "--quiet", env=NO_EGL)
    assert quiet.returncode == 0 and "raster engine needs, is unavailable here" in quiet.stderr


@pytest.mark.slow
def test_a_batch_begun_on_cycles_resumes_on_raster_in_another_process_with_the_same_files(
    pair: Pair, tmp_path: Path
) -> None:
    begun = _render_cli(tmp_path, "mixed", "--engine", "cycles", "--count", "2")
    assert begun.returncode == 0 and "drawn by cycles" in begun.stdout, begun.stderr
    resumed = _render_cli(tmp_path, "mixed", "--engine", "raster")
    assert resumed.returncode == 0 and "rendered 1, skipped 2 already complete" in resumed.stdout, resumed.stderr

    class Shared:  # the module's Workbench renderer, kept open for the other tests
        def build(self, spec: Any, geometry: Any) -> None:
            pair.workbench.build(spec, geometry)

        def render(self, should_stop: Any = None) -> Any:
            return pair.workbench.render(should_stop)

        def close(self) -> None:
            """Kept open."""

    render_range(BatchSpec.load(tmp_path / "batch.json"), tmp_path / "here", Shared)
    _same_files(tmp_path / "mixed", tmp_path / "here")


def test_an_unknown_engine_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    done = _render_cli(tmp_path, "ds", "--engine", "eevee")
    assert done.returncode == 2
    assert "--engine 'eevee' is not an engine; accepted: auto, raster, workbench, cycles" in done.stderr
    assert not (tmp_path / "ds").exists()
