"""The add-on's properties, generated from the core's parameter table: per-file design on the Scene, live job status
on the WindowManager (never saved into the .blend).

``Scene.semcoat`` holds one property group per CoatingSpec section whose properties are made from
:data:`.fields.FIELDS` (label, unit, hard limits, default, description, all declared once in ``semcoat/params.py``), so
a value the spec would refuse for a field cannot be entered; the randomisation of each parameter the user ticks; the
batch settings; and the ids of the batches sent from this file, so reopening it resumes following them.
``WindowManager.semcoat`` holds what the poller last reported of each batch.
"""

from __future__ import annotations

import math
from typing import Any

import bpy

from semcoat.batch import MAX_IMAGES, BatchSpec, Distribution
from semcoat.errors import InvalidArgument
from semcoat.presets import PRESETS
from semcoat.spec import CoatingSpec

from . import fields as F


# --- generated property groups ---------------------------------------------------------------------------------------
def _step(lo: float | None, hi: float | None) -> int:
    """Blender's float step (hundredths of a unit per click): about a hundredth of the range."""
    if lo is None or hi is None or hi <= lo:
        return 1
    return int(min(100, max(1, 10 ** math.floor(math.log10(hi - lo)))))


def leaf_property(f: F.Field) -> Any:
    """The Blender property of one spec field: its label, limits, default and description from the core."""
    lo, hi = f.meta.get("minimum"), f.meta.get("maximum")
    common = {"name": f.label, "description": f.description}
    choices = f.meta.get("choices")
    if choices is not None:
        items = [(F.enum_id(c), str(c), f.description) for c in choices]
        return bpy.props.EnumProperty(items=items, default=F.enum_id(f.default), **common)
    if f.typ is bool:
        return bpy.props.BoolProperty(default=f.default, **common)
    if f.typ is int:
        assert lo is not None and hi is not None  # every integer parameter of the core has both limits
        return bpy.props.IntProperty(default=f.default, min=int(lo), max=int(hi), **common)
    return bpy.props.FloatProperty(default=f.default, min=lo, max=hi, precision=f.precision, step=_step(lo, hi),
                                   **common)


def _random_properties(f: F.Field) -> dict[str, Any]:
    """The randomisation of one field: a tick, a kind and the kind's values (limits from the core's range)."""
    kinds = [("uniform", "Uniform", "Drawn evenly between low and high"),
             ("normal", "Normal", "Drawn around a mean with a standard deviation, clipped to the accepted range"),
             ("choice", "Choice", "One of a list of values, each equally likely (repeat a value to weight it)")]
    if not f.numeric:
        kinds = kinds[2:]
    out: dict[str, Any] = {
        f"{f.name}_use": bpy.props.BoolProperty(name=f.label, description=f"Vary {f.label} across the batch"),
        f"{f.name}_kind": bpy.props.EnumProperty(name="Kind", items=kinds, default=kinds[0][0],
                                                 description=f"How {f.label} varies"),
        f"{f.name}_values": bpy.props.StringProperty(
            name="Values", default=F.format_choice_values([True, False] if f.typ is bool else [f.default]),
            description="Comma-separated values, each equally likely"),
    }
    if f.numeric:
        lo, hi = f.meta.get("minimum"), f.meta.get("maximum")
        ranged = {"min": lo, "max": hi, "precision": f.precision, "step": _step(lo, hi)}
        default = float(f.default)
        out[f"{f.name}_low"] = bpy.props.FloatProperty(name="Low", default=default, **ranged)
        out[f"{f.name}_high"] = bpy.props.FloatProperty(name="High", default=default, **ranged)
        out[f"{f.name}_mean"] = bpy.props.FloatProperty(name="Mean", default=default, **ranged)
        spread = (hi - lo) if lo is not None and hi is not None else 1e6
        out[f"{f.name}_std"] = bpy.props.FloatProperty(name="Std", default=0.0, min=0.0, max=spread,
                                                       precision=f.precision, step=_step(0.0, spread))
    return out


def random_property_names(f: F.Field, kind: str | None = None) -> list[str]:
    """The names of the randomisation properties of ``f`` that the panel shows for ``kind`` (None: all)."""
    names = [f"{f.name}_use", f"{f.name}_kind"]
    if kind in (None, "uniform") and f.numeric:
        names += [f"{f.name}_low", f"{f.name}_high"]
    if kind in (None, "normal") and f.numeric:
        names += [f"{f.name}_mean", f"{f.name}_std"]
    if kind in (None, "choice"):
        names.append(f"{f.name}_values")
    return names


def _group(name: str, annotations: dict[str, Any], doc: str) -> type:
    return type(name, (bpy.types.PropertyGroup,), {"__annotations__": annotations, "__doc__": doc})


SECTION_GROUPS = {s: _group(f"SEMCOAT_PG_{s}", {f.name: leaf_property(f) for f in F.section_fields(s)},
                            f"{F.SECTION_LABELS[s]} of the coating (generated from semcoat.params)")
                  for s in F.SECTIONS}
RANDOM_GROUPS = {s: _group(f"SEMCOAT_PG_random_{s}",
                           {k: v for f in F.section_fields(s) if f.randomizable
                            for k, v in _random_properties(f).items()},
                           f"Randomisation of the {F.SECTION_LABELS[s]} parameters")
                 for s in F.SECTIONS}
SEMCOAT_PG_random = _group(
    "SEMCOAT_PG_random", {s: bpy.props.PointerProperty(type=RANDOM_GROUPS[s]) for s in F.SECTIONS},
    "Which parameters vary across the batch, and how")


def _get_name(self: Any) -> str:
    return str(self.get("name_value", "batch"))


def _set_name(self: Any, value: str) -> None:
    self["name_value"] = F.sanitize_batch_name(value)


class SEMCOAT_PG_batch_ref(bpy.types.PropertyGroup):
    """A batch sent from this file (kept in the .blend so reopening it resumes following the batch)."""

    batch_id: bpy.props.StringProperty(name="Batch id")  # type: ignore[valid-type]
    name: bpy.props.StringProperty(name="Name")  # type: ignore[valid-type]


_BACKENDS = [("PREFERENCES", "Default", "The default backend of the add-on's preferences"),
             ("local", "Local", "The service's own render processes"),
             ("slurm", "Slurm", "A Slurm job array on the cluster")]


class SEMCOAT_PG_batch(bpy.types.PropertyGroup):
    """The batch: how many images, the seed, task size, backend, preview image, and the batches sent."""

    name: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Name", get=_get_name, set=_set_name, maxlen=64,
        description="Batch name: letters, digits, '_', '.', '-' (it becomes a folder and a Slurm job name)")
    count: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Count", default=100, min=1, max=MAX_IMAGES, description="Images in the batch")
    seed: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Seed", default=0, min=0, max=F.MAX_SEED, description="Image i depends on (seed, i) only")
    images_per_task: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Images per task", default=25, min=int(F.IMAGES_PER_TASK_META["minimum"]),
        max=int(F.IMAGES_PER_TASK_META["maximum"]), description=F.IMAGES_PER_TASK_META["doc"])
    backend: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Backend", items=_BACKENDS, default="PREFERENCES", description="Where the service renders the batch")
    slurm_partition: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Partition", description="Slurm partition (empty: the admin's default)")
    slurm_account: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Account", description="Slurm account charged (empty: the admin's default)")
    slurm_time_limit: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Time limit", description="Per array task: minutes or [D-]H:M:S (empty: the admin's default)")
    slurm_max_parallel_tasks: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Parallel tasks", default=0, min=0, max=100_000,
        description="Array tasks running at once (0: the admin's default)")
    preview_index: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Preview image", default=0, min=0, max=MAX_IMAGES - 1,
        description="Which image of the batch the preview shows (its randomised values and geometry)")
    preview_use_camera: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Look through preview camera", default=True,
        description="Make the preview's camera the scene camera (and set the render size to the frame)")
    batches: bpy.props.CollectionProperty(type=SEMCOAT_PG_batch_ref)  # type: ignore[valid-type]


SLURM_FIELDS = ("slurm_partition", "slurm_account", "slurm_time_limit", "slurm_max_parallel_tasks")
BATCH_PROPERTIES = ("name", "count", "seed", "images_per_task", "backend")
_PRESET_ITEMS = [(name, name, f"The {name} coating of the literature, with its randomisation") for name in PRESETS]

SEMCOAT_PG_settings = _group("SEMCOAT_PG_settings", {
    **{s: bpy.props.PointerProperty(type=SECTION_GROUPS[s]) for s in F.SECTIONS},
    "random": bpy.props.PointerProperty(type=SEMCOAT_PG_random),
    "batch": bpy.props.PointerProperty(type=SEMCOAT_PG_batch),
    "preset": bpy.props.EnumProperty(name="Preset", items=_PRESET_ITEMS, description="A ready coating"),
}, "The semcoat design of this scene (saved in the .blend)")


class SEMCOAT_PG_job(bpy.types.PropertyGroup):
    """What the poller last heard of one batch (transient: lives on the WindowManager)."""

    batch_id: bpy.props.StringProperty(name="Batch id")  # type: ignore[valid-type]
    name: bpy.props.StringProperty(name="Name")  # type: ignore[valid-type]
    state: bpy.props.StringProperty(name="State", default="unknown")  # type: ignore[valid-type]
    backend: bpy.props.StringProperty(name="Backend")  # type: ignore[valid-type]
    count: bpy.props.IntProperty(name="Images")  # type: ignore[valid-type]
    images_done: bpy.props.IntProperty(name="Images done")  # type: ignore[valid-type]
    progress: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Progress", min=0.0, max=1.0, subtype="FACTOR")
    error: bpy.props.StringProperty(name="Error")  # type: ignore[valid-type]
    folder: bpy.props.StringProperty(name="Downloaded to", subtype="DIR_PATH")  # type: ignore[valid-type]
    download: bpy.props.StringProperty(name="Download")  # type: ignore[valid-type]


class SEMCOAT_PG_session(bpy.types.PropertyGroup):
    """The jobs followed in this session and whether the service answers."""

    jobs: bpy.props.CollectionProperty(type=SEMCOAT_PG_job)  # type: ignore[valid-type]
    connection_ok: bpy.props.BoolProperty(name="Connected", default=True)  # type: ignore[valid-type]
    connection_message: bpy.props.StringProperty(name="Connection")  # type: ignore[valid-type]


# --- between the properties and the specs ------------------------------------------------------------------------
def coating_dict(settings: Any) -> dict[str, Any]:
    """The coating the panel shows, as the dict CoatingSpec.from_dict takes."""
    out: dict[str, dict[str, Any]] = {s: {} for s in F.SECTIONS}
    for f in F.FIELDS:
        out[f.section][f.name] = F.from_property(f, getattr(getattr(settings, f.section), f.name))
    return out


def randomize_dict(settings: Any) -> dict[str, Any]:
    """The ticked randomisations, as BatchSpec's ``randomize``."""
    out: dict[str, Any] = {}
    for f in F.FIELDS:
        if not f.randomizable:
            continue
        group = getattr(settings.random, f.section)
        if not getattr(group, f"{f.name}_use"):
            continue
        kind = getattr(group, f"{f.name}_kind")
        if kind == "uniform":
            out[f.path] = {"kind": kind, "low": F.from_single(getattr(group, f"{f.name}_low")),
                           "high": F.from_single(getattr(group, f"{f.name}_high"))}
        elif kind == "normal":
            out[f.path] = {"kind": kind, "mean": F.from_single(getattr(group, f"{f.name}_mean")),
                           "std": F.from_single(getattr(group, f"{f.name}_std"))}
        else:
            out[f.path] = {"kind": "choice", "values": F.parse_choice_values(f, getattr(group, f"{f.name}_values"))}
    return out


def batch_dict(settings: Any) -> dict[str, Any]:
    """The batch the panel shows, as the dict BatchSpec.from_dict takes."""
    b = settings.batch
    return {"name": b.name, "count": int(b.count), "seed": int(b.seed), "base": coating_dict(settings),
            "randomize": randomize_dict(settings), "render": {"images_per_task": int(b.images_per_task)}}


def batch_from_settings(settings: Any) -> BatchSpec:
    """The batch the panel shows, validated by the core (SpecError lists every problem)."""
    return BatchSpec.from_dict(batch_dict(settings), source="the semcoat panel")


def write_coating(spec: CoatingSpec, settings: Any) -> None:
    """Show ``spec`` in the panel."""
    data = spec.to_dict()
    for f in F.FIELDS:
        setattr(getattr(settings, f.section), f.name, F.to_property(f, data[f.section][f.name]))


def write_randomize(randomize: dict[str, Distribution], settings: Any) -> None:
    """Show ``randomize`` in the panel: these parameters ticked with their distribution, every other one unticked."""
    for f in F.FIELDS:
        if not f.randomizable:
            continue
        group = getattr(settings.random, f.section)
        dist = randomize.get(f.path)
        setattr(group, f"{f.name}_use", dist is not None)
        if dist is None:
            continue
        setattr(group, f"{f.name}_kind", dist.kind)
        if dist.kind == "uniform":
            setattr(group, f"{f.name}_low", dist.low)
            setattr(group, f"{f.name}_high", dist.high)
        elif dist.kind == "normal":
            setattr(group, f"{f.name}_mean", dist.mean)
            setattr(group, f"{f.name}_std", dist.std)
        else:
            setattr(group, f"{f.name}_values", F.format_choice_values(list(dist.values or [])))


def write_batch(batch: BatchSpec, settings: Any) -> None:
    """Show ``batch`` in the panel (coating, randomisation, name, count, seed, images per task)."""
    if batch.seed > F.MAX_SEED:
        raise InvalidArgument(f"seed {batch.seed} is larger than the panel holds (up to {F.MAX_SEED}); choose a "
                              "smaller seed in the file", argument="seed")
    write_coating(batch.base, settings)
    write_randomize(batch.randomize, settings)
    b = settings.batch
    b.name, b.count, b.seed = batch.name, batch.count, batch.seed
    b.images_per_task = batch.render.images_per_task


classes = (
    *SECTION_GROUPS.values(), *RANDOM_GROUPS.values(), SEMCOAT_PG_random, SEMCOAT_PG_batch_ref, SEMCOAT_PG_batch,
    SEMCOAT_PG_settings, SEMCOAT_PG_job, SEMCOAT_PG_session,
)
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(classes)


def register() -> None:
    """Register the groups, then hang them on the Scene (saved) and the WindowManager (not saved)."""
    _register_classes()
    bpy.types.Scene.semcoat = bpy.props.PointerProperty(type=SEMCOAT_PG_settings)
    bpy.types.WindowManager.semcoat = bpy.props.PointerProperty(type=SEMCOAT_PG_session)


def unregister() -> None:
    """Remove the pointers, then the groups."""
    del bpy.types.WindowManager.semcoat
    del bpy.types.Scene.semcoat
    _unregister_classes()
