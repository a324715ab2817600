"""Image formation: alignment rule for scan shifts, data bar rule, bit depths, determinism."""

from __future__ import annotations

import dataclasses

import numpy as np

from blender_addon.render_node.sem_image import apply_line_shifts, form_image, scan_margin_px
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
