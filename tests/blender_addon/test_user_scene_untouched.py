"""Inside the add-on the renderer and the scene builder run in the user's open file: they must leave the user's
scenes, cameras, worlds, objects and render settings as they were (real bpy 5.0.1).

- A Renderer renders in a scene of its own: after it rendered and closed, the user's scene has the same objects,
  camera, world (and world colour) and the same render, Cycles, colour-management and output settings; the active
  scene is still the user's; every data-block the renderer made is gone again.
- A SceneBuilder preview in the user's scene adds one collection and nothing else; only when asked does its camera
  become the scene's camera; a second preview replaces the first; user data named like the builder's is never
  reused or renamed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from blender_addon.scene.geometry import build_geometry
from tests.blender_addon.specs import small_batch

pytestmark = pytest.mark.blender

DATA_KINDS = ("scenes", "objects", "meshes", "materials", "cameras", "worlds", "collections", "lights")


def _rna_values(struct: Any) -> dict[str, Any]:
    """Every plain (non-pointer) RNA property of ``struct``, arrays as tuples."""
    values = {}
    for prop in struct.bl_rna.properties:
        if prop.type in {"POINTER", "COLLECTION"} or prop.identifier == "rna_type":
            continue
        value = getattr(struct, prop.identifier)
        values[prop.identifier] = tuple(value) if hasattr(value, "__len__") and not isinstance(value, str) else value
    return values


def _snapshot(scene: Any) -> dict[str, Any]:
    import bpy

    return {
        "objects": sorted(o.name for o in scene.objects),
        "children": sorted(c.name for c in scene.collection.children),
        "camera": scene.camera.name if scene.camera else None,
        "world": scene.world.name if scene.world else None,
        "world_color": tuple(scene.world.color) if scene.world else None,
        "render": _rna_values(scene.render),
        "image_settings": _rna_values(scene.render.image_settings),
        "cycles": _rna_values(scene.cycles),
        "view_settings": _rna_values(scene.view_settings),
        "view_layers": {v.name: v.use_pass_object_index for v in scene.view_layers},
        "active_scene": bpy.context.scene.name,
    }


def _data_names() -> dict[str, set[str]]:
    import bpy

    return {kind: {d.name for d in getattr(bpy.data, kind)} for kind in DATA_KINDS}


@pytest.fixture
def user_scene() -> Iterator[Any]:
    """A scene as a user might have it: a mesh, a camera, a world, EEVEE at 1920 x 1080, a PNG output path, and
    data named like the builder's ("semcoat" collection, "semcoat.resin" object and material)."""
    import bpy

    scene = bpy.data.scenes.new("user scene")
    window_scene = bpy.context.window.scene if bpy.context.window else None
    if bpy.context.window:
        bpy.context.window.scene = scene
    made: list[tuple[str, Any]] = []

    def keep(kind: str, block: Any) -> Any:
        made.append((kind, block))
        return block

    mesh = keep("meshes", bpy.data.meshes.new("user mesh"))
    cube = keep("objects", bpy.data.objects.new("user cube", mesh))
    scene.collection.objects.link(cube)
    cam = keep("objects", bpy.data.objects.new("user camera", keep("cameras", bpy.data.cameras.new("user camera"))))
    scene.collection.objects.link(cam)
    scene.camera = cam
    scene.world = keep("worlds", bpy.data.worlds.new("user world"))
    scene.world.color = (0.2, 0.3, 0.4)
    look_alike = keep("collections", bpy.data.collections.new("semcoat"))
    scene.collection.children.link(look_alike)
    resin_mat = keep("materials", bpy.data.materials.new("semcoat.resin"))
    resin = keep("objects", bpy.data.objects.new("semcoat.resin", keep("meshes", bpy.data.meshes.new("semcoat.resin"))))
    resin.data.materials.append(resin_mat)
    look_alike.objects.link(resin)
    scene.render.engine = "BLENDER_EEVEE"
    scene.render.resolution_x, scene.render.resolution_y = 1920, 1080
    scene.render.filepath = "//user_render_"
    yield scene
    if bpy.context.window and window_scene is not None:
        bpy.context.window.scene = window_scene
    bpy.data.scenes.remove(scene)
    for kind, block in reversed(made):
        getattr(bpy.data, kind).remove(block)


def _spec_and_geometry() -> tuple[Any, Any]:
    spec = small_batch(count=1).sample(0)
    return spec, build_geometry(spec, np.random.default_rng(4), margin_px=3)


def test_a_renderer_leaves_the_users_scene_as_it_was(user_scene: Any) -> None:
    import bpy

    from blender_addon.render_node.renderer import Renderer

    before, data_before = _snapshot(user_scene), _data_names()
    renderer = Renderer()
    try:
        assert renderer.scene.name not in data_before["scenes"]  # a scene of its own
        renderer.build(*_spec_and_geometry())
        frame = renderer.render()
        assert frame.mask.any()  # it did render
        assert _snapshot(user_scene) == before
    finally:
        renderer.close()
    assert _snapshot(user_scene) == before
    assert bpy.data.scenes.get("user scene") is user_scene
    assert _data_names() == data_before  # everything the renderer made is gone, nothing of the user's went


def test_a_preview_in_the_users_scene_adds_only_its_collection(user_scene: Any) -> None:
    import bpy

    from blender_addon.scene.builder import SceneBuilder

    before, data_before = _snapshot(user_scene), _data_names()
    user_resin = bpy.data.objects["semcoat.resin"]
    builder = SceneBuilder(user_scene, use_as_scene_camera=False)
    builder.update(*_spec_and_geometry())
    after = _snapshot(user_scene)
    added = set(after["children"]) - set(before["children"])
    assert added == {builder.collection.name}
    assert builder.collection.name != "semcoat"  # the user's "semcoat" collection kept its name and stayed apart
    assert {k: v for k, v in after.items() if k not in {"children", "objects"}} == \
        {k: v for k, v in before.items() if k not in {"children", "objects"}}  # camera, world, settings alike
    assert set(after["objects"]) - set(before["objects"]) == {o.name for o in builder.collection.objects}
    assert set(before["objects"]) <= set(after["objects"])
    assert user_resin.name == "semcoat.resin" and user_resin.data.vertices[:] == []  # never reused or refilled
    assert user_resin.data.materials[0].name == "semcoat.resin"
    builder.remove()
    assert _snapshot(user_scene) == before
    assert _data_names() == data_before


def test_a_preview_takes_the_scene_camera_only_when_asked_and_replaces_the_previous_one(user_scene: Any) -> None:
    import bpy

    from blender_addon.scene.builder import SceneBuilder

    spec, geometry = _spec_and_geometry()
    first = SceneBuilder(user_scene, use_as_scene_camera=True)
    first.update(spec, geometry)
    assert user_scene.camera == first.camera
    frame_w = geometry.width_px + 2 * geometry.margin_px
    assert (user_scene.render.resolution_x, user_scene.render.resolution_y) == (frame_w, geometry.height_px)
    objects = {o.name for o in first.collection.objects}
    second = SceneBuilder(user_scene, use_as_scene_camera=True)  # "Generate preview" clicked again
    second.update(spec, geometry)
    assert second.collection == first.collection
    assert {o.name for o in second.collection.objects} == objects  # the same objects, refilled, none added
    mine = bpy.data.objects.new("dropped in by the user", None)
    second.collection.objects.link(mine)
    second.remove()
    assert not objects & {o.name for o in bpy.data.objects}
    assert mine.name in user_scene.objects  # the user's object survives the preview's removal, still in the scene
    bpy.data.objects.remove(mine)

