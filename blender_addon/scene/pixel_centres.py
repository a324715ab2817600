"""The pixel-centre rule of the class map, decided exactly where a renderer may waver: at pixels beside an edge.

A pixel shows the highest object (nearest the camera) among those whose polygons contain the pixel's centre. Blender's
rasteriser (Workbench, anti-aliasing off) and its ray tracer (Cycles, one ray per pixel through a 0.01 px box filter)
both follow that rule to within about a hundredth of a pixel: the ray leaves up to 0.005 px off the centre in x and y,
the rasteriser snaps vertices to 1/256 px. Away from the edges where the drawn object changes, both give the rule's
answer; a pixel whose centre lies within ``EDGE_BAND_PX`` of such an edge is decided here instead, from the polygons
themselves, by the same code whichever engine drew the frame. So the engines' id maps agree pixel for pixel by
construction, and no pixel's class depends on where an engine's sample happened to land.

The test is exact: corners are float32 (what the meshes hold), so every cross product below is computed exactly in
float64 and only its sign is used. A centre on an edge belongs to the polygon (edges count as inside), so where two
objects meet on it the higher one shows. Polygons must be simple (not self-intersecting), as everything the builder
draws is: then the polygon is exactly the union of the triangles an engine draws. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stopping import StopCheck, check

# Twice the engines' largest possible deviation from the centre (0.0071 px: Cycles' filter offset along a diagonal;
# measured: 0.0006 px for Cycles, 0.0019 px for Workbench).
EDGE_BAND_PX = 1.0 / 64
_TILE_PX = 8  # polygons are matched to the band's pixels through tiles of this size
_BIG_TILES = 256  # a polygon over more tiles is tested against every pixel instead


@dataclass
class DrawnObject:
    """What one object puts on the frame, in frame pixels: x to the right, rows down from the top edge.

    Attributes
    ----------
    object_id : the id the engines draw for it (1-255; 0 is the empty world).
    polygons : float64 (n, k, 2), simple polygons of k corners (x px, row px) each, either orientation.
    height : how near the camera the object lies (the higher object shows where two overlap).
    outline : float64 (E, 2, 2) or None: the edges where the object ends, when its polygons share edges (a layer's
        strips: the sides they share run through pixel centres, and nothing changes across them); None: every edge
        of every polygon. An edge too many only costs time (its pixels are decided here, rightly); an edge missing
        would leave its pixels to the engine.
    """

    object_id: int
    polygons: np.ndarray
    height: float
    outline: np.ndarray | None = None


def _edges(polygons: np.ndarray) -> np.ndarray:
    """Every polygon's edges (n * k, 2, 2), corner i to corner i + 1."""
    return np.stack([polygons, np.roll(polygons, -1, axis=1)], axis=2).reshape(-1, 2, 2)


def outline_edges(obj: DrawnObject) -> np.ndarray:
    """The edges (E, 2, 2) near which the pixel-centre rule decides: the object's ``outline`` when given, else every
    edge of its polygons. Edges of zero length are left out."""
    if obj.outline is not None:
        edges = obj.outline.astype(np.float64)
    elif obj.polygons.size:
        edges = _edges(obj.polygons.astype(np.float64))
    else:
        return np.zeros((0, 2, 2))
    same = edges[:, 0] == edges[:, 1]
    return edges[~(same[:, 0] & same[:, 1])]


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For items with ``counts`` entries each: (item of each entry, entry's rank within its item)."""
    counts = np.maximum(counts, 0)
    item = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return item, np.arange(int(counts.sum())) - starts[item]


def _segment_distance(px: np.ndarray, py: np.ndarray, edges: np.ndarray) -> np.ndarray:
    ax, ay, bx, by = edges[:, 0, 0], edges[:, 0, 1], edges[:, 1, 0], edges[:, 1, 1]
    dx, dy = bx - ax, by - ay
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.hypot(px - (ax + t * dx), py - (ay + t * dy))


def band_pixels(outline: np.ndarray, width_px: int, height_px: int, band_px: float = EDGE_BAND_PX) -> np.ndarray:
    """Flat indices (row * width + column, sorted, unique) of the frame's pixels whose centre lies within ``band_px``
    of an edge of ``outline`` (E, 2, 2), x and row in pixels.

    Each edge is walked along its major axis, one pixel centre line at a time; at most one pixel per line can be that
    close (the band is far narrower than a pixel), and its exact distance to the segment decides.
    """
    if not 0 < band_px < 0.2:
        raise ValueError(f"band_px must be in (0, 0.2) px, got {band_px}")
    # Only an edge whose bounding box, widened by the band, holds a pixel centre in x and in y can come near one:
    # most edges of small polygons are shorter than a pixel, and this drops about two thirds of them.
    a, b = outline[:, 0], outline[:, 1]  # (elementwise minimum: numpy reduces a two-long axis slowly)
    lo, hi = np.minimum(a, b) - band_px - 0.5, np.maximum(a, b) + band_px - 0.5
    meets = np.floor(hi) >= np.ceil(lo)
    outline = outline[meets[:, 0] & meets[:, 1]]
    found = []
    d = outline[:, 1] - outline[:, 0]
    major_x = np.abs(d[:, 0]) >= np.abs(d[:, 1])
    for chosen, axis in ((major_x, 0), (~major_x, 1)):
        e = outline[chosen & np.any(d != 0, axis=1)]
        if not len(e):
            continue
        u = e[..., axis]  # along the major axis
        v = e[..., 1 - axis]
        first = np.ceil(np.minimum(u[:, 0], u[:, 1]) - band_px - 0.5).astype(np.int64)
        last = np.floor(np.maximum(u[:, 0], u[:, 1]) + band_px - 0.5).astype(np.int64)
        item, rank = _expand(last - first + 1)
        k = first[item] + rank
        u0, v0 = u[item, 0], v[item, 0]
        t = np.clip((k + 0.5 - u0) / (u[item, 1] - u0), 0.0, 1.0)
        vk = v0 + t * (v[item, 1] - v0)
        # Within band_px of the segment means within 2 band_px of it along the minor axis (slope <= 1): one centre.
        m = np.ceil(vk - 2 * band_px - 0.5).astype(np.int64)
        hit = m + 0.5 <= vk + 2 * band_px
        k, m, item = k[hit], m[hit], item[hit]
        col, row = (k, m) if axis == 0 else (m, k)
        near = _segment_distance(col + 0.5, row + 0.5, e[item]) <= band_px
        col, row = col[near], row[near]
        inside = (col >= 0) & (col < width_px) & (row >= 0) & (row < height_px)
        found.append(row[inside] * width_px + col[inside])
    if not found:
        return np.zeros(0, np.int64)
    return np.unique(np.concatenate(found))


def _corner_range(polygons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each polygon's lower and upper corner (n, 2) (elementwise over the corners: numpy reduces a middle axis
    of two-long rows slowly)."""
    lo, hi = polygons[:, 0].copy(), polygons[:, 0].copy()
    for i in range(1, polygons.shape[1]):
        np.minimum(lo, polygons[:, i], out=lo)
        np.maximum(hi, polygons[:, i], out=hi)
    return lo, hi


def _candidates(p_tile: np.ndarray, polygons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(point, polygon) index pairs whose polygon's bounding box meets the point's tile (``p_tile``: (N, 2) tile
    column and row of each point). Polygons over more than ``_BIG_TILES`` tiles are paired with every point."""
    lo, hi = p_tile.min(0), p_tile.max(0)
    stride = int(hi[0] - lo[0] + 1)
    point_tile = (p_tile[:, 1] - lo[1]) * stride + (p_tile[:, 0] - lo[0])
    occupied = np.zeros(int(hi[1] - lo[1] + 1) * stride, bool)
    occupied[point_tile] = True
    c_lo, c_hi = _corner_range(polygons)
    t_lo = np.maximum(np.floor(c_lo / _TILE_PX).astype(np.int64), lo)
    t_hi = np.minimum(np.floor(c_hi / _TILE_PX).astype(np.int64), hi)
    span = t_hi - t_lo + 1
    tiles = span[:, 0] * span[:, 1]
    meets = (span[:, 0] > 0) & (span[:, 1] > 0)
    big = np.flatnonzero(meets & (tiles > _BIG_TILES))  # a layer's rectangle: few, each beside most points
    small = np.flatnonzero(meets & (tiles <= _BIG_TILES))
    which, rank = _expand(tiles[small])
    poly, w = small[which], span[small[which], 0]
    pair_tile = (t_lo[poly, 1] + rank // w - lo[1]) * stride + (t_lo[poly, 0] + rank % w - lo[0])
    useful = occupied[pair_tile]
    pair_tile, poly = pair_tile[useful], poly[useful]
    order = np.argsort(pair_tile, kind="stable")
    pair_tile, poly = pair_tile[order], poly[order]
    begin = np.searchsorted(pair_tile, point_tile, "left")
    count = np.searchsorted(pair_tile, point_tile, "right") - begin
    pt, rank = _expand(count)
    n = len(p_tile)
    return (np.concatenate([pt, np.tile(np.arange(n), len(big))]),
            np.concatenate([poly[begin[pt] + rank], np.repeat(big, n)]))


def contains(points: np.ndarray, polygons: np.ndarray) -> np.ndarray:
    """Whether each point (N, 2) lies in the polygon (N, k, 2) beside it, edges included (exact for float32 corners).

    Non-zero winding number (Sunday's crossing test, signs of exact cross products), or on an edge.
    """
    a = polygons
    b = np.roll(polygons, -1, axis=1)
    px, py = points[:, None, 0], points[:, None, 1]
    cross = (b[..., 0] - a[..., 0]) * (py - a[..., 1]) - (b[..., 1] - a[..., 1]) * (px - a[..., 0])
    up = (a[..., 1] <= py) & (b[..., 1] > py) & (cross > 0)
    down = (a[..., 1] > py) & (b[..., 1] <= py) & (cross < 0)
    winding = up.sum(1) - down.sum(1)
    on_edge = ((cross == 0) & (np.minimum(a[..., 0], b[..., 0]) <= px) & (px <= np.maximum(a[..., 0], b[..., 0]))
               & (np.minimum(a[..., 1], b[..., 1]) <= py) & (py <= np.maximum(a[..., 1], b[..., 1])))
    return (winding != 0) | on_edge.any(1)


def nearest_object(points: np.ndarray, objects: list[DrawnObject], should_stop: StopCheck | None = None) -> np.ndarray:
    """The id (uint8) of the highest object whose polygons contain each point (N, 2) (x px, row px), edges
    included; 0 where none does. Of two objects of equal height the one with the larger id shows. ``should_stop`` is
    asked before each object (``Interrupted`` when it answers True)."""
    ids = np.zeros(len(points), np.uint8)
    open_ = np.ones(len(points), bool)
    p_tile = np.floor(points / _TILE_PX).astype(np.int64)
    for obj in sorted(objects, key=lambda o: (o.height, o.object_id), reverse=True):
        check(should_stop)
        todo = np.flatnonzero(open_)
        if not len(todo):
            break
        polys = obj.polygons.astype(np.float64)
        if not len(polys):
            continue
        x, y = polys[..., 0], polys[..., 1]
        area2 = (x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(1)
        polys = polys[area2 != 0]  # a polygon of no area covers no pixel in either engine
        if not len(polys):
            continue
        pt, poly = _candidates(p_tile[todo], polys)
        hit = np.unique(pt[contains(points[todo][pt], polys[poly])])
        ids[todo[hit]] = obj.object_id
        open_[todo[hit]] = False
    return ids


def apply_pixel_centre_rule(ids: np.ndarray, objects: list[DrawnObject], band_px: float = EDGE_BAND_PX,
                            should_stop: StopCheck | None = None) -> tuple[np.ndarray, int]:
    """``ids`` (H, W) uint8 as an engine drew it, with every pixel within ``band_px`` of an object's outline decided
    by :func:`nearest_object`: (the id map, how many pixels were decided here). ``ids`` is not modified;
    ``should_stop`` is asked between the steps (``Interrupted`` when it answers True)."""
    height, width = ids.shape
    outlines = []
    for o in objects:
        check(should_stop)
        outlines.append(outline_edges(o))
    outline = np.concatenate(outlines) if outlines else np.zeros((0, 2, 2))
    flat = band_pixels(outline, width, height, band_px)
    out = ids.copy()
    if len(flat):
        rows, cols = np.divmod(flat, width)
        out.reshape(-1)[flat] = nearest_object(np.stack([cols + 0.5, rows + 0.5], axis=1), objects, should_stop)
    return out, int(len(flat))
