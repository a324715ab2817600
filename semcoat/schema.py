"""JSON Schema (draft 2020-12) of the coating and batch specs, generated from the parameter declarations."""

from __future__ import annotations

import dataclasses
from typing import Any

from semcoat.batch import DISTRIBUTION_KINDS, FRAME_PATHS, MAX_IMAGES, NAME_PATTERN, BatchSpec, RenderSettings
from semcoat.params import leaf_paths, leaf_types
from semcoat.spec import CoatingSpec

_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def _leaf_schema(typ: Any, meta: dict[str, Any], default: Any) -> dict[str, Any]:
    unit = f" [{meta['unit']}]" if meta.get("unit") else ""
    out: dict[str, Any] = {"type": _JSON_TYPES[typ], "description": meta["doc"] + unit, "default": default}
    if meta.get("choices") is not None:
        out["enum"] = list(meta["choices"])
    if meta.get("minimum") is not None:
        out["minimum"] = meta["minimum"]
    if meta.get("maximum") is not None:
        out["maximum"] = meta["maximum"]
    return out


def dataclass_schema(cls: type) -> dict[str, Any]:
    """Schema of a spec dataclass: nested objects for sections, typed ranged leaves, no unknown keys."""
    instance = cls()
    hints = leaf_types(cls)
    props: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.metadata.get("section"):
            props[f.name] = {**dataclass_schema(hints[f.name]), "description": f.metadata["doc"]}
        else:
            props[f.name] = _leaf_schema(hints[f.name], dict(f.metadata), getattr(instance, f.name))
    return {"type": "object", "properties": props, "additionalProperties": False}


def coating_spec_schema() -> dict[str, Any]:
    """JSON Schema of a CoatingSpec document."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "semcoat CoatingSpec",
            **dataclass_schema(CoatingSpec)}


def batch_spec_schema() -> dict[str, Any]:
    """JSON Schema of a BatchSpec document (the file ``semcoat render`` and the service take)."""
    number = {"type": "number"}
    distribution = {
        "oneOf": [
            {"type": "object", "properties": {"kind": {"const": "uniform"}, "low": number, "high": number},
             "required": ["kind", "low", "high"], "additionalProperties": False},
            {"type": "object", "properties": {"kind": {"const": "normal"}, "mean": number,
                                              "std": {"type": "number", "minimum": 0}},
             "required": ["kind", "mean", "std"], "additionalProperties": False},
            {"type": "object", "properties": {"kind": {"const": "choice"}, "values": {"type": "array", "minItems": 1}},
             "required": ["kind", "values"], "additionalProperties": False},
        ],
        "description": "How the parameter varies: " + ", ".join(DISTRIBUTION_KINDS),
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "semcoat BatchSpec",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": NAME_PATTERN.pattern, "default": BatchSpec().name,
                     "description": "Batch name (a folder name and a Slurm job name)."},
            "count": {"type": "integer", "minimum": 1, "maximum": MAX_IMAGES, "default": BatchSpec().count,
                      "description": "Number of images."},
            "seed": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1, "default": 0,
                     "description": "Seed; image i depends on (seed, i) only."},
            "base": {**dataclass_schema(CoatingSpec), "description": "The coating every image starts from."},
            "randomize": {
                "type": "object",
                "description": "Parameters that vary, by path 'section.field'.",
                "propertyNames": {"enum": sorted(set(leaf_paths(CoatingSpec)) - set(FRAME_PATHS))},
                "additionalProperties": distribution,
            },
            "render": {**dataclass_schema(RenderSettings), "description": "Task size and sampling."},
        },
    }
