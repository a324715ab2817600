"""The pure geometry: flat interfaces when asked, inclusions inside the band and apart, areas on target."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.scene.geometry import build_geometry, rough_profile
from tests.blender_addon.specs import FLAT, small_batch


def _geometry(index: int = 0, **sections):
    batch = small_batch(**sections)
    return batch.sample(index), build_geometry(batch.sample(index), np.random.default_rng(batch.image_seed(index)), 3)


def test_rough_profile_has_the_asked_amplitude_and_zero_mean() -> None:
    x = np.linspace(0, 200, 1001)
    prof = rough_profile(x, 2.5, 30.0, np.random.default_rng(1))
    assert (prof.max() - prof.min()) / 2 == pytest.approx(2.5)
    assert abs(prof.mean()) < 1e-9
    assert not rough_profile(x, 0.0, 30.0, np.random.default_rng(1)).any()


def test_flat_spec_gives_flat_interfaces_at_the_designed_depths() -> None:
    spec, g = _geometry(layers=FLAT)
    assert np.allclose(g.surface_um, spec.layers.surface_depth_um)
    assert np.allclose(g.fe2al5_bottom_um - g.surface_um, spec.layers.fe2al5_thickness_um)
    assert np.array_equal(g.feal_bottom_um, g.fe2al5_bottom_um)  # no FeAl asked


def test_same_seed_same_geometry_other_seed_other_geometry() -> None:
    batch = small_batch()
    a = build_geometry(batch.sample(1), np.random.default_rng(batch.image_seed(1)), 3)
    b = build_geometry(batch.sample(1), np.random.default_rng(batch.image_seed(1)), 3)
    c = build_geometry(batch.sample(2), np.random.default_rng(batch.image_seed(2)), 3)
    assert np.array_equal(a.pores.polygons_um, b.pores.polygons_um)
    assert np.array_equal(a.surface_um, b.surface_um)
    assert not np.array_equal(a.surface_um, c.surface_um)


def test_inclusions_lie_inside_the_fe2al5_band_and_never_overlap() -> None:
    _, g = _geometry()
    polys = np.concatenate([g.pores.polygons_um, g.line_pores.polygons_um, g.precipitates.polygons_um])
    assert len(polys) > 20
    col = np.clip(np.rint(polys[..., 0] / g.pixel_size_um - 0.5).astype(int) + g.margin_px, 0, g.x_um.size - 1)
    assert np.all(polys[..., 1] > g.surface_um[col])
    assert np.all(polys[..., 1] < g.fe2al5_bottom_um[col])
    centres = polys.mean(1)
    radii = np.sqrt(((polys - centres[:, None]) ** 2).sum(-1)).max(1)
    d = np.hypot(*(centres[:, None] - centres[None]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    assert np.all(d >= (radii[:, None] + radii[None]) * 0.999)


def test_area_fractions_reach_the_targets() -> None:
    spec, g = _geometry(pore_line={"present": False})
    assert g.designed["scattered_pore_fraction_pct"] == pytest.approx(spec.pores.area_fraction_pct, rel=0.15)
    assert g.designed["precipitate_fraction_pct"] == pytest.approx(spec.precipitates.area_fraction_pct, rel=0.15)


def test_precipitates_point_along_the_asked_orientation() -> None:
    _, g = _geometry(precipitates={"elongation": 4.0, "orientation_deg": 90.0, "orientation_spread_deg": 5.0})
    rel = g.precipitates.polygons_um - g.precipitates.polygons_um.mean(1, keepdims=True)
    extent_x = np.ptp(rel[..., 0], axis=1)
    extent_depth = np.ptp(rel[..., 1], axis=1)
    assert np.median(extent_depth / extent_x) > 2.0
