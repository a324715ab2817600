"""The add-on's operators (``bpy.ops.semcoat.*``): each translates the panel into a call of a plain function and its
outcome into ``Operator.report``; a refused value is reported with the panel property it comes from."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import bpy

from semcoat.batch import BatchSpec, is_coating_document, read_json
from semcoat.errors import SemcoatError
from semcoat.params import SpecError
from semcoat.presets import PRESETS, preset_batch
from semcoat.spec import CoatingSpec

from . import fields as F
from . import preview, runtime
from .client import RequestRefused, batch_payload
from .preferences import addon_preferences, client_from, download_root
from .properties import batch_from_settings, write_batch, write_coating

MAX_LINES_REPORTED = 6


def error_text(exc: Exception) -> str:
    """A refused spec or request as sentences naming the panel properties; any other SemcoatError as it says."""
    if isinstance(exc, SpecError):
        lines = F.spec_error_lines(exc.errors)
    elif isinstance(exc, RequestRefused) and exc.problems:
        lines = [f"{F.panel_location(p.spec_path)}: {p.msg}" for p in exc.problems]
    else:
        return str(exc)
    more = len(lines) - MAX_LINES_REPORTED
    return "; ".join(lines[:MAX_LINES_REPORTED]) + (f"; and {more} more" if more > 0 else "")


def run(operator: Any, work: Callable[[], str | None]) -> set[str]:
    """Run ``work``; report its message (INFO) or the SemcoatError it raised (ERROR) through the operator."""
    try:
        message = work()
    except SemcoatError as exc:
        operator.report({"ERROR"}, error_text(exc))
        return {"CANCELLED"}
    if message:
        operator.report({"INFO"}, message)
    return {"FINISHED"}


def _settings(context: Any) -> Any:
    return context.scene.semcoat


def _job(context: Any, batch_id: str) -> Any:
    job = runtime.job_entry(context.window_manager, batch_id, create=False)
    if job is None:
        raise SemcoatError(f"batch {batch_id!r} is not among the jobs this file follows; press Refresh")
    return job


def backend_of(context: Any) -> str:
    """The backend the panel chose (its 'Default' is the preferences' default backend)."""
    chosen = _settings(context).batch.backend
    return addon_preferences(context).default_backend if chosen == "PREFERENCES" else chosen


def slurm_options(settings: Any) -> dict[str, Any]:
    """The Slurm options the panel sets (empty ones: the admin's defaults), images per task included."""
    b = settings.batch
    return {"partition": b.slurm_partition.strip(), "account": b.slurm_account.strip(),
            "time_limit": b.slurm_time_limit.strip(), "max_parallel_tasks": b.slurm_max_parallel_tasks,
            "images_per_task": b.images_per_task}


class _BatchOperator:
    batch_id: bpy.props.StringProperty(name="Batch id", options={"SKIP_SAVE"})  # type: ignore[valid-type]


class SEMCOAT_OT_generate_preview(bpy.types.Operator):
    """Build the chosen image of the batch in the viewport, with the scene builder the render nodes use (replacing
    the previous preview)"""

    bl_idname = "semcoat.generate_preview"
    bl_label = "Generate preview"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: Any) -> set[str]:
        """Draw image ``preview_index`` of the batch into the scene."""
        def work() -> str:
            settings = _settings(context)
            batch = batch_from_settings(settings)
            builder = preview.generate_preview(context.scene, batch, settings.batch.preview_index,
                                               settings.batch.preview_use_camera)
            if settings.batch.preview_use_camera:
                preview.look_through_camera(context)
            return (f"Preview of image {settings.batch.preview_index} in collection {builder.collection.name!r} "
                    f"({len(builder.collection.objects)} objects)")
        return run(self, work)


class SEMCOAT_OT_render_preview(bpy.types.Operator):
    """Render the chosen image of the batch here (one SEM image and its mask, into the images
    'semcoat preview' and 'semcoat preview mask')"""

    bl_idname = "semcoat.render_preview"
    bl_label = "Render preview image"

    def execute(self, context: Any) -> set[str]:
        """Render, form the image, show it in an Image Editor if one is open."""
        def work() -> str:
            settings = _settings(context)
            batch = batch_from_settings(settings)
            image, mask, sample = preview.render_preview(batch, settings.batch.preview_index)
            grey, _coloured = preview.show_images(image, mask)
            preview.show_in_image_editor(context, grey)
            return (f"Rendered image {sample.index} ({mask.shape[1]}x{mask.shape[0]} px) into the images "
                    f"'{preview.IMAGE_NAME}' and '{preview.MASK_NAME}'")
        return run(self, work)


class SEMCOAT_OT_render_on_cluster(bpy.types.Operator):
    """Send the current design to the render service as a batch of randomised images"""

    bl_idname = "semcoat.render_on_cluster"
    bl_label = "Render on cluster"

    def execute(self, context: Any) -> set[str]:
        """Validate, submit, remember the batch on the Scene and follow it."""
        def work() -> str:
            settings = _settings(context)
            batch = batch_from_settings(settings)
            backend = backend_of(context)
            payload = batch_payload(batch, backend, slurm_options(settings) if backend == "slurm" else None)
            status = client_from(context).submit(payload)
            runtime.remember_batch(context.scene, status)
            runtime.show_status(context.window_manager, status)
            runtime.follow(context)
            return f"Batch {status.name} ({status.id}) of {status.count} images sent to the {backend} backend"
        return run(self, work)


class SEMCOAT_OT_refresh_jobs(bpy.types.Operator):
    """Ask the service now for the state of every batch sent from this file"""

    bl_idname = "semcoat.refresh_jobs"
    bl_label = "Refresh"

    def execute(self, context: Any) -> set[str]:
        """Wake the poller (its answers arrive in the Jobs section)."""
        def work() -> str:
            poller = runtime.follow(context)
            runtime.drain_messages(context.window_manager)
            return f"Following {len(poller.following())} running batch(es)"
        return run(self, work)


class SEMCOAT_OT_cancel_job(_BatchOperator, bpy.types.Operator):
    """Cancel the batch (finished images stay on the service)"""

    bl_idname = "semcoat.cancel_job"
    bl_label = "Cancel"

    def execute(self, context: Any) -> set[str]:
        """DELETE the batch and show its new state."""
        def work() -> str:
            status = client_from(context).cancel(self.batch_id)
            runtime.show_status(context.window_manager, status)
            runtime.follow(context)
            return f"Cancel of batch {status.name} ({status.id}) requested; it is {status.state}"
        return run(self, work)


class SEMCOAT_OT_download_results(_BatchOperator, bpy.types.Operator):
    """Download the batch's dataset into the download folder and check it with the dataset checker"""

    bl_idname = "semcoat.download_results"
    bl_label = "Download results"

    def execute(self, context: Any) -> set[str]:
        """Start the download in the background (progress and the check's verdict show in the Jobs section)."""
        def work() -> str:
            job = _job(context, self.batch_id)
            if job.state != "succeeded" and job.images_done == 0:
                raise SemcoatError(f"batch {job.name or self.batch_id} has no finished images yet ({job.state}); "
                                   "download it once it has some")
            folder = download_root(context) / f"{job.name or 'batch'}-{self.batch_id}"
            job.download = "downloading"
            runtime.start_download(client_from(context), self.batch_id, folder)
            return f"Downloading batch {job.name} into {folder}"
        return run(self, work)


class SEMCOAT_OT_open_folder(_BatchOperator, bpy.types.Operator):
    """Open the folder the batch was downloaded into"""

    bl_idname = "semcoat.open_folder"
    bl_label = "Open folder"

    def execute(self, context: Any) -> set[str]:
        """Open the download folder in the system's file browser."""
        def work() -> str:
            job = _job(context, self.batch_id)
            if not job.folder or not Path(job.folder).is_dir():
                raise SemcoatError(f"batch {job.name or self.batch_id} has not been downloaded here yet; press "
                                   "Download results first")
            bpy.ops.wm.path_open(filepath=job.folder)
            return f"Opened {job.folder}"
        return run(self, work)


class _FileOperator:
    filepath: bpy.props.StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"})  # type: ignore[valid-type]
    filter_glob: bpy.props.StringProperty(default="*.json", options={"HIDDEN"})  # type: ignore[valid-type]

    def invoke(self, context: Any, _event: Any) -> set[str]:
        """Ask for the file."""
        if not self.filepath:
            self.filepath = f"{_settings(context).batch.name}.json"
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}


class SEMCOAT_OT_export_spec(_FileOperator, bpy.types.Operator):
    """Write the batch (coating, randomisation, count, seed) as a JSON file that `semcoat render` and the service
    take"""

    bl_idname = "semcoat.export_spec"
    bl_label = "Export spec"

    def execute(self, context: Any) -> set[str]:
        """Validate and write."""
        def work() -> str:
            batch = batch_from_settings(_settings(context))
            path = Path(bpy.path.abspath(self.filepath))
            try:
                path.write_text(batch.to_json() + "\n", encoding="utf-8")
            except OSError as exc:
                raise SemcoatError(f"cannot write {path}: {exc.strerror}") from exc
            return f"Wrote {path}"
        return run(self, work)


class SEMCOAT_OT_import_spec(_FileOperator, bpy.types.Operator):
    """Read a batch or coating JSON file into the panel"""

    bl_idname = "semcoat.import_spec"
    bl_label = "Import spec"

    def execute(self, context: Any) -> set[str]:
        """Read, validate, show."""
        def work() -> str:
            path = Path(bpy.path.abspath(self.filepath))
            data = read_json(path)
            if is_coating_document(data):
                write_coating(CoatingSpec.from_dict(data, source=str(path)), _settings(context))
                return f"Read the coating of {path}"
            batch = BatchSpec.from_dict(data, source=str(path))
            write_batch(batch, _settings(context))
            return f"Read batch {batch.name} ({batch.count} images, {len(batch.randomize)} varying) from {path}"
        return run(self, work)


class SEMCOAT_OT_apply_preset(bpy.types.Operator):
    """Fill the panel with a preset coating and its randomisation (count and seed stay)"""

    bl_idname = "semcoat.apply_preset"
    bl_label = "Apply preset"
    bl_options = {"REGISTER", "UNDO"}

    preset: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Preset", items=[(n, n, f"The {n} coating") for n in PRESETS], options={"SKIP_SAVE"})

    def invoke(self, context: Any, _event: Any) -> set[str]:
        """Take the preset chosen in the panel."""
        self.preset = _settings(context).preset
        return self.execute(context)

    def execute(self, context: Any) -> set[str]:
        """Show the preset."""
        def work() -> str:
            settings = _settings(context)
            batch = preset_batch(self.preset, count=settings.batch.count, seed=settings.batch.seed)
            write_batch(batch, settings)
            settings.preset = self.preset
            return f"Preset {self.preset}: {len(batch.randomize)} parameters vary"
        return run(self, work)


class SEMCOAT_OT_test_connection(bpy.types.Operator):
    """Check that the service answers, speaks this add-on's version and takes the token"""

    bl_idname = "semcoat.test_connection"
    bl_label = "Test connection"

    def execute(self, context: Any) -> set[str]:
        """Report what works, or exactly what does not."""
        def work() -> str:
            client = client_from(context)
            health = client.check()
            return f"Connected to {client.url}: {health.summary()}; the token is accepted"
        return run(self, work)


classes = (
    SEMCOAT_OT_generate_preview, SEMCOAT_OT_render_preview, SEMCOAT_OT_render_on_cluster, SEMCOAT_OT_refresh_jobs,
    SEMCOAT_OT_cancel_job, SEMCOAT_OT_download_results, SEMCOAT_OT_open_folder, SEMCOAT_OT_export_spec,
    SEMCOAT_OT_import_spec, SEMCOAT_OT_apply_preset, SEMCOAT_OT_test_connection,
)
register, unregister = bpy.utils.register_classes_factory(classes)
