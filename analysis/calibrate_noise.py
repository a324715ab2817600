"""The dose and the detector noise of a micrograph, from the noise in its flat regions.

Per flat region (a phase eroded away from its edges): the differences between vertically neighbouring pixels. Noise
is independent from one scan line to the next, while the specimen (blurred by the probe) and the slow shading hardly
change over one pixel, so half the variance of the differences is the pixel noise. Each line's mean difference is
removed first: an offset per line (line-correlated noise, a vertical grey gradient) does not count as pixel noise.
Along a line the noise is correlated (the scan bandwidth); that correlation is measured, not assumed, when the
removed line means are accounted for.

Across phases, shot noise grows with the grey and detector noise does not (:mod:`analysis.calibrate_model`)::

    variance = SHOT_VARIANCE_FACTOR * mean / dose + DETECTOR_VARIANCE_FACTOR * detector_noise_std**2

so a weighted straight-line fit of variance on mean gives both: the slope the dose, the intercept the detector noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from analysis.calibrate_model import DETECTOR_VARIANCE_FACTOR, SHOT_VARIANCE_FACTOR, EstimateError

# A line of a region counts when it holds at least this many vertical pairs (its mean is removed from them).
MIN_LINE_PAIRS = 16
MIN_REGION_PAIRS = 500
# Differences farther than this many robust standard deviations from their line's mean are not noise (a missed
# pore, a scratch crossing): they are left out.
OUTLIER_SIGMAS = 6.0
# Lags along the line over which the noise's correlation is measured (the model's bandwidth reaches 2 px).
CORRELATION_LAGS = 3
# The slope of variance on grey must exceed this many of its standard errors to be read as shot noise.
MIN_SLOPE_ERRORS = 3.0
# Median of a chi-square variable of one degree of freedom over its mean.
CHI2_1_MEDIAN = 0.4549
# A region with more of its pixels at black or white than this is left out of the fit (when others remain).
MAX_CLIPPED_SHARE = 0.002
# Two phases must differ in grey by at least this share of the brighter one to tell shot from detector noise.
MIN_MEAN_SPREAD = 0.15


@dataclass(frozen=True)
class RegionNoise:
    """The noise of one flat region.

    Attributes
    ----------
    label : what the region is (a phase name).
    mean : mean grey of the region, display units (0-1).
    variance : variance of one pixel's noise, display units squared, quantisation removed.
    pairs : vertical pixel pairs it was measured on.
    clipped : share of its pixels at black or white (their noise is cut off: such a region understates it).
    line_variance : variance of an offset common to a whole scan line (line-correlated noise), display units squared.
    """

    label: str
    mean: float
    variance: float
    pairs: int
    clipped: float = 0.0
    line_variance: float = 0.0


@dataclass(frozen=True)
class NoiseFit:
    """Dose and detector noise that reproduce the measured noise through the render node's model.

    Attributes
    ----------
    dose_electrons_per_px : electrons per pixel (Poisson shot noise).
    detector_noise_std : standard deviation of the additive detector noise, full scale 1.
    separated : False when the detector noise could not be told from the shot noise (one phase only, or phases of
        about the same grey) and was taken as 0.
    regions : the per-region measurements the fit used.
    line_noise_std : standard deviation of the scan lines' offsets (the part of line-correlated noise that stays
        constant along a region's width; the render node's ``imaging.line_noise_std`` at long lengths).
    """

    dose_electrons_per_px: float
    detector_noise_std: float
    separated: bool
    regions: tuple[RegionNoise, ...]
    line_noise_std: float = 0.0


def quantisation_step(image: np.ndarray) -> float:
    """Grey step between neighbouring values of an integer image on the 0-1 scale (0 for floats).

    A 16-bit image widened from 8 bits (every value a multiple of 257) has the 8-bit step.
    """
    if image.dtype.kind not in "ui":
        return 0.0
    top = float(np.iinfo(image.dtype).max)
    sample = image.ravel()[:: max(1, image.size // 200_000)]
    values = np.unique(sample.astype(np.int64))
    if values.size < 2:
        return 1.0 / top
    return float(np.gcd.reduce(np.diff(values))) / top


def region_noise(image: np.ndarray, region: np.ndarray, label: str, step: float = 0.0) -> RegionNoise:
    """Noise variance and mean grey of one flat region of a display-scale image.

    Parameters
    ----------
    image : float image, display units (0-1), (rows, columns); not modified.
    region : bool mask of the region's pixels (already eroded away from edges).
    label : the region's name, for messages.
    step : quantisation step of the image on the same scale (its variance ``step**2 / 12`` is removed).

    Raises
    ------
    EstimateError
        When the region holds fewer than :data:`MIN_REGION_PAIRS` usable vertical pairs.
    """
    x = np.asarray(image, np.float64)
    both = region[:-1] & region[1:]
    rows, cols = np.nonzero(both)
    n_rows = both.shape[0]
    per_line = np.bincount(rows, minlength=n_rows)
    usable_line = per_line >= MIN_LINE_PAIRS
    keep = usable_line[rows]
    rows, cols = rows[keep], cols[keep]
    if rows.size < MIN_REGION_PAIRS:
        raise EstimateError(
            f"noise of {label}: only {rows.size} vertical pixel pairs away from edges (at least {MIN_REGION_PAIRS} "
            "are needed)"
        )
    d = x[rows + 1, cols] - x[rows, cols]
    mean = float(0.5 * (x[rows + 1, cols] + x[rows, cols]).mean())
    e = d - (np.bincount(rows, d, n_rows) / np.maximum(np.bincount(rows, minlength=n_rows), 1))[rows]
    robust = 1.4826 * float(np.median(np.abs(e)))
    if robust > 0:
        inlier = np.abs(e) <= OUTLIER_SIGMAS * robust
        rows, cols, d = rows[inlier], cols[inlier], d[inlier]
        counts = np.bincount(rows, minlength=n_rows)
        e = d - (np.bincount(rows, d, n_rows) / np.maximum(counts, 1))[rows]
    counts = np.bincount(rows, minlength=n_rows).astype(np.float64)
    variance_d = float(np.mean(e * e))
    # Removing each line's mean removes (1/n) * sum_ij rho_ij of the variance of its n differences; rho at lag k is
    # measured on the residuals of the same line.
    grid = np.zeros(both.shape, np.float64)
    present = np.zeros(both.shape, bool)
    grid[rows, cols] = e
    present[rows, cols] = True
    loss = np.ones(n_rows)  # sum_ij rho_ij per line, divided by n below; the diagonal gives 1 per pair
    for lag in range(1, CORRELATION_LAGS + 1):
        paired = present[:, :-lag] & present[:, lag:]
        n_lag = paired.sum(axis=1).astype(np.float64)
        if n_lag.sum() == 0:
            continue
        rho = float((grid[:, :-lag] * grid[:, lag:])[paired].mean()) / max(variance_d, 1e-30)
        loss += 2.0 * rho * n_lag / np.maximum(counts, 1.0)
    dof = float(np.sum((counts - loss)[counts > 0]))
    variance_pairs = float(np.sum(e * e)) / max(dof, 1.0)
    variance = 0.5 * variance_pairs - step * step / 12.0
    # Each line's mean difference is the change of the line offset from one line to the next (variance twice the
    # offsets') plus the pixel noise's share, variance_pairs * loss / n; its median squared over 0.455 its mean.
    used = counts > 0
    line_means = np.bincount(rows, d, n_rows)[used] / counts[used]
    offsets = 0.5 * (float(np.median(line_means**2)) / CHI2_1_MEDIAN - variance_pairs * float(
        np.median(loss[used] / counts[used])))
    values = x[region]
    margin = max(step, 1e-6) / 2.0
    clipped = float(np.mean((values <= margin) | (values >= 1.0 - margin)))
    return RegionNoise(label, mean, max(variance, 0.0), int(rows.size), clipped, max(offsets, 0.0))


def fit_noise(regions: Sequence[RegionNoise]) -> NoiseFit:
    """Dose and detector noise from the noise of flat regions of different grey (see the module docstring).

    A weighted straight line through (mean, variance), each point weighted by the inverse of its variance's sampling
    variance (``2 v^2 / pairs``); a negative intercept means no detector noise (the line is refitted through 0). With
    one region, or regions of about the same grey, the detector noise is taken as 0 (``separated`` False). Regions
    clipped at black or white (more than :data:`MAX_CLIPPED_SHARE` of their pixels) are left out while others remain.

    Raises
    ------
    EstimateError
        When no region is given or the noise does not grow with the grey (no shot noise to read a dose from).
    """
    if not regions:
        raise EstimateError("dose: no flat region to measure the noise in")
    unclipped = [r for r in regions if r.clipped <= MAX_CLIPPED_SHARE]
    regions = unclipped or list(regions)
    m = np.array([r.mean for r in regions])
    v = np.array([r.variance for r in regions])
    w = np.array([r.pairs for r in regions], np.float64) / np.maximum(v, 1e-12) ** 2
    separated = len(regions) >= 2 and float(m.max() - m.min()) >= MIN_MEAN_SPREAD * float(m.max())
    intercept = 0.0
    columns = [m, np.ones_like(m)] if separated else [m]
    design = np.stack(columns, axis=1)
    solution = np.linalg.lstsq(design * np.sqrt(w)[:, None], v * np.sqrt(w), rcond=None)[0]
    if separated and solution[1] < 0:
        design, solution = design[:, :1], np.array([np.sum(w * m * v) / max(float(np.sum(w * m * m)), 1e-30)])
    slope = float(solution[0])
    intercept = float(solution[1]) if solution.size > 1 else 0.0
    # The slope's standard error: each variance is known to sqrt(2 / pairs) of itself.
    covariance = np.linalg.pinv(design.T @ (design * (0.5 * w)[:, None]))
    slope_error = float(np.sqrt(max(covariance[0, 0], 0.0)))
    described = ", ".join(f"{r.label} {r.mean:.3f}: {r.variance:.2e}" for r in regions)
    if not np.isfinite(slope) or slope <= MIN_SLOPE_ERRORS * slope_error:
        bound = SHOT_VARIANCE_FACTOR / max(slope + MIN_SLOPE_ERRORS * slope_error, 1e-30)
        raise EstimateError(f"dose: the noise does not grow with the grey level (grey: variance {described}): the "
                            f"shot noise hides under the detector noise, the dose is at least about {bound:.3g} "
                            "electrons per pixel")
    dose = SHOT_VARIANCE_FACTOR / float(slope)
    detector = float(np.sqrt(max(float(intercept), 0.0) / DETECTOR_VARIANCE_FACTOR))
    pairs = np.array([r.pairs for r in regions], np.float64)
    line = float(np.sqrt(max(float(np.sum(pairs * [r.line_variance for r in regions]) / np.sum(pairs)), 0.0)))
    return NoiseFit(dose, detector, separated, tuple(regions), line)


def pixel_noise_std(fit: NoiseFit, mean: np.ndarray) -> np.ndarray:
    """Standard deviation of one pixel's noise at grey ``mean`` according to ``fit`` (display units)."""
    var = SHOT_VARIANCE_FACTOR * np.clip(mean, 0.0, None) / fit.dose_electrons_per_px \
        + DETECTOR_VARIANCE_FACTOR * fit.detector_noise_std**2
    return np.sqrt(var)


def unclipped_mean(observed: np.ndarray, noise_std: Callable[[np.ndarray], np.ndarray],
                   iterations: int = 20) -> np.ndarray:
    """The mean grey before clipping to [0, 1] whose clipped Gaussian has the ``observed`` mean.

    A bright phase at a low dose loses the top of its noise to white (and a dark one the bottom to black), which
    pulls its mean inwards. With ``X ~ N(mu, s(mu)^2)``: ``E[clip(X)] = mu (Phi(b) - Phi(a)) + s (phi(a) - phi(b))
    + 1 - Phi(b)`` (``a = -mu/s``, ``b = (1 - mu)/s``), whose derivative in ``mu`` is ``Phi(b) - Phi(a)``: Newton
    steps from the observed mean.
    """
    m = np.asarray(observed, np.float64)
    mu = m.copy()
    for _ in range(iterations):
        s = np.maximum(noise_std(mu), 1e-9)
        a, b = -mu / s, (1.0 - mu) / s
        inside = np.maximum(ndtr(b) - ndtr(a), 1e-3)
        expected = mu * (ndtr(b) - ndtr(a)) + s * (_phi(a) - _phi(b)) + 1.0 - ndtr(b)
        mu = mu + (m - expected) / inside
    return np.asarray(mu)


def _phi(z: np.ndarray) -> np.ndarray:
    return np.asarray(np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi))
