"""What makes a real micrograph less clean than the ideal phase map: composition gradients, polishing scratches and
uneven detector response. Multiplicative brightness fields in numpy; none of them changes a class in the mask.

- Fe2Al5 depth gradient (specimen): aluminium is depleted towards the substrate, so the mean Z of Fe2Al5 rises with
  depth and its backscatter grey rises slightly from the surface to the bottom of the band.
- Polishing scratches (specimen): thin straight grooves, mostly along one polishing direction, that darken solid
  phases a little (they hardly show in resin and not at all in open pores).
- Shading (detector): a slow, smooth brightness ramp across the frame from an off-axis backscatter detector.
"""

from __future__ import annotations

import cv2
import numpy as np

from semcoat import classes

# Spread of the scratch directions around the polishing direction, degrees.
SCRATCH_ANGLE_SPREAD_DEG = 12.0
# Blur of a rasterised scratch, px: grooves are about one to two pixels wide.
SCRATCH_SIGMA_PX = 0.6


DEPTH_BLOCK_ROWS = 256


def fe2al5_depth_factor(mask: np.ndarray, gradient: float) -> np.ndarray:
    """Brightness factor that changes Fe2Al5 linearly from ``1 - gradient/2`` at the surface to ``1 + gradient/2`` at
    the bottom of its band, per column (other phases: 1).

    Parameters
    ----------
    mask : uint8 class ids, (rows, columns).
    gradient : relative grey change from the top to the bottom of the Fe2Al5 band (0.04 = 4 % brighter at the bottom).
    """
    factor = np.ones(mask.shape, dtype=np.float32)
    if gradient == 0:
        return factor
    fe2al5 = mask == classes.FE2AL5
    in_band = fe2al5 | (mask == classes.PORE) | (mask == classes.PRECIPITATE) | (mask == classes.CRACK)
    has_band = in_band.any(axis=0)
    top = np.argmax(in_band, axis=0)
    bottom = in_band.shape[0] - np.argmax(in_band[::-1], axis=0)
    span = np.maximum(bottom - top, 1).astype(np.float32)
    if not has_band.any():
        return factor
    # Every Fe2Al5 pixel lies in its column's band, so only the rows from the highest top to the lowest bottom count.
    # In blocks of rows: the same arithmetic per pixel (float64, as the float32 rows and int64 tops promote), in
    # cache-sized pieces (a 6144x4096 frame took over a second), in place.
    top64, span64, gradient64 = top.astype(np.float64), span.astype(np.float64), float(np.float32(gradient))
    first_row, last_row = int(top[has_band].min()), int(bottom[has_band].max())
    for first in range(first_row, last_row, DEPTH_BLOCK_ROWS):
        last = min(last_row, first + DEPTH_BLOCK_ROWS)
        ramp = np.arange(first, last, dtype=np.float64)[:, None] - top64[None, :]
        ramp /= span64[None, :]
        np.clip(ramp, 0.0, 1.0, out=ramp)
        ramp -= 0.5
        ramp *= gradient64
        ramp += 1.0  # 1 + gradient (t - 0.5)
        np.copyto(factor[first:last], ramp, where=fe2al5[first:last] & has_band[None, :], casting="same_kind")
    return factor


def scratch_factor(
    mask: np.ndarray, pixel_size_um: float, density_per_100um: float, contrast: float, rng: np.random.Generator
) -> np.ndarray:
    """Brightness factor of polishing scratches: ``1 - contrast`` at the centre of a groove on solid phases.

    Parameters
    ----------
    mask : uint8 class ids, (rows, columns).
    pixel_size_um : µm per pixel.
    density_per_100um : scratches per 100 µm of frame width.
    contrast : relative darkening at a groove's centre (0.05 = 5 % darker).
    rng : random generator (directions and positions).
    """
    height, width = mask.shape
    count = rng.poisson(density_per_100um * width * pixel_size_um / 100.0) if density_per_100um > 0 else 0
    if count == 0 or contrast == 0:
        return np.ones(mask.shape, dtype=np.float32)
    direction_deg = rng.uniform(0.0, 180.0)
    grooves = np.zeros(mask.shape, dtype=np.float32)
    reach = float(np.hypot(height, width))
    for _ in range(count):
        angle = np.deg2rad(direction_deg + rng.normal(0.0, SCRATCH_ANGLE_SPREAD_DEG))
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        dx, dy = np.cos(angle) * reach, np.sin(angle) * reach
        depth = rng.uniform(0.3, 1.0)  # grooves differ in depth
        p0 = (int(round(cx - dx)), int(round(cy - dy)))
        p1 = (int(round(cx + dx)), int(round(cy + dy)))
        cv2.line(grooves, p0, p1, color=(float(depth),), thickness=1, lineType=cv2.LINE_AA)
    grooves = np.asarray(cv2.GaussianBlur(grooves, (0, 0), SCRATCH_SIGMA_PX), dtype=np.float32)
    grooves /= max(float(grooves.max()), 1e-6)
    open_void = (mask == classes.PORE) | (mask == classes.CRACK)
    solid = (mask != classes.BACKGROUND) & ~open_void
    weight = np.where(solid, np.float32(1.0), np.float32(0.25))  # resin scratches too, but shows it less
    weight[open_void] = 0.0
    return (1.0 - np.float32(contrast) * grooves * weight).astype(np.float32)


def shading_field(shape: tuple[int, int], amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth multiplicative brightness ramp across the frame, within ``1 +- amplitude``.

    A random tilted plane plus a weak random quadratic bowl, scaled so its largest deviation from 1 is ``amplitude``.
    """
    if amplitude == 0:
        return np.ones(shape, dtype=np.float32)
    height, width = shape
    y = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    a, b = rng.normal(0.0, 1.0, 2)
    c, d = rng.normal(0.0, 0.35, 2)
    field = a * x + b * y + c * x * x + d * y * y
    field = field - field.mean()
    field = field / max(float(np.abs(field).max()), 1e-6)
    return (1.0 + np.float32(amplitude) * field).astype(np.float32)
