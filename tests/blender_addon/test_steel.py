"""The steel's martensite and bright particles (issue 11 point 8), and headroom below white over the presets."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from blender_addon.render_node import batch_render as br
from blender_addon.render_node.specimen import SpecimenStreams, specimen_signal
from blender_addon.render_node.steel import apply_laths, apply_particles
from semcoat import classes
from semcoat.presets import PRESETS, preset_batch
from semcoat.spec import CoatingSpec, GreyLevelSpec
from tests.blender_addon.fakes import RasterRenderer


def _steel_frame(rows: int = 300, cols: int = 400, coating_rows: int = 60) -> np.ndarray:
    mask = np.full((rows, cols), classes.SUBSTRATE, np.uint8)
    mask[:coating_rows] = classes.FE2AL5
    mask[100:110, 50:60] = classes.PORE  # not steel, so never textured
    return mask


def _laths(mask: np.ndarray, pixel_um: float = 0.1, contrast: float = 0.05, width_um: float = 0.8,
           packet_um: float = 12.0, seed: int = 0) -> np.ndarray:
    factor = np.ones(mask.shape, np.float32)
    apply_laths(factor, mask, pixel_um, contrast, width_um, packet_um, np.random.default_rng(seed))
    return factor


def _anisotropy(field: np.ndarray) -> tuple[float, float]:
    """(largest / smallest eigenvalue of the summed gradient structure tensor, dominant gradient angle in rad)."""
    gy, gx = np.gradient(field.astype(np.float64))
    j = np.array([[np.sum(gx * gx), np.sum(gx * gy)], [np.sum(gx * gy), np.sum(gy * gy)]])
    values, vectors = np.linalg.eigh(j)
    return float(values[1] / max(values[0], 1e-30)), float(np.arctan2(vectors[1, 1], vectors[0, 1]))


def test_laths_texture_only_the_steel_within_the_contrast() -> None:
    mask = _steel_frame()
    factor = _laths(mask)
    steel = mask == classes.SUBSTRATE
    assert np.all(factor[~steel] == 1.0)
    assert factor[steel].std() > 0.01
    assert 1.0 - 0.05 - 1e-6 <= factor.min() and factor.max() <= 1.0 + 0.05 + 1e-6
    rng = np.random.default_rng(3)
    untouched = np.ones(mask.shape, np.float32)
    apply_laths(untouched, mask, 0.1, 0.0, 0.8, 12.0, rng)
    assert np.all(untouched == 1.0)
    assert rng.bit_generator.state == np.random.default_rng(3).bit_generator.state  # nothing drawn when off


def test_a_packet_is_bands_along_one_direction_and_packets_take_a_few_directions() -> None:
    mask = np.full((400, 400), classes.SUBSTRATE, np.uint8)
    one_packet = _laths(mask, packet_um=1000.0)
    ratio, _ = _anisotropy(one_packet)
    assert ratio > 4.0  # blocks ten times longer than wide: grey changes across the laths, hardly along them
    # Many packets: each tile of one packet has its own direction, and the directions of the frame are four,
    # 45 degrees apart (each spread by a few degrees): their angles modulo 45 degrees agree.
    many = _laths(np.full((800, 800), classes.SUBSTRATE, np.uint8), packet_um=40.0, seed=1)
    angles, ratios = [], []
    for r in range(0, 800, 100):
        for c in range(0, 800, 100):
            ratio, angle = _anisotropy(many[r:r + 100, c:c + 100])
            ratios.append(ratio)
            if ratio > 4.0:  # a tile inside one packet
                angles.append(angle)
    assert len(angles) > 20
    assert len({round(np.degrees(a) % 180 / 10) for a in angles}) >= 2  # more than one direction
    resultant = abs(np.mean(np.exp(8j * np.array(angles))))  # period of 45 degrees
    assert resultant > 0.6
    assert _anisotropy(many)[0] < _anisotropy(one_packet)[0]


def test_blocks_finer_than_two_pixels_average_out() -> None:
    mask = _steel_frame(600, 600, 0)
    # One packet, so the spread is the blocks' own: 1 px wide blocks keep sqrt(1/2) of it.
    wide = _laths(mask, pixel_um=0.2, width_um=0.8, packet_um=1000.0)
    fine = _laths(mask, pixel_um=0.2, width_um=0.2, packet_um=1000.0)
    assert fine.std() == pytest.approx(np.sqrt(0.5) * wide.std(), rel=0.15)


def test_particles_brighten_only_the_steel_about_as_many_as_asked() -> None:
    mask = _steel_frame(500, 500, 100)
    factor = np.ones(mask.shape, np.float32)
    density, radius_um, pixel_um, contrast = 3.0, 0.3, 0.1, 0.3
    apply_particles(factor, mask, pixel_um, density, radius_um, contrast, np.random.default_rng(4))
    steel = mask == classes.SUBSTRATE
    assert np.all(factor[~steel] == 1.0)
    assert factor.max() <= (1.0 + contrast) ** 2 + 1e-6  # two overlapping particles at most, in practice
    labels = cv2.connectedComponents((factor > 1.0).astype(np.uint8), connectivity=8)[0] - 1
    expected = density * np.count_nonzero(steel) * pixel_um**2 / 100.0
    assert labels == pytest.approx(expected, rel=0.3)
    bright_area_px = np.count_nonzero(factor > 1.0)
    assert bright_area_px == pytest.approx(labels * np.pi * (radius_um / pixel_um) ** 2 * (1 + 0.5**2 / 3), rel=0.3)
    rng = np.random.default_rng(5)
    none = np.ones(mask.shape, np.float32)
    apply_particles(none, mask, pixel_um, 0.0, radius_um, contrast, rng)
    assert np.all(none == 1.0) and rng.bit_generator.state == np.random.default_rng(5).bit_generator.state


def test_particles_below_half_a_pixel_brighten_their_pixel_by_their_share() -> None:
    mask = _steel_frame(200, 200, 0)
    factor = np.ones(mask.shape, np.float32)
    apply_particles(factor, mask, 0.2, 20.0, 0.04, 0.5, np.random.default_rng(6))  # radius 0.1-0.3 px
    lit = factor[factor > 1.0] - 1.0
    assert lit.size > 10
    assert lit.max() <= np.pi * 0.3**2 * 0.5 * 1.01 and lit.min() >= np.pi * 0.1**2 * 0.5 * 0.99


def test_the_steel_features_draw_from_their_own_streams() -> None:
    mask = _steel_frame()
    signal = np.where(mask == classes.SUBSTRATE, 0.9, 0.6).astype(np.float32)

    def streams() -> SpecimenStreams:
        return SpecimenStreams(*(np.random.default_rng(k) for k in range(6)))

    plain = CoatingSpec()
    steel = dataclasses.replace(plain, grey=GreyLevelSpec(steel_lath_contrast=0.05,
                                                          steel_particle_density_per_100um2=5.0))
    off = specimen_signal(signal, mask, plain, streams())
    on = specimen_signal(signal, mask, steel, streams())
    assert np.array_equal(off[mask != classes.SUBSTRATE], on[mask != classes.SUBSTRATE])
    assert not np.array_equal(off, on)


@pytest.mark.parametrize("name", list(PRESETS))
def test_the_presets_keep_the_brightest_steel_below_white(name: str) -> None:
    """Without noise, the brightest pixel of a preset image (steel with its texture, particles, shading, edge
    rims and the display's gain) stays below white: the operator's headroom. (Charging streaks, a beam artefact that
    may well saturate, are left out with the noise.)"""
    batch = preset_batch(name, count=4, seed=2)
    for path in ("imaging.dose_electrons_per_px", "imaging.line_noise_std", "imaging.jpeg_quality",
                 "imaging.charging_amplitude"):
        batch.randomize.pop(path)
    img = batch.base.imaging
    img.dose_electrons_per_px, img.detector_noise_std, img.width_px = 1e6, 0.0, 256
    renderer = RasterRenderer()
    for i in range(batch.count):
        spec = batch.sample(i)
        png = br.render_sample(batch, i, spec, renderer, br.PhaseTimes()).image_png
        pixels = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
        assert pixels.max() < 250, (i, spec.grey.substrate, spec.imaging.contrast, spec.imaging.brightness)
