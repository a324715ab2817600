"""Scan noise (issue 11 point 10): frame averaging, line-correlated noise, JPEG saving, and the dose's meaning."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from blender_addon.render_node.scan_noise import (
    along_lines,
    frame_averaged_signal,
    frame_deviations_px,
    jpeg_roundtrip,
    line_noise,
)
from blender_addon.render_node.sem_image import (
    ScanStreams,
    apply_line_shifts,
    form_image,
    scan_margin_px,
    shift_mask,
)
from semcoat import classes
from semcoat.spec import ImagingSpec

QUIET = {"probe_fwhm_um": 0.0, "detector_noise_std": 0.0, "edge_brightening": 0.0, "shading_amplitude": 0.0,
         "bit_depth": 16}


def _stripes(width: int, height: int, margin: int) -> tuple[np.ndarray, np.ndarray]:
    """Vertical stripes 7 px wide of two phases, so every line crosses many edges."""
    cols = np.arange(width + 2 * margin)
    mask = np.broadcast_to(np.where((cols // 7) % 2 == 0, classes.FE2AL5, classes.SUBSTRATE), (height, cols.size))
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    return np.where(mask == classes.FE2AL5, 0.4, 0.8).astype(np.float32), mask


def test_frame_deviations_are_centred_and_make_independent_scans_of_the_per_frame_jitter() -> None:
    rng = np.random.default_rng(0)
    jitter, frames, rows = 0.5, 4, 20000
    d = frame_deviations_px(rows, frames, jitter, rng)
    assert d.shape == (rows, frames)
    assert np.allclose(d.mean(axis=1), 0.0, atol=1e-12)
    # Each frame's line sits at mean + deviation; with the mean jittering by `jitter`, a frame's line jitters by
    # jitter * sqrt(frames) and two frames' lines are uncorrelated: the law of independent scans.
    mean = rng.normal(0.0, jitter, rows)
    per_frame = mean[:, None] + d
    assert per_frame.std(axis=0) == pytest.approx(np.full(frames, jitter * np.sqrt(frames)), rel=0.03)
    assert abs(np.corrcoef(per_frame[:, 0], per_frame[:, 1])[0, 1]) < 0.03


def test_frame_average_is_the_mean_of_the_frames_read_one_by_one() -> None:
    margin = 6
    signal, mask = _stripes(80, 40, margin)
    signal = signal + np.random.default_rng(1).uniform(0, 0.1, signal.shape).astype(np.float32)
    rng = np.random.default_rng(2)
    shifts = rng.uniform(-2.0, 2.0, 40)
    deviations = frame_deviations_px(40, 3, 0.8, rng)
    expected = np.mean([apply_line_shifts(signal, mask, shifts + deviations[:, k], margin)[0] for k in range(3)], 0)
    got = frame_averaged_signal(signal, shifts, deviations, margin)
    assert got.dtype == np.float32
    assert np.allclose(got, expected, atol=1e-5)
    # No deviations: the single read.
    single = frame_averaged_signal(signal, shifts, np.zeros((40, 1)), margin)
    assert np.allclose(single, apply_line_shifts(signal, mask, shifts, margin)[0], atol=1e-6)


def test_averaged_frames_keep_the_mask_and_smear_edges_along_the_scan() -> None:
    base = ImagingSpec(width_px=96, height_px=64, scan_line_jitter_px=0.6, dose_electrons_per_px=1e6, **QUIET)
    averaged = dataclasses.replace(base, frame_count=8)
    margin = scan_margin_px(averaged)
    assert margin > scan_margin_px(base)  # room for the per-frame jitter, sqrt(8) times the final image's
    signal, mask = _stripes(96, 64, margin)
    one = form_image(signal, mask, base, margin, np.random.default_rng(4))
    many = form_image(signal, mask, averaged, margin, np.random.default_rng(4))
    assert np.array_equal(one.mask, many.mask)  # the mask follows the mean position, drawn as for one frame
    assert np.array_equal(one.line_shift_px, many.line_shift_px)
    # Edge pixels take intermediate greys more often: the mean of jittered frames blurs each edge.
    levels = (np.uint16(0.4 * 65535), np.uint16(0.8 * 65535))

    def intermediate(pixels: np.ndarray) -> int:
        return int(np.count_nonzero((pixels > levels[0] + 2000) & (pixels < levels[1] - 2000)))

    assert intermediate(many.pixels) > 1.5 * intermediate(one.pixels)


@pytest.mark.parametrize("frames", [1, 4])
def test_the_dose_is_the_final_images_electrons_per_pixel_whatever_the_frame_count(frames: int) -> None:
    grey, dose = 0.5, 80.0
    img = ImagingSpec(width_px=256, height_px=256, dose_electrons_per_px=dose, frame_count=frames,
                      scan_line_jitter_px=0.0, **QUIET)
    margin = scan_margin_px(img)
    signal = np.full((256, 256 + 2 * margin), grey, np.float32)
    mask = np.full(signal.shape, classes.FE2AL5, np.uint8)
    pixels = form_image(signal, mask, img, margin, np.random.default_rng(5)).pixels / 65535.0
    # What calibration reads back as the dose: sqrt(g / dose), of which the scan bandwidth leaves sqrt(0.44).
    assert pixels.std() == pytest.approx(np.sqrt(grey / dose) * np.sqrt(0.44), rel=0.05)


def test_line_noise_has_its_std_is_correlated_along_lines_and_independent_between_them() -> None:
    shape = (400, 600)
    noise = line_noise(shape, 0.02, 60.0, np.random.default_rng(6))
    assert noise.dtype == np.float32 and noise.shape == shape
    assert noise.std() == pytest.approx(0.02, rel=0.03)

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])

    assert corr(noise[:, :-5], noise[:, 5:]) > 0.9  # 5 px along a line: nearly the same value
    assert corr(noise[:, :-300], noise[:, 300:]) < 0.2  # five lengths along: decorrelated
    assert abs(corr(noise[:-1], noise[1:])) < 0.05  # the next line is independent
    offsets = line_noise(shape, 0.02, 1e5, np.random.default_rng(6))  # far beyond the width: an offset per line
    assert (offsets.std(axis=1) < 0.1 * offsets.std()).all()
    rng = np.random.default_rng(7)
    assert not line_noise(shape, 0.0, 60.0, rng).any()
    assert rng.bit_generator.state == np.random.default_rng(7).bit_generator.state  # nothing drawn when off


@pytest.mark.parametrize("step_px", [1.0, 2.5, 7.3, 37.5, 199.0, 250.0, 4000.0])
def test_lines_read_the_grid_linearly_at_the_step(step_px: float) -> None:
    cols = 200
    samples = int(np.ceil((cols - 1) / step_px)) + 2
    ramp = np.broadcast_to(np.arange(samples, dtype=np.float32), (3, samples))
    pos = along_lines(ramp, step_px, cols)  # the grid position each pixel reads
    assert pos.shape == (3, cols) and pos.dtype == np.float32
    assert np.allclose(np.diff(pos, axis=1), 1.0 / step_px, atol=1e-5)
    assert 0.0 <= pos[0, 0] < 1.0 / step_px + 1e-6  # a phase under one pixel
    grid = np.random.default_rng(3).standard_normal((3, samples)).astype(np.float32)
    expected = np.array([np.interp(pos[0], np.arange(samples), row) for row in grid])
    assert np.allclose(along_lines(grid, step_px, cols), expected, atol=1e-5)


def test_jpeg_roundtrip_adds_block_artefacts_deterministically_at_both_bit_depths() -> None:
    rng = np.random.default_rng(8)
    smooth = np.clip(np.cumsum(rng.normal(0, 2, (96, 128)), axis=1) + 128, 0, 255).astype(np.uint8)
    out = jpeg_roundtrip(smooth, 30)
    assert out.dtype == np.uint8 and out.shape == smooth.shape
    assert np.array_equal(out, jpeg_roundtrip(smooth, 30))
    err = out.astype(float) - smooth
    assert 0 < np.abs(err).mean() < 12
    assert np.abs(jpeg_roundtrip(smooth, 95).astype(float) - smooth).mean() < np.abs(err).mean()
    # Block artefacts: the step across an 8 px block border is larger than inside a block.
    steps = np.abs(np.diff(out.astype(float), axis=1)) - np.abs(np.diff(smooth.astype(float), axis=1))
    assert steps[:, 7::8].mean() > steps[:, 3::8].mean()
    deep = jpeg_roundtrip(smooth.astype(np.uint16) * np.uint16(257), 30)
    assert deep.dtype == np.uint16 and np.array_equal(deep, out.astype(np.uint16) * 257)


def test_each_new_step_draws_only_from_its_own_stream_and_off_changes_nothing() -> None:
    margin = 6
    signal, mask = _stripes(96, 48, margin)
    base = ImagingSpec(width_px=96, height_px=48, scan_line_jitter_px=0.5)
    plain = form_image(signal, mask, base, margin, np.random.default_rng(9), streams=ScanStreams.fixed())
    for change in ({"line_noise_std": 0.02}, {"jpeg_quality": 60}):
        rng = np.random.default_rng(9)
        other = form_image(signal, mask, dataclasses.replace(base, **change), margin, rng)
        assert np.array_equal(other.mask, plain.mask)
        assert not np.array_equal(other.pixels, plain.pixels)
        # The main stream moved exactly as without the feature: shifts, shading, shot and detector noise.
        reference = np.random.default_rng(9)
        form_image(signal, mask, base, margin, reference)
        assert rng.bit_generator.state == reference.bit_generator.state
    streams = ScanStreams.fixed()
    form_image(signal, mask, base, margin, np.random.default_rng(9), streams=streams)
    fresh = ScanStreams.fixed()
    assert streams.frames.bit_generator.state == fresh.frames.bit_generator.state  # one frame: nothing drawn
    assert streams.line_noise.bit_generator.state == fresh.line_noise.bit_generator.state


def test_the_mask_alone_is_the_mask_of_the_shifted_read() -> None:
    signal, mask = _stripes(700, 600, 6)
    shifts = np.random.default_rng(10).uniform(-4.9, 4.9, 600)
    assert np.array_equal(shift_mask(mask, shifts, 6), apply_line_shifts(signal, mask, shifts, 6)[1])
