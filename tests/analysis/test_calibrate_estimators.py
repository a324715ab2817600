"""The calibration estimators on images of known parameters, formed by the render node's image formation (no Blender).

Tolerances are each estimator's contract on clean layered images (a few hundred columns of edge, flat phases of
tens of thousands of pixels); the Blender recovery test checks the whole chain on real renders.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis import files
from analysis.calibrate_blur import INTERFACE, SURFACE, edge_profile, fit_edge
from analysis.calibrate_levels import Psf, fit_levels, flat_regions, predicted_image
from analysis.calibrate_model import FWHM_PER_SIGMA, EstimateError
from analysis.calibrate_noise import (
    NoiseFit,
    RegionNoise,
    fit_noise,
    pixel_noise_std,
    quantisation_step,
    region_noise,
    unclipped_mean,
)
from analysis.calibrate_scratches import find_scratches
from blender_addon.render_node.artefacts import scratch_factor
from semcoat import classes
from tests.analysis.calibrate_images import formed, imaging, layered_mask

PX = 0.1  # um per pixel of every test image


def _shape(mask: np.ndarray) -> tuple[int, int]:
    return int(mask.shape[0]), int(mask.shape[1])


def _noise_fit(pixels: np.ndarray, mask: np.ndarray, erode: float = 3.0) -> NoiseFit:
    image = files.to_unit_float(pixels)
    regions = flat_regions(mask, erode)
    step = quantisation_step(pixels)
    return fit_noise([region_noise(image, r, classes.CLASS_NAMES[k], step) for k, r in regions.items()])


@pytest.mark.parametrize(("dose", "detector"), [(60.0, 0.0), (300.0, 0.01), (1500.0, 0.02)])
def test_dose_and_detector_noise_are_read_back_through_the_scan_bandwidth(dose: float, detector: float) -> None:
    mask = layered_mask(320, 400, 90, 230)
    pixels, formed_mask = formed(mask, imaging(dose_electrons_per_px=dose, detector_noise_std=detector,
                                               bit_depth=16), seed=3)
    fit = _noise_fit(pixels, formed_mask)
    assert fit.separated
    assert fit.dose_electrons_per_px == pytest.approx(dose, rel=0.06)
    # The detector noise's variance is read to a few percent of the shot noise's at mid grey (at a low dose it hides
    # in the shot noise).
    assert fit.detector_noise_std**2 == pytest.approx(detector**2, abs=max(0.03 * 0.5 / dose, 0.1 * detector**2))


def test_an_offset_per_scan_line_is_not_taken_for_pixel_noise() -> None:
    mask = layered_mask(320, 400, 90, 230)
    pixels, formed_mask = formed(mask, imaging(dose_electrons_per_px=300.0, bit_depth=16), seed=4)
    streaky = files.to_unit_float(pixels) + np.random.default_rng(5).normal(0, 0.03, (320, 1)).astype(np.float32)
    regions = flat_regions(formed_mask, 3.0)
    fit = fit_noise([region_noise(streaky, r, str(k), 1 / 65535) for k, r in regions.items()])
    assert fit.dose_electrons_per_px == pytest.approx(300.0, rel=0.06)  # the streaks (std 0.03) are not noise
    assert fit.line_noise_std == pytest.approx(0.03, rel=0.1)  # they are the scan lines' offsets
    assert _noise_fit(pixels, formed_mask).line_noise_std < 0.003  # none without them


def test_one_phase_gives_the_dose_with_the_detector_noise_taken_as_zero() -> None:
    mask = np.full((200, 300), classes.FE2AL5, np.uint8)
    pixels, formed_mask = formed(mask, imaging(dose_electrons_per_px=200.0, detector_noise_std=0.0), seed=6)
    fit = _noise_fit(pixels, formed_mask)
    assert not fit.separated and fit.detector_noise_std == 0.0
    assert fit.dose_electrons_per_px == pytest.approx(200.0, rel=0.06)


def test_noise_that_does_not_grow_with_the_grey_gives_no_dose() -> None:
    mask = layered_mask(320, 400, 90, 230)
    pixels, formed_mask = formed(mask, imaging(dose_electrons_per_px=1e6, detector_noise_std=0.03), seed=7)
    with pytest.raises(EstimateError, match="does not grow with the grey"):
        _noise_fit(pixels, formed_mask)
    with pytest.raises(EstimateError, match="no flat region"):
        fit_noise([])


def test_a_phase_clipped_at_white_is_left_out_and_its_mean_unclipped() -> None:
    mask = layered_mask(320, 400, 90, 230)
    bright = imaging(dose_electrons_per_px=40.0, detector_noise_std=0.0, bit_depth=16)
    from semcoat.spec import GreyLevelSpec

    pixels, formed_mask = formed(mask, bright, seed=8, greys=GreyLevelSpec(resin=0.1, fe2al5=0.5, substrate=0.93))
    fit = _noise_fit(pixels, formed_mask)
    substrate = next(r for r in fit.regions if r.label == "substrate") if any(
        r.label == "substrate" for r in fit.regions) else None
    assert substrate is None  # clipped: not in the fit
    assert fit.dose_electrons_per_px == pytest.approx(40.0, rel=0.08)
    # The substrate's observed mean is pulled below 0.93 by the clipping; unclipping restores it.
    image = files.to_unit_float(pixels)
    observed = float(image[flat_regions(formed_mask, 3.0)[classes.SUBSTRATE]].mean())
    restored = float(unclipped_mean(np.array([observed]), lambda mu: pixel_noise_std(fit, mu))[0])
    assert observed < 0.925 and restored == pytest.approx(0.93, abs=0.004)


def test_quantisation_steps() -> None:
    assert quantisation_step(np.array([0, 3, 4, 255], np.uint8)) == pytest.approx(1 / 255)
    assert quantisation_step(np.array([0, 257, 257 * 40], np.uint16)) == pytest.approx(257 / 65535)
    assert quantisation_step(np.array([0.1, 0.2], np.float32)) == 0.0
    with pytest.raises(EstimateError, match="vertical pixel pairs"):
        region_noise(np.zeros((50, 50)), np.zeros((50, 50), bool), "resin")
    assert RegionNoise("x", 0.5, 1e-3, 10).clipped == 0.0


@pytest.mark.parametrize(("fwhm_um", "halo"), [(0.2, 0.0), (0.5, 0.0), (0.3, 0.2), (0.8, 0.15)])
def test_blur_core_and_halo_from_both_edges(fwhm_um: float, halo: float) -> None:
    mask = layered_mask(300, 400, 80, 220, pores=10)
    img = imaging(probe_fwhm_um=fwhm_um, probe_halo_fraction=halo, probe_halo_fwhm_um=3.0, edge_brightening=0.08,
                  shading_amplitude=0.04, dose_electrons_per_px=300.0)
    pixels, formed_mask = formed(mask, img, seed=1)
    image = files.to_unit_float(pixels)
    # A 2 px core is at the sampling limit: the low-contrast interface's single fit reads 0.185 +- 0.01 um for 0.2
    # (160 seeds; below 10 % on a quarter of them), so it is held to the issue's +-20 % for a calibration; wider cores
    # to 10 %.
    tolerance = 0.2 if fwhm_um / PX <= 2.5 else 0.1
    for kind in (SURFACE, INTERFACE):
        fit = fit_edge(edge_profile(image, formed_mask, kind, PX))
        assert fit.core_fwhm_px * PX == pytest.approx(fwhm_um, rel=tolerance), kind
    # The halo is read at the surface, the larger step (calibration takes it from there).
    surface = fit_edge(edge_profile(image, formed_mask, SURFACE, PX))
    if halo > 0:
        assert surface.halo_fraction == pytest.approx(halo, abs=0.05)
        assert surface.halo_fwhm_px is not None and surface.halo_fwhm_px * PX == pytest.approx(3.0, rel=0.35)
    else:
        assert surface.halo_fraction is None or surface.halo_fraction < 0.05
    if fwhm_um <= 0.5:  # the edge brightening at the void edge; a wide blur smears it into the step
        assert surface.rim == pytest.approx(0.08, abs=0.03)


def test_no_edge_no_blur() -> None:
    flat = np.full((100, 200), classes.FE2AL5, np.uint8)
    with pytest.raises(EstimateError, match="columns cross it cleanly"):
        edge_profile(np.full((100, 200), 0.5), flat, SURFACE, PX)
    # An edge in the mask without a step in the image.
    mask = layered_mask(200, 300, 60, 150)
    with pytest.raises(EstimateError, match="no step across it"):
        fit_edge(edge_profile(np.full(mask.shape, 0.5) + np.random.default_rng(0).normal(0, 0.01, mask.shape),
                              mask, INTERFACE, PX))


def test_flat_regions_keep_away_from_every_other_class() -> None:
    mask = layered_mask(300, 400, 80, 220, pores=10)
    regions = flat_regions(mask, 4.0)
    from scipy import ndimage as ndi

    for class_id, region in regions.items():
        assert not region[mask != class_id].any()
        assert (ndi.distance_transform_edt(mask == class_id)[region] > 4.0).all()
    assert classes.PORE not in regions and classes.FEAL not in regions  # not flat classes / absent


def test_greys_and_shading_are_fitted_together_with_the_halo() -> None:
    mask = layered_mask(300, 400, 80, 220, pores=15)
    psf_um = 0.4
    img = imaging(probe_fwhm_um=psf_um, probe_halo_fraction=0.25, probe_halo_fwhm_um=4.0, shading_amplitude=0.06,
                  dose_electrons_per_px=500.0)
    pixels, formed_mask = formed(mask, img, seed=2)
    image = files.to_unit_float(pixels)
    sigma = psf_um / PX / FWHM_PER_SIGMA
    psf = Psf(sigma, 0.25, 4.0 / PX / FWHM_PER_SIGMA)
    regions = flat_regions(formed_mask, 3 * sigma + 1)
    fit = fit_levels(image, formed_mask, regions, psf, _shape(formed_mask), 2 * sigma)
    assert fit.greys["resin"] == pytest.approx(0.12, abs=0.004)
    assert fit.greys["fe2al5"] == pytest.approx(0.62, abs=0.006)
    assert fit.greys["substrate"] == pytest.approx(0.88, abs=0.008)
    assert fit.shading_amplitude == pytest.approx(0.06, abs=0.012)
    # Without the halo in the model the resin, a quarter of whose halo reaches into the bright coating, reads high.
    naive = fit_levels(image, formed_mask, regions, Psf(sigma), _shape(formed_mask), 2 * sigma)
    assert naive.greys["resin"] - 0.12 > 2 * abs(fit.greys["resin"] - 0.12)
    # The prediction from the segmentation is the image without noise.
    predicted = predicted_image(formed_mask, fit, psf, _shape(formed_mask))
    assert float(np.median(np.abs(predicted - image)[regions[classes.FE2AL5]])) < 0.03


def _scratched(seed: int, density: float) -> tuple[np.ndarray, np.ndarray, int]:
    mask = layered_mask(300, 400, 30, 270, roughness_px=2)
    count = int(np.random.default_rng(seed).poisson(density * 400 * PX / 100.0))
    factor = scratch_factor(mask, PX, density, 0.08, np.random.default_rng(seed))
    pixels, formed_mask = formed(mask, imaging(dose_electrons_per_px=800.0), seed=seed, texture=factor)
    return files.to_unit_float(pixels), formed_mask, count


def test_scratches_are_counted() -> None:
    # Faint grooves (depth 30 % of the contrast) may hide in the noise, so whether one is found depends on the draw:
    # over seeds, most are found, none is invented, and the contrast is read from those found.
    drawn = found = 0
    for seed in range(12):
        image, mask, count = _scratched(seed, 8.0)
        regions = flat_regions(mask, 3.0)
        psf = Psf(0.85)
        predicted = predicted_image(mask, fit_levels(image, mask, regions, psf, _shape(mask), 2.0), psf,
                                    _shape(mask))
        fit = find_scratches(image, regions[classes.FE2AL5] | regions[classes.SUBSTRATE], PX, 400, 0.85, predicted)
        assert count // 2 <= len(fit.scratches) <= count, f"seed {seed}: {len(fit.scratches)} of {count} found"
        assert fit.density_per_100um == pytest.approx(100 * len(fit.scratches) / (400 * PX))
        assert fit.contrast is not None and 0.04 <= fit.contrast <= 0.12  # 0.08 drawn
        drawn, found = drawn + count, found + len(fit.scratches)
    assert drawn >= 30 and found >= 0.65 * drawn, f"{found} of {drawn} scratches found"  # ~3/4 typically


def test_no_scratch_is_found_where_there_is_none() -> None:
    image, mask, _ = _scratched(2, 0.0)
    regions = flat_regions(mask, 3.0)
    solid = regions[classes.FE2AL5] | regions[classes.SUBSTRATE]
    assert find_scratches(image, solid, PX, 400, 0.85).scratches == ()
    with pytest.raises(EstimateError, match="flat solid pixels"):
        find_scratches(image, np.zeros(mask.shape, bool), PX, 400)
