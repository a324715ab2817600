"""Image formation: alignment rule for scan shifts, data bar rule, bit depths, determinism."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from blender_addon.render_node.sem_image import apply_line_shifts, form_image, probe_blur, scan_margin_px
from semcoat import classes
from semcoat.spec import ImagingSpec


def _frame(width: int = 64, height: int = 48, margin: int = 4) -> tuple[np.ndarray, np.ndarray]:
    mask = np.zeros((height, width + 2 * margin), np.uint8)
    mask[10:] = classes.FE2AL5
    mask[30:] = classes.SUBSTRATE
    mask[15:20, 20:30] = classes.PORE
    mask[:, ::7] = np.where(mask[:, ::7] == classes.FE2AL5, classes.PRECIPITATE, mask[:, ::7])
    greys = np.array([0.1, 0.6, 0.7, 0.9, 0.02, 0.8], np.float32)
    return greys[mask], mask


def test_without_shifts_the_mask_is_the_render_cropped() -> None:
    signal, mask = _frame()
    out_signal, out_mask = apply_line_shifts(signal, mask, np.zeros(mask.shape[0]), 4)
    assert np.array_equal(out_mask, mask[:, 4:-4])
    assert np.array_equal(out_signal, signal[:, 4:-4])


def test_shifted_lines_move_mask_and_signal_together() -> None:
    signal, mask = _frame()
    shifts = np.random.default_rng(0).uniform(-2.4, 2.4, mask.shape[0])
    out_signal, out_mask = apply_line_shifts(signal, mask, shifts, 4)
    for r, s in enumerate(shifts):
        expected = mask[r, 4 + int(np.rint(s)): 4 + int(np.rint(s)) + out_mask.shape[1]]
        assert np.array_equal(out_mask[r], expected)
    # Where a pixel and its neighbours share one class, the interpolated signal is that class's grey exactly.
    greys = np.array([0.1, 0.6, 0.7, 0.9, 0.02, 0.8], np.float32)
    uniform = (np.roll(out_mask, 1, 1) == out_mask) & (np.roll(out_mask, -1, 1) == out_mask)
    uniform[:, [0, -1]] = False  # np.roll wraps around
    assert np.allclose(out_signal[uniform], greys[out_mask[uniform]])


def test_data_bar_rows_are_background_in_the_mask() -> None:
    signal, mask = _frame()
    imaging = ImagingSpec(width_px=64, height_px=48, data_bar=True, data_bar_height_px=10)
    sem = form_image(signal, mask, imaging, 4, np.random.default_rng(0))
    assert np.all(sem.mask[-10:] == classes.BACKGROUND)
    assert np.any(sem.mask[:-10] != classes.BACKGROUND)
    assert sem.pixels[-10:].max() == 255  # white scale bar and labels on black


def test_bit_depths_and_determinism() -> None:
    signal, mask = _frame()
    imaging = ImagingSpec(width_px=64, height_px=48, scan_line_jitter_px=0.5, drift_px=1.0)
    margin = scan_margin_px(imaging)
    signal, mask = _frame(margin=margin)
    a = form_image(signal, mask, imaging, margin, np.random.default_rng(3))
    b = form_image(signal, mask, imaging, margin, np.random.default_rng(3))
    assert a.pixels.dtype == np.uint8 and a.pixels.shape == (48, 64)
    assert np.array_equal(a.pixels, b.pixels) and np.array_equal(a.mask, b.mask)
    deep = form_image(signal, mask, dataclasses.replace(imaging, bit_depth=16), margin, np.random.default_rng(3))
    assert deep.pixels.dtype == np.uint16 and deep.pixels.max() > 255


def test_phases_keep_their_order_of_brightness_through_the_noise() -> None:
    signal, mask = _frame()
    sem = form_image(signal, mask, ImagingSpec(width_px=64, height_px=48), 4, np.random.default_rng(1))
    mean = {c: sem.pixels[sem.mask == c].mean() for c in (classes.BACKGROUND, classes.FE2AL5, classes.SUBSTRATE)}
    assert mean[classes.BACKGROUND] < mean[classes.FE2AL5] < mean[classes.SUBSTRATE]


def test_probe_is_a_narrow_core_plus_a_wide_halo_of_the_asked_physical_widths() -> None:
    impulse = np.zeros((257, 257), np.float32)
    impulse[128, 128] = 1.0
    core = probe_blur(impulse, 4.0)
    profile = core[128]
    above_half = np.flatnonzero(profile >= profile.max() / 2)
    assert above_half.size == pytest.approx(4.0, abs=1.0)  # FWHM in px, to the pixel
    with_halo = probe_blur(impulse, 4.0, 0.2, 40.0)
    assert with_halo.sum() == pytest.approx(1.0, rel=0.02)
    rows, cols = np.indices(impulse.shape)
    far = np.hypot(rows - 128, cols - 128) > 12  # three core widths out
    assert with_halo[far].sum() == pytest.approx(0.2 * 0.9, abs=0.03)  # the halo's share lies out there
    assert core[far].sum() < 1e-3
    assert with_halo[128, 128] == pytest.approx(0.8 * core[128, 128], rel=0.05)
    assert np.array_equal(probe_blur(impulse, 0.0), impulse)  # the ideal probe


def test_the_probe_width_is_physical_so_a_finer_pixel_blurs_over_more_pixels() -> None:
    step = np.zeros((64, 134), np.float32)
    step[:, 67:] = 1.0
    mask = np.full(step.shape, 1, np.uint8)
    widths = []
    for pixel_um in (0.05, 0.2):
        img = ImagingSpec(pixel_size_um=pixel_um, width_px=130, height_px=64, probe_fwhm_um=0.8,
                          dose_electrons_per_px=1e9, detector_noise_std=0.0, scan_line_jitter_px=0.0,
                          edge_brightening=0.0, shading_amplitude=0.0, bit_depth=16)
        out = form_image(step * 0.5 + 0.25, mask, img, 2, np.random.default_rng(0)).pixels.astype(float)[32]
        lo, hi = out.min(), out.max()
        widths.append(np.count_nonzero((out > lo + 0.1 * (hi - lo)) & (out < hi - 0.1 * (hi - lo))))
    assert widths[0] == pytest.approx(4 * widths[1], rel=0.35)


@pytest.mark.parametrize("shift", [0.5, -1.5, 0.49999999999999994, 1.5000000000000002, 0.3, -2.7])
def test_the_mask_reads_the_nearest_pixel_by_the_formula_even_at_half_pixel_shifts(shift: float) -> None:
    margin = 4
    mask = np.random.default_rng(2).integers(0, 6, (6, 40 + 2 * margin)).astype(np.uint8)
    shifts = np.full(mask.shape[0], shift)
    shifts[::2] += np.random.default_rng(3).uniform(-1.0, 1.0, 3)  # lines of other offsets beside them
    pos = np.arange(40, dtype=np.float64)[None, :] + margin + shifts[:, None]
    expected = mask[np.arange(mask.shape[0])[:, None], np.rint(pos).astype(np.intp)]  # ties to even, as the preview
    assert np.array_equal(apply_line_shifts(mask.astype(np.float32), mask, shifts, margin)[1], expected)
