"""Phases of a rendered mask's precipitates drawn again from its meta, and the faint ones that training leaves out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis.files import read_mask
from blender_addon.render_node.batch_render import image_geometry, render_range
from blender_addon.render_node.precipitate_phases import faint_precipitates, precipitate_phase_map
from semcoat import classes
from semcoat.dataset import read_dataset
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


def test_faint_precipitates_of_a_rendered_batch(tmp_path: Path) -> None:
    render_range(small_batch(count=2, precipitates=ALL_PHASES), tmp_path / "mix", RasterRenderer)
    render_range(small_batch(count=1), tmp_path / "carbide", RasterRenderer)  # the default: Cr23C6 alone
    mixed = read_dataset(tmp_path / "mix")
    for sid in mixed.ids:
        meta = mixed.meta(sid)
        mask = read_mask(mixed.mask_path(sid))
        target = mask == classes.PRECIPITATE
        faint = faint_precipitates(meta, mask, 0.08)
        assert faint is not None and not (faint & ~target).any()
        assert 0.1 < faint.sum() / target.sum() < 0.9  # Al8Cr5 among three phases
        assert not faint_precipitates(meta, mask, 0.0).any()
        assert np.array_equal(faint_precipitates(meta, mask, 1.0), target)
        # a mask the geometry does not fit, or a meta without the renderer's spec and seed: no answer
        assert faint_precipitates(meta, mask[:, ::-1].copy(), 0.08) is None
        assert faint_precipitates({k: v for k, v in meta.items() if k != "image_seed"}, mask, 0.08) is None
        bad_spec = {"params": {"layers": {"fe2al5_thickness_um": -1.0}}, "image_seed": 1}
        assert faint_precipitates(bad_spec, mask, 0.08) is None
    carbide = read_dataset(tmp_path / "carbide")
    sid = carbide.ids[0]
    mask = read_mask(carbide.mask_path(sid))
    assert (mask == classes.PRECIPITATE).any()
    assert not faint_precipitates(carbide.meta(sid), mask, 0.08).any()
