"""Pores as real pores look (issue 11 point 5): irregular and merged outlines, scattered pores crowding towards the
surface; each off by default and drawn without moving what does not depend on it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import ConvexHull

from blender_addon.scene.geometry import build_geometry
from blender_addon.scene.placement import OUTLINE_ANGLES_RAD, harmonic_table, harmonic_wobble
from blender_addon.scene.pore_shapes import _merged_radius, outer_weighting, pore_shapes, reach_factor
from semcoat.spec import CoatingSpec, SpecError
from tests.blender_addon.specs import small_batch

MARGIN = 3


def _geometry(index: int = 0, line: bool = True, **pores: float):
    batch = small_batch(count=index + 1, pores={"area_fraction_pct": 4.0, "radius_mean_um": 0.9, **pores},
                        cracks={"density_per_100um": 5.0}, pore_line={"present": line})
    return build_geometry(batch.sample(index), np.random.default_rng(batch.image_seed(index)), MARGIN)


def _solidity(polygons: np.ndarray) -> np.ndarray:
    """Area over the area of the convex hull, per polygon (1 for a convex outline)."""
    x, y = polygons[..., 0], -polygons[..., 1]
    area = 0.5 * (x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(1)
    return np.array([a / ConvexHull(p).volume for a, p in zip(area, polygons, strict=True)])


@pytest.mark.parametrize("orders", [np.arange(2, 7), np.arange(2, 13)])
def test_the_wobble_is_its_sum_of_harmonics(orders: np.ndarray) -> None:
    rng = np.random.default_rng(orders.size)
    amps, phases = rng.uniform(0.0, 0.3, (50, orders.size)), rng.uniform(0.0, 2 * np.pi, (50, orders.size))
    t = OUTLINE_ANGLES_RAD
    direct = 1.0 + (amps[:, :, None] * np.cos(orders[None, :, None] * t + phases[:, :, None])).sum(1)
    np.testing.assert_allclose(harmonic_wobble(amps, phases, harmonic_table(orders)), direct, rtol=0, atol=1e-14)


def test_a_merged_outline_is_the_far_edge_of_its_blobs() -> None:
    radius = _merged_radius(400, np.random.default_rng(5))
    # Replay the draws: the far intersection of each ray with each used blob, measured as a distance along the ray.
    rng = np.random.default_rng(5)
    count = rng.integers(2, 4, 400)
    size = rng.uniform(0.7, 1.0, (400, 3))
    offset = rng.uniform(0.6, 0.95, (400, 3)) * size
    turn = rng.uniform(0.0, 2 * np.pi, 400)[:, None] + rng.normal(0.0, 0.35, (400, 3))
    direction = turn + 2 * np.pi * np.arange(3)[None, :] / count[:, None]
    rel = OUTLINE_ANGLES_RAD[None, None, :] - direction[:, :, None]
    far = offset[:, :, None] * np.cos(rel) + np.sqrt(size[:, :, None] ** 2 - (offset[:, :, None] * np.sin(rel)) ** 2)
    far[np.arange(3)[None, :] >= count[:, None]] = 0.0
    np.testing.assert_allclose(radius, far.max(1), rtol=0, atol=1e-14)
    assert radius.min() > 0.0


def test_irregular_and_merged_pores_are_concave_where_smooth_ones_are_not() -> None:
    smooth = _solidity(_geometry().pores.polygons_um)
    rough = _solidity(_geometry(irregularity=1.0, merged_fraction=0.5).pores.polygons_um)
    assert np.median(smooth) > 0.97
    assert np.median(rough) < 0.95 and np.mean(rough < 0.93) > 0.4


def test_outlines_stay_star_shaped_and_keep_the_pore_sizes() -> None:
    draw = pore_shapes(1.0, 1.0)
    assert draw is not None and pore_shapes(0.0, 0.0) is None
    rng = np.random.default_rng(3)
    n = 500
    radii = rng.uniform(0.5, 2.0, n)
    polygons, areas = draw(np.zeros((n, 2)), radii, rng.uniform(1.0, 2.5, n), rng.uniform(0, np.pi, n), rng)
    assert np.mean(np.isclose(areas, np.pi * radii**2, rtol=1e-9)) > 0.97  # equivalent-circle radius kept (the rare
    # outline that would reach beyond what placement counts with is drawn smaller)
    assert np.all(areas <= np.pi * radii**2 * (1 + 1e-9))
    angle = np.unwrap(np.arctan2(-polygons[..., 1], polygons[..., 0]), axis=1)
    assert np.all(np.diff(angle, axis=1) > 0)  # every ray from the centre crosses the outline once
    reach = np.sqrt((polygons**2).sum(-1)).max(1) / (radii * np.sqrt(2.5))
    assert reach.max() <= 1.32 * reach_factor(1.0, 1.0)  # within what placement allows for


def test_shaped_pores_stay_inside_the_band_and_apart() -> None:
    g = _geometry(irregularity=1.0, merged_fraction=0.6, elongation=2.0)
    polys = np.concatenate([g.pores.polygons_um, g.line_pores.polygons_um, g.precipitates.polygons_um])
    col = np.clip(np.rint(polys[..., 0] / g.pixel_size_um - 0.5).astype(int) + g.margin_px, 0, g.x_um.size - 1)
    assert np.all(polys[..., 1] > g.surface_um[col]) and np.all(polys[..., 1] < g.fe2al5_bottom_um[col])
    centres = polys.mean(1)
    radii = np.sqrt(((polys - centres[:, None]) ** 2).sum(-1)).max(1)
    d = np.hypot(*(centres[:, None] - centres[None]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    assert np.all(d >= (radii[:, None] + radii[None]) * 0.999)
    assert g.designed["scattered_pore_fraction_pct"] == pytest.approx(4.0, rel=0.15)


def test_switching_shapes_on_leaves_the_other_streams_alone() -> None:
    plain, shaped = _geometry(), _geometry(irregularity=0.8, merged_fraction=0.3, outer_weighting=0.5)
    np.testing.assert_array_equal(plain.cracks.polygons_um, shaped.cracks.polygons_um)
    np.testing.assert_array_equal(plain.surface_um, shaped.surface_um)
    assert plain.designed["pore_line_coverage"] == shaped.designed["pore_line_coverage"]


def test_outer_weighting_crowds_scattered_pores_below_the_surface() -> None:
    def upper_share(**pores: float) -> float:
        area = upper = 0.0
        for i in range(4):
            g = _geometry(i, line=False, **pores)  # the line's pores would keep scattered ones from its depth
            c = g.pores.polygons_um.mean(1)
            col = np.clip(np.rint(c[:, 0] / g.pixel_size_um - 0.5).astype(int) + g.margin_px, 0, g.x_um.size - 1)
            depth = (c[:, 1] - g.surface_um[col]) / (g.fe2al5_bottom_um[col] - g.surface_um[col])
            area += g.pores.areas_um2.sum()
            upper += g.pores.areas_um2[depth < 0.5].sum()
        return upper / area

    # density 1 + w(1 - 2t): the upper half holds (1 + w/2) / 2 of it
    assert upper_share() == pytest.approx(0.5, abs=0.07)
    assert upper_share(outer_weighting=0.8) == pytest.approx(0.7, abs=0.07)


def test_the_depth_weighting_is_the_inverse_of_a_linear_density() -> None:
    share = outer_weighting(0.6)
    assert share is not None and outer_weighting(0.0) is None
    u = np.linspace(0.0, 1.0, 11)
    t = share(u)
    np.testing.assert_allclose((1.0 + 0.6) * t - 0.6 * t**2, u, atol=1e-12)  # F(t) = u
    assert t[0] == 0.0 and t[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("field", ["irregularity", "merged_fraction", "outer_weighting"])
def test_pore_shape_parameters_are_checked(field: str) -> None:
    with pytest.raises(SpecError, match=f"pores.{field}"):
        CoatingSpec.from_dict({"pores": {field: 1.5}})
    assert getattr(CoatingSpec().pores, field) == 0.0  # off in a bare spec
