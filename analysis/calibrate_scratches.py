"""Polishing scratches: straight thin dark lines across the solid phases, counted per 100 µm of frame width.

The render node draws each scratch as a straight groove through the whole frame (about one direction, ±12°), a few
percent darker on solid phases. Here: a line filter (the image minus a wider blur of it, relative to the local grey)
over the flat solid regions, then for every direction and offset the mean of that response along the line (a Hough
transform by sums, so the masked pixels simply do not count). A scratch is a line whose mean is far below what the
noise gives (a robust z-score over all lines), found greedily: the strongest first, then its neighbourhood in
(angle, offset) is suppressed. Grain boundaries are steps, whose line response is positive on one side and negative
on the other, and cancel along a line; each scan line's median is removed first and no line is looked for within
1° of the scan direction (line-correlated noise makes whole scan lines darker).

The count is of the scratches strong enough to see through the noise: a lower bound of the density when grooves are
faint (the renders draw groove depths of 30-100 % of ``scratch_contrast``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy.special import ndtr

from analysis.calibrate_model import FWHM_PER_SIGMA, EstimateError

ANGLE_STEP_DEG = 0.5
OFFSET_BIN_PX = 1.5
# A line must cross at least this many flat pixels (and this share of the frame's shorter side) to be judged.
MIN_LINE_PIXELS = 120
MIN_LINE_SHARE = 0.3
DETECTION_Z = 5.5
MAX_SCRATCHES = 200
# Candidates come strongest first: after this many in a row that are no groove, the rest are steps and noise.
MAX_REJECTED_IN_A_ROW = 8
SCAN_DIRECTION_EXCLUDED_DEG = 1.0
SUPPRESS_DEG = 6.0
SUPPRESS_PX = 4.0
# The render node's groove before the probe: a one-pixel line blurred by sigma 0.6 px (about 0.7 px with its
# anti-aliasing), scaled to a peak of 1; its depth is drawn from 30 % to 100 % of the contrast (mean 65 %).
GROOVE_SIGMA_PX = 0.7
MEAN_GROOVE_DEPTH = 0.65
MIN_FLAT_PIXELS = 2000
CLIP_SIGMAS = 2.5
# A detected line must be a groove: both sides above its bottom by this many standard errors (the scan bandwidth and
# the probe correlate neighbouring pixels: about this many pixels per independent one).
DIP_SIGMAS = 2.5
NOISE_CORRELATION = 4.0
CENTRE_HALF_WIDTH_PX = 1.0


@dataclass(frozen=True)
class Scratch:
    """One detected line: direction (degrees, 0 = along the rows), offset, darkening and the pixels it crossed."""

    angle_deg: float
    offset_px: float
    darkening: float
    pixels: int


@dataclass(frozen=True)
class ScratchFit:
    """Scratches of one image.

    Attributes
    ----------
    scratches : the detected lines.
    density_per_100um : detected scratches per 100 µm of frame width.
    contrast : the groove contrast that gives the median detected darkening through the probe blur (None when no
        scratch was found).
    """

    scratches: tuple[Scratch, ...]
    density_per_100um: float
    contrast: float | None


def line_response(relative: np.ndarray, region: np.ndarray, blur_sigma_px: float) -> np.ndarray:
    """Darkening of thin lines in a relative residual image (image / predicted image - 1): a wide blur of it minus a
    narrow one (the probe's width), both over ``region`` only (normalised convolutions: what lies outside, an edge
    the prediction misplaces by a fraction of a pixel, does not leak in), 0 outside ``region``."""
    narrow_sigma = max(0.7, blur_sigma_px)
    inside = region.astype(np.float64)
    values = np.where(region, relative, 0.0)

    def blur(sigma: float) -> np.ndarray:
        weight = ndi.gaussian_filter(inside, sigma)
        return np.asarray(ndi.gaussian_filter(values, sigma) / np.maximum(weight, 1e-6))

    return np.asarray(np.where(region, blur(3.0 * narrow_sigma + 1.0) - blur(narrow_sigma), 0.0))


def _hough(values: np.ndarray, rows: np.ndarray, cols: np.ndarray, angles: np.ndarray, n_offsets: int,
           reach: float) -> tuple[np.ndarray, np.ndarray]:
    """Sums and counts of ``values`` per (angle, offset bin) for lines ``cols cos(a) + rows sin(a) = offset`` (the
    normal form: the line's direction is ``a + 90°``)."""
    sums = np.zeros((angles.size, n_offsets))
    counts = np.zeros((angles.size, n_offsets))
    for i, a in enumerate(np.deg2rad(angles)):
        rho = cols * np.cos(a) + rows * np.sin(a)
        k = np.clip(((rho + reach) / OFFSET_BIN_PX).astype(np.int64), 0, n_offsets - 1)
        sums[i] = np.bincount(k, values, n_offsets)
        counts[i] = np.bincount(k, minlength=n_offsets)
    return sums, counts


def find_scratches(image: np.ndarray, solid_flat: np.ndarray, pixel_size_um: float, frame_width_px: int,
                   core_sigma_px: float = 1.0, predicted: np.ndarray | None = None) -> ScratchFit:
    """Detect scratches over the flat solid regions of an image (see the module docstring).

    Parameters
    ----------
    image : float image, display units; not modified.
    predicted : the image the fitted model predicts from the segmentation
        (:func:`analysis.calibrate_levels.predicted_image`): dividing by it removes the layers' blurred edges and
        the halos of pores, which would otherwise pass for lines along the layers. None: a wide blur of the image.
    solid_flat : bool mask of solid phases away from edges (Fe2Al5, FeAl, substrate flat regions).
    pixel_size_um : µm per pixel.
    frame_width_px : width of the frame (the density is per 100 µm of it).
    core_sigma_px : the probe core's standard deviation (sets the line filter and the contrast correction).

    Raises
    ------
    EstimateError
        When the solid flat regions are too small to look for lines in.
    """
    if int(solid_flat.sum()) < MIN_FLAT_PIXELS:
        raise EstimateError(f"scratches: only {int(solid_flat.sum())} flat solid pixels (at least {MIN_FLAT_PIXELS} "
                            "are needed)")
    full = np.asarray(image, np.float64)
    wide_sigma = 3.0 * max(0.7, core_sigma_px) + 1.0
    reference = predicted if predicted is not None else ndi.gaussian_filter(full, wide_sigma)
    relative = full / np.maximum(reference, 1e-3) - 1.0
    relative = _without_line_offsets(relative, solid_flat)
    # Without a prediction the filter sees the phases' edges as lines: keep its reach away from them.
    erode = 3 if predicted is not None else int(np.ceil(2.5 * wide_sigma))
    region = ndi.distance_transform_edt(solid_flat) > erode
    response = line_response(relative, region, core_sigma_px)
    # Half resolution: the filtered lines stay a pixel or more wide; a quarter of the work.
    small_region = region[::2, ::2]
    small = response[::2, ::2]
    rows, cols = np.nonzero(small_region)
    values = small[rows, cols]
    values = values - float(np.median(values))
    # Winsorised: a scratch darkens each pixel a little, a missed pore or speck a lot; capped, a dark blob cannot pass
    # for a line through it.
    cap = CLIP_SIGMAS * 1.4826 * float(np.median(np.abs(values)))
    values = np.clip(values, -cap, cap)
    reach = float(np.hypot(small.shape[0], small.shape[1])) + 2.0
    n_offsets = int(np.ceil(2.0 * reach / OFFSET_BIN_PX)) + 1
    angles = np.arange(0.0, 180.0, ANGLE_STEP_DEG)
    sums, counts = _hough(values, rows.astype(np.float64), cols.astype(np.float64), angles, n_offsets, reach)
    min_pixels = max(MIN_LINE_PIXELS / 2.0, MIN_LINE_SHARE * min(small.shape))
    # Along the scan direction a dark line may be one noisy scan line: no scratch is looked for there.
    along_scan = np.abs(((angles - 90.0 + 90.0) % 180.0) - 90.0) <= SCAN_DIRECTION_EXCLUDED_DEG
    judged = (counts >= min_pixels) & ~along_scan[:, None]
    if not judged.any():
        raise EstimateError("scratches: no line crosses enough flat solid pixels to be judged")
    mean = np.where(judged, sums / np.maximum(counts, 1.0), 0.0)
    z = mean * np.sqrt(np.maximum(counts, 1.0))
    spread = 1.4826 * float(np.median(np.abs(z[judged] - np.median(z[judged]))))
    if spread <= 0:
        return ScratchFit((), 0.0, None)
    # Dark lines have a positive response; the strongest are looked for as the most negative of -z.
    z = np.where(judged, -(z - float(np.median(z[judged]))) / spread, 0.0)
    found: list[Scratch] = []
    alive = judged.copy()
    cy, cx = rows.mean(), cols.mean()
    flat_rows, flat_cols = np.nonzero(solid_flat)
    flat_values = relative[flat_rows, flat_cols]
    rejected_in_a_row = 0
    while len(found) < MAX_SCRATCHES and rejected_in_a_row < MAX_REJECTED_IN_A_ROW:
        candidates = np.where(alive, z, np.inf)
        i, j = np.unravel_index(int(np.argmin(candidates)), z.shape)
        if not np.isfinite(candidates[i, j]) or -candidates[i, j] < DETECTION_Z:
            break
        a = float(np.deg2rad(angles[i]))
        rho = float((j + 0.5) * OFFSET_BIN_PX - reach)
        dip = _two_sided_dip(*_refined(flat_rows, flat_cols, flat_values, a, 2.0 * rho))
        if dip is not None:  # a step (a grain boundary) is darker on one side only: not a groove
            found.append(Scratch(float(angles[i] + 90.0) % 180.0, 2.0 * rho, dip, int(counts[i, j]) * 2))
            rejected_in_a_row = 0
        else:
            rejected_in_a_row += 1
        # Suppress the butterfly of this line in (angle, offset): a nearby angle sees it at the offset of the line's
        # point nearest the flat regions' centre.
        along = rho - cx * np.cos(a) - cy * np.sin(a)
        px, py = cx + along * np.cos(a), cy + along * np.sin(a)
        near = np.abs(((angles - angles[i] + 90.0) % 180.0) - 90.0) <= SUPPRESS_DEG
        for k in np.nonzero(near)[0]:
            b = np.deg2rad(angles[k])
            centre = (px * np.cos(b) + py * np.sin(b) + reach) / OFFSET_BIN_PX
            lo, hi = int(np.floor(centre - SUPPRESS_PX)), int(np.ceil(centre + SUPPRESS_PX))
            alive[k, max(lo, 0):max(hi + 1, 0)] = False
    density = 100.0 * len(found) / (frame_width_px * pixel_size_um)
    contrast = None
    darkenings = [s.darkening for s in found if s.darkening > 0]
    if darkenings:
        contrast = float(np.median(darkenings)) / groove_seen(core_sigma_px) / MEAN_GROOVE_DEPTH
    return ScratchFit(tuple(found), density, contrast)


def _without_line_offsets(relative: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``relative`` less each scan line's median over ``region`` (lines with at least 16 of its pixels): line-correlated
    noise shifts a whole line, which would otherwise pass for a dark line along the scan."""
    rows, cols = np.nonzero(region)
    values = relative[rows, cols]
    out = relative.copy()
    order = np.argsort(rows, kind="stable")
    rows, values = rows[order], values[order]
    starts = np.searchsorted(rows, np.arange(relative.shape[0]))
    ends = np.searchsorted(rows, np.arange(relative.shape[0]), side="right")
    for r in np.nonzero(ends - starts >= 16)[0]:
        out[r] -= float(np.median(values[starts[r] : ends[r]]))
    return out


def _refined(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, normal_rad: float,
             offset_px: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """The line near ``(normal, offset)`` (found at half resolution, in bins of 3 px and 0.5 degrees) along which the
    full-resolution relative grey is lowest, and the pixels within 10 px of it."""
    near = np.abs(cols * np.cos(normal_rad) + rows * np.sin(normal_rad) - offset_px) <= 12.0
    # Refined on one checkerboard half of the pixels, judged on the other: the darkest of many nearby lines is dark
    # partly by chance, and that chance must not pass for a groove.
    search = near & ((rows + cols) % 2 == 0)
    r, c, v = rows[search], cols[search], values[search]
    best = (np.inf, normal_rad, offset_px)
    for da in np.deg2rad(np.arange(-0.5, 0.51, 0.25)):
        for do in np.arange(-3.0, 3.01, 0.5):
            d = c * np.cos(normal_rad + da) + r * np.sin(normal_rad + da) - (offset_px + do)
            centre = np.abs(d) <= 0.75
            if centre.sum() >= 20:
                level = float(v[centre].mean())
                if level < best[0]:
                    best = (level, normal_rad + da, offset_px + do)
    judge = near & ((rows + cols) % 2 == 1)
    return rows[judge], cols[judge], values[judge], best[1], best[2]


def _two_sided_dip(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, normal_rad: float,
                   offset_px: float) -> float | None:
    """Depth of the dip (relative grey ``values`` at pixels ``rows, cols``) along the line
    ``c cos(a) + r sin(a) = offset``: the lower of the two sides' mean levels (3.5-8 px away) minus the mean within
    1 px of the line; None unless both sides stand above it by DIP_SIGMAS of their standard errors."""
    dist = cols * np.cos(normal_rad) + rows * np.sin(normal_rad) - offset_px
    left, right, centre = values[(dist <= -3.5) & (dist >= -8.0)], values[(dist >= 3.5) & (dist <= 8.0)], \
        values[np.abs(dist) <= CENTRE_HALF_WIDTH_PX]
    if min(left.size, right.size, centre.size) < 20:
        return None
    bottom = float(np.mean(centre))
    spread = float(np.std(np.concatenate([left, right])))
    for side in (left, right):
        error = spread * np.sqrt(NOISE_CORRELATION / side.size + NOISE_CORRELATION / centre.size)
        if float(np.mean(side)) - bottom < DIP_SIGMAS * error:
            return None
    return min(float(np.mean(left)), float(np.mean(right))) - bottom


def groove_seen(core_sigma_px: float) -> float:
    """Share of a groove's depth the mean within CENTRE_HALF_WIDTH_PX of its line keeps through the probe core: the
    groove (a Gaussian of GROOVE_SIGMA_PX, peak 1) blurred, then averaged over the window."""
    total = float(np.hypot(GROOVE_SIGMA_PX, core_sigma_px))
    half = CENTRE_HALF_WIDTH_PX / total
    return GROOVE_SIGMA_PX * float(np.sqrt(2.0 * np.pi)) * (float(ndtr(half)) - 0.5) / CENTRE_HALF_WIDTH_PX


def core_sigma_from_fwhm(fwhm_px: float) -> float:
    """Standard deviation (px) of a Gaussian of full width at half maximum ``fwhm_px``."""
    return fwhm_px / FWHM_PER_SIGMA
