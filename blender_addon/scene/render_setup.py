"""The render settings that make the class mask exact, shared by the render node and the add-on's preview render.

Cycles on the CPU at one sample per pixel with a 0.01 px box filter, so every pixel is one ray through (very nearly)
its centre: the Combined pass is the emission of the object hit there and the Object Index pass is its class id,
written to an uncompressed multilayer EXR. Only for a scene of semcoat's own: it changes the scene's render settings
and its world's colour.
"""

from __future__ import annotations

from typing import Any

PIXEL_FILTER_WIDTH_PX = 0.01  # the smallest Cycles accepts: samples land within 0.005 px of the pixel centre


def configure_exact_render(scene: Any) -> None:
    """Cycles on the CPU, one sample, no bounces or denoising, Raw colours, a black world, the Object Index pass and
    multilayer EXR output on ``scene`` (a ``bpy.types.Scene`` of semcoat's own)."""
    scene.render.engine = "CYCLES"
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
    scene.render.use_compositing = False
    scene.render.use_sequencer = False
    scene.render.dither_intensity = 0.0
    scene.render.film_transparent = False
    scene.view_settings.view_transform = "Raw"
    scene.view_settings.look = "None"
    if scene.world is not None:
        scene.world.color = (0.0, 0.0, 0.0)
    for layer in scene.view_layers:
        layer.use_pass_object_index = True
    fmt = scene.render.image_settings
    if hasattr(fmt, "media_type"):  # Blender 5: set before file_format, which it restricts (4.2-4.5 lack it)
        fmt.media_type = "MULTI_LAYER_IMAGE"
    fmt.file_format = "OPEN_EXR_MULTILAYER"
    fmt.color_depth = "32"
    fmt.exr_codec = "NONE"
