"""The sidebar panel (3D viewport, tab "semcoat"): Design, Imaging, Batch and Jobs.

The Design and Imaging sections draw every field of their spec sections from the generated properties; problems
that involve several fields (a coating deeper than the frame, a pore line outside Fe2Al5) are listed under the
section with the property they concern, and the operators refuse to run until they are fixed.
"""

from __future__ import annotations

from typing import Any

import bpy

from semcoat.params import SpecError

from . import fields as F
from .preferences import ADDON_ID
from .properties import BATCH_PROPERTIES, SLURM_FIELDS, batch_from_settings, random_property_names

CATEGORY = "semcoat"
PREVIEW_PROPERTIES = ("preview_index", "preview_use_camera")


def spec_problems(settings: Any) -> list[str]:
    """What the core refuses in the panel's batch, one line each naming the property (empty: nothing)."""
    try:
        batch_from_settings(settings)
    except SpecError as exc:
        return F.spec_error_lines(exc.errors)
    return []


def _problems_box(layout: Any, lines: list[str]) -> None:
    if not lines:
        return
    box = layout.box()
    box.alert = True
    for line in lines:
        box.label(text=line, icon="ERROR")


def draw_sections(layout: Any, settings: Any, sections: tuple[str, ...]) -> None:
    """Every field of ``sections``, a box per section."""
    for section in sections:
        box = layout.box()
        box.label(text=F.SECTION_LABELS[section])
        group = getattr(settings, section)
        column = box.column(align=True)
        for f in F.section_fields(section):
            column.prop(group, f.name)


class _SemcoatPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY


class SEMCOAT_PT_design(_SemcoatPanel, bpy.types.Panel):
    """The coating: preset, layers, pores, pore line, precipitates, grey levels; Generate preview."""

    bl_label = "Design"
    bl_idname = "SEMCOAT_PT_design"

    def draw(self, context: Any) -> None:
        """Preset, the design sections, the preview controls and any problem."""
        layout = self.layout
        settings = context.scene.semcoat
        row = layout.row(align=True)
        row.prop(settings, "preset", text="")
        row.operator("semcoat.apply_preset")
        draw_sections(layout, settings, F.DESIGN_SECTIONS)
        _problems_box(layout, [p for p in spec_problems(settings) if p.startswith("Design")])
        box = layout.box()
        for name in PREVIEW_PROPERTIES:
            box.prop(settings.batch, name)
        box.operator("semcoat.generate_preview", icon="MESH_PLANE")


class SEMCOAT_PT_imaging(_SemcoatPanel, bpy.types.Panel):
    """The virtual microscope; Render preview image."""

    bl_label = "Imaging"
    bl_idname = "SEMCOAT_PT_imaging"

    def draw(self, context: Any) -> None:
        """The imaging fields, any problem, the preview render."""
        layout = self.layout
        settings = context.scene.semcoat
        draw_sections(layout, settings, F.IMAGING_SECTIONS)
        _problems_box(layout, [p for p in spec_problems(settings) if p.startswith("Imaging")])
        layout.operator("semcoat.render_preview", icon="RENDER_STILL")


class SEMCOAT_PT_batch(_SemcoatPanel, bpy.types.Panel):
    """The batch: name, count, seed, task size, backend, randomisation; export, import, Render on cluster."""

    bl_label = "Batch"
    bl_idname = "SEMCOAT_PT_batch"

    def draw(self, context: Any) -> None:
        """Batch settings, Slurm options (Slurm backend), the randomisation of each section, the actions."""
        layout = self.layout
        settings = context.scene.semcoat
        batch = settings.batch
        column = layout.column(align=True)
        for name in BATCH_PROPERTIES:
            column.prop(batch, name)
        if batch.backend == "slurm" or (batch.backend == "PREFERENCES" and _default_backend(context) == "slurm"):
            box = layout.box()
            box.label(text="Slurm (empty: the admin's defaults)")
            for name in SLURM_FIELDS:
                box.prop(batch, name)
        layout.label(text="Randomise (ticked parameters vary per image)")
        for section in F.SECTIONS:
            self.draw_random(layout, settings, section)
        _problems_box(layout, [p for p in spec_problems(settings) if p.startswith("Batch")])
        row = layout.row(align=True)
        row.operator("semcoat.export_spec", icon="EXPORT")
        row.operator("semcoat.import_spec", icon="IMPORT")
        layout.operator("semcoat.render_on_cluster", icon="RENDER_ANIMATION")

    @staticmethod
    def draw_random(layout: Any, settings: Any, section: str) -> None:
        """One box per section: a tick per parameter; a ticked one shows its kind and the kind's values."""
        group = getattr(settings.random, section)
        box = layout.box()
        box.label(text=F.SECTION_LABELS[section])
        for f in F.section_fields(section):
            if not f.randomizable:
                continue
            if not getattr(group, f"{f.name}_use"):
                box.prop(group, f"{f.name}_use")
                continue
            kind = getattr(group, f"{f.name}_kind")
            column = box.column(align=True)
            for name in random_property_names(f, kind):
                column.prop(group, name)


def _default_backend(context: Any) -> str:
    addon = context.preferences.addons.get(ADDON_ID)
    return addon.preferences.default_backend if addon is not None else "local"


class SEMCOAT_PT_jobs(_SemcoatPanel, bpy.types.Panel):
    """The batches sent from this file: state, progress, Cancel, Download results, Open folder."""

    bl_label = "Jobs"
    bl_idname = "SEMCOAT_PT_jobs"

    def draw(self, context: Any) -> None:
        """The connection state, Refresh, and a box per batch."""
        layout = self.layout
        session = context.window_manager.semcoat
        if not session.connection_ok and session.connection_message:
            box = layout.box()
            box.alert = True
            box.label(text=session.connection_message, icon="ERROR")
        layout.operator("semcoat.refresh_jobs", icon="FILE_REFRESH")
        if not len(session.jobs):
            layout.label(text="No batches yet: Batch > Render on cluster")
        for job in session.jobs:
            self.draw_job(layout, job)

    @staticmethod
    def draw_job(layout: Any, job: Any) -> None:
        """One batch: name and state, the images done as a bar, any error, the actions."""
        box = layout.box()
        box.label(text=f"{job.name or job.batch_id}  ({job.batch_id})")
        box.label(text=f"State: {job.state}  ({job.backend})" if job.backend else f"State: {job.state}")
        box.progress(factor=job.progress, type="BAR", text=f"{job.images_done} / {job.count} images")
        if job.error:
            box.label(text=job.error, icon="ERROR")
        if job.download:
            box.label(text=job.download, icon="IMPORT")
        row = box.row(align=True)
        for operator in ("semcoat.cancel_job", "semcoat.download_results", "semcoat.open_folder"):
            row.operator(operator).batch_id = job.batch_id


classes = (SEMCOAT_PT_design, SEMCOAT_PT_imaging, SEMCOAT_PT_batch, SEMCOAT_PT_jobs)
register, unregister = bpy.utils.register_classes_factory(classes)
