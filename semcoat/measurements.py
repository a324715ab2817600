"""The measurement table every part shares: names, units, kinds, human labels and docs of the per-image measurements.

One row per measurement, in the order of every table, JSON object and report (the renderer's truth in
``meta/<id>.json``, ``semcoat measure``'s tables, a prediction folder's ``measurements.csv``). Readers take names,
units and labels from here: the dataset checker, the analysis (its ``Measurements`` dataclass has exactly these
fields, a test checks it), the report's labels, and the service's schemas and the add-on's labels to come.
Definitions: the docstring of ``analysis.measure.measure`` and ``analysis/README.md``.

The table may grow (e.g. a crack density): append a row here first, then compute it in ``analysis.measure``.

Measurement tables on disk (CSV) have the columns :data:`TABLE_COLUMNS`; a cell is written by :func:`format_cell` and
read back by :func:`parse_cell` (empty for a missing value, ``true``/``false`` for yes/no, 6 significant digits).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from semcoat.errors import InvalidArgument, SemcoatError

# Kinds of measurement, and the unit each kind is given in.
LENGTH = "length"
FRACTION = "fraction"
YES_NO = "yes-no"
LINEAR_DENSITY = "linear density"
UNITS = {LENGTH: "µm", FRACTION: "%", YES_NO: "", LINEAR_DENSITY: "1/mm"}


@dataclass(frozen=True)
class Measurement:
    """One per-image measurement.

    Attributes
    ----------
    name : machine name, used in files, JSON and metric names; it ends in its unit (``_um``, ``_pct``).
    kind : :data:`LENGTH` (µm), :data:`FRACTION` (% of the Fe2Al5 band's pixels), :data:`YES_NO` (a bool) or
        :data:`LINEAR_DENSITY` (a count per mm along the surface).
    title : human name without the unit ("Fe2Al5 thickness"); :attr:`label` adds the unit.
    doc : one line saying what is measured.
    optional : the value may be None (undefined for this image, e.g. the pore line's depth when there is no line).
    """

    name: str
    kind: str
    title: str
    doc: str
    optional: bool = False

    @property
    def unit(self) -> str:
        """``"µm"``, ``"%"``, ``"1/mm"`` or ``""`` (yes/no)."""
        return UNITS[self.kind]

    @property
    def label(self) -> str:
        """Human label with the unit, for pages and figures: ``"Fe2Al5 thickness (µm)"``, ``"FeAl present"``."""
        return f"{self.title} ({self.unit})" if self.unit else self.title

    @property
    def python_type(self) -> type:
        """``bool`` for yes/no, else ``float`` (None allowed as well where :attr:`optional`)."""
        return bool if self.kind == YES_NO else float


MEASUREMENTS: tuple[Measurement, ...] = (
    Measurement("fe2al5_thickness_um", LENGTH, "Fe2Al5 thickness",
                "mean Fe2Al5 band thickness over the measured columns, perpendicular to the coating; None when the "
                "frame cuts the coating", optional=True),
    Measurement("fe2al5_thickness_std_um", LENGTH, "Fe2Al5 thickness std",
                "population standard deviation of the band thickness over the measured columns; None when the frame "
                "cuts the coating", optional=True),
    Measurement("fe2al5_top_thickness_um", LENGTH, "Fe2Al5 top",
                "surface to the centre of the pore line; None without a pore line", optional=True),
    Measurement("fe2al5_bottom_thickness_um", LENGTH, "Fe2Al5 bottom",
                "centre of the pore line to the bottom of the band (mean); None without a pore line", optional=True),
    Measurement("feal_present", YES_NO, "FeAl present",
                "FeAl starts right below the band in at least half of the measured columns; None when the frame does "
                "not show the band's bottom", optional=True),
    Measurement("feal_thickness_um", LENGTH, "FeAl thickness",
                "mean length of that FeAl run over the columns that have it; 0 when not present; None when the frame "
                "does not show its end", optional=True),
    Measurement("pore_fraction_pct", FRACTION, "Pores",
                "100 x pore pixels / all pixels of the Fe2Al5 bands"),
    Measurement("pore_line_present", YES_NO, "Pore line present",
                "a band of pores parallel to the local surface spans most of the width; None when the frame cannot "
                "tell (the surface not shown, or a frame cutting the coating without a line)", optional=True),
    Measurement("pore_line_depth_um", LENGTH, "Pore line depth",
                "depth of the pore line's centre below the local surface; None without a pore line", optional=True),
    Measurement("precipitate_fraction_pct", FRACTION, "Precipitates",
                "100 x precipitate pixels / all pixels of the Fe2Al5 bands"),
    Measurement("crack_density_per_mm", LINEAR_DENSITY, "Crack density",
                "cracks (8-connected crack regions) in the Fe2Al5 bands per mm of measured width along the surface"),
)  # fmt: skip

MEASUREMENT_NAMES: tuple[str, ...] = tuple(m.name for m in MEASUREMENTS)
YES_NO_NAMES: tuple[str, ...] = tuple(m.name for m in MEASUREMENTS if m.kind == YES_NO)
# Lengths and fractions: the measurements that have a mean, an error and a histogram.
NUMERIC_NAMES: tuple[str, ...] = tuple(m.name for m in MEASUREMENTS if m.kind != YES_NO)
_BY_NAME = {m.name: m for m in MEASUREMENTS}

# Columns of a measurement table: the image (file stem), the µm per pixel it was measured at, every measurement.
IMAGE_COLUMN = "image"
PIXEL_SIZE_COLUMN = "pixel_size_um"
TABLE_COLUMNS: tuple[str, ...] = (IMAGE_COLUMN, PIXEL_SIZE_COLUMN, *MEASUREMENT_NAMES)


class CellError(SemcoatError):
    """A table cell that is not a value of its column (with the column, the text and what is accepted)."""


def measurement(name: str) -> Measurement:
    """The row of measurement ``name``; InvalidArgument listing the names otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise InvalidArgument(
            f"unknown measurement {name!r}; accepted: {', '.join(MEASUREMENT_NAMES)}", argument="name"
        ) from None


def label(name: str) -> str:
    """Human label with unit of a measurement; other names (a column such as ``pixel_size_um``) are returned as is."""
    row = _BY_NAME.get(name)
    return row.label if row is not None else name


def missing_names(values: Mapping[str, Any]) -> list[str]:
    """The measurement names that ``values`` (a truth object, a table row) lacks, in table order."""
    return [n for n in MEASUREMENT_NAMES if n not in values]


def value_problems(values: Mapping[str, Any]) -> list[str]:
    """What is wrong with a set of measurement values (a truth object, a parsed row), one sentence per measurement:
    missing, None where the measurement is not optional, a yes/no that is not a bool, a number that is not a finite
    int or float (strings, NaN and infinities included)."""
    problems = [f"{name}: missing" for name in missing_names(values)]
    for row in MEASUREMENTS:
        if row.name not in values:
            continue
        value = values[row.name]
        if value is None:
            if not row.optional:
                problems.append(f"{row.name}: must not be null")
        elif row.kind == YES_NO:
            if not isinstance(value, bool):
                problems.append(f"{row.name}: must be true or false (got {value!r:.40})")
        elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            problems.append(f"{row.name}: must be a finite number of {row.unit} (got {value!r:.40})")
    return problems


def format_cell(value: Any) -> str:
    """A value as a table cell: empty for None or NaN, ``true``/``false``, floats to 6 significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def parse_cell(name: str, text: str) -> bool | float | None:
    """A table cell of column ``name`` read back: None when empty, a bool for yes/no measurements, else a float.

    Raises
    ------
    CellError
        Naming the column and the text when it is not a value of the column.
    """
    text = text.strip()
    if text == "":
        return None
    row = _BY_NAME.get(name)
    if row is not None and row.kind == YES_NO:
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise CellError(f"{name} must be true or false; got {text!r}")
    try:
        return float(text)
    except ValueError:
        raise CellError(f"{name} must be a number; got {text!r}") from None
