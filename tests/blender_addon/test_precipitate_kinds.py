"""Precipitates by phase and shape: each phase's grey from Reuter's fit, groups, cube-like particles, pull-out pits
(pores in the mask) and sub-resolution specks (image only); each absent when switched off."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.measure import measure
from blender_addon.render_node.texture import speck_factor
from blender_addon.scene.geometry import build_geometry
from blender_addon.scene.placement import star_polygons
from blender_addon.scene.precipitates import group_layout
from semcoat import classes
from semcoat.spec import CoatingSpec, GreyLevelSpec, PrecipitateSpec, SpecError
from tests.blender_addon.fakes import RasterRenderer
from tests.blender_addon.specs import PIXEL_UM, small_batch

MARGIN = 3


def _frame(index: int = 0, **precipitates):
    batch = small_batch(count=index + 1, precipitates=precipitates)
    spec = batch.sample(index)
    g = build_geometry(spec, np.random.default_rng(batch.image_seed(index)), MARGIN)
    r = RasterRenderer()
    r.build(spec, g)
    return spec, g, r.render()


def test_phase_greys_follow_reuters_fit_between_fe2al5_and_the_carbide() -> None:
    grey = GreyLevelSpec()
    al8cr5, cr2al, cr23c6 = grey.precipitate_phase_greys()
    assert cr23c6 == grey.precipitate
    assert al8cr5 == pytest.approx(grey.fe2al5, abs=0.01)  # Al8Cr5 hardly shows against Fe2Al5
    assert grey.fe2al5 < cr2al < cr23c6
    # relative contrast against Fe2Al5 as the backscatter coefficients give it (the issue: ~+0.10 and ~+0.15)
    eta = classes.backscatter_coefficient
    base = eta(18.9)
    assert eta(21.7) / base - 1 == pytest.approx(0.12, abs=0.01)
    assert eta(23.0) / base - 1 == pytest.approx(0.18, abs=0.01)


def test_every_phase_of_the_mix_is_drawn_with_its_grey_and_the_default_is_the_carbide_alone() -> None:
    spec, g, frame = _frame(al8cr5_share=1.0, cr2al_share=1.0, cr23c6_share=1.0)
    assert set(np.unique(g.precipitate_phase)) == {0, 1, 2}
    seen = np.unique(frame.signal[frame.mask == classes.PRECIPITATE])
    np.testing.assert_allclose(np.sort(seen), np.sort(np.float32(spec.grey.precipitate_phase_greys())), atol=1e-6)
    spec, g, frame = _frame()
    assert set(np.unique(g.precipitate_phase)) == {2}
    assert np.all(frame.signal[frame.mask == classes.PRECIPITATE] == np.float32(spec.grey.precipitate))
    with pytest.raises(SpecError, match="phase weights"):
        CoatingSpec.from_dict({"precipitates": {"cr23c6_share": 0.0}})


def _nearest_neighbour_um(g) -> float:
    c = g.precipitates.polygons_um.mean(1)
    d = np.hypot(*(c[:, None, :] - c[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    return float(np.median(d.min(1)))


def test_grouped_precipitates_sit_closer_together_and_keep_the_area() -> None:
    near = [(_nearest_neighbour_um(_frame(i, cluster_fraction=1.0)[1]),
             _nearest_neighbour_um(_frame(i, cluster_fraction=0.0)[1])) for i in range(3)]
    grouped_nn, scattered_nn = np.mean(near, axis=0)
    assert grouped_nn < 0.75 * scattered_nn
    _, _, f0 = _frame(cluster_fraction=0.0)
    _, _, f1 = _frame(cluster_fraction=1.0)
    a0 = measure(f0.mask[:, MARGIN:-MARGIN], PIXEL_UM).precipitate_fraction_pct
    a1 = measure(f1.mask[:, MARGIN:-MARGIN], PIXEL_UM).precipitate_fraction_pct
    assert a1 == pytest.approx(a0, rel=0.3)


def _boxes_one_by_one(spec, target_um2, x_um, surface_um, bottom_um, rng):
    """Group boxes laid one after another: each takes the columns no earlier box took, when it has room there."""
    p = x_um[1] - x_um[0]
    top, bottom = np.full(x_um.size, np.nan), np.full(x_um.size, np.nan)
    mean_area = np.pi * (spec.radius_mean_um**2 + spec.radius_std_um**2)
    n_groups = int(np.ceil(3.0 * target_um2 / (6 * mean_area)))
    box_area = 6 * mean_area / 0.25
    string = rng.uniform(0.0, 1.0, n_groups) < 0.5
    height = np.where(string, 5.0 * np.sqrt(spec.radius_mean_um**2 + spec.radius_std_um**2), np.sqrt(box_area))
    width = box_area / height
    centre_x, share = rng.uniform(x_um[0], x_um[-1], n_groups), rng.uniform(0.0, 1.0, n_groups)
    for g in range(n_groups):
        lo = max(0, int(np.floor((centre_x[g] - width[g] / 2 - x_um[0]) / p)))
        hi = min(x_um.size, int(np.ceil((centre_x[g] + width[g] / 2 - x_um[0]) / p)) + 1)
        free = np.isnan(top[lo:hi])
        room = float(np.min(bottom_um[lo:hi] - surface_um[lo:hi])) - height[g]
        if free.any() and room > 0:
            top[lo:hi][free] = (surface_um[lo:hi] + share[g] * room)[free]
            bottom[lo:hi][free] = top[lo:hi][free] + height[g]
    return top, bottom


@pytest.mark.parametrize("seed", range(5))
def test_group_boxes_take_the_columns_no_earlier_box_took(seed: int) -> None:
    spec = PrecipitateSpec(radius_mean_um=0.3, radius_std_um=0.1)
    x_um = np.arange(400) * 0.1
    surface = 2.0 + np.sin(x_um / 3.0)
    bottom = surface + 3.0 + 2.5 * np.cos(x_um / 2.0)  # thin places: boxes without room there are left out
    layout = group_layout(spec, 12.0, x_um, surface, bottom, np.random.default_rng(seed))
    top, box_bottom = _boxes_one_by_one(spec, 12.0, x_um, surface, bottom, np.random.default_rng(seed))
    np.testing.assert_array_equal(layout.top_um, top)
    np.testing.assert_array_equal(layout.bottom_um, box_bottom)
    np.testing.assert_array_equal(layout.columns, ~np.isnan(top))
    assert 0 < layout.columns.sum() < x_um.size


def test_cube_like_particles_are_rounded_squares() -> None:
    rng = np.random.default_rng(0)
    n = 200
    radii, aspects, angles = np.ones(n), np.ones(n), np.zeros(n)
    poly, area = star_polygons(np.zeros((n, 2)), radii, aspects, angles, rng, np.ones(n, bool))
    r = np.hypot(poly[..., 0], poly[..., 1])
    t = np.linspace(0, 2 * np.pi, r.shape[1], endpoint=False)
    corner = (np.abs(np.cos(t)) ** 4 + np.abs(np.sin(t)) ** 4) ** -0.25
    assert np.mean([np.corrcoef(row, corner)[0, 1] for row in r]) > 0.8  # corners at 45 degrees
    assert area.mean() == pytest.approx(np.pi, rel=0.05)  # the equivalent-circle radius is kept
    _, g, _ = _frame(cube_fraction=1.0)
    _, g0, _ = _frame(cube_fraction=0.0)
    assert len(g.precipitates) and not np.array_equal(g.precipitates.polygons_um.shape, (0,))
    assert not np.array_equal(g.pores.polygons_um, g0.pores.polygons_um) or len(g.pores) == len(g0.pores)


def test_pulled_out_precipitates_are_pits_of_the_pore_class() -> None:
    _, g0, f0 = _frame(pullout_fraction=0.0)
    assert len(g0.pits) == 0
    _, g1, f1 = _frame(pullout_fraction=1.0)
    assert len(g1.precipitates) == 0 and len(g1.pits) == len(g0.precipitates)
    m0 = measure(f0.mask[:, MARGIN:-MARGIN], PIXEL_UM)
    m1 = measure(f1.mask[:, MARGIN:-MARGIN], PIXEL_UM)
    assert m1.precipitate_fraction_pct == 0.0
    assert m1.pore_fraction_pct == pytest.approx(m0.pore_fraction_pct + m0.precipitate_fraction_pct, abs=0.05)
    assert g1.designed["pit_fraction_pct"] > 0


def test_specks_brighten_fe2al5_only_and_leave_the_mask() -> None:
    mask = np.full((200, 300), classes.FE2AL5, np.uint8)
    mask[:50] = classes.BACKGROUND
    contrasts = np.array([0.0, 0.12, 0.18])
    factor = speck_factor(mask, 0.05, 5.0, contrasts, np.array([0.0, 0.0, 1.0]), np.random.default_rng(1))
    assert np.all(factor[:50] == 1.0) and np.all(factor >= 1.0)
    brighter = factor[50:] > 1.0
    assert 0.5 * 5.0 * 250 * 300 * 0.05**2 < brighter.sum() <= 5.0 * 250 * 300 * 0.05**2 * 1.5
    assert factor.max() < 1.0 + 0.18 * 1.01 * 3  # sub-pixel: a fraction of the phase contrast per speck
    assert np.all(speck_factor(mask, 0.05, 0.0, contrasts, np.ones(3), np.random.default_rng(1)) == 1.0)
