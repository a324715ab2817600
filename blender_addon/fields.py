"""The panel's fields, derived from the core's parameter table (``semcoat/params.py``), without bpy.

Every CoatingSpec leaf becomes one field with the label, unit, limits, default and description the core declares;
:mod:`.properties` turns each into a Blender property. Values cross between the two here: Blender keeps floats in
single precision, so a float read back from a property is the shortest decimal that single precision holds
(0.13 stays 0.13, not 0.12999999523), which is the number the user typed. Single precision holds six significant
digits exactly; a spec value with more (e.g. 630090.57) comes back rounded to what the panel shows.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from semcoat.batch import FRAME_PATHS, NAME_PATTERN, RenderSettings
from semcoat.params import leaf_paths
from semcoat.spec import CoatingSpec

SECTIONS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(CoatingSpec))
DESIGN_SECTIONS = ("layers", "pores", "pore_line", "precipitates", "cracks", "grey")
IMAGING_SECTIONS = ("imaging",)
SECTION_LABELS = {"layers": "Layers", "pores": "Pores", "pore_line": "Pore line", "precipitates": "Precipitates",
                  "cracks": "Cracks", "grey": "Grey levels", "imaging": "Imaging"}
UNIT_LABELS = {"um": "µm", "deg": "°", "e-/px": "e⁻/px"}
# A name's unit suffix is dropped from its label when it repeats the declared unit (the unit follows in brackets).
_UNIT_SUFFIXES = {"um": "_um", "%": "_pct", "px": "_px", "deg": "_deg"}
_WORDS = {"fe2al5": "Fe2Al5", "feal": "FeAl", "px": "px", "fwhm": "FWHM", "100um": "100 µm"}
# Blender's integer properties are 32-bit; the spec's seed accepts more, the panel offers this much.
MAX_SEED = 2**31 - 1
RANDOM_KINDS = ("uniform", "normal", "choice")
BATCH_FIELDS = ("name", "count", "seed", "images_per_task")
IMAGES_PER_TASK_META = dict(next(f for f in dataclasses.fields(RenderSettings)).metadata)


@dataclass(frozen=True)
class Field:
    """One CoatingSpec parameter as the panel shows it."""

    path: str
    section: str
    name: str
    typ: type
    meta: dict[str, Any]
    default: Any

    @property
    def unit(self) -> str:
        """The declared unit as shown (µm, %, px, ...), or empty."""
        unit = str(self.meta.get("unit") or "")
        return UNIT_LABELS.get(unit, unit)

    @property
    def label(self) -> str:
        """``Fe2Al5 thickness [µm]``: the field name in words, with its unit."""
        return label_of(self.name, str(self.meta.get("unit") or ""))

    @property
    def description(self) -> str:
        """The core's documentation, with the accepted range."""
        lo, hi = self.meta.get("minimum"), self.meta.get("maximum")
        unit = f" {self.unit}" if self.unit else ""
        if self.meta.get("choices") is not None:
            accepted = "one of " + ", ".join(str(c) for c in self.meta["choices"])
        elif lo is not None and hi is not None:
            accepted = f"{lo:g} to {hi:g}{unit}"
        else:
            accepted = ""
        return f"{self.meta['doc']}" + (f" Accepted: {accepted}." if accepted else "")

    @property
    def randomizable(self) -> bool:
        """False for the frame (size, pixel size, bit depth): every image of a dataset shares it."""
        return self.path not in FRAME_PATHS

    @property
    def numeric(self) -> bool:
        """A number with a range (not a switch or a list of choices)."""
        return self.typ in (int, float) and self.meta.get("choices") is None

    @property
    def precision(self) -> int:
        """Decimals the panel shows: enough for the default, the limits and a step of a hundredth of the range."""
        values = [v for v in (self.default, self.meta.get("minimum"), self.meta.get("maximum")) if v]
        decimals = [_decimals(float(v)) for v in values]
        return max(2, min(6, max(decimals, default=2)))


def _decimals(value: float) -> int:
    text = np.format_float_positional(np.float32(value), trim="-")
    return len(text.split(".")[1]) if "." in text else 0


def label_of(name: str, unit: str = "") -> str:
    """``fe2al5_thickness_um`` with unit ``um`` -> ``Fe2Al5 thickness [µm]``."""
    stem = name
    suffix = _UNIT_SUFFIXES.get(unit)
    if suffix and stem.endswith(suffix):
        stem = stem[: -len(suffix)]
    unit = UNIT_LABELS.get(unit, unit)
    words = [_WORDS.get(w, w) for w in stem.split("_")]
    text = " ".join(words)
    text = text[0].upper() + text[1:] if text else text
    return f"{text} [{unit}]" if unit else text


def field_table() -> list[Field]:
    """Every CoatingSpec leaf, in declaration order."""
    defaults = CoatingSpec().to_dict()
    out = []
    for path, (typ, meta) in leaf_paths(CoatingSpec).items():
        section, name = path.split(".", 1)
        out.append(Field(path, section, name, typ, meta, defaults[section][name]))
    return out


FIELDS: tuple[Field, ...] = tuple(field_table())
FIELDS_BY_PATH = {f.path: f for f in FIELDS}


def section_fields(section: str) -> list[Field]:
    """The fields of one spec section, in declaration order."""
    return [f for f in FIELDS if f.section == section]


# --- values between the spec and Blender ------------------------------------------------------------------------
def enum_id(value: Any) -> str:
    """The identifier of a choice in a Blender enum (``8`` -> ``"8"``)."""
    return str(value)


def to_property(f: Field, value: Any) -> Any:
    """A spec value as the property holds it."""
    if f.meta.get("choices") is not None:
        return enum_id(value)
    return value


def from_property(f: Field, value: Any) -> Any:
    """A property value as the spec takes it (single-precision floats as the shortest decimal they hold)."""
    choices = f.meta.get("choices")
    if choices is not None:
        return next((c for c in choices if enum_id(c) == value), value)
    if f.typ is float:
        return from_single(value)
    if f.typ is int:
        return int(value)
    if f.typ is bool:
        return bool(value)
    return value


def from_single(value: float) -> float:
    """The shortest decimal that a single-precision float holds, as a Python float."""
    number = float(value)
    if not math.isfinite(number):
        return number
    return float(np.format_float_positional(np.float32(number), unique=True, trim="-"))


def sanitize_batch_name(text: str) -> str:
    """A batch name the spec accepts, made from what the user typed: other characters become ``-``, cut to 64, and
    a name that does not start with a letter or digit gets a ``b`` in front (empty: ``batch``)."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "_.-") else "-" for c in text.strip())[:64]
    if not cleaned:
        return "batch"
    if not cleaned[0].isalnum():
        cleaned = ("b" + cleaned)[:64]
    assert NAME_PATTERN.fullmatch(cleaned)
    return cleaned


def parse_choice_values(f: Field, text: str) -> list[Any]:
    """``"true, true, false"`` -> ``[True, True, False]`` for a switch; numbers for a numeric field.

    Words that are not values of the field's kind are kept as text, so the spec's validation names them.
    """
    values: list[Any] = []
    for word in (w.strip() for w in text.replace(";", ",").split(",")):
        if not word:
            continue
        if f.typ is bool:
            lowered = word.lower()
            values.append(True if lowered in ("true", "yes", "1") else False if lowered in ("false", "no", "0")
                          else word)
            continue
        try:
            number = float(word)
        except ValueError:
            values.append(word)
            continue
        values.append(int(number) if f.typ is int and number.is_integer() else number)
    return values


def format_choice_values(values: list[Any]) -> str:
    """The text of :func:`parse_choice_values`' input for ``values``."""
    return ", ".join(("true" if v else "false") if isinstance(v, bool) else f"{v:g}" if isinstance(v, float)
                     else str(v) for v in values)


# --- where a spec path is in the panel ----------------------------------------------------------------------------
BATCH_LABELS = {"name": "Name", "count": "Count", "seed": "Seed", "render.images_per_task": "Images per task",
                "backend": "Backend", "slurm.partition": "Slurm partition", "slurm.account": "Slurm account",
                "slurm.time_limit": "Slurm time limit", "slurm.cpus_per_task": "Slurm CPUs per task",
                "slurm.mem_per_task_mb": "Slurm memory per task", "slurm.images_per_task": "Images per task",
                "slurm.max_parallel_tasks": "Slurm parallel tasks"}
_RANDOM_KEYS = {"low": "low", "high": "high", "mean": "mean", "std": "std", "values": "values", "kind": "kind"}


def panel_location(path: str) -> str:
    """Where the property behind a spec or request path sits in the panel, e.g.
    ``base.layers.fe2al5_thickness_um`` -> ``Design > Layers > Fe2Al5 thickness [µm]``.

    Accepts paths of a BatchSpec (``base.…``, ``randomize.…``, ``count``), of a request body (``spec.…``,
    ``backend``, ``slurm.…``) and of a bare CoatingSpec (``layers.…``).
    """
    parts = path.split(".")
    if parts and parts[0] == "spec":
        parts = parts[1:]
    if parts and parts[0] == "base":
        parts = parts[1:]
    elif parts and parts[0] == "randomize" and len(parts) >= 3:
        f = FIELDS_BY_PATH.get(f"{parts[1]}.{parts[2]}")
        if f is not None:
            key = parts[3].split("[")[0] if len(parts) > 3 else ""
            tail = f" > {_RANDOM_KEYS.get(key, key)}" if key else ""
            return f"Batch > Randomise > {SECTION_LABELS[f.section]} > {f.label}{tail}"
    joined = ".".join(parts)
    if joined in BATCH_LABELS:
        return f"Batch > {BATCH_LABELS[joined]}"
    if parts and parts[0] in SECTION_LABELS:
        panel = "Imaging" if parts[0] in IMAGING_SECTIONS else "Design"
        where = f"{panel} > {SECTION_LABELS[parts[0]]}" if panel == "Design" else panel
        f = FIELDS_BY_PATH.get(".".join(parts[:2]))
        return f"{where} > {f.label}" if f is not None else where
    return f"Batch > {joined}" if joined else "Batch"


def spec_error_lines(errors: list[Any]) -> list[str]:
    """One line per spec problem, naming the panel property: ``Design > Layers > ...: out of range ... (got 5)``."""
    from semcoat.params import quoted

    return [f"{panel_location(e.path)}: {e.message} (got {quoted(e.value)})" for e in errors]

