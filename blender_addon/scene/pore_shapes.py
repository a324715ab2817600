"""Pore outlines as real pores have them (issue 11 point 5): irregular, concave, several pores merged into one, and
scattered pores crowding towards the outer part of the layer.

Coordinates as in :mod:`.geometry`. Every outline stays star-shaped about its centre (a positive radius at every
angle), so it is one simple polygon whose shoelace area is its area, drawn like any inclusion:

- *irregular*: the smooth harmonic wobble of :func:`.placement.star_polygons` grows, and finer harmonics (orders 7-12)
  add bays and lobes; their amplitudes sum to less than one, so the radius never reaches zero;
- *merged*: two or three overlapping round blobs spread about the centre, each holding it (so their union is
  star-shaped about it, with a waist where they meet), stretched like an ellipse, scaled to the pore's area and
  wobbled like the others.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .placement import (
    NEXT_VERTEX,
    OUTLINE_COS,
    OUTLINE_SIN,
    SHAPE_ORDERS,
    SHAPE_PERTURBATION,
    WOBBLE_MAX,
    ShapeDraw,
    harmonic_table,
    harmonic_wobble,
    turned_outlines,
)

FINE_ORDERS = np.arange(7, 13)
# Amplitude bound of the fine harmonics at irregularity 1 (divided by the order): with the coarse wobble doubled
# their sum stays below 0.95 (0.64 + 0.29), so every radius keeps 5 % of its smooth value or more.
FINE_PERTURBATION = 0.45
# A merged pore: two or three round blobs spread about its centre (opposite each other, or about a third of a turn
# apart), each of this radius (a share of the largest) and centred this far out (a share of its own radius, below 1
# so that each holds the centre and the union stays star-shaped about it): a waist where they meet.
BLOBS = (2, 3)
BLOB_SIZE = (0.7, 1.0)
BLOB_OFFSET = (0.6, 0.95)
BLOB_TURN_SPREAD_RAD = 0.35
# The farthest a merged outline of area pi reaches from its centre: 1.33 for half of them, 1.56 for 99 % (10^5
# outlines); the rare one beyond is drawn smaller, so that placement's reach holds for every outline.
MERGED_REACH = 1.6
_ORDERS = np.concatenate([SHAPE_ORDERS, FINE_ORDERS])
_HARMONICS = harmonic_table(_ORDERS)


def wobble_max(irregularity: float) -> float:
    """Largest radial factor the wobble of pores of ``irregularity`` (0-1) can reach."""
    coarse = SHAPE_PERTURBATION * float((1.0 / SHAPE_ORDERS).sum()) * (1.0 + irregularity)
    fine = FINE_PERTURBATION * irregularity * float((1.0 / FINE_ORDERS).sum())
    return max(WOBBLE_MAX, 1.0 + coarse + fine)


def reach_factor(irregularity: float, merged_fraction: float) -> float:
    """How much farther than a smooth ellipse a pore of these shapes can reach from its centre."""
    return wobble_max(irregularity) / WOBBLE_MAX * (MERGED_REACH if merged_fraction > 0 else 1.0)


def _merged_radius(n: int, rng: np.random.Generator) -> np.ndarray:
    """Radius (n, outline angles) of the union of two or three blobs spread about the centre, each holding it."""
    count = rng.integers(BLOBS[0], BLOBS[1] + 1, n)
    slots = BLOBS[1]
    size = rng.uniform(*BLOB_SIZE, (n, slots))
    offset = rng.uniform(*BLOB_OFFSET, (n, slots)) * size
    turn = rng.uniform(0.0, 2 * np.pi, n)[:, None] + rng.normal(0.0, BLOB_TURN_SPREAD_RAD, (n, slots))
    direction = turn + 2 * np.pi * np.arange(slots)[None, :] / count[:, None]
    # cos and sin of (t - direction) by the difference formulas: two per blob, not two per blob and outline angle.
    cos_d, sin_d = np.cos(direction)[:, :, None], np.sin(direction)[:, :, None]
    cos_rel = OUTLINE_COS * cos_d + OUTLINE_SIN * sin_d
    sin_rel = OUTLINE_SIN * cos_d - OUTLINE_COS * sin_d
    # Far intersection of the ray at angle t with a circle of radius f centred d away (d < f): d cos + sqrt(...).
    reach = offset[:, :, None] * cos_rel + np.sqrt(size[:, :, None] ** 2 - (offset[:, :, None] * sin_rel) ** 2)
    used = np.arange(slots)[None, :] < count[:, None]
    return np.where(used[:, :, None], reach, 0.0).max(1)


def pore_shapes(irregularity: float, merged_fraction: float) -> ShapeDraw | None:
    """The outline drawer of pores of ``irregularity`` and ``merged_fraction`` (both 0-1), with the signature of
    :func:`.placement.star_polygons`; None when both are 0 (the smooth ellipses, drawn exactly as before)."""
    if irregularity <= 0 and merged_fraction <= 0:
        return None
    limit = WOBBLE_MAX * reach_factor(irregularity, merged_fraction)

    def draw(
        centres: np.ndarray, radii: np.ndarray, aspects: np.ndarray, angles_rad: np.ndarray, rng: np.random.Generator,
        square: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        n = radii.size
        coarse = rng.uniform(0.0, SHAPE_PERTURBATION * (1.0 + irregularity), (n, SHAPE_ORDERS.size)) / SHAPE_ORDERS
        fine = rng.uniform(0.0, FINE_PERTURBATION * irregularity, (n, FINE_ORDERS.size)) / FINE_ORDERS
        amps = np.concatenate([coarse, fine], axis=1)
        phases = rng.uniform(0.0, 2 * np.pi, (n, _ORDERS.size))
        radius = harmonic_wobble(amps, phases, _HARMONICS)
        merged = rng.uniform(0.0, 1.0, n) < merged_fraction
        if merged.any():
            radius[merged] *= _merged_radius(int(merged.sum()), rng)
        a = np.sqrt(aspects)[:, None]
        u = a * OUTLINE_COS * radius
        v = OUTLINE_SIN * radius / a
        # Scale to the area of the circle of ``radii`` (the population's sizes are equivalent-circle radii), and
        # never beyond the reach placement counts with.
        area = 0.5 * (u * v[:, NEXT_VERTEX] - u[:, NEXT_VERTEX] * v).sum(1)
        scale = np.sqrt(np.pi / area)
        reach = np.sqrt(u**2 + v**2).max(1) * scale / a[:, 0]
        scale = radii * scale * np.minimum(1.0, limit / reach)
        u *= scale[:, None]
        v *= scale[:, None]
        return turned_outlines(centres, u, v, angles_rad)

    return draw


def outer_weighting(weight: float) -> Callable[[np.ndarray], np.ndarray] | None:
    """Share of the depth window (0 at the top, 1 at the bottom) for uniform draws ``u``, so that depths are drawn
    with a density falling linearly from 1 + ``weight`` at the top to 1 - ``weight`` at the bottom (its inverse
    distribution function); None for ``weight`` 0 (uniform, drawn as before)."""
    if weight <= 0:
        return None
    w = float(weight)

    def share(u: np.ndarray) -> np.ndarray:
        return ((1.0 + w) - np.sqrt((1.0 + w) ** 2 - 4.0 * w * u)) / (2.0 * w)

    return share

