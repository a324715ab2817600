"""Phases of a rendered mask's precipitates: drawn from the geometry, and written beside the mask as its phase map."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from analysis.files import read_mask
from blender_addon.render_node.batch_render import image_geometry, render_range
from blender_addon.render_node.precipitate_phases import phase_map_pixels, precipitate_phase_map
from semcoat import classes
from semcoat.dataset import check_dataset, read_dataset
from tests.blender_addon.fakes import RasterRenderer
from tests.blender_addon.specs import small_batch

ALL_PHASES = {"al8cr5_share": 1.0, "cr2al_share": 1.0, "cr23c6_share": 1.0, "area_fraction_pct": 6.0}


def test_each_precipitate_gets_the_phase_whose_grey_the_renderer_drew() -> None:
    batch = small_batch(count=2, precipitates=ALL_PHASES)
    for index in range(2):
        spec = batch.sample(index)
        geometry = image_geometry(spec, batch.image_seed(index))
        renderer = RasterRenderer()
        renderer.build(spec, geometry)
        frame = renderer.render()
        cols = slice(geometry.margin_px, geometry.margin_px + geometry.width_px)
        mask, signal = frame.mask[:, cols], frame.signal[:, cols]
        phase = precipitate_phase_map(geometry, mask)
        assert phase is not None
        target = mask == classes.PRECIPITATE
        assert np.array_equal(phase >= 0, target)
        greys = np.float32(spec.grey.precipitate_phase_greys())
        drawn = np.abs(signal[target][:, None] - greys[None, :]).argmin(axis=1)
        assert len(np.unique(drawn)) == 3
        assert np.mean(phase[target] == drawn) > 0.98


def test_a_rendered_batch_holds_each_images_phase_map_and_the_check_reads_it(tmp_path: Path) -> None:
    batch = small_batch(count=2, precipitates=ALL_PHASES)
    render_range(batch, tmp_path / "mix", RasterRenderer)
    render_range(small_batch(count=1), tmp_path / "carbide", RasterRenderer)  # the default: Cr23C6 alone
    mixed = read_dataset(tmp_path / "mix")
    for sid in mixed.ids:
        meta = mixed.meta(sid)
        mask = read_mask(mixed.mask_path(sid))
        path = mixed.phase_map_path(sid)
        assert path is not None
        stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        drawn_again = precipitate_phase_map(image_geometry(batch.sample(meta["index"]), meta["image_seed"]), mask)
        assert drawn_again is not None and np.array_equal(stored, phase_map_pixels(drawn_again))
        assert np.array_equal(stored > 0, mask == classes.PRECIPITATE)
        assert set(np.unique(stored[stored > 0])) == {1, 2, 3}
    assert check_dataset(tmp_path / "mix").ok
    carbide = read_dataset(tmp_path / "carbide")
    path = carbide.phase_map_path(carbide.ids[0])
    assert path is not None
    stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert stored.any() and set(np.unique(stored[stored > 0])) == {1 + len(classes.PRECIPITATE_PHASES) - 1}


def test_a_damaged_phase_map_is_found_by_the_check_and_rendered_again(tmp_path: Path) -> None:
    batch = small_batch(count=2, precipitates=ALL_PHASES)
    render_range(batch, tmp_path / "ds", RasterRenderer)
    ds = read_dataset(tmp_path / "ds")
    path = ds.phase_map_path("000001")
    assert path is not None
    good = path.read_bytes()
    stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    shifted = np.roll(stored, 5, axis=1)  # phases off the mask's precipitates
    cv2.imwrite(str(path), shifted)
    report = check_dataset(tmp_path / "ds")
    assert not report.ok and report.complete == 1
    assert any("phase map does not match the mask's precipitates" in p and "000001.png" in p for p in report.problems)
    cv2.imwrite(str(path), np.where(stored > 0, 7, 0).astype(np.uint8))
    assert any("unknown phase value(s) [7]" in p for p in check_dataset(tmp_path / "ds").problems)
    result = render_range(batch, tmp_path / "ds", RasterRenderer)  # a resumed render renders it again
    assert result.rendered == [1] and result.skipped == [0]
    assert path.read_bytes() == good
    assert check_dataset(tmp_path / "ds").ok
