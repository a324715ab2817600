"""The 9Cr steel as a backscatter image shows it: tempered martensite and small bright particles, in numpy.

Martensite (channelling contrast). A tempered 9Cr steel is martensite: prior austenite grains split into packets,
each packet into blocks of parallel laths. Each block's crystal orientation sets how many electrons channel in, so
blocks differ in grey: the steel shows elongated bands at a few orientations, packet by packet. Drawn as a Voronoi
tessellation into packets (one of four lath directions each, a little spread) cut into blocks ``lath_width_um`` wide
and several times longer, each block with its own random grey; computed on a grid of at least three samples per
block width and enlarged.

Particles. Small particles in the steel that backscatter more than the matrix (Nb/V-rich MX carbonitrides, W/Mo-rich
Laves phase; Cr-rich M23C6 is about as dark as the matrix): discs of a fraction of a micrometre, brighter by
``contrast`` times the share of the pixel they cover; the probe blur then lowers their peak. Below the probe, so
they stay substrate in the mask.
"""

from __future__ import annotations

import cv2
import numpy as np

from semcoat import classes

# Samples of the martensite grid per block width (the grid is enlarged to the frame afterwards).
LATH_SAMPLES_PER_BLOCK = 2.0
# Length of a block along its laths over its width.
LATH_BLOCK_ASPECT = 10.0
# Lath directions of a frame (a packet takes one of them, spread by LATH_ANGLE_SPREAD_DEG).
LATH_DIRECTIONS = 4
LATH_ANGLE_SPREAD_DEG = 6.0
# Cells per packet width of the grid the packets are drawn on (their outlines are stepped at that scale).
PACKET_CELLS = 12.0
# Share of a packet's own grey in a block's grey (the rest is the block's own).
PACKET_SHARE = 0.35
HASH_TABLE = 1 << 16
# Particle radii are drawn in [1 - x, 1 + x] times the mean.
PARTICLE_RADIUS_SPREAD = 0.5
# Particles smaller than this (radius, px) brighten the one pixel they lie in; larger ones are drawn as discs.
SUBPIXEL_RADIUS_PX = 0.5
_CIRCLE_SHIFT = 4  # fixed-point bits of cv2.circle: centres and radii to 1/16 px


def _first_steel_row(mask: np.ndarray) -> int | None:
    """The first row holding steel (None: no steel in the frame)."""
    rows = np.flatnonzero((mask == classes.SUBSTRATE).any(axis=1))
    return int(rows[0]) if rows.size else None


def apply_laths(
    specimen: np.ndarray, mask: np.ndarray, pixel_size_um: float, contrast: float, lath_width_um: float,
    packet_um: float, rng: np.random.Generator,
) -> None:
    """Multiply ``specimen`` (float32 brightness factors, frame sized) in place by the martensite's block greys on
    the steel's pixels: ``1 + contrast * g`` with ``g`` in [-1, 1] per block.

    Parameters
    ----------
    specimen : float32 (rows, columns), changed in place.
    mask : uint8 class ids of the same pixels.
    pixel_size_um : µm per pixel.
    contrast : largest relative grey change of a block (0.05 = +-5 %); 0 draws nothing. Blocks narrower than two
        pixels average within a pixel: their own share of the grey falls as the square root of the block width over
        two pixels (the packets' stays).
    lath_width_um : width of a block of parallel laths, µm.
    packet_um : mean size of a packet (blocks of one direction), µm.
    rng : the martensite's own stream.
    """
    top = _first_steel_row(mask) if contrast > 0 else None
    if top is None:
        return
    rows, cols = mask.shape[0] - top, mask.shape[1]
    block_px = lath_width_um / pixel_size_um
    step = max(1.0, block_px / LATH_SAMPLES_PER_BLOCK)  # px per grid sample
    # Blocks under two pixels wide average within a pixel (and would alias): their share fades as sqrt(width / 2 px).
    block_share = (1.0 - PACKET_SHARE) * float(np.sqrt(min(1.0, block_px / LATH_SAMPLES_PER_BLOCK)))
    grid_h, grid_w = max(2, int(np.ceil(rows / step))), max(2, int(np.ceil(cols / step)))
    # Packets: a Voronoi tessellation on a coarse grid of PACKET_CELLS cells per packet width, enlarged (nearest).
    cell = max(step, packet_um / pixel_size_um / PACKET_CELLS)
    cells_h, cells_w = max(2, int(np.ceil(rows / cell))), max(2, int(np.ceil(cols / cell)))
    n_packets = max(1, int(round(cells_h * cells_w / PACKET_CELLS**2)))
    seeds = np.ones((cells_h, cells_w), np.uint8)
    seeds.flat[rng.choice(cells_h * cells_w, n_packets, replace=False)] = 0
    _, coarse = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    labels = cv2.resize(coarse, (grid_w, grid_h), interpolation=cv2.INTER_NEAREST)
    # Per packet (label 1..n; 0 unused): a lath direction, offsets of its block pattern, its own grey.
    directions = rng.uniform(0.0, np.pi) + np.pi / LATH_DIRECTIONS * rng.integers(0, LATH_DIRECTIONS, n_packets + 1)
    angle = directions + np.deg2rad(rng.normal(0.0, LATH_ANGLE_SPREAD_DEG, n_packets + 1))
    cos_a, sin_a = np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)
    offset = rng.uniform(0.0, 1.0, (2, n_packets + 1)).astype(np.float32)
    packet_grey = rng.uniform(-1.0, 1.0, n_packets + 1).astype(np.float32)
    block_grey = rng.uniform(-1.0, 1.0, HASH_TABLE).astype(np.float32)
    # Grid coordinates in block widths; across the laths and along them (blocks LATH_BLOCK_ASPECT long, staggered).
    y = (np.arange(grid_h, dtype=np.float32) * np.float32(step / block_px))[:, None]
    x = (np.arange(grid_w, dtype=np.float32) * np.float32(step / block_px))[None, :]
    c, s = cos_a[labels], sin_a[labels]
    across = np.floor(y * c - x * s + offset[0][labels])
    along = np.floor((x * c + y * s) / np.float32(LATH_BLOCK_ASPECT) + offset[1][labels] + np.float32(0.5) * across)
    # A block's grey: a hash of (packet, block across, block along) into a table of random greys (uint32 arithmetic
    # wraps around, as a hash should).
    key = (labels.astype(np.uint32) * np.uint32(73856093)) ^ (
        across.astype(np.int32).view(np.uint32) * np.uint32(19349663)) ^ (
        along.astype(np.int32).view(np.uint32) * np.uint32(83492791))
    grey = np.float32(PACKET_SHARE) * packet_grey[labels] + np.float32(block_share) * block_grey[
        key & np.uint32(HASH_TABLE - 1)]
    grey = np.float32(1.0) + np.float32(contrast) * grey
    factor = cv2.resize(grey, (cols, rows), interpolation=cv2.INTER_LINEAR)
    # 1 off the steel: the deviation times the boolean mask (branch-free, ten times cheaper than a masked write)
    factor -= np.float32(1.0)
    factor *= mask[top:] == classes.SUBSTRATE
    factor += np.float32(1.0)
    specimen[top:] *= factor


def apply_particles(
    specimen: np.ndarray, mask: np.ndarray, pixel_size_um: float, density_per_100um2: float, radius_um: float,
    contrast: float, rng: np.random.Generator,
) -> None:
    """Multiply ``specimen`` (float32 brightness factors, frame sized) in place by small bright particles in the
    steel: ``1 + contrast`` where a particle covers a pixel, ``1 + contrast x share`` in a pixel holding a particle
    smaller than it.

    Parameters
    ----------
    specimen : float32 (rows, columns), changed in place.
    mask : uint8 class ids of the same pixels; only steel pixels brighten.
    pixel_size_um : µm per pixel.
    density_per_100um2 : particles per 100 µm² of steel (Poisson); 0 draws nothing.
    radius_um : mean particle radius, µm (each drawn within ±50 %).
    contrast : relative brightening of a pixel a particle covers whole.
    rng : the particles' own stream.
    """
    if density_per_100um2 <= 0 or contrast <= 0:
        return
    steel = mask == classes.SUBSTRATE
    n = int(rng.poisson(density_per_100um2 * np.count_nonzero(steel) * pixel_size_um**2 / 100.0))
    if n == 0:
        return
    rows, cols = mask.shape
    y, x = rng.uniform(0, rows, n), rng.uniform(0, cols, n)
    radius_px = radius_um / pixel_size_um * rng.uniform(1 - PARTICLE_RADIUS_SPREAD, 1 + PARTICLE_RADIUS_SPREAD, n)
    r_idx, c_idx = y.astype(np.intp), x.astype(np.intp)
    inside = steel[r_idx, c_idx]
    small = inside & (radius_px < SUBPIXEL_RADIUS_PX)
    # Within a pixel: the pixel brightens by the share of it the particle covers.
    specimen[r_idx[small], c_idx[small]] *= (1.0 + np.pi * radius_px[small] ** 2 * contrast).astype(np.float32)
    scale = 1 << _CIRCLE_SHIFT
    patch = np.zeros((1, 1), np.float32)
    for yy, xx, rr in zip(y[inside & ~small], x[inside & ~small], radius_px[inside & ~small], strict=True):
        # The disc in a small patch around it (cv2 puts integer coordinates on pixel centres; ours sit at +0.5).
        reach = int(np.ceil(rr)) + 1
        r0, c0 = max(0, int(yy) - reach), max(0, int(xx) - reach)
        r1, c1 = min(rows, int(yy) + reach + 1), min(cols, int(xx) + reach + 1)
        if patch.shape != (r1 - r0, c1 - c0):
            patch = np.zeros((r1 - r0, c1 - c0), np.float32)
        else:
            patch.fill(0.0)
        centre = (int(round((xx - 0.5 - c0) * scale)), int(round((yy - 0.5 - r0) * scale)))
        # A filled cv2 circle of radius r covers about pi (r + 1/2)^2 pixels: drawn half a pixel smaller.
        cv2.circle(patch, centre, int(round((rr - 0.5) * scale)), (float(contrast),), -1, cv2.LINE_8, _CIRCLE_SHIFT)
        specimen[r0:r1, c0:c1] *= np.float32(1.0) + patch * steel[r0:r1, c0:c1]
