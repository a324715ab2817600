"""Cracks through the Fe2Al5 layer: thin, slightly wavy slits from the coating surface down, about perpendicular to it.

Coordinates as in :mod:`.geometry` (``x_um`` along the surface, ``depth_um`` down from the top image edge). A crack is
one polygon of :data:`~.placement.VERTICES_PER_INCLUSION` vertices: a centre line of ``CRACK_POINTS`` points from the
surface to its end, each point widened sideways (horizontally) by the local half opening. The top edge lies at the
deepest surface point under the crack's opening, so no crack pixel ever shows above the surface; a crack that runs
through the layer ends at the shallowest Fe2Al5 bottom under its last opening, so it stops at FeAl or the substrate.

Every crack is at least ``MIN_OPENING_PX`` wide along each row and its centre line moves less than a pixel per row
(angles to the normal stay below 45 degrees), so each crack is one 8-connected region in the mask: the crack density
measured on the mask counts what was drawn.
"""

from __future__ import annotations

import numpy as np

from semcoat.spec import CrackSpec

from .placement import VERTICES_PER_INCLUSION, Inclusions

CRACK_POINTS = VERTICES_PER_INCLUSION // 2
# Narrowest opening along a row, px (a narrower slit would fall between pixel centres and break up in the mask).
MIN_OPENING_PX = 1.1
# Sideways waviness of the centre line: standard deviation of a step between points, as a share of the step's length.
WIGGLE = 0.12
# Largest angle of a centre-line step to the normal, rad (keeps every crack 8-connected in the mask).
MAX_STEP_ANGLE_RAD = np.deg2rad(40.0)
# A crack that does not run through ends at this share of the local thickness (uniform).
PARTIAL_DEPTH_RANGE = (0.2, 0.9)
# Cracks keep this clearance (px) to each other at every depth: two cracks never touch or cross, so each is one region.
CLEARANCE_PX = 2.0


def _too_close(x: np.ndarray, depth: np.ndarray, half: np.ndarray, i: int, j: int, clearance_um: float) -> bool:
    """Whether crack ``i``, at its sampled depths that crack ``j`` reaches, comes within ``clearance_um`` of ``j`` or
    lies on both sides of it (crossing between two samples)."""
    shared = (depth[i] >= depth[j, 0]) & (depth[i] <= depth[j, -1])
    if not shared.any():
        return False
    xj = np.interp(depth[i, shared], depth[j], x[j])
    hj = np.interp(depth[i, shared], depth[j], half[j])
    gap = x[i, shared] - xj
    return bool(np.any(np.abs(gap) < half[i, shared] + hj + clearance_um) or np.ptp(np.sign(gap)) > 0)


def _apart(x: np.ndarray, depth: np.ndarray, half: np.ndarray, clearance_um: float) -> np.ndarray:
    """Which cracks (centre lines ``x``, ``depth``, half openings ``half``: (n, points)) to keep, in draw order: a
    crack is dropped when, at a depth both reach, it comes within ``clearance_um`` of a crack kept before it."""
    n = x.shape[0]
    keep = np.zeros(n, dtype=bool)
    travel = np.abs(x - x[:, :1]).max(1) + half.max(1)
    order = np.argsort(x[:, 0], kind="stable")
    x_sorted = x[order, 0]
    reach = 2.0 * float(travel.max()) + clearance_um
    for i in range(n):
        lo, hi = np.searchsorted(x_sorted, [x[i, 0] - reach, x[i, 0] + reach])
        keep[i] = not any(keep[j] and (_too_close(x, depth, half, i, j, clearance_um)
                                       or _too_close(x, depth, half, j, i, clearance_um)) for j in order[lo:hi])
    return keep


def _profile_at(profile_um: np.ndarray, x_um: np.ndarray, at_um: np.ndarray, half_um: np.ndarray,
                deepest: bool) -> np.ndarray:
    """Deepest (or shallowest) value of a depth profile over the columns within ``half_um`` of each ``at_um``."""
    p = float(x_um[1] - x_um[0]) if x_um.size > 1 else 1.0
    lo = np.clip(np.floor((at_um - half_um - x_um[0]) / p).astype(np.intp), 0, x_um.size - 1)
    hi = np.clip(np.ceil((at_um + half_um - x_um[0]) / p).astype(np.intp), 0, x_um.size - 1)
    out = np.empty(at_um.size)
    for k in range(at_um.size):
        window = profile_um[lo[k]:hi[k] + 1]
        out[k] = window.max() if deepest else window.min()
    return out


def draw_cracks(
    spec: CrackSpec, x_um: np.ndarray, surface_um: np.ndarray, bottom_um: np.ndarray, pixel_size_um: float,
    rng: np.random.Generator, tilt_rad: float = 0.0,
) -> Inclusions:
    """The cracks of one frame.

    Parameters
    ----------
    spec : the crack section of the coating spec.
    x_um : column-centre positions of the frame, µm.
    surface_um, bottom_um : depth of the coating surface and of the Fe2Al5 bottom at ``x_um``, µm.
    pixel_size_um : µm per pixel.
    rng : the cracks' own random stream (nothing is drawn from it when the density is 0).
    tilt_rad : turn of the cross-section in the frame (positive: the surface descends to the right); the cracks'
        angles are to the turned normal.

    Returns
    -------
    Inclusions
        One polygon per crack (its area in ``areas_um2``), in draw order.
    """
    if spec.density_per_100um <= 0 or x_um.size < 2:
        return Inclusions.empty()
    p = pixel_size_um
    x_lo, x_hi = float(x_um[0]) - 0.5 * p, float(x_um[-1]) + 0.5 * p
    n = int(rng.poisson(spec.density_per_100um * (x_hi - x_lo) / 100.0))
    if n == 0:
        return Inclusions.empty()
    x0 = rng.uniform(x_lo, x_hi, n)
    # The normal of a surface descending to the right leans left going down: x moves by -tan(tilt) per unit depth.
    angle = np.deg2rad(rng.uniform(-1.0, 1.0, n) * spec.angle_spread_deg) - tilt_rad
    opening = np.exp(rng.uniform(np.log(0.5), np.log(2.0), n)) * spec.width_um
    opening = np.maximum(opening, MIN_OPENING_PX * p)
    through = rng.uniform(0.0, 1.0, n) < spec.through_fraction
    share = np.where(through, 1.0, rng.uniform(*PARTIAL_DEPTH_RANGE, n))
    steps = rng.normal(0.0, WIGGLE, (n, CRACK_POINTS - 1))
    taper = rng.uniform(0.25, 0.6, n)  # a crack that ends inside the layer narrows towards its tip

    reach = 0.5 * opening + p
    top = _profile_at(surface_um, x_um, x0, reach, deepest=True)
    thickness = np.maximum(_profile_at(bottom_um, x_um, x0, reach, deepest=False) - top, p)
    length = share * thickness
    t = np.linspace(0.0, 1.0, CRACK_POINTS)
    limit = np.tan(MAX_STEP_ANGLE_RAD)
    slope = np.clip(np.tan(angle)[:, None] + steps, -limit, limit)

    def centre_line(length: np.ndarray) -> np.ndarray:
        step_dy = (length / (CRACK_POINTS - 1))[:, None]
        return x0[:, None] + np.concatenate([np.zeros((n, 1)), np.cumsum(slope * step_dy, axis=1)], axis=1)

    # Where a crack through the layer ends depends on where it arrives: aim with the thickness at its start, then
    # end it at the shallowest bottom under its last opening (the interface is smooth: a few corrections settle it).
    for _ in range(3):
        end_bottom = _profile_at(bottom_um, x_um, centre_line(length)[:, -1], reach, deepest=False)
        length = np.where(through, np.maximum(end_bottom - top, p), length)
    x = centre_line(length)
    depth = top[:, None] + length[:, None] * t[None, :]
    half = 0.5 * opening[:, None] * np.where(through[:, None], 1.0 - 0.3 * t[None, :],
                                             1.0 - (1.0 - taper[:, None]) * t[None, :])
    half = np.maximum(half, 0.5 * MIN_OPENING_PX * p)
    keep = _apart(x, depth, half, CLEARANCE_PX * p)
    x, depth, half = x[keep], depth[keep], half[keep]
    # Down the left side, then up the right: counter-clockwise in the (x, -depth) plane, like every inclusion.
    px = np.concatenate([x - half, (x + half)[:, ::-1]], axis=1)
    pd = np.concatenate([depth, depth[:, ::-1]], axis=1)
    polygons = np.stack([px, pd], axis=-1)
    y = -pd
    areas = 0.5 * (px * np.roll(y, -1, axis=1) - np.roll(px, -1, axis=1) * y).sum(1)
    return Inclusions(polygons, areas)
