"""The probe blur of a micrograph, from the profiles across its two long edges (the slanted-edge method).

The layers run along the image (surface at the top), so each column crosses the coating surface (resin above,
Fe2Al5 below) and the Fe2Al5/substrate interface once. Per column, the segmentation gives the row of the edge; the
edge's rows are smoothed along the image (the edge is smooth over a few pixels, the segmentation's staircase is not),
which places it to a fraction of a pixel. Every pixel near the edge then has a signed distance to it, perpendicular
to the edge's local slope, and the greys binned by that distance (a quarter pixel per bin, over hundreds of columns)
trace the edge spread function finely.

That profile is fitted with the render node's resolution model (:mod:`analysis.calibrate_model`): a step blurred by
``(1 - h)`` of a Gaussian core plus ``h`` of a wide Gaussian halo, and at the surface (a void edge) the bright rim of
the topographic edge effect, blurred alike. The core's width has two known widenings removed: the staircase of a
rendered or sampled edge (the variance of the pixel-centre edge positions around the smooth edge) and the scan
bandwidth's spread along the line (for an edge at an angle).

Pixels of any third class (pores, precipitates, cracks) and their surroundings are left out; columns whose edge
zone is not clean (a pore on the edge, a crack through it) are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy.optimize import least_squares
from scipy.special import ndtr

from analysis.calibrate_model import BANDWIDTH_VARIANCE_PX2, FWHM_PER_SIGMA, RIM_SIGMA_PX, EstimateError
from semcoat.classes import BACKGROUND, FE2AL5, FEAL, SUBSTRATE

SURFACE, INTERFACE = "surface", "interface"
# Half width of the profile: far enough to see a halo of up to ~6 um FWHM, at least this many pixels.
PROFILE_HALF_WIDTH_UM = 8.0
MIN_PROFILE_HALF_WIDTH_PX = 16
BIN_PX = 0.25
# Smoothing of the edge's row along the image (sigma, columns) and the largest departure of a column from it.
EDGE_SMOOTHING_PX = 3.0
MAX_EDGE_DEPARTURE_PX = 1.5
MAX_EDGE_SLOPE = 1.0
# Rows on each side of the edge that must hold only the edge's two classes for the column to count, and the distance
# kept from pixels of any other class.
CLEAN_ZONE_PX = 3
GUARD_PX = 2.0
MIN_EDGE_COLUMNS = 32
MIN_BIN_COUNT = 4
# The halo is at least this many times as wide as the core (the presets: 2-6 um against 0.3-1 um; a halo about as
# wide as the core trades its share against the core's width) and holds at most the spec's largest share.
MIN_HALO_RATIO = 3.0
MAX_HALO_FRACTION = 0.5
# The halo is reported only when it lies well inside the profile (its width is otherwise a guess).
HALO_MAX_SHARE_OF_WINDOW = 0.5


@dataclass(frozen=True)
class EdgeProfile:
    """Binned grey across one edge.

    Attributes
    ----------
    kind : ``surface`` (resin above, Fe2Al5 below: a void edge with a rim) or ``interface`` (Fe2Al5 above, substrate
        below).
    distance_px : bin centres, signed distance to the edge (positive: the lower phase).
    mean : mean grey per bin; count : pixels per bin.
    columns : columns that contributed.
    offsets_px : per column used (in order), the sampled (pixel-centre) edge's offset from the smooth edge.
    mean_sin2 : mean squared sine of the edge's angle to the rows (for the scan bandwidth's widening).
    """

    kind: str
    distance_px: np.ndarray
    mean: np.ndarray
    count: np.ndarray
    columns: int
    offsets_px: np.ndarray
    mean_sin2: float

    def offset_variance_px2(self, sigma_px: float) -> float:
        """Variance of the sampled edge around the smooth one as a blur of ``sigma_px`` sees it: the blur averages
        the staircase over its width along the edge."""
        seen = ndi.gaussian_filter1d(self.offsets_px, max(sigma_px, 1e-3), mode="nearest")
        return float(np.var(seen))


@dataclass(frozen=True)
class EdgeFit:
    """The resolution model fitted to one edge profile; widths in pixels (FWHM).

    ``halo_fraction``/``halo_fwhm_px`` are None when the halo could not be resolved inside the profile.
    ``rim`` is the edge brightening (grey, before blur) at a void edge, 0 at a solid/solid one.
    """

    kind: str
    core_fwhm_px: float
    halo_fraction: float | None
    halo_fwhm_px: float | None
    rim: float
    low: float
    high: float
    columns: int
    rms: float


def _edge_rows(mask: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column: the first row of the lower phase, its other edge (bottom of the band for the surface, top for the
    interface), and whether the column has this edge."""
    rows = mask.shape[0]
    not_background = mask != BACKGROUND
    surface = np.where(not_background.any(axis=0), np.argmax(not_background, axis=0), rows)
    lower = (mask == FEAL) | (mask == SUBSTRATE)
    interface = np.where(lower.any(axis=0), np.argmax(lower, axis=0), rows)
    cols = np.arange(mask.shape[1])
    if kind == SURFACE:
        ok = (surface > 0) & (surface < interface)
        edge, far = surface, interface
        below_class, above_class = FE2AL5, BACKGROUND
    else:
        ok = (interface < rows) & (interface > surface)
        edge, far = interface, surface
        below_class, above_class = SUBSTRATE, FE2AL5
    safe = np.clip(edge, 1, rows - 1)
    ok &= (mask[safe, cols] == below_class) & (mask[safe - 1, cols] == above_class)
    # A clean zone on both sides: no third class right at the edge.
    for k in range(1, CLEAN_ZONE_PX + 1):
        up, down = np.clip(edge - k, 0, rows - 1), np.clip(edge + k - 1, 0, rows - 1)
        ok &= (mask[up, cols] == above_class) | (edge - k < 0)
        ok &= (mask[down, cols] == below_class) | (edge + k - 1 >= rows)
    return edge.astype(np.float64), far.astype(np.float64), ok


def _smooth(values: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along the columns over the valid ones only (normalised convolution)."""
    w = ndi.gaussian_filter1d(valid.astype(np.float64), sigma, mode="nearest")
    s = ndi.gaussian_filter1d(np.where(valid, values, 0.0), sigma, mode="nearest")
    return np.divide(s, w, out=np.full_like(s, np.nan), where=w > 1e-6)


def edge_profile(image: np.ndarray, mask: np.ndarray, kind: str, pixel_size_um: float) -> EdgeProfile:
    """The binned grey across the coating surface (``kind='surface'``) or the Fe2Al5/substrate interface.

    Parameters
    ----------
    image : float image, display units, (rows, columns); not modified.
    mask : class ids of ``image`` (the classical segmentation).
    kind : :data:`SURFACE` or :data:`INTERFACE`.
    pixel_size_um : µm per pixel (sets the profile's reach).

    Raises
    ------
    EstimateError
        When fewer than :data:`MIN_EDGE_COLUMNS` columns cross the edge cleanly.
    """
    rows, n_cols = mask.shape
    edge, far, ok = _edge_rows(mask, kind)
    boundary = edge - 0.5  # between the last row of the upper phase and the first of the lower one
    smooth = _smooth(boundary, ok, EDGE_SMOOTHING_PX)
    ok &= np.isfinite(smooth) & (np.abs(boundary - np.nan_to_num(smooth)) <= MAX_EDGE_DEPARTURE_PX)
    smooth = _smooth(boundary, ok, EDGE_SMOOTHING_PX)
    slope = np.gradient(np.nan_to_num(smooth))
    ok &= np.isfinite(smooth) & (np.abs(slope) <= MAX_EDGE_SLOPE)
    if int(ok.sum()) < MIN_EDGE_COLUMNS:
        raise EstimateError(f"blur at the {kind}: only {int(ok.sum())} columns cross it cleanly (at least "
                            f"{MIN_EDGE_COLUMNS} are needed)")
    half = max(float(MIN_PROFILE_HALF_WIDTH_PX), PROFILE_HALF_WIDTH_UM / pixel_size_um)
    cos = 1.0 / np.sqrt(1.0 + slope * slope)
    upper_class, lower_class = (BACKGROUND, FE2AL5) if kind == SURFACE else (FE2AL5, SUBSTRATE)
    other = (mask != upper_class) & (mask != lower_class)
    clear = ndi.distance_transform_edt(~other) > GUARD_PX if other.any() else np.ones(mask.shape, bool)

    cols = np.nonzero(ok)[0]
    # The other edge of the band stays at least half the reach away, so its blur does not enter the profile.
    gap = np.abs(far[cols] - smooth[cols])
    reach = np.minimum(half, np.maximum(gap - 0.5 * half, 0.0) / cos[cols])
    r = np.arange(rows, dtype=np.float64)[:, None]
    dist = (r - smooth[cols][None, :]) * cos[cols][None, :]
    sub_mask = mask[:, cols]
    upper_side = dist < 0
    if kind == SURFACE:
        inside = np.where(upper_side, dist >= -half, dist <= reach[None, :])
    else:
        inside = np.where(upper_side, dist >= -reach[None, :], dist <= half)
    keep = inside & clear[:, cols] & np.where(upper_side, sub_mask == upper_class, sub_mask == lower_class)
    # A pixel on the wrong side of the smoothed edge (within the staircase) still belongs to the profile.
    keep |= inside & clear[:, cols] & (np.abs(dist) <= 1.0) & ((sub_mask == upper_class) | (sub_mask == lower_class))
    x = dist[keep]
    values = np.asarray(image, np.float64)[:, cols][keep]
    n_bins = int(np.ceil(half / BIN_PX))
    index = np.clip(np.floor(x / BIN_PX).astype(np.int64) + n_bins, 0, 2 * n_bins - 1)
    count = np.bincount(index, minlength=2 * n_bins)
    total = np.bincount(index, values, minlength=2 * n_bins)
    used = count >= MIN_BIN_COUNT
    centres = (np.arange(2 * n_bins) - n_bins + 0.5) * BIN_PX
    # The sampled edge lies at the pixel boundary below the smooth edge: its offset's spread widens the profile.
    offset = np.ceil(smooth[cols]) - 0.5 - smooth[cols]
    sin2 = float(np.mean(1.0 - cos[cols] ** 2))
    return EdgeProfile(kind, centres[used], total[used] / count[used], count[used], int(cols.size), offset, sin2)


def _model(p: np.ndarray, x: np.ndarray, rim: bool) -> np.ndarray:
    """The edge spread of the resolution model; ``p`` = low, high, x0, log core sigma, halo share, log halo/core width
    ratio, and (with ``rim``) the rim's amplitude."""
    low, high, x0, log_core, halo, log_ratio = p[:6]
    amplitude = p[6] if rim else 0.0
    core = np.exp(log_core)
    wide = core * np.exp(log_ratio)
    u = x - x0
    step = (1.0 - halo) * ndtr(u / core) + halo * ndtr(u / wide)
    out = low + (high - low) * step
    if rim:
        s1, s2 = np.hypot(RIM_SIGMA_PX, core), np.hypot(RIM_SIGMA_PX, wide)
        v = u - 0.5  # the rim is the first row of solid below the edge
        out = out + amplitude * ((1.0 - halo) * RIM_SIGMA_PX / s1 * np.exp(-0.5 * (v / s1) ** 2)
                                 + halo * RIM_SIGMA_PX / s2 * np.exp(-0.5 * (v / s2) ** 2))
    return np.asarray(out)


def _rise_sigma(x: np.ndarray, y: np.ndarray, low: float, high: float) -> float:
    """A first guess of the blur: the 10-90 % rise distance of the profile / 2.563."""
    frac = (y - low) / (high - low) if high != low else np.zeros_like(y)
    below = x[frac < 0.1]
    above = x[frac > 0.9]
    if below.size == 0 or above.size == 0:
        return 1.0
    return float(np.clip((above.min() - below.max()) / 2.563, 0.3, 20.0))


def fit_edge(profile: EdgeProfile) -> EdgeFit:
    """Fit the resolution model (core, halo, and the rim at a void edge) to an edge profile.

    Raises
    ------
    EstimateError
        When the profile shows no step (the two sides have the same grey) or the fit does not converge.
    """
    x, y, n = profile.distance_px, profile.mean, profile.count.astype(np.float64)
    half = float(np.max(np.abs(x)))
    low = float(np.median(y[x < -0.5 * half])) if np.any(x < -0.5 * half) else float(y[0])
    high = float(np.median(y[x > 0.5 * half])) if np.any(x > 0.5 * half) else float(y[-1])
    spread = max((float(np.std(side)) for side in (y[x < -0.5 * half], y[x > 0.5 * half]) if side.size > 1),
                 default=0.0)
    if abs(high - low) < max(0.02, 3.0 * spread):
        raise EstimateError(f"blur at the {profile.kind}: no step across it (grey {low:.3f} above, {high:.3f} below)")
    rim = profile.kind == SURFACE
    weights = np.sqrt(n)
    sigma0 = _rise_sigma(x, y, low, high)
    lower = [-np.inf, -np.inf, -3.0, np.log(0.1), 0.0, np.log(MIN_HALO_RATIO)] + ([-1.0] if rim else [])
    upper = [np.inf, np.inf, 3.0, np.log(half / 2.0), MAX_HALO_FRACTION, np.log(200.0)] + ([1.0] if rim else [])
    best = None
    for halo0, ratio0 in ((0.0, 4.0), (0.15, 4.0), (0.15, 10.0), (0.3, 6.0)):
        p0 = np.array([low, high, 0.0, np.log(sigma0 if halo0 == 0 else 0.8 * sigma0), halo0, np.log(ratio0)]
                      + ([0.0] if rim else []))
        p0 = np.clip(p0, np.array(lower) + 1e-6, np.array(upper) - 1e-6)
        try:
            result = least_squares(lambda p: (_model(p, x, rim) - y) * weights, p0, bounds=(lower, upper),
                                   x_scale="jac", max_nfev=2000)
        except ValueError:
            continue
        if best is None or result.cost < best.cost:
            best = result
    if best is None or not np.all(np.isfinite(best.x)):
        raise EstimateError(f"blur at the {profile.kind}: the edge profile could not be fitted")
    low, high, _x0, log_core, halo, log_ratio = best.x[:6]
    amplitude = best.x[6] if rim else 0.0
    fitted = float(np.exp(log_core))
    core_var = fitted**2 - profile.offset_variance_px2(fitted) - BANDWIDTH_VARIANCE_PX2 * profile.mean_sin2
    core_sigma = float(np.sqrt(max(core_var, 0.01)))
    wide_sigma = float(np.exp(log_core + log_ratio))
    resolved = halo > 0.01 and 2.0 * wide_sigma <= HALO_MAX_SHARE_OF_WINDOW * 2.0 * half
    rms = float(np.sqrt(np.sum(n * (_model(best.x, x, rim) - y) ** 2) / np.sum(n)))
    return EdgeFit(
        profile.kind, FWHM_PER_SIGMA * core_sigma, float(halo) if resolved else (0.0 if halo <= 0.01 else None),
        FWHM_PER_SIGMA * wide_sigma if resolved else None, float(amplitude) if rim else 0.0, float(low), float(high),
        profile.columns, rms,
    )
