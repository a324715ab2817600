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


def fe2al5_depth_factor(mask: np.ndarray, gradient: float) -> np.ndarray:
    """Brightness factor that changes Fe2Al5 linearly from ``1 - gradient/2`` at the surface to ``1 + gradient/2`` at
    the bottom of its band, per column (other phases: 1).

    Parameters
    ----------
    mask : uint8 class ids, (rows, columns).
    gradient : relative grey change from the top to the bottom of the Fe2Al5 band (0.04 = 4 % brighter at the bottom).
    """
    factor = np.ones(mask.shape, dtype=np.float32)
    apply_fe2al5_depth(factor, mask, gradient)
    return factor


def apply_fe2al5_depth(specimen: np.ndarray, mask: np.ndarray, gradient: float) -> None:
    """Multiply ``specimen`` (float32 brightness factors, frame sized) in place by :func:`fe2al5_depth_factor`, on the
    rows of the Fe2Al5 band only (nothing changes when ``gradient`` is 0)."""
    if gradient == 0:
        return
    in_band = (mask == classes.FE2AL5) | (mask == classes.PORE) | (mask == classes.PRECIPITATE) | (
        mask == classes.CRACK)
    band_rows = np.flatnonzero(in_band.any(axis=1))
    if band_rows.size == 0:
        return
    # Every Fe2Al5 pixel lies in its column's band, so only the rows from the highest top to the lowest bottom count.
    first_row, last_row = int(band_rows[0]), int(band_rows[-1]) + 1
    band = in_band[first_row:last_row].view(np.uint8)
    # First and last band row of each column (cv2's column argmax: a third quicker than numpy's along axis 0).
    top = cv2.reduceArgMax(band, 0).ravel().astype(np.float32)
    bottom = np.float32(band.shape[0]) - cv2.reduceArgMax(cv2.flip(band, 0), 0).ravel().astype(np.float32)
    inv_span = np.float32(1.0) / np.maximum(bottom - top, np.float32(1.0))
    # Branch-free arithmetic over the band (boolean-masked writes cost ten times a multiplication):
    # 1 + gradient (t - 0.5) on Fe2Al5, 1 elsewhere.
    ramp = np.arange(last_row - first_row, dtype=np.float32)[:, None] - top[None, :]
    ramp *= inv_span[None, :]
    np.clip(ramp, np.float32(0.0), np.float32(1.0), out=ramp)
    ramp -= np.float32(0.5)
    ramp *= np.float32(gradient)
    ramp *= mask[first_row:last_row] == classes.FE2AL5
    ramp += np.float32(1.0)
    specimen[first_row:last_row] *= ramp


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
    factor = np.ones(mask.shape, dtype=np.float32)
    apply_scratches(factor, mask, pixel_size_um, density_per_100um, contrast, rng)
    return factor


# How much a groove shows per class: fully on solid phases, a quarter in the resin (it scratches too, but shows it
# less), not at all in open voids.
_SCRATCH_SHOWS = np.ones(256, np.float32)
_SCRATCH_SHOWS[classes.BACKGROUND] = 0.25
_SCRATCH_SHOWS[[classes.PORE, classes.CRACK]] = 0.0


def apply_scratches(
    specimen: np.ndarray, mask: np.ndarray, pixel_size_um: float, density_per_100um: float, contrast: float,
    rng: np.random.Generator,
) -> None:
    """Multiply ``specimen`` (float32 brightness factors, frame sized) in place by :func:`scratch_factor` (same
    parameters; nothing is drawn when the density is 0, nothing changes when no groove is drawn or the contrast is
    0)."""
    height, width = mask.shape
    count = rng.poisson(density_per_100um * width * pixel_size_um / 100.0) if density_per_100um > 0 else 0
    if count == 0 or contrast == 0:
        return
    direction_deg = rng.uniform(0.0, 180.0)
    # Drawn and blurred in 8 bits (a groove's depth to 1/255, its faint tails cut below half a level: the factor to
    # 4e-4), a quarter of the memory traffic of float32.
    grooves = np.zeros(mask.shape, dtype=np.uint8)
    reach = float(np.hypot(height, width))
    for _ in range(count):
        angle = np.deg2rad(direction_deg + rng.normal(0.0, SCRATCH_ANGLE_SPREAD_DEG))
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        dx, dy = np.cos(angle) * reach, np.sin(angle) * reach
        depth = rng.uniform(0.3, 1.0)  # grooves differ in depth
        p0 = (int(round(cx - dx)), int(round(cy - dy)))
        p1 = (int(round(cx + dx)), int(round(cy + dy)))
        # 8-connected: what cv2 drew on the float32 canvas this replaced (it has anti-aliasing for 8 bits only).
        cv2.line(grooves, p0, p1, color=(255.0 * float(depth),), thickness=1, lineType=cv2.LINE_8)
    # 5 taps reach 3.3 sigma (GaussianBlur's own choice, 7, adds taps that weigh under 1e-5), in place.
    cv2.GaussianBlur(grooves, (5, 5), SCRATCH_SIGMA_PX, dst=grooves)
    peak = int(grooves.max())
    if peak == 0:
        return
    # 1 - contrast * groove / peak * shows[class]
    factor = np.asarray(cv2.LUT(mask, _SCRATCH_SHOWS), np.float32)
    cv2.multiply(grooves, factor, dst=factor, scale=-contrast / peak, dtype=cv2.CV_32F)
    factor += np.float32(1.0)
    specimen *= factor


def shading_field(shape: tuple[int, int], amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth multiplicative brightness ramp across the frame, within ``1 +- amplitude``.

    A random tilted plane plus a weak random quadratic bowl, scaled so its largest deviation from 1 is ``amplitude``.
    """
    if amplitude == 0:
        return np.ones(shape, dtype=np.float32)
    height, width = shape
    y = np.linspace(-1.0, 1.0, height)
    x = np.linspace(-1.0, 1.0, width)
    a, b = rng.normal(0.0, 1.0, 2)
    c, d = rng.normal(0.0, 0.35, 2)
    # The field is a column term plus a row term, so its mean and its extremes are theirs summed: worked out on the
    # two profiles, and the frame is one broadcast addition.
    along_x = a * x + c * x * x
    along_y = b * y + d * y * y
    along_x -= along_x.mean()
    along_y -= along_y.mean()
    peak = max(abs(along_x.max() + along_y.max()), abs(along_x.min() + along_y.min()), 1e-6)
    scale = amplitude / peak
    return np.add((1.0 + scale * along_y).astype(np.float32)[:, None], (scale * along_x).astype(np.float32)[None, :])
