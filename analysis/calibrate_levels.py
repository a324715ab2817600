"""Grey level of each phase, the detector shading and the Fe2Al5 depth gradient, fitted together on flat regions.

Samples: blocks of ``BLOCK_PX`` squared pixels that lie in a phase's flat region (the phase eroded away from its edges
by the probe's core), and for the small phases (pores, precipitates) the core of each particle wide enough to have
one. Each sample's mean grey is modelled as the render node forms it (:mod:`analysis.calibrate_model`)::

    mean = shading(x, y) * [(1 - h) * g_phase * (1 + gradient * (t - 1/2))  +  h * sum_k g_k * halo_k]

where ``h`` is the probe's halo share, ``halo_k`` the share of phase ``k`` within the halo around the sample (the
segmentation blurred by the halo), ``t`` the relative depth in the Fe2Al5 band (Fe2Al5 only) and ``shading`` the
exponential of the model's plane-plus-bowl terms (mean 1 over the frame). The greys and the gradient are linear given
the shading, the shading linear in the log given the greys: the two fits alternate. So a phase next to a much darker
or brighter one is not misread by the halo's share of its neighbour, and a ramp across the frame does not widen the
greys.

A phase the image has no flat region of enters the halo term at its default grey's ratio to a measured phase
(:class:`semcoat.spec.GreyLevelSpec`: physics).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage as ndi

from analysis.calibrate_model import EstimateError, shading_basis
from semcoat.classes import BACKGROUND, CLASS_IDS, CRACK, FE2AL5, FEAL, PORE, PRECIPITATE, SUBSTRATE
from semcoat.spec import GreyLevelSpec

FLAT_CLASSES = (BACKGROUND, FE2AL5, FEAL, SUBSTRATE)
PARTICLE_CLASSES = (PORE, PRECIPITATE)
PHASE_NAMES = {BACKGROUND: "resin", FE2AL5: "fe2al5", FEAL: "feal", SUBSTRATE: "substrate", PORE: "pore",
               PRECIPITATE: "precipitate", CRACK: "crack"}
# The phase whose grey stands in (times the ratio of their default greys) for a phase with nothing to measure.
STAND_IN = {BACKGROUND: FE2AL5, FE2AL5: SUBSTRATE, FEAL: FE2AL5, SUBSTRATE: FE2AL5, PORE: BACKGROUND,
            PRECIPITATE: FE2AL5, CRACK: BACKGROUND}
BLOCK_PX = 8
MIN_BLOCK_SHARE = 0.75
MIN_FLAT_PIXELS = 400
MIN_PARTICLE_CORE_PX = 3
ITERATIONS = 8
# Relative block-to-block spread assumed on top of the noise when weighting (grain contrast is a few percent).
TEXTURE_SPREAD = 0.02
MIN_TEXTURE_SPREAD = 0.003
# Noise of a block mean: the scan bandwidth correlates neighbouring pixels along a line (sum of correlations ~2.3).
NOISE_CORRELATION_SUM = 2.3
MIN_GRADIENT_DEPTH_SPREAD = 0.1
# Blurs wider than this (sigma, px) run at 1/DOWNSAMPLE of the resolution.
WIDE_SIGMA_PX = 6.0
DOWNSAMPLE = 4


@dataclass(frozen=True)
class Psf:
    """The probe's resolution in pixels (standard deviations): a Gaussian core and ``halo_fraction`` of the signal in
    a wide Gaussian halo."""

    core_sigma_px: float
    halo_fraction: float = 0.0
    halo_sigma_px: float = 0.0


@dataclass(frozen=True)
class LevelFit:
    """Grey levels and the slow brightness variations of one image.

    Attributes
    ----------
    greys : phase name -> display grey (0-1) where the shading is 1, before grain texture and noise.
    spreads : flat phase name -> relative standard deviation of its blocks around the fit (grain contrast).
    particle_greys : ``pore``/``precipitate`` -> the grey of each particle core, ascending.
    shading_amplitude : largest relative departure of the fitted shading from 1 over the frame.
    shading_coefficients : the log-shading's coefficients of :func:`analysis.calibrate_model.shading_basis`.
    fe2al5_depth_gradient : relative Fe2Al5 grey change from the top to the bottom of its band; None when not fitted.
    samples : blocks and particle cores used.
    """

    greys: dict[str, float]
    spreads: dict[str, float]
    particle_greys: dict[str, tuple[float, ...]]
    shading_amplitude: float
    shading_coefficients: tuple[float, ...]
    fe2al5_depth_gradient: float | None
    samples: int


def flat_regions(mask: np.ndarray, erode_px: float) -> dict[int, np.ndarray]:
    """Each flat phase's pixels farther than ``erode_px`` from any other class (image borders do not erode), for the
    phases that keep at least :data:`MIN_FLAT_PIXELS` pixels."""
    # One distance transform for all phases: to the nearest pixel that has a neighbour of another class.
    boundary = np.zeros(mask.shape, bool)
    boundary[:-1] |= mask[:-1] != mask[1:]
    boundary[1:] |= mask[:-1] != mask[1:]
    boundary[:, :-1] |= mask[:, :-1] != mask[:, 1:]
    boundary[:, 1:] |= mask[:, :-1] != mask[:, 1:]
    distance = ndi.distance_transform_edt(~boundary) if boundary.any() else np.full(mask.shape, np.inf)
    out: dict[int, np.ndarray] = {}
    for class_id in FLAT_CLASSES:
        region = (mask == class_id) & (distance >= erode_px)
        if int(region.sum()) >= MIN_FLAT_PIXELS:
            out[class_id] = region
    return out


def smooth_share(indicator: np.ndarray, sigma_px: float) -> np.ndarray:
    """A Gaussian blur (reflected at the borders) of a 0/1 map; wide ones at a quarter of the resolution, enlarged
    linearly (a wide blur is smooth at that scale, as the render node's halo is)."""
    x = indicator.astype(np.float32)
    if sigma_px < WIDE_SIGMA_PX or min(x.shape) < 4 * DOWNSAMPLE:
        return np.asarray(ndi.gaussian_filter(x, sigma_px, mode="reflect"))
    rows, cols = x.shape
    k = DOWNSAMPLE
    pad = ((0, -rows % k), (0, -cols % k))
    small = np.pad(x, pad, mode="edge").reshape((rows + pad[0][1]) // k, k, (cols + pad[1][1]) // k, k).mean((1, 3))
    small = ndi.gaussian_filter(small, sigma_px / k, mode="reflect").astype(np.float32)
    # OpenCV's linear enlargement aligns pixel centres (block centres at k/2 - 1/2), as the render node's halo does.
    large = cv2.resize(small, (small.shape[1] * k, small.shape[0] * k), interpolation=cv2.INTER_LINEAR)
    return np.asarray(large[:rows, :cols])


def relative_depth(mask: np.ndarray) -> np.ndarray:
    """Per pixel, the relative depth ``t`` (0 at the surface, 1 at the band's bottom) in the Fe2Al5 band of its column,
    as the render node's depth gradient defines the band (first non-resin row to the first FeAl/substrate row)."""
    rows = mask.shape[0]
    coating = mask != BACKGROUND
    top = np.where(coating.any(axis=0), np.argmax(coating, axis=0), rows)
    lower = (mask == FEAL) | (mask == SUBSTRATE)
    bottom = np.where(lower.any(axis=0), np.argmax(lower, axis=0), rows)
    span = np.maximum(bottom - top, 1).astype(np.float64)
    r = np.arange(rows, dtype=np.float64)[:, None]
    return np.clip((r - top[None, :]) / span[None, :], 0.0, 1.0)


@dataclass
class _Samples:
    phase: np.ndarray  # class id per sample
    mean: np.ndarray
    noise_var: np.ndarray  # variance of the sample's mean from pixel noise
    row: np.ndarray
    col: np.ndarray
    depth: np.ndarray  # mean of t - 1/2
    halo: dict[int, np.ndarray]  # class id -> mean halo share per sample
    particle: np.ndarray  # True for particle cores


def _gather(labels: np.ndarray, n_labels: int, image: np.ndarray, depth: np.ndarray,
            halo: Mapping[int, np.ndarray], min_count: int) -> tuple[np.ndarray, ...]:
    """Per label (1..n): count, mean, pixel variance, mean row and column, mean depth, mean halo shares."""
    where = labels > 0
    lab = labels[where]
    rows, cols = np.nonzero(where)
    count = np.bincount(lab, minlength=n_labels + 1).astype(np.float64)

    def mean_of(values: np.ndarray) -> np.ndarray:
        return np.bincount(lab, values, n_labels + 1) / np.maximum(count, 1.0)

    y = image[where]
    mean = mean_of(y)
    var = np.maximum(mean_of(y * y) - mean * mean, 0.0)
    keep = count >= min_count
    keep[0] = False
    halo_means = np.stack([mean_of(h[where]) for h in halo.values()]) if halo else np.zeros((0, n_labels + 1))
    return (count[keep], mean[keep], var[keep], mean_of(rows.astype(np.float64))[keep],
            mean_of(cols.astype(np.float64))[keep], mean_of(depth[where] - 0.5)[keep], halo_means[:, keep])


def _samples(image: np.ndarray, mask: np.ndarray, regions: Mapping[int, np.ndarray], halo: Mapping[int, np.ndarray],
             depth: np.ndarray, core_erode_px: float) -> _Samples:
    rows, cols = mask.shape
    block_cols = -(-cols // BLOCK_PX)
    block_id = ((np.arange(rows) // BLOCK_PX)[:, None] * block_cols + (np.arange(cols) // BLOCK_PX)[None, :]) + 1
    n_blocks = int(block_id.max())
    parts: list[tuple[int, bool, tuple[np.ndarray, ...]]] = []
    for class_id, region in regions.items():
        labels = np.where(region, block_id, 0)
        parts.append((class_id, False, _gather(labels, n_blocks, image, depth, halo,
                                               int(MIN_BLOCK_SHARE * BLOCK_PX * BLOCK_PX))))
    for class_id in PARTICLE_CLASSES:
        phase = mask == class_id
        if not phase.any():
            continue
        particles, n = ndi.label(phase)
        core = ndi.distance_transform_edt(phase) > core_erode_px
        labels = np.where(core, particles, 0)
        parts.append((class_id, True, _gather(labels, n, image, depth, halo, MIN_PARTICLE_CORE_PX)))
    phase_ids, particle, stats = [], [], []
    for class_id, is_particle, s in parts:
        phase_ids.append(np.full(s[0].size, class_id))
        particle.append(np.full(s[0].size, is_particle))
        stats.append(s)
    if not stats:
        raise EstimateError("grey levels: no flat region and no particle core to read a grey from")
    count, mean, var, row, col, dep = (np.concatenate([s[k] for s in stats]) for k in range(6))
    halo_means = np.concatenate([s[6] for s in stats], axis=1)
    return _Samples(np.concatenate(phase_ids), mean, var * NOISE_CORRELATION_SUM / count, row, col, dep,
                    {k: halo_means[i] for i, k in enumerate(halo)}, np.concatenate(particle))


def _stand_in(class_id: int, measured: set[int]) -> tuple[int, float] | None:
    """The measured phase standing in for ``class_id`` and the ratio of their default greys (None: nothing measured
    along the chain)."""
    defaults = GreyLevelSpec()
    ratio, current, seen = 1.0, class_id, set()
    while current not in measured:
        if current in seen:
            return None
        seen.add(current)
        nxt = STAND_IN[current]
        ratio *= defaults.for_class(current) / max(defaults.for_class(nxt), 1e-6)
        current = nxt
    return current, ratio


def fit_levels(image: np.ndarray, mask: np.ndarray, regions: Mapping[int, np.ndarray], psf: Psf,
               frame_shape: tuple[int, int], core_erode_px: float, fit_gradient: bool = False,
               unclip: Callable[[np.ndarray], np.ndarray] | None = None) -> LevelFit:
    """Fit greys, shading and the Fe2Al5 depth gradient (see the module docstring).

    Parameters
    ----------
    image : float image, display units, (rows, columns), data bar cropped; not modified.
    mask : class ids of ``image`` (the classical segmentation).
    regions : flat regions per class id (:func:`flat_regions`).
    psf : the probe's resolution (its halo enters the model; the core sets ``core_erode_px`` at the caller).
    frame_shape : (rows, columns) of the full frame the shading spans, data bar included.
    core_erode_px : particle cores are the pixels farther than this from the particle's edge.
    fit_gradient : fit the Fe2Al5 depth gradient (when the band's depth is sampled widely enough). Off by default:
        within one image it trades against the shading's vertical terms and the columnar grains' contrast.
    unclip : maps the samples' mean greys to their means before clipping at black and white
        (:func:`analysis.calibrate_noise.unclipped_mean` with the image's noise); None leaves them.

    Raises
    ------
    EstimateError
        When there is nothing to read a grey from.
    """
    x = np.asarray(image, np.float64)
    present = [int(k) for k in np.unique(mask) if int(k) in CLASS_IDS]
    halo: dict[int, np.ndarray] = {}
    h = float(psf.halo_fraction) if psf.halo_sigma_px > 0 else 0.0
    if h > 0:
        for k in present:
            halo[k] = smooth_share(mask == k, psf.halo_sigma_px)
    depth = relative_depth(mask)
    s = _samples(x, mask, regions, halo, depth, core_erode_px)
    if unclip is not None:
        s.mean = unclip(s.mean)
    measured = {int(k) for k in np.unique(s.phase)}
    unknowns = sorted(measured)
    column = {k: i for i, k in enumerate(unknowns)}
    flat = ~s.particle
    fe_flat = flat & (s.phase == FE2AL5)
    with_gradient = fit_gradient and int(fe_flat.sum()) >= 8 and float(np.std(s.depth[fe_flat])) >= (
        MIN_GRADIENT_DEPTH_SPREAD / 2)
    n_cols = len(unknowns) + (1 if with_gradient else 0)
    design = np.zeros((s.mean.size, n_cols))
    for k in unknowns:
        design[s.phase == k, column[k]] += 1.0 - h
    if with_gradient:
        design[fe_flat, -1] = (1.0 - h) * s.depth[fe_flat]
    for k, share in s.halo.items():
        target = (k, 1.0) if k in measured else _stand_in(k, measured)
        if target is not None:
            design[:, column[target[0]]] += h * target[1] * share
    basis = shading_basis(s.row, s.col, *frame_shape)
    log_shading = np.zeros(s.mean.size)
    coef = np.zeros(basis.shape[1])
    texture = np.full(s.mean.size, TEXTURE_SPREAD)
    solution = np.zeros(n_cols)
    for _ in range(ITERATIONS):
        # Each phase weighs by its own block-to-block spread: flat resin pins the shading, grainy phases less.
        weight = 1.0 / (s.noise_var + (texture * s.mean) ** 2 + 1e-12)
        target_y = s.mean / np.exp(log_shading)
        sw = np.sqrt(weight)
        solution = np.linalg.lstsq(design * sw[:, None], target_y * sw, rcond=None)[0]
        model = design @ solution
        usable = flat & (model > 1e-4) & (s.mean > 1e-4)
        if int(usable.sum()) <= basis.shape[1] + len(unknowns):
            break
        z = np.log(s.mean[usable] / model[usable])
        wz = np.sqrt(weight[usable]) * s.mean[usable]
        coef = np.linalg.lstsq(basis[usable] * wz[:, None], z * wz, rcond=None)[0]
        log_shading = basis @ coef
        texture = _texture_spreads(s, flat, model * np.exp(log_shading), unknowns)
    model = design @ solution
    greys = {PHASE_NAMES[k]: float(solution[column[k]]) for k in unknowns}
    gradient = None
    if with_gradient and greys.get("fe2al5", 0.0) > 1e-4:
        gradient = float(solution[-1] / greys["fe2al5"])
    residual = np.log(np.maximum(s.mean, 1e-6) / np.maximum(model * np.exp(log_shading), 1e-6))
    spreads = {}
    for k in unknowns:
        pick = flat & (s.phase == k)
        if int(pick.sum()) >= 4:
            noise = float(np.mean(s.noise_var[pick] / np.maximum(s.mean[pick], 1e-6) ** 2))
            spreads[PHASE_NAMES[k]] = float(np.sqrt(max(float(np.var(residual[pick])) - noise, 0.0)))
    particle_greys: dict[str, tuple[float, ...]] = {}
    for k in PARTICLE_CLASSES:
        pick = s.particle & (s.phase == k)
        if pick.any():
            others = model[pick] - (1.0 - h) * solution[column[k]]  # the halo's share from the particle's surroundings
            own = (s.mean[pick] / np.exp(log_shading[pick]) - others) / (1.0 - h)
            particle_greys[PHASE_NAMES[k]] = tuple(sorted(float(v) for v in own))
    return LevelFit(greys, spreads, particle_greys, _amplitude(coef, frame_shape), tuple(float(c) for c in coef),
                    gradient, int(s.mean.size))


def predicted_image(mask: np.ndarray, fit: LevelFit, psf: Psf, frame_shape: tuple[int, int]) -> np.ndarray:
    """The image the fitted model predicts from the segmentation (no texture, no noise): each class at its grey (a
    class without an estimate at its stand-in's), blurred by the probe's core and halo, times the shading.

    Parameters
    ----------
    mask : class ids (rows, columns), data bar cropped.
    fit : the levels fitted on the image.
    psf : the probe's resolution, px.
    frame_shape : (rows, columns) of the full frame (the shading spans it).
    """
    by_id = {k: name for k, name in PHASE_NAMES.items()}
    measured = {k for k, name in by_id.items() if name in fit.greys}
    grey = np.zeros(max(CLASS_IDS) + 1, np.float32)
    for k in CLASS_IDS:
        if k in measured:
            grey[k] = fit.greys[by_id[k]]
        elif (target := _stand_in(k, measured)) is not None:
            grey[k] = fit.greys[by_id[target[0]]] * target[1]
    phases = grey[mask]
    out = ndi.gaussian_filter(phases, psf.core_sigma_px, mode="reflect") if psf.core_sigma_px > 0 else phases
    if psf.halo_fraction > 0 and psf.halo_sigma_px > 0:
        halo = ndi.gaussian_filter(phases, psf.halo_sigma_px, mode="reflect")
        out = (1.0 - psf.halo_fraction) * out + psf.halo_fraction * halo
    rows, cols = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]]
    shading = np.exp(shading_basis(rows.ravel(), cols.ravel(), *frame_shape) @ np.array(fit.shading_coefficients))
    return np.asarray(out * shading.reshape(mask.shape), np.float32)


def _texture_spreads(s: _Samples, flat: np.ndarray, fitted: np.ndarray, unknowns: list[int]) -> np.ndarray:
    """Per sample, the relative block-to-block spread of its phase beyond the noise (at least MIN_TEXTURE_SPREAD);
    particles keep TEXTURE_SPREAD."""
    out = np.full(s.mean.size, TEXTURE_SPREAD)
    residual = np.log(np.maximum(s.mean, 1e-6) / np.maximum(fitted, 1e-6))
    for k in unknowns:
        pick = flat & (s.phase == k)
        if int(pick.sum()) >= 4:
            noise = float(np.mean(s.noise_var[pick] / np.maximum(s.mean[pick], 1e-6) ** 2))
            out[pick] = np.sqrt(max(float(np.var(residual[pick])) - noise, MIN_TEXTURE_SPREAD**2))
    return out


def _amplitude(coef: np.ndarray, frame_shape: tuple[int, int]) -> float:
    """Largest relative departure from 1 of the fitted shading over the frame (corners and a grid)."""
    rows, cols = frame_shape
    r, c = np.meshgrid(np.linspace(0, rows - 1, 33), np.linspace(0, cols - 1, 33), indexing="ij")
    field = np.exp(shading_basis(r.ravel(), c.ravel(), rows, cols) @ coef)
    return float(np.max(np.abs(field / field.mean() - 1.0)))
