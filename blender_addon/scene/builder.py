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

import bpy
import numpy as np

from semcoat import classes
from semcoat.spec import CoatingSpec

from .geometry import CoatingGeometry, Inclusions

COLLECTION_NAME = "semcoat"
CAMERA_HEIGHT_PX = 100.0
# Region objects reach this many pixels below the image bottom, so they cover the frame whatever the profiles.
DEPTH_OVERHANG_PX = 64.0


# Class id -> (object name, z).
LAYOUT: dict[int, tuple[str, float]] = {
    classes.BACKGROUND: ("resin", 0.0),
    classes.FE2AL5: ("fe2al5", 1.0),
    classes.FEAL: ("feal", 2.0),
    classes.SUBSTRATE: ("substrate", 3.0),
    classes.PRECIPITATE: ("precipitates", 4.0),
    classes.PORE: ("pores", 5.0),
}


def _emission_material(name: str) -> bpy.types.Material:
    """Flat emission of the object's colour: per-image greys live on the objects, never in a node tree.

    Grain contrast is added in numpy by the render node (``render_node.texture``): as a Cycles shader it doubled the
    render time.
    """
    mat = bpy.data.materials.get(name) or bpy.data.materials.new(name)
    if mat.node_tree is None:  # Blender 5 gives new materials a node tree; use_nodes is deprecated
        mat.use_nodes = True
    nt = mat.node_tree
    nt.nodes.clear()
    out = nt.nodes.new("ShaderNodeOutputMaterial")
    emit = nt.nodes.new("ShaderNodeEmission")
    info = nt.nodes.new("ShaderNodeObjectInfo")
    nt.links.new(info.outputs["Color"], emit.inputs["Color"])
    nt.links.new(emit.outputs["Emission"], out.inputs["Surface"])
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
        for class_id, (name, _z) in LAYOUT.items():
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

    def update(self, spec: CoatingSpec, geometry: CoatingGeometry) -> None:
        """Show ``geometry`` with the grey levels of ``spec``.

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
        for class_id, (_name, z) in LAYOUT.items():
            obj = self.objects[class_id]
            _fill_polygons(obj.data, shapes[class_id], z)
            grey = spec.grey.for_class(class_id)
            obj.color = (grey, grey, grey, 1.0)
