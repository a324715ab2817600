"""The raster engine's own triangulation: quads split along a diagonal, star-shaped polygons fanned about their centre,
each covering exactly the polygon; anything else is left to Blender's tessellation (None).

The engine's frames against Workbench's and Cycles' are in test_render_engines.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.render_node.raster import triangulate
from blender_addon.scene.pixel_centres import contains

pytestmark = pytest.mark.blender


def _covered(points: np.ndarray, triangles: np.ndarray, at: np.ndarray) -> np.ndarray:
    """How many triangles contain each point of ``at`` (strictly inside; points on an edge are not drawn here)."""
    tri = points[triangles].astype(np.float64)  # (t, 3, 2)
    count = np.zeros(len(at), int)
    for t in tri:
        a, b, c = t
        d = [(q[0] - p[0]) * (at[:, 1] - p[1]) - (q[1] - p[1]) * (at[:, 0] - p[0]) for p, q in ((a, b), (b, c), (c, a))]
        count += (np.all([x > 0 for x in d], axis=0) | np.all([x < 0 for x in d], axis=0)).astype(int)
    return count


def _check_exact_cover(polygons: np.ndarray, seed: int = 0) -> None:
    result = triangulate(polygons.astype(np.float32))
    assert result is not None
    points, triangles = result
    rng = np.random.default_rng(seed)
    for poly in polygons.astype(np.float32):
        lo, hi = poly.min(0) - 0.5, poly.max(0) + 0.5
        at = rng.uniform(lo, hi, (4000, 2))
        inside = contains(at, np.repeat(poly[None].astype(np.float64), len(at), axis=0))
        mine = np.flatnonzero(np.all(np.isin(triangles, np.flatnonzero(np.all(np.isin(points, poly), axis=1))),
                                     axis=1))
        covered = _covered(points, triangles[mine] if len(mine) else triangles, at)
        assert np.all(covered <= 1), "triangles overlap"
        # every point strictly inside is covered once, none outside (points on edges have measure zero)
        np.testing.assert_array_equal(covered == 1, inside)


def test_convex_quads_split_in_two_and_cover_exactly() -> None:
    quads = np.array([[[0, 0], [4, 0], [4, 3], [0, 2]], [[10, 0], [12, 0], [13, 5], [9, 4]]], float)
    points, triangles = triangulate(quads.astype(np.float32))
    assert triangles.shape == (4, 3) and points.shape == (8, 2)
    _check_exact_cover(quads)


def test_a_concave_quad_is_left_to_blender() -> None:
    dart = np.array([[[0, 0], [2, 1], [4, 0], [2, 4]]], np.float32)  # the diagonal 0-2 runs outside it
    assert triangulate(dart) is None


def test_star_shaped_polygons_become_fans_about_their_centre() -> None:
    t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    r = 3 + 0.8 * np.sin(5 * t)  # a five-armed star, star-shaped about its centre
    star = np.stack([20 + r * np.cos(t), 30 + r * np.sin(t)], -1)
    circle = np.stack([50 + 0.4 * np.cos(t), 7 + 0.4 * np.sin(-t)], -1)  # small, and clockwise
    points, triangles = triangulate(np.stack([star, circle]).astype(np.float32))
    assert triangles.shape == (64, 3) and points.shape == (66, 2)
    _check_exact_cover(np.stack([star, circle]))


def test_a_polygon_not_star_shaped_about_its_centre_is_left_to_blender() -> None:
    t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    # a half annulus: the outer half circle (radius 5) out, the inner one (radius 2) back; its centre lies in the hole
    crescent = np.concatenate([np.stack([np.cos(t[:16]), np.sin(t[:16])], -1) * 5,
                               np.stack([np.cos(t[16:]), -np.sin(t[16:])], -1) * 2])
    assert triangulate(crescent[None].astype(np.float32)) is None
    degenerate = np.zeros((1, 32, 2), np.float32)  # no area: no fan triangle turns either way
    assert triangulate(degenerate) is None
