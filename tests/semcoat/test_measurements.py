"""The core's measurement table: names carry their units, labels their units, cells read back what was written."""

from __future__ import annotations

import math

import pytest

from semcoat import dataset, measurements
from semcoat.errors import InvalidArgument, SemcoatError
from semcoat.measurements import (
    FRACTION,
    LENGTH,
    LINEAR_DENSITY,
    MEASUREMENT_NAMES,
    MEASUREMENTS,
    NUMERIC_NAMES,
    TABLE_COLUMNS,
    UNITS,
    YES_NO,
    YES_NO_NAMES,
    CellError,
    format_cell,
    parse_cell,
)


def test_names_are_unique_and_end_in_their_unit() -> None:
    assert len(set(MEASUREMENT_NAMES)) == len(MEASUREMENTS)
    suffix = {LENGTH: "_um", FRACTION: "_pct", LINEAR_DENSITY: "_per_mm"}
    for row in MEASUREMENTS:
        assert row.kind in UNITS, row.name
        if row.kind in suffix:
            assert row.name.endswith(suffix[row.kind]), row.name
        else:
            assert not row.name.endswith(("_um", "_pct")), row.name
        assert row.doc and "\n" not in row.doc and row.title


def test_labels_carry_the_unit_and_yes_no_has_none() -> None:
    for row in MEASUREMENTS:
        if row.kind == YES_NO:
            assert row.unit == "" and row.label == row.title and row.python_type is bool
        else:
            assert row.label == f"{row.title} ({row.unit})" and row.python_type is float
    assert measurements.label("fe2al5_thickness_um") == "Fe2Al5 thickness (µm)"
    assert measurements.label("pore_fraction_pct") == "Pores (%)"
    assert measurements.label("pixel_size_um") == "pixel_size_um"  # not a measurement: returned as is


def test_kind_groups_partition_the_table_in_order() -> None:
    assert set(NUMERIC_NAMES) | set(YES_NO_NAMES) == set(MEASUREMENT_NAMES)
    assert not set(NUMERIC_NAMES) & set(YES_NO_NAMES)
    assert list(NUMERIC_NAMES) == [n for n in MEASUREMENT_NAMES if n in NUMERIC_NAMES]
    assert TABLE_COLUMNS == ("image", "pixel_size_um", *MEASUREMENT_NAMES)


def test_the_dataset_contract_reads_the_table() -> None:
    assert dataset.MEASUREMENT_NAMES is MEASUREMENT_NAMES
    complete = dict.fromkeys(MEASUREMENT_NAMES, 0.0)
    assert measurements.missing_names(complete) == []
    del complete[MEASUREMENT_NAMES[3]]
    assert measurements.missing_names(complete) == [MEASUREMENT_NAMES[3]]


def test_lookup_of_an_unknown_name_lists_the_names() -> None:
    assert measurements.measurement("feal_present").kind == YES_NO
    with pytest.raises(InvalidArgument, match="unknown measurement 'crack'.*fe2al5_thickness_um") as info:
        measurements.measurement("crack")
    assert info.value.argument == "name"


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("fe2al5_thickness_um", 0.16999999999999998, "0.17"),
        ("fe2al5_thickness_um", 1234567.0, "1.23457e+06"),
        ("feal_present", True, "true"),
        ("pore_line_present", False, "false"),
        ("pore_line_depth_um", None, ""),
    ],
)
def test_cells_round_trip(name: str, value: object, text: str) -> None:
    assert format_cell(value) == text
    parsed = parse_cell(name, text)
    if isinstance(value, float):
        assert parsed == pytest.approx(value, rel=1e-5)
    else:
        assert parsed is value


def test_cells_accept_common_spellings_and_refuse_others() -> None:
    assert format_cell(math.nan) == ""
    assert parse_cell("feal_present", " Yes ") is True and parse_cell("feal_present", "0") is False
    assert parse_cell("pixel_size_um", "0.5") == 0.5  # any other column is a number
    with pytest.raises(CellError, match="feal_present must be true or false; got 'maybe'"):
        parse_cell("feal_present", "maybe")
    with pytest.raises(CellError, match="pixel_size_um must be a number; got 'tiny'"):
        parse_cell("pixel_size_um", "tiny")
    assert issubclass(CellError, SemcoatError) and not issubclass(CellError, ValueError)
