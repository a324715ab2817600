"""Coating geometry -> Blender objects seen by an orthographic camera (one Blender unit = one pixel).

Six objects in a ``semcoat`` collection, stacked along z so that the camera (looking down -z) sees the upper one
where they overlap: resin plane (z 0), Fe2Al5 below the surface (z 1), FeAl below the Fe2Al5 bottom (z 2), substrate
below the FeAl bottom (z 3), precipitates (z 4), pores (z 5). Each object's ``pass_index`` is its class id, so the
Object Index pass is the class mask. Without FeAl both bottoms coincide and the substrate hides the FeAl object.

Building is incremental: the objects, materials and camera are made once per scene and every later call only
refills the mesh buffers (``foreach_set``), sets colours and moves the camera, which is what makes a few renders per
second possible. The add-on's viewport preview calls the same :class:`SceneBuilder`.
"""

from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np

from blender_addon.geometry import CoatingGeometry, Inclusions
from semcoat import classes
from semcoat.spec import CoatingSpec

COLLECTION_NAME = "semcoat"
CAMERA_HEIGHT_PX = 100.0
# Region objects reach this many pixels below the image bottom, so they cover the frame whatever the profiles.
DEPTH_OVERHANG_PX = 64.0


@dataclass(frozen=True)
class Texture:
    """Within-phase contrast drawn by the material (channelling contrast of grains).

    Attributes
    ----------
    amplitude : peak relative brightness change (0.04 = +-4 %).
    grain_um : mean grain size along the surface, µm.
    aspect : grain length along the depth over its width (columnar Fe2Al5 grains > 1).
    """

    amplitude: float
    grain_um: float
    aspect: float


# Class id -> (object name, z, texture). Textures are small: BSE compositional contrast dominates.
LAYOUT: dict[int, tuple[str, float, Texture]] = {
    classes.BACKGROUND: ("resin", 0.0, Texture(0.01, 3.0, 1.0)),
    classes.FE2AL5: ("fe2al5", 1.0, Texture(0.025, 9.0, 3.0)),
    classes.FEAL: ("feal", 2.0, Texture(0.02, 5.0, 1.0)),
    classes.SUBSTRATE: ("substrate", 3.0, Texture(0.045, 6.0, 1.3)),
    classes.PRECIPITATE: ("precipitates", 4.0, Texture(0.03, 0.8, 1.0)),
    classes.PORE: ("pores", 5.0, Texture(0.0, 1.0, 1.0)),
}


def _emission_material(name: str) -> bpy.types.Material:
    """Emission = object colour x (1 + amplitude x grain value), grains from a 2-D Voronoi (shifted coordinates).

    Per-image values live on the object (colour, custom properties read by Attribute nodes), so updating an image
    never edits a node tree.
    """
    mat = bpy.data.materials.get(name) or bpy.data.materials.new(name)
    mat.use_nodes = True
    nt = mat.node_tree
    nt.nodes.clear()
    out = nt.nodes.new("ShaderNodeOutputMaterial")
    emit = nt.nodes.new("ShaderNodeEmission")
    info = nt.nodes.new("ShaderNodeObjectInfo")
    coords = nt.nodes.new("ShaderNodeTexCoord")
    scale = nt.nodes.new("ShaderNodeAttribute")
    scale.attribute_type, scale.attribute_name = "OBJECT", "semcoat_tex_scale"
    phase = nt.nodes.new("ShaderNodeAttribute")
    phase.attribute_type, phase.attribute_name = "OBJECT", "semcoat_tex_offset"
    amp = nt.nodes.new("ShaderNodeAttribute")
    amp.attribute_type, amp.attribute_name = "OBJECT", "semcoat_tex_amplitude"
    scaled = nt.nodes.new("ShaderNodeVectorMath")
    scaled.operation = "MULTIPLY"
    voronoi = nt.nodes.new("ShaderNodeTexVoronoi")
    voronoi.voronoi_dimensions = "2D"  # the objects are flat; 3-D/4-D cost 3-9x the cell lookups
    shifted = nt.nodes.new("ShaderNodeVectorMath")
    shifted.operation = "ADD"
    bw = nt.nodes.new("ShaderNodeRGBToBW")
    centred = nt.nodes.new("ShaderNodeMath")
    centred.operation = "MULTIPLY_ADD"  # (v - 0.5) * 2 * amp + 1 = v * 2amp + (1 - amp)
    two_amp = nt.nodes.new("ShaderNodeMath")
    two_amp.operation = "MULTIPLY"
    two_amp.inputs[1].default_value = 2.0
    offset = nt.nodes.new("ShaderNodeMath")
    offset.operation = "SUBTRACT"
    offset.inputs[0].default_value = 1.0
    tint = nt.nodes.new("ShaderNodeMix")
    tint.data_type, tint.blend_type = "RGBA", "MULTIPLY"
    tint.inputs["Factor"].default_value = 1.0
    link = nt.links.new
    link(coords.outputs["Object"], scaled.inputs[0])
    link(scale.outputs["Vector"], scaled.inputs[1])
    link(scaled.outputs["Vector"], shifted.inputs[0])
    link(phase.outputs["Vector"], shifted.inputs[1])
    link(shifted.outputs["Vector"], voronoi.inputs["Vector"])
    link(voronoi.outputs["Color"], bw.inputs["Color"])
    link(amp.outputs["Fac"], two_amp.inputs[0])
    link(amp.outputs["Fac"], offset.inputs[1])
    link(bw.outputs["Val"], centred.inputs[0])
    link(two_amp.outputs["Value"], centred.inputs[1])
    link(offset.outputs["Value"], centred.inputs[2])
    link(info.outputs["Color"], tint.inputs["A"])
    link(centred.outputs["Value"], tint.inputs["B"])
    link(tint.outputs["Result"], emit.inputs["Color"])
    link(emit.outputs["Emission"], out.inputs["Surface"])
    return mat


def _fill_polygons(mesh: bpy.types.Mesh, vertices_xy: np.ndarray, z: float) -> None:
    """Replace the mesh by ``vertices_xy`` of shape (n_faces, k, 2): one k-gon per face, at height ``z``."""
    n_faces, k = vertices_xy.shape[:2]
    mesh.clear_geometry()
    if n_faces == 0:
        mesh.update()
        return
    co = np.empty((n_faces * k, 3), dtype=np.float32)
    co[:, :2] = vertices_xy.reshape(-1, 2)
    co[:, 2] = z
    mesh.vertices.add(n_faces * k)
    mesh.vertices.foreach_set("co", co.ravel())
    mesh.loops.add(n_faces * k)
    mesh.loops.foreach_set("vertex_index", np.arange(n_faces * k, dtype=np.int32))
    mesh.polygons.add(n_faces)
    mesh.polygons.foreach_set("loop_start", np.arange(0, n_faces * k, k, dtype=np.int32))
    mesh.update()


def _region_below(x_px: np.ndarray, top_px: np.ndarray, bottom_px: float) -> np.ndarray:
    """Quads (n-1, 4, 2) covering everything between the profile ``top_px`` (image rows) and row ``bottom_px``.

    Blender y is minus the row coordinate; quads run counter-clockwise seen from the camera.
    """
    x0, x1 = x_px[:-1], x_px[1:]
    t0, t1 = top_px[:-1], top_px[1:]
    b = np.full_like(x0, bottom_px)
    quads = np.stack([
        np.stack([x0, -b], -1), np.stack([x1, -b], -1), np.stack([x1, -t1], -1), np.stack([x0, -t0], -1),
    ], axis=1)
    return quads


def _polygons_px(inclusions: Inclusions, pixel_size_um: float) -> np.ndarray:
    """Inclusion polygons in Blender coordinates (x px, -row px)."""
    xy = inclusions.polygons_um / pixel_size_um
    return np.stack([xy[..., 0], -xy[..., 1]], axis=-1)


class SceneBuilder:
    """Makes (once) and updates (per image) the coating objects and the camera of one scene.

    Parameters
    ----------
    scene : the Blender scene to draw into; its active camera is replaced by the builder's.
    """

    def __init__(self, scene: bpy.types.Scene) -> None:
        self.scene = scene
        coll = bpy.data.collections.get(COLLECTION_NAME)
        if coll is None:
            coll = bpy.data.collections.new(COLLECTION_NAME)
        if coll.name not in scene.collection.children:
            scene.collection.children.link(coll)
        self.collection = coll
        self.objects: dict[int, bpy.types.Object] = {}
        for class_id, (name, _z, _tex) in LAYOUT.items():
            obj_name = f"{COLLECTION_NAME}.{name}"
            obj = bpy.data.objects.get(obj_name)
            if obj is None:
                obj = bpy.data.objects.new(obj_name, bpy.data.meshes.new(obj_name))
                coll.objects.link(obj)
            obj.pass_index = class_id
            if not obj.data.materials:
                obj.data.materials.append(_emission_material(f"{COLLECTION_NAME}.{name}"))
            self.objects[class_id] = obj
        cam = bpy.data.objects.get(f"{COLLECTION_NAME}.camera")
        if cam is None:
            cam = bpy.data.objects.new(f"{COLLECTION_NAME}.camera", bpy.data.cameras.new(f"{COLLECTION_NAME}.camera"))
            coll.objects.link(cam)
        cam.data.type = "ORTHO"
        cam.data.sensor_fit = "HORIZONTAL"
        cam.data.clip_start = 1.0
        cam.data.clip_end = 2 * CAMERA_HEIGHT_PX
        cam.rotation_euler = (0.0, 0.0, 0.0)
        scene.camera = cam
        self.camera = cam

    def update(self, spec: CoatingSpec, geometry: CoatingGeometry, rng: np.random.Generator) -> None:
        """Show ``geometry`` with the grey levels of ``spec``; ``rng`` places the grain textures.

        Sets the render resolution to the frame (image plus margins) and the camera so that one pixel is exactly
        ``pixel_size_um``: the orthographic scale is the frame width in Blender units, which are pixels.
        """
        g = geometry
        p = g.pixel_size_um
        frame_w = g.width_px + 2 * g.margin_px
        render = self.scene.render
        render.resolution_x, render.resolution_y, render.resolution_percentage = frame_w, g.height_px, 100
        render.pixel_aspect_x = render.pixel_aspect_y = 1.0
        self.camera.data.ortho_scale = float(frame_w)
        # Frame column j covers x in [j - margin, j - margin + 1) px; image rows run down from y = 0.
        self.camera.location = (g.width_px / 2.0, -g.height_px / 2.0, CAMERA_HEIGHT_PX)

        # Profile samples sit at column centres; extend them half a pixel beyond the frame on each side.
        x_px = np.concatenate([[g.x_um[0] / p - 1.0], g.x_um / p, [g.x_um[-1] / p + 1.0]])

        def ext(profile_um: np.ndarray) -> np.ndarray:
            prof = profile_um / p
            return np.concatenate([[prof[0]], prof, [prof[-1]]])

        bottom = g.height_px + DEPTH_OVERHANG_PX
        left, right = x_px[0] - 1.0, x_px[-1] + 1.0
        resin = np.array([[[left, 1.0], [right, 1.0], [right, -bottom], [left, -bottom]]])
        shapes = {
            classes.BACKGROUND: resin,
            classes.FE2AL5: _region_below(x_px, ext(g.surface_um), bottom),
            classes.FEAL: _region_below(x_px, ext(g.fe2al5_bottom_um), bottom),
            classes.SUBSTRATE: _region_below(x_px, ext(g.feal_bottom_um), bottom),
            classes.PRECIPITATE: _polygons_px(g.precipitates, p),
            classes.PORE: np.concatenate([_polygons_px(g.pores, p), _polygons_px(g.line_pores, p)]),
        }
        for class_id, (_name, z, tex) in LAYOUT.items():
            obj = self.objects[class_id]
            _fill_polygons(obj.data, shapes[class_id], z)
            grey = spec.grey.for_class(class_id)
            obj.color = (grey, grey, grey, 1.0)
            grain_px = tex.grain_um / p
            obj["semcoat_tex_scale"] = (1.0 / grain_px, 1.0 / (grain_px * tex.aspect), 1.0 / grain_px)
            obj["semcoat_tex_offset"] = tuple(float(v) for v in rng.uniform(0.0, 1000.0, 3))
            obj["semcoat_tex_amplitude"] = tex.amplitude
