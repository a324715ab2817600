"""The top edge rounded by polishing and charging streaks from the resin (issue 11 point 6, the image part)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from blender_addon.render_node.charging import charging_streaks
from blender_addon.render_node.interfaces import round_top_edge
from blender_addon.render_node.sem_image import ScanStreams, form_image
from semcoat import classes
from semcoat.spec import ImagingSpec

RESIN, FE2AL5 = 0.09, 0.68


def _section(rows: int = 120, cols: int = 80, surface: int = 30) -> tuple[np.ndarray, np.ndarray]:
    mask = np.full((rows, cols), classes.FE2AL5, np.uint8)
    mask[:surface] = classes.BACKGROUND
    return np.where(mask == classes.BACKGROUND, RESIN, FE2AL5).astype(np.float32), mask


def _rounded(signal: np.ndarray, mask: np.ndarray, width_px: float, brightness: float = 0.3) -> np.ndarray:
    out = signal.copy()
    round_top_edge(out, mask, width_px, brightness)
    return out


def test_the_rounded_edge_is_a_bright_soft_rim_that_fades_over_its_width() -> None:
    signal, mask = _section()
    out = _rounded(signal, mask, 5.0)
    column = out[:, 40]
    assert column[30:40].max() > 1.1 * FE2AL5  # bright just under the edge
    assert column[33] > column[38] > column[43] > FE2AL5 * 1.001  # fading with depth
    assert column[70] == pytest.approx(FE2AL5, rel=1e-3)  # gone a few widths down
    assert column[28] > RESIN + 0.05  # soft: the rim spills into the resin just above
    assert column[5] == pytest.approx(RESIN, abs=1e-3)
    assert np.array_equal(out[:, 10], out[:, 60])  # a straight edge: every column alike
    assert np.array_equal(_rounded(signal, mask, 0.0), signal)


def test_no_rim_where_the_coating_starts_at_the_frames_top_edge() -> None:
    signal, mask = _section()
    mask[:, :20] = classes.FE2AL5  # a frame that starts inside the coating on the left
    signal[:, :20] = FE2AL5
    out = _rounded(signal, mask, 5.0)
    assert np.allclose(out[:, 5], FE2AL5, atol=0.02)  # only the blur of the neighbours' rim reaches in
    assert out[30:40, 50].max() > 1.1 * FE2AL5
    everywhere = np.full((50, 50), classes.FE2AL5, np.uint8)
    flat = np.full(everywhere.shape, FE2AL5, np.float32)
    assert np.array_equal(_rounded(flat, everywhere, 5.0), flat)


def test_streaks_start_at_resin_edges_and_fade_along_the_scan() -> None:
    mask = np.full((40, 200), classes.FE2AL5, np.uint8)
    mask[:, :50] = classes.BACKGROUND  # every line leaves the resin at column 50
    mask[:10] = classes.FE2AL5  # these lines cross no resin edge
    rows, values = charging_streaks(mask, 0.05, 20.0, 1.0, np.random.default_rng(1))
    assert np.array_equal(rows, np.arange(10, 40))
    assert np.all(values[:, :50] == 0.0)  # nothing before the edge along the scan
    start = values[:, 50]
    assert np.all(start != 0.0) and (start > 0).any() and (start < 0).any()  # bright and dark streaks
    assert start.std() == pytest.approx(0.05, rel=0.5)
    assert np.allclose(values[:, 70], start * np.exp(-1.0), rtol=1e-4)  # 1/e after one length
    assert np.all(np.abs(values) <= np.abs(start)[:, None] + 1e-7)


def test_a_share_of_the_crossing_lines_carry_streaks_and_none_is_drawn_when_off() -> None:
    mask = np.full((2000, 60), classes.FE2AL5, np.uint8)
    mask[:, :20] = classes.BACKGROUND
    rows, _ = charging_streaks(mask, 0.05, 10.0, 0.3, np.random.default_rng(2))
    assert rows.size == pytest.approx(600, rel=0.15)
    for amplitude, fraction in ((0.0, 0.3), (0.05, 0.0)):
        rng = np.random.default_rng(3)
        assert charging_streaks(mask, amplitude, 10.0, fraction, rng) is None
        assert rng.bit_generator.state == np.random.default_rng(3).bit_generator.state
    assert charging_streaks(np.full((20, 20), classes.FE2AL5, np.uint8), 0.05, 10.0, 1.0, rng) is None


def test_form_image_adds_streaks_on_the_lines_crossing_resin_edges_only() -> None:
    rows, cols, margin = 64, 96, 4
    mask = np.full((rows, cols + 2 * margin), classes.FE2AL5, np.uint8)
    mask[:, : margin + 40] = classes.BACKGROUND
    mask[:20] = classes.FE2AL5
    signal = np.where(mask == classes.BACKGROUND, RESIN, FE2AL5).astype(np.float32)
    quiet = ImagingSpec(width_px=cols, height_px=rows, dose_electrons_per_px=1e6, detector_noise_std=0.0,
                        scan_line_jitter_px=0.0, shading_amplitude=0.0, edge_brightening=0.0, probe_fwhm_um=0.0,
                        bit_depth=16)
    charged = dataclasses.replace(quiet, charging_amplitude=0.05, charging_line_fraction=1.0)
    plain = form_image(signal, mask, quiet, margin, np.random.default_rng(4), streams=ScanStreams.fixed())
    streaky = form_image(signal, mask, charged, margin, np.random.default_rng(4), streams=ScanStreams.fixed())
    assert np.array_equal(plain.mask, streaky.mask)
    diff = np.abs(streaky.pixels.astype(float) - plain.pixels)
    # The shot noise at 1e6 e-/px is ~13 of 65535 here, drawn anew after the first streak changes the signal.
    assert diff[:20].max() == 0  # no edge on these lines, drawn before any streak
    assert np.mean(diff[20:, 45] > 150) > 0.8  # the crossing lines carry their streak after the edge (0.05 ~ 3300)
    assert diff[20:, :38].max() < 150  # and nothing before it
