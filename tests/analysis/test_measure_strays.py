"""Stray pixels of a predicted mask (issue 12): islands of FeAl or steel inside the Fe2Al5, specks of coating classes
in the resin, Fe2Al5 specks in the steel. The band's edges are step fits (analysis.frame_columns), so the measurements
stay those of the clean mask; clean masks keep the first-row edges exactly."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.frame_columns import frame_columns
from analysis.measure import check_layered, column_profile, measure
from semcoat.classes import BACKGROUND, CRACK, FE2AL5, FEAL, PORE, PRECIPITATE, SUBSTRATE
from tests.analysis.masks import coating, scattered_squares, slab


def first_row_edges(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The plain rule the step fits reduce to on clean masks: the first solid row and the first FeAl/substrate row
    (-1 where none)."""
    solid = mask != BACKGROUND
    bottom = (mask == FEAL) | (mask == SUBSTRATE)
    s = np.where(solid.any(0), solid.argmax(0), -1)
    b = np.where(bottom.any(0), bottom.argmax(0), -1)
    return s, b


def wavy(width: int = 600, height: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A rough coating with FeAl on part of the width, pores, precipitates and a crack: (mask, surface, thickness)."""
    rng = np.random.default_rng(seed)
    c = np.arange(width)
    surface = (60 + 12 * np.sin(2 * np.pi * 2 * c / width + seed)).astype(int)
    thickness = (200 + 10 * np.cos(2 * np.pi * 3 * c / width)).astype(int)
    feal = np.where((c // 100) % 2 == 0, 8, 0)  # patchy FeAl
    mask = coating(surface, thickness, height, feal)
    scattered_squares(mask, 150, 4, rows=(int(surface.max()) + 2, int((surface + thickness).min()) - 6), rng=rng)
    scattered_squares(mask, 150, 3, rows=(int(surface.max()) + 2, int((surface + thickness).min()) - 6), rng=rng,
                      value=PRECIPITATE)
    mask[surface[300] : surface[300] + 90, 300] = CRACK
    return mask, surface, thickness


def stray_blobs(mask: np.ndarray, surface: np.ndarray, thickness: np.ndarray, rng: np.random.Generator,
                n: int = 40) -> np.ndarray:
    """A copy of ``mask`` with ``n`` blobs of each kind a segmenter strays into: FeAl or steel islands inside the
    band (at least their own height above the band's bottom), coating-class specks in the resin (at least their own
    height above the surface) and Fe2Al5 specks in the steel (below the FeAl)."""
    out = mask.copy()
    height, width = mask.shape
    for _ in range(n):
        size = int(rng.integers(2, 9))
        c = int(rng.integers(0, width - size))
        top, bottom = int(surface[c : c + size].max()), int((surface + thickness)[c : c + size].min())
        r = int(rng.integers(top + 1, bottom - 3 * size))
        out[r : r + size, c : c + size] = rng.choice([FEAL, SUBSTRATE])
        if top > 3 * size + 1:
            r = int(rng.integers(0, top - 3 * size))
            out[r : r + size, c : c + size] = rng.choice([FE2AL5, PRECIPITATE, PORE, SUBSTRATE])
        r = int(rng.integers(bottom + 12, height - size))
        out[r : r + size, c : c + size] = FE2AL5
    return out


def test_clean_masks_keep_the_first_row_edges() -> None:
    """Pores, precipitates, a crack, patchy FeAl, pores touching the FeAl and a frame whose top is inside the coating:
    no stray pixels, so the fits give the first-row edges in every column."""
    mask, surface, thickness = wavy()
    bottom = surface + thickness
    for c in range(0, 600, 37):  # pores and precipitates sitting on the interface, and a pore inside the FeAl
        mask[bottom[c] - 3 : bottom[c] + 2, c : c + 3] = PORE if c % 2 else PRECIPITATE
    mask[bottom[0] + 3 : bottom[0] + 5, 0:4] = PORE
    for m in (mask, mask[100:], mask[:250]):  # whole; the top edge inside the band; no substrate in the frame
        cols = frame_columns(m)
        s, b = first_row_edges(m)
        np.testing.assert_array_equal(cols.surface_row, s)
        np.testing.assert_array_equal(cols.band_bottom_row, b)


def test_islands_of_feal_or_steel_inside_the_band_do_not_move_its_bottom() -> None:
    mask, surface, thickness = wavy()
    clean = measure(mask, 1.0)
    strayed = mask.copy()
    strayed[120:140, 50:90] = SUBSTRATE  # a bright precipitate read as steel
    strayed[200:203, 400:460] = FEAL  # a thin FeAl streak high in the band
    strayed[100:105, 500:505] = FEAL
    cols, clean_cols = frame_columns(strayed), frame_columns(mask)
    np.testing.assert_array_equal(cols.band_bottom_row, clean_cols.band_bottom_row)
    m = measure(strayed, 1.0)
    assert m.fe2al5_thickness_um == pytest.approx(clean.fe2al5_thickness_um, abs=1e-9)
    assert m.feal_present == clean.feal_present and m.feal_thickness_um == clean.feal_thickness_um
    profile = column_profile(strayed, 1.0)
    np.testing.assert_array_equal(profile.thickness_um, column_profile(mask, 1.0).thickness_um)


def test_specks_in_the_resin_do_not_move_the_surface_and_are_not_counted_in_the_band() -> None:
    mask, surface, thickness = wavy()
    clean = measure(mask, 1.0)
    strayed = mask.copy()
    strayed[5:15, 100:110] = FE2AL5  # a filler particle read as coating
    strayed[20:24, 200:204] = PORE
    strayed[10:13, 300:330] = PRECIPITATE
    strayed[0:6, 400:420] = SUBSTRATE  # at the top edge
    strayed[30:33, 500:503] = CRACK
    cols = frame_columns(strayed)
    np.testing.assert_array_equal(cols.surface_row, frame_columns(mask).surface_row)
    assert cols.surface_seen[400:420].all()  # a speck at the top edge does not hide the surface
    m = measure(strayed, 1.0)
    assert m.as_dict() == pytest.approx(clean.as_dict())  # thickness, fractions, cracks, line: all unchanged


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_many_random_strays_leave_the_thickness_within_a_pixel(seed: int) -> None:
    mask, surface, thickness = wavy(seed=seed)
    clean = measure(mask, 1.0)
    strayed = stray_blobs(mask, surface, thickness, np.random.default_rng(seed))
    m = measure(strayed, 1.0)
    assert m.fe2al5_thickness_um == pytest.approx(clean.fe2al5_thickness_um, abs=1.0)
    assert m.fe2al5_thickness_std_um == pytest.approx(clean.fe2al5_thickness_std_um, abs=1.0)
    assert m.feal_present == clean.feal_present
    # The first-row rule would have measured a much thinner band.
    s, b = first_row_edges(strayed)
    whole = (s > 0) & (b > s)
    assert np.mean((b - s)[whole]) < clean.fe2al5_thickness_um - 10


def test_an_island_counts_as_the_bottom_when_it_outweighs_the_fe2al5_below_it() -> None:
    """The rule, exactly: an island of k rows with j rows of Fe2Al5 below it is skipped when k < j; a thicker one
    (a FeAl lens just above the interface) is the layer's top. Ties keep the upper row."""
    mask = slab(height=200, width=50, surface=20, thickness=100)  # band 20..119, substrate from 120
    for k, j, expected in ((4, 5, 120), (5, 5, 110), (6, 5, 109), (30, 60, 120)):
        m = mask.copy()
        top = 120 - j - k
        m[top : top + k] = FEAL
        assert (frame_columns(m).band_bottom_row == expected).all(), (k, j)


def test_a_speck_in_the_resin_is_skipped_when_the_resin_below_it_is_longer() -> None:
    mask = slab(height=200, width=50, surface=40, thickness=100)
    for k, gap, expected in ((3, 4, 40), (4, 4, 32), (10, 25, 40)):
        m = mask.copy()
        m[40 - gap - k : 40 - gap] = FE2AL5
        assert (frame_columns(m).surface_row == expected).all(), (k, gap)


def test_an_island_in_a_band_that_runs_off_the_bottom_is_no_bottom() -> None:
    mask = slab(height=200, width=300, surface=40, thickness=400)  # no FeAl or steel in the frame
    clean = measure(mask, 0.5)
    mask[150:160, 20:200] = SUBSTRATE  # an island over most of the width
    cols = frame_columns(mask)
    assert not cols.bottom_seen.any()
    m = measure(mask, 0.5)
    assert m.fe2al5_thickness_um is None and m.feal_present is None
    assert m.pore_fraction_pct == clean.pore_fraction_pct


def test_fe2al5_specks_in_the_steel_do_not_move_the_bottom() -> None:
    mask = slab(height=300, width=200, surface=30, thickness=120, feal=10)
    clean = frame_columns(mask).band_bottom_row
    mask[170:180, 10:30] = FE2AL5  # 10 rows of steel below the FeAl, then a 10-row speck
    mask[250:254, 100:150] = FE2AL5
    np.testing.assert_array_equal(frame_columns(mask).band_bottom_row, clean)
    assert measure(mask, 1.0).feal_thickness_um == 10.0


def test_a_predicted_mask_with_strays_still_passes_the_layer_check() -> None:
    mask, surface, thickness = wavy()
    check_layered(stray_blobs(mask, surface, thickness, np.random.default_rng(5)))
