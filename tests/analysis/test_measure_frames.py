"""Measurements of tilted cross-sections and of frames that cut the coating (issue 11 point 7): lengths across the
coating whatever the tilt, and None (never a made-up number) where the frame does not show what a value needs."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.frame_columns import frame_columns, tilt_rad
from analysis.measure import measure
from semcoat.classes import BACKGROUND, FE2AL5, FEAL, PORE, SUBSTRATE
from semcoat.measurements import value_problems
from tests.analysis.masks import slab, square_lattice


def turned_coating(
    tilt_deg: float, surface: float = 40.0, thickness: float = 120.0, feal: float = 0.0,
    line_depth: float | None = None, height: int = 300, width: int = 600,
) -> np.ndarray:
    """A straight coating turned by ``tilt_deg`` about the frame's centre (positive: descending to the right), each
    pixel the class at its centre. ``surface``, ``thickness``, ``feal`` and the pore line's ``line_depth`` (round
    pores of radius 3 every 12 px) are in pixels, across the coating."""
    t = np.radians(tilt_deg)
    cx, cy = width / 2, height / 2
    y, x = np.mgrid[0:height, 0:width] + 0.5
    # coating-frame coordinates of each pixel centre: along (u) and down (v) the coating
    u = cx + (x - cx) * np.cos(t) + (y - cy) * np.sin(t)
    v = cy - (x - cx) * np.sin(t) + (y - cy) * np.cos(t)
    mask = np.full((height, width), SUBSTRATE, np.uint8)
    mask[v < surface + thickness + feal] = FEAL
    mask[v < surface + thickness] = FE2AL5
    mask[v < surface] = BACKGROUND
    if line_depth is not None:
        centre_v = surface + line_depth
        du = (u + 6.0) % 12.0 - 6.0
        mask[du**2 + (v - centre_v) ** 2 < 9.0] = PORE
    return mask


@pytest.mark.parametrize("tilt_deg", [-5.0, -2.0, 0.0, 3.0, 5.0])
def test_a_turned_coating_is_measured_across_it(tilt_deg: float) -> None:
    mask = turned_coating(tilt_deg, thickness=120.0, feal=10.0, line_depth=50.0)
    assert np.degrees(tilt_rad(frame_columns(mask))) == pytest.approx(tilt_deg, abs=0.1)
    m = measure(mask, pixel_size_um=0.5)
    assert m.fe2al5_thickness_um == pytest.approx(0.5 * 120.0, abs=0.5)  # within a pixel
    assert m.feal_present is True and m.feal_thickness_um == pytest.approx(0.5 * 10.0, abs=0.5)
    assert m.pore_line_present is True and m.pore_line_depth_um == pytest.approx(0.5 * 50.0, abs=0.5)
    assert m.fe2al5_top_thickness_um + m.fe2al5_bottom_thickness_um == pytest.approx(m.fe2al5_thickness_um)


def test_uncorrected_the_tilt_would_show_as_extra_thickness() -> None:
    straight = measure(turned_coating(0.0), 1.0).fe2al5_thickness_um
    turned = measure(turned_coating(5.0), 1.0).fe2al5_thickness_um
    vertical = 120.0 / np.cos(np.radians(5.0))  # what a column of the turned coating holds: 0.46 px more
    assert abs(turned - straight) < 0.1 and vertical - straight > 0.4


def test_a_stray_blob_does_not_turn_the_tilt_estimate() -> None:
    mask = turned_coating(2.0)
    mask[:35, 500:540] = FE2AL5  # a blob stuck to the top edge, over 40 columns
    mask[5:35, 100:130] = FE2AL5  # and one floating in the resin
    assert np.degrees(tilt_rad(frame_columns(mask))) == pytest.approx(2.0, abs=0.2)


def test_a_frame_whose_band_runs_off_the_bottom_gives_fractions_and_no_thickness() -> None:
    mask = slab(height=200, width=300, surface=40, thickness=400)  # the band runs off the bottom edge
    n = square_lattice(mask, np.full(300, 40), depths=range(60, 61), columns=range(0, 296, 10), size=4)
    m = measure(mask, 0.5)
    assert m.fe2al5_thickness_um is None and m.fe2al5_thickness_std_um is None
    assert m.feal_present is None and m.feal_thickness_um is None  # the band's bottom is not in the frame
    assert m.pore_fraction_pct == pytest.approx(100.0 * n / (160 * 300))
    assert m.pore_line_present is True and m.pore_line_depth_um == pytest.approx(0.5 * 62)
    assert m.fe2al5_top_thickness_um == pytest.approx(0.5 * 62) and m.fe2al5_bottom_thickness_um is None
    assert not value_problems(m.as_dict())  # a valid truth for the dataset checker
    plain = slab(height=200, width=300, surface=40, thickness=400)
    assert measure(plain, 0.5).pore_line_present is None  # no line in the frame: it may lie below


def test_a_data_bar_ends_the_band_like_the_bottom_edge() -> None:
    mask = slab(height=200, width=300, surface=40, thickness=400)
    mask[180:] = BACKGROUND  # the data bar's rows
    mask[100:104, ::10] = PORE
    m = measure(mask, 1.0)
    assert m.fe2al5_thickness_um is None
    assert m.pore_fraction_pct == pytest.approx(100.0 * 4 * 30 / (140 * 300))


def test_a_frame_without_the_surface_gives_the_feal_and_no_surface_measurements() -> None:
    mask = slab(height=200, width=300, surface=0, thickness=120, feal=20)  # the surface lies above the top edge
    mask[50:54, ::10] = PORE
    m = measure(mask, 0.5)
    assert m.fe2al5_thickness_um is None
    assert m.pore_line_present is None and m.pore_line_depth_um is None and m.fe2al5_top_thickness_um is None
    assert m.feal_present is True and m.feal_thickness_um == pytest.approx(10.0)
    assert m.pore_fraction_pct == pytest.approx(100.0 * 4 * 30 / (120 * 300))


def test_a_frame_inside_the_fe2al5_only_gives_fractions() -> None:
    mask = np.full((100, 200), FE2AL5, np.uint8)
    mask[40:44, ::8] = PORE
    m = measure(mask, 1.0).as_dict()
    assert m["pore_fraction_pct"] == pytest.approx(100.0 * 4 * 25 / (100 * 200))
    assert {k for k, v in m.items() if v is None} == {
        "fe2al5_thickness_um", "fe2al5_thickness_std_um", "fe2al5_top_thickness_um", "fe2al5_bottom_thickness_um",
        "feal_present", "feal_thickness_um", "pore_line_present", "pore_line_depth_um"}


def test_a_few_cut_columns_leave_a_whole_frame_measured_as_before() -> None:
    mask = slab(height=200, width=300, surface=40, thickness=100, feal=8)
    mask[:, :40] = FE2AL5  # 40 columns without the surface (coating up to the top edge)
    m = measure(mask, 1.0)
    assert m.fe2al5_thickness_um == 100.0  # the whole columns alone
    assert m.feal_present is True and m.feal_thickness_um == 8.0
