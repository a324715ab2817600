"""The add-on's properties and panels in the real bpy: generated from the core's parameter table (same limits, a
round trip for every field), presets, and each panel's draw() against a recording layout.

No UI screenshot is possible with the bpy module (panels register but are never drawn), so the panels are checked by
running their draw() on a layout that records every call.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from blender_addon import fields as F
from semcoat.batch import MAX_IMAGES, BatchSpec, Distribution
from semcoat.params import leaf_paths
from semcoat.presets import PRESETS, preset_batch
from semcoat.spec import CoatingSpec
from tests.blender_addon.addon_session import enabled_addon

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def bpy() -> Iterator[Any]:
    """bpy with the add-on enabled from this checkout (as Blender enables an add-on package)."""
    with enabled_addon() as bpy_module:
        yield bpy_module


@pytest.fixture()
def settings(bpy: Any) -> Any:
    from blender_addon.properties import write_batch

    s = bpy.context.scene.semcoat
    write_batch(BatchSpec(), s)
    return s


def test_every_field_has_a_property_with_the_cores_limits_default_and_doc(bpy: Any, settings: Any) -> None:
    checked = 0
    for path, (typ, meta) in leaf_paths(CoatingSpec).items():
        section, name = path.split(".")
        rna = getattr(settings, section).bl_rna.properties[name]
        default = getattr(CoatingSpec(), section).__getattribute__(name)
        assert meta["doc"] in rna.description, path
        if meta.get("choices") is not None:
            assert rna.type == "ENUM" and [i.identifier for i in rna.enum_items] == [str(c) for c in meta["choices"]]
            assert rna.default == str(default)
        elif typ is bool:
            assert rna.type == "BOOLEAN" and rna.default == default
        else:
            assert rna.type == ("INT" if typ is int else "FLOAT"), path
            assert math.isclose(rna.hard_min, meta["minimum"], rel_tol=1e-6), path
            assert math.isclose(rna.hard_max, meta["maximum"], rel_tol=1e-6), path
            assert math.isclose(rna.default, default, rel_tol=1e-6), path
        checked += 1
    assert checked == len(F.FIELDS) > 50
    batch_rna = settings.batch.bl_rna.properties
    assert (batch_rna["count"].hard_min, batch_rna["count"].hard_max) == (1, MAX_IMAGES)
    assert batch_rna["images_per_task"].hard_max == F.IMAGES_PER_TASK_META["maximum"]


def test_a_value_the_spec_refuses_cannot_be_entered(bpy: Any, settings: Any) -> None:
    settings.layers.fe2al5_thickness_um = 5000.0
    assert settings.layers.fe2al5_thickness_um == 1000.0  # clamped to the core's maximum
    settings.pores.area_fraction_pct = -3.0
    assert settings.pores.area_fraction_pct == 0.0
    settings.imaging.width_px = 3
    assert settings.imaging.width_px == 16
    with pytest.raises(TypeError):
        settings.imaging.bit_depth = "12"
    settings.batch.name = "a batch/with ../slashes"
    assert settings.batch.name == "a-batch-with-..-slashes"
    BatchSpec.from_dict({"name": settings.batch.name})  # the core accepts what the panel holds
    settings.random.layers.fe2al5_thickness_um_low = 0.0
    assert settings.random.layers.fe2al5_thickness_um_low == 1.0  # a range's ends have the parameter's limits


def _random_values() -> dict[str, Any]:
    """An in-range value for every field (other than the default), from the core's limits."""
    rng = np.random.default_rng(3)
    out: dict[str, Any] = {}
    for path, (typ, meta) in leaf_paths(CoatingSpec).items():
        if meta.get("choices") is not None:
            out[path] = meta["choices"][-1]
        elif typ is bool:
            out[path] = not getattr(getattr(CoatingSpec(), path.split(".")[0]), path.split(".")[1])
        elif typ is int:
            out[path] = int(rng.integers(meta["minimum"], min(meta["maximum"], 4000) + 1))
        else:
            # six significant digits: what a single-precision Blender property holds exactly as typed
            out[path] = float(f"{rng.uniform(meta['minimum'], meta['maximum']):.6g}")
    return out


def test_properties_round_trip_every_field(bpy: Any, settings: Any) -> None:
    from blender_addon.properties import coating_dict, write_coating

    values = _random_values()
    data: dict[str, dict[str, Any]] = {}
    for path, value in values.items():
        section, name = path.split(".")
        data.setdefault(section, {})[name] = value
    spec = CoatingSpec(**{s: type(getattr(CoatingSpec(), s))(**v) for s, v in data.items()})
    write_coating(spec, settings)
    back = coating_dict(settings)
    for path, value in values.items():
        section, name = path.split(".")
        assert back[section][name] == value and type(back[section][name]) is type(value), path
    assert back == spec.to_dict()


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_and_their_randomisation_round_trip(bpy: Any, settings: Any, name: str) -> None:
    from blender_addon.properties import batch_from_settings

    settings.batch.count, settings.batch.seed = 40, 11
    assert bpy.ops.semcoat.apply_preset(preset=name) == {"FINISHED"}
    assert batch_from_settings(settings).to_dict() == preset_batch(name, count=40, seed=11).to_dict()


def test_every_kind_of_randomisation_round_trips(bpy: Any, settings: Any) -> None:
    from blender_addon.properties import batch_from_settings, write_batch

    batch = BatchSpec(name="kinds", count=7, seed=5, randomize={
        "layers.fe2al5_thickness_um": Distribution("uniform", low=40.0, high=70.5),
        "imaging.contrast": Distribution("normal", mean=1.1, std=0.07),
        "pore_line.present": Distribution("choice", values=[True, True, False]),
        "imaging.data_bar_height_px": Distribution("choice", values=[32, 48]),
    })
    write_batch(batch, settings)
    assert batch_from_settings(settings).to_dict() == batch.to_dict()
    write_batch(BatchSpec(), settings)  # unticks what is not in the batch
    assert batch_from_settings(settings).randomize == {}


# --- panels ------------------------------------------------------------------------------------------------------
class RecordingLayout:
    """Stands in for bpy.types.UILayout: records every prop / operator / label / progress call, in every sub-layout."""

    def __init__(self, log: list[tuple[Any, ...]] | None = None) -> None:
        self.log: list[tuple[Any, ...]] = [] if log is None else log
        self.alert = False
        self.use_property_split = False

    def _sub(self, *_args: Any, **_kwargs: Any) -> RecordingLayout:
        return RecordingLayout(self.log)

    row = column = box = split = column_flow = grid_flow = _sub

    def prop(self, data: Any, name: str, **_kwargs: Any) -> None:
        self.log.append(("prop", data, name))

    def label(self, text: str = "", **_kwargs: Any) -> None:
        self.log.append(("label", text))

    def operator(self, idname: str, **_kwargs: Any) -> SimpleNamespace:
        props = SimpleNamespace()
        self.log.append(("operator", idname, props))
        return props

    def progress(self, factor: float = 0.0, type: str = "BAR", text: str = "") -> None:  # noqa: A002 - bpy's name
        self.log.append(("progress", factor, text))

    def props_of(self, data: Any) -> list[str]:
        return [entry[2] for entry in self.log if entry[0] == "prop" and entry[1] == data]

    def operators(self) -> list[str]:
        return [entry[1] for entry in self.log if entry[0] == "operator"]


def _draw(bpy: Any, panel: type) -> RecordingLayout:
    layout = RecordingLayout()
    context = SimpleNamespace(scene=bpy.context.scene, window_manager=bpy.context.window_manager,
                              preferences=bpy.context.preferences)
    panel.draw(SimpleNamespace(layout=layout, draw_random=getattr(panel, "draw_random", None),
                               draw_job=getattr(panel, "draw_job", None)), context)
    return layout


def test_design_panel_shows_every_design_field(bpy: Any, settings: Any) -> None:
    from blender_addon.panels import SEMCOAT_PT_design

    layout = _draw(bpy, SEMCOAT_PT_design)
    for section in F.DESIGN_SECTIONS:
        assert layout.props_of(getattr(settings, section)) == [f.name for f in F.section_fields(section)]
    assert layout.props_of(settings) == ["preset"]
    assert layout.props_of(settings.batch) == ["preview_index", "preview_use_camera"]
    assert layout.operators() == ["semcoat.apply_preset", "semcoat.generate_preview"]
    assert not [e for e in layout.log if e[0] == "label" and "Design >" in e[1]]  # a valid design shows no problem


def test_design_panel_names_a_cross_field_problem(bpy: Any, settings: Any) -> None:
    from blender_addon.panels import SEMCOAT_PT_design

    settings.pore_line.depth_um = 500.0  # deeper than the Fe2Al5 layer
    labels = [e[1] for e in _draw(bpy, SEMCOAT_PT_design).log if e[0] == "label"]
    assert any(text.startswith("Design > Pore line > Depth [µm]: the band") for text in labels), labels


def test_imaging_panel_shows_every_imaging_field(bpy: Any, settings: Any) -> None:
    from blender_addon.panels import SEMCOAT_PT_imaging

    layout = _draw(bpy, SEMCOAT_PT_imaging)
    assert layout.props_of(settings.imaging) == [f.name for f in F.section_fields("imaging")]
    assert layout.operators() == ["semcoat.render_preview"]


def test_batch_panel_shows_batch_settings_and_every_randomisation(bpy: Any, settings: Any) -> None:
    from blender_addon.panels import SEMCOAT_PT_batch
    from blender_addon.properties import BATCH_PROPERTIES, SLURM_FIELDS, random_property_names

    settings.batch.backend = "slurm"
    layout = _draw(bpy, SEMCOAT_PT_batch)
    assert layout.props_of(settings.batch) == [*BATCH_PROPERTIES, *SLURM_FIELDS]
    for section in F.SECTIONS:  # unticked: only the ticks
        group = getattr(settings.random, section)
        assert layout.props_of(group) == [f"{f.name}_use" for f in F.section_fields(section) if f.randomizable]
    for f in F.FIELDS:  # ticked: the kind's values too
        if f.randomizable:
            group = getattr(settings.random, f.section)
            setattr(group, f"{f.name}_use", True)
            setattr(group, f"{f.name}_kind", "normal" if f.numeric else "choice")
    layout = _draw(bpy, SEMCOAT_PT_batch)
    for section in F.SECTIONS:
        expected = [n for f in F.section_fields(section) if f.randomizable
                    for n in random_property_names(f, "normal" if f.numeric else "choice")]
        assert layout.props_of(getattr(settings.random, section)) == expected
    assert layout.operators() == ["semcoat.export_spec", "semcoat.import_spec", "semcoat.render_on_cluster"]
    settings.batch.backend = "local"
    assert _draw(bpy, SEMCOAT_PT_batch).props_of(settings.batch) == list(BATCH_PROPERTIES)


def test_jobs_panel_shows_each_batch_with_state_progress_and_actions(bpy: Any, settings: Any) -> None:
    from blender_addon.panels import SEMCOAT_PT_jobs

    jobs = bpy.context.window_manager.semcoat.jobs
    jobs.clear()
    job = jobs.add()
    job.batch_id, job.name, job.state, job.count, job.images_done, job.progress = "abc", "b1", "running", 8, 2, 0.25
    job.error = "image 3 failed: exit code 1"
    layout = _draw(bpy, SEMCOAT_PT_jobs)
    labels = [e[1] for e in layout.log if e[0] == "label"]
    assert "b1  (abc)" in labels and any("running" in text for text in labels)
    assert "image 3 failed: exit code 1" in labels
    assert [e[1:] for e in layout.log if e[0] == "progress"] == [(0.25, "2 / 8 images")]
    ops = [(e[1], getattr(e[2], "batch_id", None)) for e in layout.log if e[0] == "operator"]
    assert ops == [("semcoat.refresh_jobs", None), ("semcoat.cancel_job", "abc"), ("semcoat.download_results", "abc"),
                   ("semcoat.open_folder", "abc")]
    jobs.clear()
