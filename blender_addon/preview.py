"""The viewport preview and the local preview image, built with the scene builder the render nodes use.

Image ``i`` of a batch is drawn exactly as a render node draws it: its spec ``batch.sample(i)``, its geometry from
``np.random.default_rng([batch.image_seed(i), 0])`` with the same scan margin. "Generate preview" puts that geometry
into the user's scene (in the builder's own collection, replacing the previous preview); "Render preview image"
renders it in a scene of its own with the render node's settings (Cycles, one ray per pixel centre, the Object Index
pass holding each object's id, turned into the mask and signal by the render node's pixel-centre rule) and forms
the SEM image with :mod:`.preview_image`.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bpy
import numpy as np

from semcoat.batch import BatchSpec
from semcoat.errors import SemcoatError
from semcoat.spec import CoatingSpec

from . import exr
from .preview_image import GEOMETRY_STREAM, NOISE_STREAM, form_preview, mask_colours, scan_margin_px
from .scene.builder import SceneBuilder
from .scene.geometry import CoatingGeometry, build_geometry
from .scene.render_setup import configure_exact_render

RENDER_SCENE_NAME = "semcoat.preview_render"
IMAGE_NAME = "semcoat preview"
MASK_NAME = "semcoat preview mask"
ROLE_KEY = "semcoat_role"


class PreviewError(SemcoatError):
    """The preview could not be made (the message says why)."""


@dataclass
class PreviewSample:
    """Image ``index`` of a batch as a render node draws it."""

    index: int
    spec: CoatingSpec
    geometry: CoatingGeometry
    margin_px: int
    image_seed: int


def preview_sample(batch: BatchSpec, index: int) -> PreviewSample:
    """The spec and geometry of image ``index`` of ``batch`` (InvalidArgument-like PreviewError when out of range)."""
    if not 0 <= index < batch.count:
        raise PreviewError(f"preview image {index} is outside the batch of {batch.count} images; choose 0 to "
                           f"{batch.count - 1} (Design > Preview image)")
    spec = batch.sample(index)
    seed = batch.image_seed(index)
    margin = scan_margin_px(spec.imaging)
    geometry = build_geometry(spec, np.random.default_rng([seed, GEOMETRY_STREAM]), margin)
    return PreviewSample(index, spec, geometry, margin, seed)


def generate_preview(scene: Any, batch: BatchSpec, index: int, use_camera: bool) -> SceneBuilder:
    """Draw image ``index`` of ``batch`` into ``scene`` (replacing the previous preview); returns the builder.

    With ``use_camera`` the builder's camera (framed on the image, one Blender unit per pixel) becomes the scene's.
    """
    sample = preview_sample(batch, index)
    builder = SceneBuilder(scene, use_as_scene_camera=use_camera)
    builder.update(sample.spec, sample.geometry)
    return builder


def remove_preview(scene: Any) -> bool:
    """Remove the preview from ``scene``; False when there was none."""
    if not any(c.get(ROLE_KEY) for c in scene.collection.children):
        return False
    SceneBuilder(scene, use_as_scene_camera=False).remove()
    return True


def render_frame(sample: PreviewSample) -> tuple[np.ndarray, np.ndarray]:
    """Render ``sample`` in a scene of the add-on's own (removed afterwards): (signal float32, mask uint8), frame
    sized. The user's scenes, active scene and render settings are left as they were."""
    scene = bpy.data.scenes.new(RENDER_SCENE_NAME)
    world = bpy.data.worlds.new(f"{RENDER_SCENE_NAME}.world")
    scene.world = world
    folder = Path(tempfile.mkdtemp(prefix="semcoat-preview-"))
    builder = None
    try:
        configure_exact_render(scene)
        builder = SceneBuilder(scene, use_as_scene_camera=True)
        builder.update(sample.spec, sample.geometry)
        out = folder / "frame.exr"
        scene.render.filepath = str(out)
        try:
            bpy.ops.render.render(write_still=True, scene=scene.name)
        except RuntimeError as exc:
            raise PreviewError(f"Blender could not render the preview: {exc}") from exc
        if not out.is_file():
            raise PreviewError(f"Blender rendered the preview but wrote no file at {out}")
        index = exr.find_channel(exr.read_channels(out, ("Object Index.X", "IndexOB.X")), "Object Index.X",
                                 "IndexOB.X")
        signal, mask, _decided = builder.class_map(np.rint(index).astype(np.uint8))  # as the render node does
        return signal, mask
    finally:
        if builder is not None:
            builder.remove()
        bpy.data.scenes.remove(scene)
        if world.users == 0:
            bpy.data.worlds.remove(world)
        shutil.rmtree(folder, ignore_errors=True)


def render_preview(batch: BatchSpec, index: int) -> tuple[np.ndarray, np.ndarray, PreviewSample]:
    """Image ``index`` of ``batch`` rendered locally: (grey image float32 0-1, mask uint8, the sample), both
    (height_px, width_px); the mask equals the one the render node writes for that image."""
    sample = preview_sample(batch, index)
    signal, mask = render_frame(sample)
    image, out_mask = form_preview(signal, mask, sample.spec.imaging, sample.margin_px,
                                   np.random.default_rng([sample.image_seed, NOISE_STREAM]))
    return image, out_mask, sample


def _own_image(name: str, width: int, height: int) -> Any:
    """The add-on's image called (or suffixed from) ``name``, recreated when the size changed; never a user's."""
    for img in bpy.data.images:
        if img.get(ROLE_KEY) == name:
            if tuple(img.size) == (width, height):
                return img
            bpy.data.images.remove(img)
            break
    img = bpy.data.images.new(name, width, height, alpha=False, float_buffer=True)
    img[ROLE_KEY] = name
    return img


def show_images(image: np.ndarray, mask: np.ndarray) -> tuple[Any, Any]:
    """Put the preview image and a colour picture of its mask into Blender images (replacing the previous ones)."""
    height, width = mask.shape
    rgba = np.ones((height, width, 4), np.float32)
    rgba[..., :3] = image[..., None]
    grey = _own_image(IMAGE_NAME, width, height)
    if grey.colorspace_settings.name != "Non-Color":  # before the pixels: changing it reloads the buffer
        grey.colorspace_settings.name = "Non-Color"
    grey.pixels.foreach_set(rgba[::-1].ravel())  # Blender's rows run bottom-up
    rgba[..., :3] = mask_colours(mask)
    coloured = _own_image(MASK_NAME, width, height)
    coloured.pixels.foreach_set(rgba[::-1].ravel())
    for img in (grey, coloured):
        img.update()
    return grey, coloured


def show_in_image_editor(context: Any, image: Any) -> bool:
    """Show ``image`` in the first Image Editor of the window, if there is one."""
    screen = getattr(context, "screen", None)
    for area in getattr(screen, "areas", ()):
        if area.type == "IMAGE_EDITOR":
            area.spaces.active.image = image
            return True
    return False


def look_through_camera(context: Any) -> None:
    """Switch the 3D views of the window to the scene camera (nothing happens without a UI)."""
    screen = getattr(context, "screen", None)
    for area in getattr(screen, "areas", ()):
        if area.type == "VIEW_3D":
            area.spaces.active.region_3d.view_perspective = "CAMERA"

