"""The pixel-centre rule (scene/pixel_centres.py) and the id colours and tables (scene/class_map.py), without bpy.

Answers known exactly: squares and triangles whose edges run through pixel centres, and brute-force references (every
pixel against every edge; a plain ray-casting point-in-polygon per point) on random polygons.
"""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.scene.class_map import ClassMapError, IdTables, id_colour, ids_from_colour
from blender_addon.scene.pixel_centres import (
    EDGE_BAND_PX,
    DrawnObject,
    apply_pixel_centre_rule,
    band_pixels,
    contains,
    nearest_object,
    outline_edges,
)


def _square(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]], np.float64)


def _random_polygons(rng: np.random.Generator, n: int, k: int, size: float) -> np.ndarray:
    """Star-shaped polygons (n, k, 2) of float32 corners, as the builder draws inclusions."""
    centres = rng.uniform(2, size - 2, (n, 1, 2))
    angles = np.sort(rng.uniform(0, 2 * np.pi, (n, k)), axis=1)
    radii = rng.uniform(0.2, 3.0, (n, 1)) * rng.uniform(0.5, 1.0, (n, k))
    corners = centres + radii[..., None] * np.stack([np.cos(angles), np.sin(angles)], -1)
    return corners.astype(np.float32).astype(np.float64)


def _ray_cast(point: np.ndarray, polygon: np.ndarray) -> bool:
    """Plain even-odd ray casting (a point not on an edge)."""
    x, y = point
    inside = False
    for (ax, ay), (bx, by) in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        if (ay > y) != (by > y) and x < ax + (y - ay) * (bx - ax) / (by - ay):
            inside = not inside
    return inside


def test_centres_on_edges_and_corners_count_as_inside() -> None:
    square = _square(1.5, 1.5, 3.5, 2.5)[0]
    points = np.array([[1.5, 1.5], [2.5, 1.5], [3.5, 2.5], [2.5, 2.0], [1.4999999, 2.0], [3.5000001, 2.0],
                       [2.5, 2.5000001]])
    assert contains(points, np.repeat(square[None], len(points), 0)).tolist() == [
        True, True, True, True, False, False, False]
    clockwise = square[::-1]
    assert contains(points, np.repeat(clockwise[None], len(points), 0)).tolist() == [
        True, True, True, True, False, False, False]


def test_containment_agrees_with_ray_casting_on_random_star_polygons() -> None:
    rng = np.random.default_rng(3)
    polys = _random_polygons(rng, 40, 32, 20.0)
    which = rng.integers(0, len(polys), 1500)
    points = polys[which].mean(1) + rng.uniform(-3, 3, (len(which), 2))  # around the polygon each is tested with
    got = contains(points, polys[which])
    want = [_ray_cast(p, polys[w]) for p, w in zip(points, which, strict=True)]
    assert got.tolist() == want
    assert 100 < got.sum() < len(got) - 100  # both answers occur


def _strips() -> tuple[np.ndarray, np.ndarray]:
    """Three strips under a profile through column centres (as the builder draws a layer) and their outline."""
    x = np.array([0.5, 1.5, 2.5, 3.5], np.float64)
    top = np.array([1.2, 1.7, 0.9, 1.3])
    strips = np.stack([np.stack([x[:-1], np.full(3, 4.0)], -1), np.stack([x[1:], np.full(3, 4.0)], -1),
                       np.stack([x[1:], top[1:]], -1), np.stack([x[:-1], top[:-1]], -1)], axis=1)
    outline = np.concatenate([strips[:, [2, 3]], strips[:1, [3, 0]], strips[-1:, [1, 2]], strips[:, [0, 1]]])
    return strips, outline


def test_the_outline_given_replaces_the_polygons_edges_and_zero_length_edges_go() -> None:
    strips, outline = _strips()
    assert len(outline_edges(DrawnObject(1, strips, 0.0))) == 12  # every edge, the shared sides included
    assert len(outline_edges(DrawnObject(1, strips, 0.0, outline))) == 8
    assert len(outline_edges(DrawnObject(1, _square(10, 10, 10, 12), 0.0))) == 2  # two of its four edges have length


def test_an_edge_too_many_costs_time_only() -> None:
    strips, outline = _strips()
    objects = [DrawnObject(1, _square(-2, -2, 8, 8), 0.0), DrawnObject(2, strips, 1.0, outline)]
    rows, cols = np.mgrid[0:6, 0:6]
    exact = nearest_object(np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5], 1), objects).reshape(6, 6)
    assert exact[1:4, 1:3].tolist() == [[1, 2], [2, 2], [2, 2]]  # row centre 1.5 lies above the profile at x = 1.5
    lean, n_lean = apply_pixel_centre_rule(exact, objects)
    full, n_full = apply_pixel_centre_rule(exact, [objects[0], DrawnObject(2, strips, 1.0)])
    assert np.array_equal(lean, exact) and np.array_equal(full, exact)
    assert n_full > n_lean  # the shared sides run through the centres x = 1.5, 2.5


def test_band_holds_exactly_the_centres_near_an_edge() -> None:
    rng = np.random.default_rng(5)
    polys = _random_polygons(rng, 30, 16, 24.0)
    outline = outline_edges(DrawnObject(1, polys, 0.0))
    width, height = 24, 20
    got = band_pixels(outline, width, height, 0.1)
    rows, cols = np.mgrid[0:height, 0:width]
    cx, cy = (cols + 0.5).ravel(), (rows + 0.5).ravel()
    a, b = outline[:, 0], outline[:, 1]
    d = b - a
    t = np.clip(((cx[:, None] - a[:, 0]) * d[:, 0] + (cy[:, None] - a[:, 1]) * d[:, 1]) / (d ** 2).sum(1), 0, 1)
    dist = np.hypot(cx[:, None] - a[:, 0] - t * d[:, 0], cy[:, None] - a[:, 1] - t * d[:, 1]).min(1)
    want = np.flatnonzero(dist <= 0.1)
    assert got.tolist() == want.tolist()
    assert len(want) > 20


def test_the_nearest_object_is_the_highest_containing_one_and_ties_go_to_the_larger_id() -> None:
    low = DrawnObject(1, _square(0, 0, 10, 10), 0.0)
    high = DrawnObject(2, _square(2.5, 2.5, 5.5, 5.5), 3.0)
    twin = DrawnObject(3, _square(4.5, 4.5, 7.5, 7.5), 3.0)
    points = np.array([[1.0, 1.0], [3.0, 3.0], [2.5, 2.5], [5.0, 5.0], [6.0, 6.0], [11.0, 1.0]])
    assert nearest_object(points, [low, high, twin]).tolist() == [1, 2, 2, 3, 3, 0]
    assert nearest_object(points, [twin, high, low]).tolist() == [1, 2, 2, 3, 3, 0]  # order of the list is no matter


def test_nearest_object_agrees_with_a_per_point_reference_on_overlapping_random_objects() -> None:
    rng = np.random.default_rng(11)
    objects = [DrawnObject(k + 1, _random_polygons(rng, 6, 12, 12.0), float(h))
               for k, h in enumerate([0.0, 2.0, 1.0, 2.0])]
    points = rng.uniform(0, 12, (400, 2))
    got = nearest_object(points, objects)
    want = []
    for p in points:
        best: tuple[float, int] = (-np.inf, 0)
        for obj in objects:
            if any(_ray_cast(p, poly) for poly in obj.polygons):
                best = max(best, (obj.height, obj.object_id))
        want.append(best[1])
    assert got.tolist() == want
    assert set(want) == {0, 1, 2, 3, 4}


def test_a_polygon_of_no_area_covers_nothing() -> None:
    flat = np.array([[[1.5, 1.5], [3.5, 1.5], [2.5, 1.5], [1.5, 1.5]]], np.float64)
    assert nearest_object(np.array([[2.5, 1.5]]), [DrawnObject(4, flat, 1.0)]).tolist() == [0]


def test_the_rule_rewrites_only_pixels_beside_an_edge() -> None:
    background = DrawnObject(1, _square(-1, -1, 21, 21), 0.0)
    # a square whose left and top edges run through pixel centres, and a sliver far thinner than a pixel
    square = DrawnObject(2, _square(4.5, 3.5, 9.2, 8.7), 1.0)
    sliver = DrawnObject(3, np.array([[[12.5, 2.0], [12.51, 2.0], [12.51, 16.0], [12.5, 16.0]]]), 2.0)
    objects = [background, square, sliver]
    wrong = np.full((20, 20), 7, np.uint8)  # an engine that drew nothing right
    fixed, decided = apply_pixel_centre_rule(wrong, objects)
    changed = fixed != wrong
    assert decided == int(changed.sum())
    assert fixed[3, 4:10].tolist() == [2] * 5 + [7]  # centres (4.5..9.5, 3.5): on the top edge up to 9.2
    assert fixed[2:16, 12].tolist() == [3] * 14  # the sliver holds the centres x = 12.5 on its left edge
    assert fixed[10, 10] == 7 and fixed[5, 6] == 7  # far from every edge: the engine's answer stays
    with pytest.raises(ValueError, match="band_px"):
        apply_pixel_centre_rule(wrong, objects, band_px=0.5)
    assert EDGE_BAND_PX < 0.05


def test_id_colours_round_trip_and_a_view_transform_is_refused() -> None:
    ids = np.arange(256, dtype=np.uint8).reshape(16, 16)
    grey = np.array([id_colour(int(i))[0] for i in ids.ravel()], np.float32).reshape(16, 16)
    assert np.array_equal(ids_from_colour(grey.astype(np.float16).astype(np.float32)), ids)  # half floats: exact
    srgb = np.where(grey <= 0.0031308, 12.92 * grey, 1.055 * grey ** (1 / 2.4) - 0.055)
    with pytest.raises(ClassMapError, match="view transform"):
        ids_from_colour(srgb)


def test_tables_map_ids_to_class_and_grey() -> None:
    tables = IdTables(np.array([0, 1, 5, 5] + [0] * 252, np.uint8), np.linspace(0, 1, 256, dtype=np.float32))
    signal, mask = tables.apply(np.array([[0, 1], [2, 3]], np.uint8))
    assert mask.tolist() == [[0, 1], [5, 5]]
    assert signal.dtype == np.float32 and signal[1, 1] == np.float32(3 / 255)
