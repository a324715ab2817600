"""Measurements of masks whose answers are known exactly."""

from __future__ import annotations

import dataclasses
import typing

import numpy as np
import pytest

from analysis.measure import MaskError, Measurements, NoCoatingError, check_pixel_size_um, column_profile, measure
from semcoat.classes import BACKGROUND, CRACK, FE2AL5, FEAL, PORE, PRECIPITATE, SUBSTRATE
from semcoat.errors import InvalidArgument, SemcoatError
from semcoat.measurements import FRACTION, LENGTH, MEASUREMENT_NAMES, MEASUREMENTS
from tests.analysis.masks import coating, scattered_squares, slab, square_lattice


def test_measurements_fields_are_the_core_table_with_its_types() -> None:
    """The dataclass is written out for typing; it must stay the table's rows, in order, with matching types."""
    hints = typing.get_type_hints(Measurements)
    assert tuple(f.name for f in dataclasses.fields(Measurements)) == MEASUREMENT_NAMES
    for row in MEASUREMENTS:
        expected = row.python_type | None if row.optional else row.python_type
        assert hints[row.name] == expected, row.name


def test_flat_slab_thickness_is_exact() -> None:
    m = measure(slab(surface=40, thickness=60), pixel_size_um=0.25)
    assert m.fe2al5_thickness_um == pytest.approx(15.0)
    assert m.fe2al5_thickness_std_um == 0.0
    assert m.feal_present is False and m.feal_thickness_um == 0.0
    assert m.pore_fraction_pct == 0.0 and m.precipitate_fraction_pct == 0.0
    assert m.pore_line_present is False
    assert m.pore_line_depth_um is None and m.fe2al5_top_thickness_um is None and m.fe2al5_bottom_thickness_um is None


def test_tilted_slab_thickness_is_measured_perpendicular_to_it() -> None:
    width = 400
    surface = 20 + np.arange(width) // 4  # 100 rows of tilt across the width: atan(1/4) = 14 degrees
    m = measure(coating(surface, np.full(width, 70), height=260), pixel_size_um=1.0)
    # 70 rows straight down are 70 cos(14 deg) across the slab
    assert m.fe2al5_thickness_um == pytest.approx(70.0 * np.cos(np.arctan(0.25)), rel=1e-3)
    assert m.fe2al5_thickness_std_um == 0.0


def test_wavy_surface_and_bottom() -> None:
    width = 500
    c = np.arange(width)
    surface = (60 + 15 * np.sin(2 * np.pi * 3 * c / width)).astype(int)
    thickness = (80 + 10 * np.cos(2 * np.pi * 5 * c / width)).astype(int)
    m = measure(coating(surface, thickness, height=300, feal_px=5), pixel_size_um=0.5)
    # A wavy surface over a few periods tips the fitted lines by about a degree (1 - cos: 2e-4), no more.
    assert m.fe2al5_thickness_um == pytest.approx(0.5 * thickness.mean(), rel=1e-3)
    assert m.fe2al5_thickness_std_um == pytest.approx(0.5 * thickness.std(), rel=1e-3)
    assert m.feal_present is True and m.feal_thickness_um == pytest.approx(2.5, rel=1e-3)


def test_feal_layer_thickness() -> None:
    m = measure(slab(thickness=50, feal=12), pixel_size_um=2.0)
    assert m.feal_present is True
    assert m.feal_thickness_um == pytest.approx(24.0)
    assert m.fe2al5_thickness_um == pytest.approx(100.0)


@pytest.mark.parametrize(("share", "present"), [(0.4, False), (0.5, True), (0.7, True)])
def test_feal_present_in_at_least_half_of_the_columns(share: float, present: bool) -> None:
    width = 200
    feal = np.where(np.arange(width) < share * width, 9, 0)
    m = measure(coating(np.full(width, 30), np.full(width, 50), height=150, feal_px=feal), pixel_size_um=1.0)
    assert m.feal_present is present
    # The mean runs over the columns that have FeAl only.
    assert m.feal_thickness_um == (9.0 if present else 0.0)


def test_feal_run_reaching_the_last_row_has_no_thickness() -> None:
    mask = slab(height=100, surface=10, thickness=50, feal=80)  # FeAl from row 60 to the bottom: its end is not seen
    m = measure(mask, pixel_size_um=1.0)
    assert m.feal_present is True and m.feal_thickness_um is None
    assert m.fe2al5_thickness_um == 50.0


def test_pore_lattice_of_known_area() -> None:
    mask = slab(height=220, width=300, surface=40, thickness=120)
    surface = np.full(300, 40)
    n = square_lattice(mask, surface, depths=range(10, 110, 20), columns=range(5, 295, 15), size=4)
    m = measure(mask, pixel_size_um=1.0)
    assert m.pore_fraction_pct == pytest.approx(100.0 * n / (120 * 300))
    assert m.precipitate_fraction_pct == 0.0
    assert m.pore_line_present is False  # a regular lattice through the whole band is not a line
    assert m.fe2al5_thickness_um == 120.0  # pores belong to the band


def test_pore_line_at_known_depth_on_a_flat_slab() -> None:
    width = 400
    mask = slab(height=240, width=width, surface=30, thickness=150, feal=6)
    n = square_lattice(mask, np.full(width, 30), depths=range(50, 51), columns=range(0, width, 10), size=6)
    m = measure(mask, pixel_size_um=0.5)
    assert m.pore_line_present is True
    # Squares cover depths 50..55: their centre is 53 pixels below the surface.
    assert m.pore_line_depth_um == pytest.approx(0.5 * 53)
    assert m.fe2al5_top_thickness_um == pytest.approx(0.5 * 53)
    assert m.fe2al5_bottom_thickness_um == pytest.approx(0.5 * (150 - 53))
    assert m.pore_fraction_pct == pytest.approx(100.0 * n / (150 * width))


def test_same_pore_area_scattered_is_not_a_line() -> None:
    width = 400
    line = slab(height=240, width=width, surface=30, thickness=150)
    n = square_lattice(line, np.full(width, 30), depths=range(50, 51), columns=range(0, width, 10), size=6)
    scattered = slab(height=240, width=width, surface=30, thickness=150)
    scattered_squares(scattered, n // 36, 6, rows=(31, 179), rng=np.random.default_rng(3))
    a, b = measure(line, 1.0), measure(scattered, 1.0)
    assert a.pore_fraction_pct == pytest.approx(b.pore_fraction_pct)
    assert a.pore_line_present is True
    assert b.pore_line_present is False
    assert b.pore_line_depth_um is None


def test_heavy_uniform_porosity_is_not_a_line() -> None:
    width = 300
    mask = slab(height=260, width=width, surface=30, thickness=180)
    scattered_squares(mask, 900, 5, rows=(31, 209), rng=np.random.default_rng(0))
    m = measure(mask, 1.0)
    assert m.pore_fraction_pct > 10
    assert m.pore_line_present is False


def test_pore_line_follows_a_wavy_surface() -> None:
    width = 600
    c = np.arange(width)
    surface = (50 + 20 * np.sin(2 * np.pi * 2 * c / width)).astype(int)
    mask = coating(surface, np.full(width, 140), height=300)
    square_lattice(mask, surface, depths=range(35, 36), columns=range(0, width - 4, 8), size=4)
    scattered_squares(mask, 40, 3, rows=(80, 160), rng=np.random.default_rng(1))  # some pores off the line
    m = measure(mask, pixel_size_um=1.0)
    assert m.pore_line_present is True
    assert m.pore_line_depth_um == pytest.approx(37.0, abs=1.0)


def test_short_pore_line_is_not_a_line() -> None:
    width = 400
    mask = slab(height=240, width=width, surface=30, thickness=150)
    square_lattice(mask, np.full(width, 30), depths=range(50, 51), columns=range(0, 150, 10), size=6)
    assert measure(mask, 1.0).pore_line_present is False  # less than half of the width


def test_precipitates_only() -> None:
    mask = slab(height=200, width=250, surface=20, thickness=100, feal=10)
    n = square_lattice(mask, np.full(250, 20), range(5, 95, 12), range(3, 245, 9), size=3, value=PRECIPITATE)
    m = measure(mask, 1.0)
    assert m.precipitate_fraction_pct == pytest.approx(100.0 * n / (100 * 250))
    assert m.pore_fraction_pct == 0.0
    assert m.pore_line_present is False


def test_precipitate_line_is_not_a_pore_line() -> None:
    width = 400
    mask = slab(height=240, width=width, surface=30, thickness=150)
    square_lattice(mask, np.full(width, 30), range(50, 51), range(0, width, 10), size=6, value=PRECIPITATE)
    assert measure(mask, 1.0).pore_line_present is False


def test_open_columns_are_not_measured() -> None:
    mask = slab(height=150, width=300, surface=30, thickness=50)
    mask[:, 100:130] = BACKGROUND  # a gap without coating
    mask[:, 200:220] = BACKGROUND
    mask[30:, 200:220] = FE2AL5  # Fe2Al5 running off the bottom
    mask[:, 250:260] = BACKGROUND
    mask[60:, 250:260] = SUBSTRATE  # substrate straight under resin: no Fe2Al5 band
    mask[30:40, 0:250:7] = PORE  # pores in the excluded columns must not count
    prof = column_profile(mask, 1.0)
    assert int(prof.measured.sum()) == 300 - 30 - 20 - 10
    assert np.isnan(prof.thickness_um[110]) and prof.thickness_um[0] == 50.0
    m = measure(mask, 1.0)
    assert m.fe2al5_thickness_um == 50.0 and m.fe2al5_thickness_std_um == 0.0
    n_pore_cols = np.count_nonzero(prof.measured[0:250:7])
    assert m.pore_fraction_pct == pytest.approx(100.0 * 10 * n_pore_cols / (50 * int(prof.measured.sum())))


def test_resin_inside_the_band_counts_in_the_band() -> None:
    mask = slab(height=150, width=100, surface=30, thickness=50)
    mask[50:60, :] = BACKGROUND  # a crack filled with resin, parallel to the surface
    m = measure(mask, 1.0)
    assert m.fe2al5_thickness_um == 50.0


def test_pixel_size_scales_lengths_and_leaves_percentages() -> None:
    width = 400
    mask = slab(height=240, width=width, surface=30, thickness=150, feal=7)
    square_lattice(mask, np.full(width, 30), range(50, 51), range(0, width, 10), size=6)
    square_lattice(mask, np.full(width, 30), range(90, 140, 20), range(4, width - 4, 25), size=3, value=PRECIPITATE)
    a, b = measure(mask, 0.2).as_dict(), measure(mask, 0.6).as_dict()
    for row in MEASUREMENTS:
        if row.kind == LENGTH:
            assert b[row.name] == pytest.approx(3 * a[row.name]), row.name
        elif row.kind == FRACTION:
            assert b[row.name] == a[row.name], row.name
    assert a["pore_line_present"] and b["pore_line_present"] and a["feal_present"] == b["feal_present"]


def test_input_is_not_modified_and_may_be_read_only() -> None:
    mask = slab(thickness=60, feal=4)
    mask[60:64, ::9] = PORE
    before = mask.copy()
    mask.setflags(write=False)
    measure(mask, 1.0)
    np.testing.assert_array_equal(mask, before)


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.int64])
def test_any_integer_dtype(dtype: type) -> None:
    mask = slab(thickness=60, feal=4)
    assert measure(mask.astype(dtype), 1.0) == measure(mask, 1.0)


def test_as_dict_round_trip() -> None:
    m = measure(slab(), 1.0)
    d = m.as_dict()
    assert tuple(d) == MEASUREMENT_NAMES
    assert Measurements.from_dict({**d, "extra": 1}) == m
    with pytest.raises(InvalidArgument, match="feal_present"):
        Measurements.from_dict({k: v for k, v in d.items() if k != "feal_present"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.feal_present = True  # type: ignore[misc]


@pytest.mark.parametrize(
    ("mask", "match"),
    [
        (np.zeros((0, 10), np.uint8), "empty"),
        (np.zeros((4, 5, 3), np.uint8), "2-D"),
        (np.zeros(10, np.uint8), "2-D"),
        (np.ones((4, 5), np.float32), "dtype"),
        (np.ones((4, 5), bool), "dtype"),
        (np.full((4, 5), 7, np.uint8), "unknown class ids 7"),
        (np.full((4, 5), -1, np.int16), "unknown class ids -1"),
    ],
)
def test_bad_masks_raise_mask_error(mask: np.ndarray, match: str) -> None:
    with pytest.raises(MaskError, match=match):
        measure(mask, 1.0, source="sample_07.png")
    with pytest.raises(MaskError, match="sample_07.png"):
        measure(mask, 1.0, source="sample_07.png")


def test_unknown_ids_message_lists_accepted_ids() -> None:
    mask = slab()
    mask[0, 0] = 255
    with pytest.raises(MaskError, match=r"255.*accepted ids: 0 \(background\)"):
        measure(mask, 1.0)


def test_masks_without_coating_raise_no_coating_error() -> None:
    with pytest.raises(NoCoatingError, match="only background"):
        measure(np.zeros((50, 60), np.uint8), 1.0, source="blank.png")
    no_band = np.zeros((50, 60), np.uint8)
    no_band[10:] = SUBSTRATE  # substrate straight under the resin
    with pytest.raises(NoCoatingError, match="no column has an Fe2Al5 band"):
        measure(no_band, 1.0)
    assert issubclass(NoCoatingError, MaskError) and issubclass(MaskError, SemcoatError)
    assert not issubclass(MaskError, ValueError)  # commands catch SemcoatError; a ValueError stays a bug


@pytest.mark.parametrize("pixel_size_um", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_pixel_size(pixel_size_um: float) -> None:
    with pytest.raises(InvalidArgument, match="positive finite number of µm per pixel") as info:
        measure(slab(), pixel_size_um)
    assert info.value.argument == "pixel_size_um"
    with pytest.raises(InvalidArgument) as info:
        check_pixel_size_um(pixel_size_um, argument="truth_pixel_size_um")
    assert info.value.argument == "truth_pixel_size_um" and "--" not in str(info.value)  # flags are the CLI's


def test_feal_under_substrate_columns_only() -> None:
    # FeAl found elsewhere than right under the band does not make FeAl present.
    mask = slab(height=200, thickness=50)
    mask[150:160] = FEAL
    assert measure(mask, 1.0).feal_present is False
    assert FEAL != FE2AL5


def test_a_line_of_sparse_pores_across_the_width_is_a_line() -> None:
    # 6 px pores 15 px apart: only 40 % of the columns hold a pore, but the pores run along the whole width.
    width = 420
    mask = slab(height=240, width=width, surface=30, thickness=150)
    square_lattice(mask, np.full(width, 30), depths=range(60, 61), columns=range(0, width, 15), size=6)
    m = measure(mask, 1.0)
    assert m.pore_line_present is True
    assert m.pore_line_depth_um == pytest.approx(63.0)


def test_a_sparse_line_over_three_quarters_of_the_width_is_a_line_and_over_a_third_is_not() -> None:
    width = 420
    long = slab(height=240, width=width, surface=30, thickness=150)
    square_lattice(long, np.full(width, 30), depths=range(60, 61), columns=range(0, 315, 15), size=6)
    short = slab(height=240, width=width, surface=30, thickness=150)
    square_lattice(short, np.full(width, 30), depths=range(60, 61), columns=range(0, 140, 15), size=6)
    assert measure(long, 1.0).pore_line_present is True
    assert measure(short, 1.0).pore_line_present is False


def test_two_pores_far_apart_at_one_depth_are_not_a_line() -> None:
    width = 400
    mask = slab(height=240, width=width, surface=30, thickness=150)
    square_lattice(mask, np.full(width, 30), depths=range(60, 61), columns=(10, 380), size=6)
    assert measure(mask, 1.0).pore_line_present is False


def test_crack_density_counts_connected_cracks_per_mm_of_measured_width() -> None:
    mask = slab(height=200, width=300, surface=40, thickness=60)
    mask[40:100, 50] = CRACK  # through the band
    mask[40:70, 120:122] = CRACK  # part way, two columns wide
    for k in range(40):  # slanted, one pixel wide, 8-connected only
        mask[40 + k, 200 + k // 2] = CRACK
    mask[60:61, 260:262] = CRACK  # a single row: a speck, not a crack
    m = measure(mask, 0.5)
    assert m.crack_density_per_mm == pytest.approx(3 / (300 * 0.5e-3))
    # crack pixels belong to the band: the thickness is unchanged and they are not pores
    assert m.fe2al5_thickness_um == pytest.approx(30.0)
    assert m.pore_fraction_pct == 0.0
    assert measure(slab(), 0.5).crack_density_per_mm == 0.0
    # a crack below the band (in the substrate) is not counted
    below = slab(height=200, width=300, surface=40, thickness=60)
    below[150:190, 10] = CRACK
    assert measure(below, 0.5).crack_density_per_mm == 0.0
