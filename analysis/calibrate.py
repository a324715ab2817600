"""Calibration of the generator to a lab's microscope: what one real micrograph says about the image model.

Per image: read it, find its pixel size and crop its data bar (as ``semcoat predict`` does), segment it with the
classical baseline, check that a coating was found, then estimate, each on its own (an estimate the image does not
allow becomes a warning naming the image and the estimate; the others go on):

- the probe blur from the profiles across the surface and the Fe2Al5/substrate interface
  (:mod:`analysis.calibrate_blur`);
- the dose and the detector noise from the noise in flat regions (:mod:`analysis.calibrate_noise`);
- each phase's grey level and spread, the detector shading and the Fe2Al5 depth gradient, fitted together
  (:mod:`analysis.calibrate_levels`);
- the scratch density and contrast (:mod:`analysis.calibrate_scratches`);
- the data bar's height and the frame (size, pixel size, bit depth), and the layer geometry the batch must fit into
  the frame (surface depth, Fe2Al5 thickness, FeAl) from the segmentation's measurements.

A close-up whose frame cuts the coating (the surface above the top edge, or the substrate below the bottom edge) is
used for what it shows: greys, noise, blur at the edge it has, scratches, and the layer geometry it sees; what needs
an edge it does not show (the thickness, FeAl, the surface depth) is unknown, not absent, and left out of the ranges.

Estimates are keyed by the spec parameter they estimate (``grey.fe2al5``, ``imaging.probe_fwhm_um``, ...); the batch
spec is written from them by :mod:`analysis.calibrate_spec`. Greys are display greys (contrast 1, brightness 0: see
:mod:`analysis.calibrate_model`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from analysis import files
from analysis.calibrate_blur import INTERFACE, SURFACE, EdgeFit, edge_profile, fit_edge
from analysis.calibrate_levels import LevelFit, Psf, fit_levels, flat_regions, predicted_image
from analysis.calibrate_model import FWHM_PER_SIGMA, EstimateError
from analysis.calibrate_noise import (
    NoiseFit,
    fit_noise,
    pixel_noise_std,
    quantisation_step,
    region_noise,
    unclipped_mean,
)
from analysis.calibrate_scratches import find_scratches
from analysis.frame_columns import frame_columns
from analysis.measure import FRAME_MIN_COLUMN_SHARE, MaskError, check_layered, measure
from analysis.predict import ImageInput, load_input, pixel_size_warning
from semcoat.classes import FE2AL5, FEAL, SUBSTRATE
from semcoat.errors import SemcoatError

# Flat regions keep this many core sigmas (plus a pixel) away from any edge, and at least MIN_ERODE_PX.
ERODE_CORE_SIGMAS = 3.0
MIN_ERODE_PX = 3.0
# Without a blur estimate, flat regions keep this far (µm) from edges: three sigmas of the widest preset core.
FALLBACK_ERODE_UM = 1.3
# A precipitate grey is the upper end of the particles' greys (the brightest phase, Cr23C6, sets grey.precipitate).
PRECIPITATE_QUANTILE = 0.9
MIN_PARTICLES = 3
PHASE_PATHS = {"resin": "grey.resin", "fe2al5": "grey.fe2al5", "feal": "grey.feal", "substrate": "grey.substrate"}


class NotUsableError(SemcoatError):
    """An image with nothing to calibrate on (no coating found by the classical segmentation)."""


@dataclass
class ImageEstimates:
    """What one micrograph says about the image model.

    Attributes
    ----------
    source : the file.
    width_px, height_px : the whole image, data bar included.
    pixel_size_um, pixel_size_from : µm per pixel and where it came from.
    databar_height_px : rows of the cropped data bar (0: none).
    bit_depth : 8 or 16.
    values : spec parameter path -> estimate (only the estimates the image allowed).
    details : further figures for the table (per-edge blur, spreads, particle counts).
    warnings : what could not be estimated, and why.
    shows_surface, shows_bottom : whether the frame shows the coating's surface and the Fe2Al5 band's bottom (FeAl or
        substrate) in at least half of the columns with some band; a close-up lacks one or both.
    """

    source: str
    width_px: int
    height_px: int
    pixel_size_um: float
    pixel_size_from: str
    databar_height_px: int
    bit_depth: int
    values: dict[str, float] = field(default_factory=dict)
    details: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    shows_surface: bool = True
    shows_bottom: bool = True

    @property
    def cuts_coating(self) -> bool:
        """The frame does not show the whole coating (a close-up)."""
        return not (self.shows_surface and self.shows_bottom)


def bit_depth_of(image: np.ndarray) -> int:
    """8 for 8-bit images, 16 for anything deeper (16-bit, float)."""
    return 8 if image.dtype == np.uint8 else 16


def choose_blur(fits: Sequence[EdgeFit]) -> EdgeFit:
    """The edge whose fit describes the probe best: the surface (the largest step, flat resin on one side) when it was
    fitted, else the Fe2Al5/substrate interface (a smaller step, grain contrast on both sides)."""
    by_kind = {f.kind: f for f in fits}
    return by_kind.get(SURFACE) or by_kind[INTERFACE]


def estimate_image(item: ImageInput, full_height_px: int) -> ImageEstimates:
    """Every estimate one loaded micrograph allows (see the module docstring).

    Parameters
    ----------
    item : the micrograph, data bar cropped (:func:`analysis.predict.load_input`).
    full_height_px : rows of the file, data bar included (the shading spans them; the batch's frame holds them).

    Raises
    ------
    NotUsableError
        When the classical segmentation finds no coating in it (nothing can be estimated).
    """
    image = files.to_unit_float(item.image)
    rows, cols = image.shape
    bar_rows = full_height_px - rows if item.databar_top_row is not None else 0
    est = ImageEstimates(str(item.path), cols, rows + bar_rows, item.pixel_size_um, item.pixel_size_from, bar_rows,
                         bit_depth_of(item.image))
    mask = _segment(item.path, image)
    px = item.pixel_size_um
    name = item.path.name

    def warn(exc: Exception) -> None:
        est.warnings.append(f"{name}: {exc}")

    _geometry(est, mask, px)
    fits: list[EdgeFit] = []
    edge_problems: list[str] = []
    for kind in (SURFACE, INTERFACE):
        try:
            fits.append(fit_edge(edge_profile(image, mask, kind, px)))
        except EstimateError as exc:
            edge_problems.append(str(exc))
    for f in fits:
        est.details[f"core_fwhm_um_{f.kind}"] = f.core_fwhm_px * px
    psf = Psf(FALLBACK_ERODE_UM / px / ERODE_CORE_SIGMAS)
    if fits:
        best = choose_blur(fits)
        est.values["imaging.probe_fwhm_um"] = best.core_fwhm_px * px
        psf = Psf(best.core_fwhm_px / FWHM_PER_SIGMA)
        halo = best if best.halo_fwhm_px is not None else None
        if halo is not None and halo.halo_fraction is not None and halo.halo_fwhm_px is not None:
            est.values["imaging.probe_halo_fraction"] = halo.halo_fraction
            est.values["imaging.probe_halo_fwhm_um"] = halo.halo_fwhm_px * px
            psf = Psf(psf.core_sigma_px, halo.halo_fraction, halo.halo_fwhm_px / FWHM_PER_SIGMA)
        # The rim (edge brightening) is fitted to keep the core honest, not written: at a rough surface under a
        # wide probe it trades against the core and halo (renders read 1.5-4x the drawn value).
    else:
        warn(EstimateError("; ".join(edge_problems)))
    erode = max(MIN_ERODE_PX, ERODE_CORE_SIGMAS * psf.core_sigma_px + 1.0)
    regions = flat_regions(mask, erode)
    noise = _noise(est, image, item.image, regions, warn)
    unclip = None
    if noise is not None:
        fit = noise
        unclip = lambda means: unclipped_mean(means, lambda mu: pixel_noise_std(fit, mu))  # noqa: E731
    levels = _levels(est, image, mask, regions, psf, erode, warn, unclip)
    try:
        solid = np.zeros(mask.shape, bool)
        for class_id in (FE2AL5, FEAL, SUBSTRATE):
            if class_id in regions:
                solid |= regions[class_id]
        predicted = predicted_image(mask, levels, psf, (est.height_px, est.width_px)) if levels else None
        scratches = find_scratches(image, solid, px, cols, psf.core_sigma_px, predicted)
        est.values["imaging.scratch_density_per_100um"] = scratches.density_per_100um
        if scratches.contrast is not None:
            est.values["imaging.scratch_contrast"] = scratches.contrast
        est.details["scratches"] = float(len(scratches.scratches))
    except EstimateError as exc:
        warn(exc)
    return est


def _segment(path: Path, image: np.ndarray) -> np.ndarray:
    from analysis.baseline import segment
    from analysis.model import ModelRunError

    try:
        mask = segment(image)
        check_layered(mask, source=str(path))
    except (ModelRunError, MaskError) as exc:
        raise NotUsableError(f"{path}: nothing to calibrate on: {exc}") from exc
    return mask


def _geometry(est: ImageEstimates, mask: np.ndarray, px: float) -> None:
    """Surface depth, Fe2Al5 thickness and FeAl from the segmentation (the batch's coating must fit the frame), and
    which edges of the coating the frame shows; what a close-up does not show is left out (unknown, not absent)."""
    cols = frame_columns(mask)
    n_banded = int(np.count_nonzero(cols.banded))
    least = FRAME_MIN_COLUMN_SHARE * n_banded
    est.shows_surface = n_banded > 0 and np.count_nonzero(cols.surface_seen) >= least
    est.shows_bottom = n_banded > 0 and np.count_nonzero(cols.bottom_seen) >= least
    if est.shows_surface:
        est.values["layers.surface_depth_um"] = float(np.mean(cols.surface_row[cols.surface_seen])) * px
    if est.shows_bottom:  # where a close-up without the surface puts the band's bottom (the batch's cut frames must)
        est.details["band_bottom_depth_um"] = float(np.mean(cols.band_bottom_row[cols.bottom_seen])) * px
    try:
        m = measure(mask, px)
    except MaskError as exc:
        est.warnings.append(f"{Path(est.source).name}: layer geometry: {exc}")
        return
    if m.fe2al5_thickness_um is not None:
        est.values["layers.fe2al5_thickness_um"] = float(m.fe2al5_thickness_um)
    if m.feal_present is not None:
        est.values["layers.feal_present"] = 1.0 if m.feal_present else 0.0
    if m.feal_present and m.feal_thickness_um is not None:
        est.values["layers.feal_thickness_um"] = float(m.feal_thickness_um)
    if est.cuts_coating:
        edges = (("the surface lies above the top edge", est.shows_surface),
                 ("the Fe2Al5 band runs off the bottom edge", est.shows_bottom))
        missing = [what for what, shown in edges if not shown]
        unknown = [name for name, known in (("surface depth", est.shows_surface),
                                            ("Fe2Al5 thickness", m.fe2al5_thickness_um is not None),
                                            ("FeAl", m.feal_present is not None)) if not known]
        est.warnings.append(f"{Path(est.source).name}: the frame cuts the coating ({'; '.join(missing)}): its "
                            f"{', '.join(unknown)} unknown, left out of the layer ranges; greys, noise and blur from "
                            "what it shows")


def _noise(est: ImageEstimates, image: np.ndarray, raw: np.ndarray, regions: dict[int, np.ndarray],
           warn: Callable[[Exception], None]) -> NoiseFit | None:
    from analysis.calibrate_levels import PHASE_NAMES

    step = quantisation_step(raw)
    measured = []
    for class_id, region in regions.items():
        try:
            measured.append(region_noise(image, region, PHASE_NAMES[class_id], step))
        except EstimateError:
            continue  # too small a region for the noise; the others may do
    try:
        fit = fit_noise(measured)
    except EstimateError as exc:
        warn(exc)
        return None
    est.values["imaging.dose_electrons_per_px"] = fit.dose_electrons_per_px
    est.values["imaging.line_noise_std"] = fit.line_noise_std
    if fit.separated:
        est.values["imaging.detector_noise_std"] = fit.detector_noise_std
    else:
        warn(EstimateError("detector noise: the flat regions do not span enough grey levels to tell it from the shot "
                           "noise (taken as 0 for the dose)"))
    return fit


def _levels(est: ImageEstimates, image: np.ndarray, mask: np.ndarray, regions: dict[int, np.ndarray], psf: Psf,
            erode: float, warn: Callable[[Exception], None],
            unclip: Callable[[np.ndarray], np.ndarray] | None) -> LevelFit | None:
    try:
        fit = fit_levels(image, mask, regions, psf, (est.height_px, est.width_px), erode - 1.0, unclip=unclip)
    except EstimateError as exc:
        warn(exc)
        return None
    for name, path in PHASE_PATHS.items():
        if name in fit.greys and _flat_phase(name, regions):
            est.values[path] = fit.greys[name]
    for name, spread in fit.spreads.items():
        est.details[f"spread_{name}"] = spread
    precipitates = fit.particle_greys.get("precipitate", ())
    if len(precipitates) >= MIN_PARTICLES:
        est.values["grey.precipitate"] = float(np.quantile(precipitates, PRECIPITATE_QUANTILE))
    pores = fit.particle_greys.get("pore", ())
    if len(pores) >= MIN_PARTICLES:
        est.values["grey.pore"] = float(np.median(pores))
    est.values["imaging.shading_amplitude"] = fit.shading_amplitude
    if fit.fe2al5_depth_gradient is not None:
        est.values["grey.fe2al5_depth_gradient"] = fit.fe2al5_depth_gradient
    return fit


def _flat_phase(name: str, regions: dict[int, np.ndarray]) -> bool:
    from analysis.calibrate_levels import PHASE_NAMES

    return any(PHASE_NAMES[k] == name for k in regions)


def check_inputs(paths: Sequence[str | Path], pixel_size_um: float | None) -> None:
    """Read every image once, with its pixel size and data bar, before any work: a bad input stops the run naming
    the file (its error propagates: ImageReadError, SemMetadataError, PixelSizeError, DatabarError)."""
    for path in paths:
        load_input(path, pixel_size_um, crop=True)


def calibrate_files(paths: Sequence[str | Path], pixel_size_um: float | None,
                    on_image: Callable[[str, ImageEstimates | None, str | None], None] | None = None,
                    ) -> list[ImageEstimates]:
    """Estimates of every usable image, in order.

    Every input is read first (:func:`check_inputs`: a bad one raises before any work); then each image is
    estimated on its own. ``on_image(path, estimates, problem)`` is called after each: ``estimates`` None and
    ``problem`` the reason when the image is not usable (no coating found).
    """
    check_inputs(paths, pixel_size_um)
    out = []
    for path in paths:
        try:
            est = calibrate_file(path, pixel_size_um)
        except NotUsableError as exc:
            if on_image is not None:
                on_image(str(path), None, str(exc))
            continue
        out.append(est)
        if on_image is not None:
            on_image(str(path), est, None)
    return out


def calibrate_file(path: str | Path, pixel_size_um: float | None) -> ImageEstimates:
    """Load one micrograph (pixel size from its metadata or ``pixel_size_um``, data bar cropped) and estimate.

    Raises
    ------
    NotUsableError
        When no coating is found in it; reading errors as :func:`check_inputs`.
    """
    item = load_input(path, pixel_size_um, crop=True)
    # The file's own height (the frame holds the bar): read again uncropped, a few milliseconds.
    full_rows = load_input(path, pixel_size_um, crop=False).image.shape[0] if item.databar_top_row is not None \
        else item.image.shape[0]
    est = estimate_image(item, full_rows)
    mismatch = pixel_size_warning(path, pixel_size_um, item.metadata_pixel_size_um)
    est.warnings[:0] = [*item.warnings, *([mismatch] if mismatch else [])]
    return est
