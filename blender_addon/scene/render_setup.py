"""The render settings that draw each pixel's object id at its centre, shared by the render node and the add-on's
preview render. Only for a scene of semcoat's own: they change the scene's render settings and its world's colour.

- Cycles (:func:`configure_exact_render`, the reference, needs no OpenGL): on the CPU, one sample per pixel through a
  0.01 px box filter, so every pixel is one ray through (very nearly) its centre; the Object Index pass holds the id of
  the object hit there (each object's ``pass_index``), written to an uncompressed half-float multilayer EXR.
- Workbench (:func:`configure_flat_render`, a rasteriser, needs OpenGL through EGL): anti-aliasing off, so each pixel
  is one sample at its centre; flat lighting and the object colour (``id / 256``, see :mod:`.class_map`), no outline,
  cavity, shadow, specular or depth of field; the Raw view transform and no dithering, so the colour reaches the file
  untouched; written as an uncompressed one-channel half-float EXR.

Either way :func:`.class_map.class_map` turns the ids into the class mask and the grey signal.
"""

from __future__ import annotations

from typing import Any

PIXEL_FILTER_WIDTH_PX = 0.01  # the smallest Cycles accepts: samples land within 0.005 px of the pixel centre
ENGINES = {"cycles": "CYCLES", "workbench": "BLENDER_WORKBENCH"}


def _common(scene: Any) -> None:
    scene.render.use_compositing = False
    scene.render.use_sequencer = False
    scene.render.dither_intensity = 0.0
    scene.render.film_transparent = False
    scene.view_settings.view_transform = "Raw"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    if scene.world is not None:
        scene.world.color = (0.0, 0.0, 0.0)


def configure_exact_render(scene: Any) -> None:
    """Cycles on the CPU, one sample, no bounces or denoising, Raw colours, a black world, the Object Index pass and
    half-float multilayer EXR output on ``scene`` (a ``bpy.types.Scene`` of semcoat's own)."""
    _common(scene)
    scene.render.engine = ENGINES["cycles"]
    cyc = scene.cycles
    cyc.device = "CPU"
    cyc.samples = 1
    cyc.use_adaptive_sampling = False
    cyc.use_denoising = False
    cyc.max_bounces = 0
    cyc.seed = 0
    cyc.use_animated_seed = False
    cyc.pixel_filter_type = "BOX"
    cyc.filter_width = PIXEL_FILTER_WIDTH_PX
    for layer in scene.view_layers:
        layer.use_pass_object_index = True
    fmt = scene.render.image_settings
    if hasattr(fmt, "media_type"):  # Blender 5: set before file_format, which it restricts (4.2-4.5 lack it)
        fmt.media_type = "MULTI_LAYER_IMAGE"
    fmt.file_format = "OPEN_EXR_MULTILAYER"
    fmt.color_depth = "16"  # ids up to 2048 are exact in half floats
    fmt.exr_codec = "NONE"


def configure_flat_render(scene: Any) -> None:
    """Workbench with one sample at each pixel centre, flat object colours passed through untouched, and a one-channel
    half-float EXR output on ``scene`` (a ``bpy.types.Scene`` of semcoat's own)."""
    _common(scene)
    scene.render.engine = ENGINES["workbench"]
    display = scene.display
    display.render_aa = "OFF"
    shading = display.shading
    shading.light = "FLAT"
    shading.color_type = "OBJECT"
    shading.show_object_outline = False
    shading.show_cavity = False
    shading.show_shadows = False
    shading.show_specular_highlight = False
    shading.show_xray = False
    shading.use_dof = False
    shading.show_backface_culling = False
    fmt = scene.render.image_settings
    if hasattr(fmt, "media_type"):
        fmt.media_type = "IMAGE"
    fmt.file_format = "OPEN_EXR"
    fmt.color_mode = "BW"
    fmt.color_depth = "16"
    fmt.exr_codec = "NONE"
