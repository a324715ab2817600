"""Cracks: drawn where the spec asks (inside Fe2Al5, from the surface, near the normal), absent when off, and the
crack density measured on the mask is the drawn one."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from analysis.measure import measure
from blender_addon.scene.geometry import build_geometry
from semcoat import classes
from semcoat.presets import preset_batch
from semcoat.spec import CoatingSpec, SpecError
from tests.blender_addon.fakes import RasterRenderer
from tests.blender_addon.specs import PIXEL_UM, WIDTH_PX, small_batch

MARGIN = 3


def _render(batch, index: int):
    spec = batch.sample(index)
    g = build_geometry(spec, np.random.default_rng(batch.image_seed(index)), MARGIN)
    r = RasterRenderer()
    r.build(spec, g)
    return spec, g, r.render().mask[:, MARGIN:-MARGIN]


def test_no_cracks_when_switched_off_and_the_rest_unchanged() -> None:
    off = small_batch(count=3)
    on = small_batch(count=3, cracks={"density_per_100um": 8.0})
    for i in range(3):
        spec, g, mask = _render(off, i)
        assert len(g.cracks) == 0 and not np.any(mask == classes.CRACK)
        assert g.designed["crack_count"] == 0
        assert measure(mask, PIXEL_UM).crack_density_per_mm == 0.0
        _, g_on, _ = _render(on, i)
        # the cracks come from a stream of their own: switching them on moves nothing else
        assert np.array_equal(g.pores.polygons_um, g_on.pores.polygons_um)
        assert np.array_equal(g.precipitates.polygons_um, g_on.precipitates.polygons_um)


def test_cracks_run_from_the_surface_into_fe2al5_near_the_normal_and_never_leave_the_band() -> None:
    batch = small_batch(count=6, cracks={"density_per_100um": 10.0, "width_um": 0.4, "angle_spread_deg": 15.0,
                                         "through_fraction": 0.5})
    seen_through = seen_partial = 0
    for i in range(6):
        _spec, g, mask = _render(batch, i)
        assert len(g.cracks) > 0
        surface = (mask != classes.BACKGROUND).argmax(0)
        bottom = ((mask == classes.FEAL) | (mask == classes.SUBSTRATE)).argmax(0)
        rows, ccols = np.nonzero(mask == classes.CRACK)
        assert np.all(rows >= surface[ccols]) and np.all(rows < bottom[ccols])  # inside the band, never above it
        labels, n = ndi.label(mask == classes.CRACK, structure=np.ones((3, 3)))
        for k, sl in enumerate(ndi.find_objects(labels), start=1):
            r, c = np.nonzero(labels[sl] == k)
            r, c = r + sl[0].start, c + sl[1].start
            if c.min() == 0 or c.max() == mask.shape[1] - 1 or r.ptp() < 10:
                continue  # cut by the image edge
            top_row = r.min()
            assert top_row - surface[c[r == top_row]].max() <= 1  # opens at the surface
            slope = np.polyfit(r, c, 1)[0]
            assert abs(np.degrees(np.arctan(slope))) <= 15.0 + 10.0  # the spread plus the waviness
            widths = np.bincount(r - r.min())
            assert widths[widths > 0].min() >= 1
            end = r.max()
            if bottom[c[r == end]].min() - end <= 2:
                seen_through += 1
            else:
                seen_partial += 1
    assert seen_through > 0 and seen_partial > 0


def test_the_crack_density_measured_on_the_mask_is_the_drawn_one() -> None:
    batch = preset_batch("20h_650C", count=24, seed=5)
    exact = 0
    for i in range(24):
        spec, g, mask = _render(batch, i)
        measured = measure(mask, spec.imaging.pixel_size_um).crack_density_per_mm
        designed = g.designed["crack_density_per_mm"]
        one_crack = 1000.0 / (mask.shape[1] * spec.imaging.pixel_size_um)
        # a crack leaving and re-entering through the image's side edge shows as two regions, as on any crop
        assert abs(measured - designed) <= one_crack + 1e-9, (i, measured, designed)
        # the same count: the two densities differ only by the cosines of the drawn and the estimated tilt
        exact += measured == pytest.approx(designed, rel=0.01)
    assert exact >= 20


def test_crack_count_follows_the_density_over_a_batch() -> None:
    batch = small_batch(count=40, cracks={"density_per_100um": 4.0})
    counts = [_render(batch, i)[1].designed["crack_count"] for i in range(40)]
    expected = 4.0 * WIDTH_PX * PIXEL_UM / 100.0
    # Poisson over the frame; cracks that would touch an earlier one are left out, so a little under the target.
    assert 0.7 * expected <= np.mean(counts) <= 1.1 * expected
    assert min(counts) < max(counts)


def test_crack_parameters_are_checked_and_bounded() -> None:
    with pytest.raises(SpecError, match="cracks.angle_spread_deg"):
        CoatingSpec.from_dict({"cracks": {"angle_spread_deg": 60.0}})
    with pytest.raises(SpecError, match="cracks.density_per_100um"):
        CoatingSpec.from_dict({"cracks": {"density_per_100um": -1.0}})
    wide = {"imaging": {"width_px": 4096, "height_px": 3072, "pixel_size_um": 100.0},
            "layers": {"surface_depth_um": 2000.0, "fe2al5_thickness_um": 1000.0},
            "cracks": {"density_per_100um": 20.0}}
    with pytest.raises(SpecError, match="lower cracks.density_per_100um"):
        CoatingSpec.from_dict(wide)
