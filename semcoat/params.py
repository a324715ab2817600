"""Declarative parameters for the spec dataclasses: units, ranges and docs in one place.

Every leaf field of a spec is declared with :func:`param`, which stores its unit, accepted range and documentation in
the dataclass field metadata. Validation, JSON Schema generation and the add-on's UI all read that metadata, so a
parameter is described exactly once.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from semcoat.errors import SemcoatError

# A message quotes what it was given; a hostile file (a 50 MB field name, a number of thousands of digits, thousands
# of unknown fields) must still give a short one.
MAX_QUOTED_CHARS = 80
MAX_ERRORS_LISTED = 50


def shorten(text: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"


def quoted(value: Any) -> str:
    """``repr(value)`` for an error message, cut to a readable length (ints too long to print are described)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of {value.bit_length()} bits"
    return shorten(repr(value))


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: where it is, what was given, what is accepted."""

    path: str
    value: Any
    message: str

    def __str__(self) -> str:
        return f"{shorten(self.path) or '<root>'}: {self.message} (got {quoted(self.value)})"


class SpecError(SemcoatError):
    """A spec failed validation. ``errors`` holds every problem found, not only the first."""

    def __init__(self, errors: list[FieldError], source: str = "") -> None:
        self.errors = list(errors)
        self.source = source
        where = f" in {shorten(source, 200)}" if source else ""
        lines = [f"{len(self.errors)} problem(s){where}:"] + [f"  - {e}" for e in self.errors[:MAX_ERRORS_LISTED]]
        if len(self.errors) > MAX_ERRORS_LISTED:
            lines.append(f"  ... and {len(self.errors) - MAX_ERRORS_LISTED} more")
        super().__init__("\n".join(lines))


def param(
    default: Any,
    *,
    unit: str = "",
    doc: str,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: tuple[Any, ...] | None = None,
) -> Any:
    """Declare a leaf parameter with its default, unit, documentation and accepted range (inclusive bounds)."""
    meta = {"unit": unit, "doc": doc, "minimum": minimum, "maximum": maximum, "choices": choices}
    return field(default=default, metadata=meta)


def section(factory: Any, *, doc: str) -> Any:
    """Declare a nested spec section (a dataclass built by ``factory``)."""
    return field(default_factory=factory, metadata={"doc": doc, "section": True})


_LEAF_TYPES: dict[type, Mapping[str, Any]] = {}


def leaf_types(cls: type) -> Mapping[str, Any]:
    """Resolved type hints of a spec dataclass (the module uses postponed annotations), read-only.

    Cached per class: resolving them evaluates every annotation's text again, and a spec is built from JSON for every
    image drawn (uncached, this was three quarters of ``semcoat spec check``'s time).
    """
    hints = _LEAF_TYPES.get(cls)
    if hints is None:
        hints = _LEAF_TYPES[cls] = types.MappingProxyType(typing.get_type_hints(cls))
    return hints


def accepted_text(meta: dict[str, Any], unit: str = "") -> str:
    """Human text of what a parameter accepts, e.g. ``a number in [0, 100] %``."""
    if meta.get("choices") is not None:
        return "one of " + ", ".join(repr(c) for c in meta["choices"])
    lo, hi = meta.get("minimum"), meta.get("maximum")
    unit_text = f" {unit}" if unit else ""
    if lo is not None and hi is not None:
        return f"a value in [{lo}, {hi}]{unit_text}"
    if lo is not None:
        return f"a value >= {lo}{unit_text}"
    if hi is not None:
        return f"a value <= {hi}{unit_text}"
    return "any value"


def check_leaf(path: str, value: Any, typ: Any, meta: dict[str, Any]) -> tuple[Any, list[FieldError]]:
    """Check one leaf value against its declared type and range; return the (coerced) value and the errors."""
    type_name = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(typ, str(typ))
    # bool is a subclass of int in Python: reject it explicitly for numeric fields.
    if typ is bool:
        if not isinstance(value, bool):
            return value, [FieldError(path, value, f"expected {type_name}")]
    elif typ is int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value, [FieldError(path, value, f"expected {type_name}")]
        if isinstance(value, float):
            if not value.is_integer():
                return value, [FieldError(path, value, f"expected {type_name}")]
            value = int(value)
    elif typ is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value, [FieldError(path, value, f"expected {type_name}")]
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            return value, [FieldError(path, value, "expected a finite number")]
    elif typ is str:
        if not isinstance(value, str):
            return value, [FieldError(path, value, f"expected {type_name}")]
    choices = meta.get("choices")
    if choices is not None:
        if value not in choices:
            return value, [FieldError(path, value, f"expected {accepted_text(meta)}")]
        return value, []
    lo, hi = meta.get("minimum"), meta.get("maximum")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return value, [FieldError(path, value, f"out of range: expected {accepted_text(meta, meta.get('unit', ''))}")]
    return value, []


def dataclass_from_dict(cls: type, data: Any, path: str, errors: list[FieldError]) -> Any:
    """Build spec dataclass ``cls`` from a JSON-like dict, appending every problem to ``errors``.

    Missing keys take their documented defaults; unknown keys are errors (a typo must not be silently ignored).
    Returns None when ``data`` is not an object; otherwise an instance (possibly holding invalid values, which the
    caller discards when ``errors`` is not empty).
    """
    if not isinstance(data, dict):
        errors.append(FieldError(path, data, "expected an object (JSON {...})"))
        return None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = leaf_types(cls)
    for key in data:
        if key not in fields:
            where = f"{path}." if path else ""
            errors.append(FieldError(f"{where}{key}", data[key], f"unknown field; accepted: {', '.join(fields)}"))
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in data:
            continue
        sub_path = f"{path}.{name}" if path else name
        if f.metadata.get("section"):
            built = dataclass_from_dict(hints[name], data[name], sub_path, errors)
            if built is not None:
                kwargs[name] = built
        else:
            value, errs = check_leaf(sub_path, data[name], hints[name], dict(f.metadata))
            errors.extend(errs)
            kwargs[name] = value
    return cls(**kwargs)


def dataclass_errors(obj: Any, path: str = "") -> list[FieldError]:
    """Check every leaf of an already-built spec dataclass (values set from Python, not JSON)."""
    errors: list[FieldError] = []
    hints = leaf_types(type(obj))
    for f in dataclasses.fields(obj):
        sub_path = f"{path}.{f.name}" if path else f.name
        value = getattr(obj, f.name)
        if f.metadata.get("section"):
            if not dataclasses.is_dataclass(value):
                errors.append(FieldError(sub_path, value, "expected a section object"))
            else:
                errors.extend(dataclass_errors(value, sub_path))
        elif "doc" in f.metadata:
            errors.extend(check_leaf(sub_path, value, hints[f.name], dict(f.metadata))[1])
    return errors


def leaf_paths(cls: type, prefix: str = "") -> dict[str, tuple[Any, dict[str, Any]]]:
    """Every leaf parameter of a spec dataclass as ``{"section.field": (type, metadata)}``."""
    out: dict[str, tuple[Any, dict[str, Any]]] = {}
    hints = leaf_types(cls)
    for f in dataclasses.fields(cls):
        path = f"{prefix}.{f.name}" if prefix else f.name
        if f.metadata.get("section"):
            out.update(leaf_paths(hints[f.name], path))
        elif "doc" in f.metadata:
            out[path] = (hints[f.name], dict(f.metadata))
    return out
