"""Coating geometry -> Blender objects seen by an orthographic camera (one Blender unit = one pixel).

Nine objects in a ``semcoat`` collection, stacked along z so that the camera (looking down -z) sees the upper one
where they overlap: resin plane (z 0), Fe2Al5 below the surface (z 1), FeAl below the Fe2Al5 bottom (z 2), substrate
below the FeAl bottom (z 3), precipitates (z 4: one object per phase, Al8Cr5, Cr2Al and Cr23C6, each with its own grey
and all of class precipitate), pores and pull-out pits (z 5), cracks (z 6: a crack runs through what lies in its
way). Without FeAl both bottoms coincide and the substrate hides the FeAl object (issue
11's further objects, sub-bands to the mount, are listed in :mod:`.stack`). Objects
of equal z in ``LAYOUT`` are lifted by a thousandth of a unit per place in it, so where two overlap the later one is
drawn, the same by every engine.

Each object carries an id (``OBJECT_IDS``: 1, 2, ... in ``LAYOUT`` order) as its ``pass_index`` (Cycles' Object Index
pass) and its flat colour (Workbench); :mod:`.class_map` turns the rendered ids into the class mask and the grey
signal with :meth:`SceneBuilder.id_tables`. The per-image grey is the custom property ``GREY_KEY`` of the object, which
its emission material (and the viewport's material colour) shows.

Building is incremental: the objects, materials and camera are made once per scene and every later call only
refills the mesh buffers (``foreach_set``), sets colours and moves the camera, which is what makes a few renders per
second possible. The add-on's viewport preview calls the same :class:`SceneBuilder`.
"""

from __future__ import annotations

import bpy
import numpy as np

from semcoat import classes
from semcoat.spec import CoatingSpec

from .class_map import MAX_OBJECT_ID, IdTables, class_map, drawn_objects, id_colour
from .geometry import CoatingGeometry, Inclusions
from .stack import EXTRA_LAYOUT, extra_objects
from .stopping import StopCheck

COLLECTION_NAME = "semcoat"
# Custom property that marks what the builder made (its collection and objects), so it recognises its own data by
# that mark and never by a name the user may also have used.
ROLE_KEY = "semcoat_role"
COLLECTION_ROLE = "scene builder"
CAMERA_HEIGHT_PX = 100.0
# Region objects reach this many pixels below the image bottom, so they cover the frame whatever the profiles.
DEPTH_OVERHANG_PX = 64.0


# Role (the builder's mark on the object) -> (class id, object name, z). The Cr23C6 precipitates keep the role and name
# precipitates had before there were phases, so a file saved then is still recognised.
LAYOUT: dict[str, tuple[int, str, float]] = {
    f"class {classes.BACKGROUND}": (classes.BACKGROUND, "resin", 0.0),
    f"class {classes.FE2AL5}": (classes.FE2AL5, "fe2al5", 1.0),
    f"class {classes.FEAL}": (classes.FEAL, "feal", 2.0),
    f"class {classes.SUBSTRATE}": (classes.SUBSTRATE, "substrate", 3.0),
    **{(f"class {classes.PRECIPITATE}" if ph is classes.PRECIPITATE_PHASES[-1] else f"precipitate {ph.name}"):
       (classes.PRECIPITATE, "precipitates" if ph is classes.PRECIPITATE_PHASES[-1] else f"precipitates.{ph.name}", 4.0)
       for ph in classes.PRECIPITATE_PHASES},
    f"class {classes.PORE}": (classes.PORE, "pores", 5.0),
    f"class {classes.CRACK}": (classes.CRACK, "cracks", 6.0),
    **EXTRA_LAYOUT,
}
# The id each object is drawn with: its place in LAYOUT, from 1 (0 is the empty world).
OBJECT_IDS: dict[str, int] = {role: k + 1 for k, role in enumerate(LAYOUT)}
assert len(OBJECT_IDS) <= MAX_OBJECT_ID, "object ids are drawn as 8-bit values"
_RESIN = f"class {classes.BACKGROUND}"  # the builder's plane of resin, below everything
GREY_KEY = "semcoat_grey"  # custom property of each object: its grey level (0-1) in the current image
_CORNERS_KEY = "semcoat_corners"  # custom property of each mesh: the corners of each of its faces (all alike)
_SPARE_FACES = 16  # room a rebuilt mesh keeps beyond a quarter more faces than it was built for
Z_TIE_PX = 1e-3  # lift per place in LAYOUT, so objects of equal z never tie in depth
# The height each object is drawn at: its z, lifted by its place in LAYOUT.
HEIGHTS: dict[str, float] = {role: z + k * Z_TIE_PX for k, (role, (_class, _name, z)) in enumerate(LAYOUT.items())}
REGION_BLOCK_COLUMNS = 16  # a region's strips end at the deepest profile point of their block of this many columns


def _emission_material(name: str) -> bpy.types.Material:
    """A new flat-emission material of the object's grey (its ``GREY_KEY`` property, read through an Object
    attribute): per-image greys live on the objects, never in a node tree.

    Always a new data-block (Blender adds a suffix when ``name`` is taken): a material of the user's that happens to
    bear the name is never reused or rewired. Grain contrast is added in numpy by the render node
    (``render_node.texture``): as a Cycles shader it doubled the render time.
    """
    mat = bpy.data.materials.new(name)
    if mat.node_tree is None:  # Blender 5 gives new materials a node tree; use_nodes is deprecated
        mat.use_nodes = True
    nt = mat.node_tree
    nt.nodes.clear()
    out = nt.nodes.new("ShaderNodeOutputMaterial")
    emit = nt.nodes.new("ShaderNodeEmission")
    grey = nt.nodes.new("ShaderNodeAttribute")
    grey.attribute_type = "OBJECT"
    grey.attribute_name = GREY_KEY
    nt.links.new(grey.outputs["Fac"], emit.inputs["Color"])
    nt.links.new(emit.outputs["Emission"], out.inputs["Surface"])
    return mat


def _fill_polygons(mesh: bpy.types.Mesh, vertices_xy: np.ndarray, z: float, keep_faces: bool = False) -> np.ndarray:
    """Put ``vertices_xy`` of shape (n_faces, k, 2) into the mesh: one k-gon per face, at height ``z``; returns the
    corners as the mesh holds them (float32, same shape).

    With ``keep_faces`` (the render node's meshes, refilled for every image) the mesh keeps its faces when it has room
    for ``n_faces`` k-gons and not far more: only the corners are written (a new topology costs about twice as much),
    and the faces beyond ``n_faces`` collapse to a point (no area: no engine draws them; :func:`mesh_corners` leaves
    them out). It is rebuilt, with some room to spare, when it has too few or too many. Without, the mesh holds
    exactly the faces (a preview the user may look into).
    """
    n_faces, k = vertices_xy.shape[:2]
    faces = len(mesh.polygons)
    reuse = (keep_faces and mesh.get(_CORNERS_KEY) == k and n_faces <= faces <= 2 * n_faces + _SPARE_FACES
             and len(mesh.loops) == faces * k and len(mesh.vertices) == faces * k)
    if not reuse:
        faces = (n_faces + n_faces // 4 + _SPARE_FACES if keep_faces else n_faces) if n_faces else 0
        mesh.clear_geometry()
        if faces:
            mesh.vertices.add(faces * k)
            mesh.loops.add(faces * k)
            mesh.loops.foreach_set("vertex_index", np.arange(faces * k, dtype=np.int32))
            mesh.polygons.add(faces)
            mesh.polygons.foreach_set("loop_start", np.arange(0, faces * k, k, dtype=np.int32))
        mesh[_CORNERS_KEY] = k
    if n_faces == 0 and faces == 0:
        mesh.update()
        return np.zeros((0, max(k, 3), 2), np.float32)
    co = np.empty((faces * k, 3), dtype=np.float32)
    co[: n_faces * k, :2] = vertices_xy.reshape(-1, 2)
    co[n_faces * k:, :2] = co[0, :2] if n_faces else 0.0
    co[:, 2] = z
    mesh.vertices.foreach_set("co", co.ravel())
    mesh.update()
    return co[: n_faces * k, :2].reshape(n_faces, k, 2)


def mesh_corners(mesh: bpy.types.Mesh) -> np.ndarray:
    """The faces a builder's mesh draws: corners (n, k, 2) float32 in Blender x/y, without the spare faces collapsed to
    a point (see :func:`_fill_polygons`)."""
    k = int(mesh.get(_CORNERS_KEY, 0)) or 3
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    faces = co.reshape(-1, 3)[:, :2].reshape(-1, k, 2)
    return faces[~np.all(faces == faces[:, :1], axis=(1, 2))]


def strip_seam(top_px: np.ndarray, bottom_px: float) -> float:
    """The first whole row below the profile ``top_px``'s deepest point (a pixel boundary), at most ``bottom_px``:
    a region below the profile covers every row from there down."""
    return min(float(np.floor(top_px.max())) + 1.0, bottom_px)


def _region_below(x_px: np.ndarray, top_px: np.ndarray, bottom_px: float,
                  end_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Quads (n, 4, 2) covering everything between the profile ``top_px`` (image rows) and row ``end_px`` (at most
    ``bottom_px``, the depth every object may reach; see :func:`_region_ends`), and the blocks (indices) that end in a
    rectangle.

    The profile's columns go in blocks of ``REGION_BLOCK_COLUMNS``. In each block, one quad per profile step down to
    the first whole row below the block's deepest profile point, and one rectangle from there to the region's end when
    that lies lower. A rasteriser shades a thin quad's partly covered pixel blocks at several times the cost of its
    area, so the strips stay short where the profile runs level and the rectangles fill the rest: strips reaching the
    frame bottom cost Workbench a quarter of a second per layer. The region ends no higher than the strips' lowest
    seam (:func:`strip_seam`: a strip cut higher would turn upside down), so its bottom is one straight row. Seams
    and the end lie on pixel boundaries, never near a pixel centre. Blender y is minus the row coordinate; quads run
    counter-clockwise seen from the camera.
    """
    n = len(x_px) - 1
    end = max(end_px, strip_seam(top_px, bottom_px))
    starts = np.arange(0, n, REGION_BLOCK_COLUMNS)
    stops = np.minimum(starts + REGION_BLOCK_COLUMNS, n)
    block_deepest = np.maximum.reduceat(np.maximum(top_px[:-1], top_px[1:]), starts)
    seams = np.minimum(np.floor(block_deepest) + 1.0, bottom_px)
    x0, x1 = x_px[:-1], x_px[1:]
    t0, t1 = top_px[:-1], top_px[1:]
    b = np.repeat(seams, stops - starts)
    strips = np.stack([
        np.stack([x0, -b], -1), np.stack([x1, -b], -1), np.stack([x1, -t1], -1), np.stack([x0, -t0], -1),
    ], axis=1)
    blocks = np.flatnonzero(seams < end)
    xl, xr, top = x_px[starts[blocks]], x_px[stops[blocks]], seams[blocks]
    bottom = np.full_like(top, end)
    rects = np.stack([np.stack([xl, -bottom], -1), np.stack([xr, -bottom], -1), np.stack([xr, -top], -1),
                      np.stack([xl, -top], -1)], axis=1)
    return np.concatenate([strips, rects]), blocks


def _region_ends(profiles: dict[str, np.ndarray], bottom_px: float) -> dict[str, float]:
    """Role -> the row down to which each region of ``profiles`` (role -> profile rows) and the resin plane (role
    ``class 0``, the lowest object) must reach: ``bottom_px``, or the first row from which a region stacked higher
    covers the whole width (its :func:`strip_seam`), whichever comes first.

    Below that row the object is hidden wherever it is, so it is not drawn there: each region reaching the frame
    bottom made a rasteriser shade most of the frame once more (about 20 ms a frame on one core), and the hidden
    rows change no pixel. The end is a whole row, never near a pixel centre.
    """
    seams = {role: strip_seam(top, bottom_px) for role, top in profiles.items()}
    return {role: min([bottom_px, *(seams[other] for other in profiles if HEIGHTS[other] > HEIGHTS[role])])
            for role in [*profiles, _RESIN]}


def _region_outline(corners: np.ndarray, n_strips: int, rect_blocks: np.ndarray) -> np.ndarray:
    """The outline (E, 2, 2) of a region :func:`_region_below` made of ``n_strips`` strips (one fewer than its profile
    points) and rectangles below the blocks ``rect_blocks``, from its corners as the mesh holds them: the profile, the
    outer sides and the bottom, without the sides the strips and rectangles share or the seams between them.

    The pixel-centre rule looks for pixel centres near an object's outline; the strips' shared sides run through
    every pixel centre of their columns, and nothing changes across them.
    """
    strips, rects = corners[:n_strips], corners[n_strips:]
    n_blocks = -(-n_strips // REGION_BLOCK_COLUMNS)
    rect_of = dict(zip(rect_blocks.tolist(), range(len(rect_blocks)), strict=True))
    edges = [strips[:, [2, 3]], strips[:1, [3, 0]], strips[-1:, [1, 2]]]  # the profile, left and right sides
    if 0 in rect_of:
        edges.append(rects[rect_of[0]][None, [3, 0]])
    if n_blocks - 1 in rect_of:
        edges.append(rects[rect_of[n_blocks - 1]][None, [1, 2]])
    for block in range(n_blocks):  # the bottom: a rectangle's, or the block's strips' where it has none
        k = rect_of.get(block)
        edges.append(rects[k][None, [0, 1]] if k is not None else
                     strips[block * REGION_BLOCK_COLUMNS:(block + 1) * REGION_BLOCK_COLUMNS, [0, 1]])
    return np.concatenate(edges)


def _polygons_px(inclusions: Inclusions, pixel_size_um: float) -> np.ndarray:
    """Inclusion polygons in Blender coordinates (x px, -row px)."""
    xy = inclusions.polygons_um / pixel_size_um
    return np.stack([xy[..., 0], -xy[..., 1]], axis=-1)


def _own_collection(scene: bpy.types.Scene) -> bpy.types.Collection | None:
    """The collection a builder made in ``scene`` before (found by its mark, whatever its name), or None."""
    for coll in scene.collection.children:
        if coll.get(ROLE_KEY) == COLLECTION_ROLE:
            return coll
    return None


def _member(coll: bpy.types.Collection, role: str) -> bpy.types.Object | None:
    """The object the builder made for ``role`` in its collection, or None."""
    for obj in coll.objects:
        if obj.get(ROLE_KEY) == role:
            return obj
    return None


def _new_member(coll: bpy.types.Collection, role: str, name: str, data: bpy.types.ID) -> bpy.types.Object:
    obj = bpy.data.objects.new(name, data)
    obj[ROLE_KEY] = role
    coll.objects.link(obj)
    return obj


class SceneBuilder:
    """Makes (once) and updates (per image) the coating objects and the camera in a collection of its own.

    The builder adds one collection (``semcoat``, marked as its own with the custom property ``ROLE_KEY``) to the
    scene's master collection and creates everything it draws inside it; a later builder on the same scene finds that
    collection by its mark and reuses it, so a second preview replaces the first. Nothing else in the file is
    renamed, reused or deleted: names taken by the user's data make Blender suffix the builder's names instead.

    Parameters
    ----------
    scene : the Blender scene to draw into.
    use_as_scene_camera : make the builder's camera the scene's active camera and let :meth:`update` set the scene's
        render resolution to the frame. The render node's own scene: yes. A preview in the user's scene: only when
        the user asked for it; otherwise the scene's camera and render settings are left as they are.
    keep_faces : let the meshes keep spare faces, collapsed to a point, from one image to the next (the render node:
        cheaper refills); otherwise each mesh holds exactly the faces drawn.
    """

    def __init__(self, scene: bpy.types.Scene, *, use_as_scene_camera: bool, keep_faces: bool = False) -> None:
        self.scene = scene
        self.use_as_scene_camera = use_as_scene_camera
        self.keep_faces = keep_faces
        coll = _own_collection(scene)
        if coll is None:
            coll = bpy.data.collections.new(COLLECTION_NAME)
            coll[ROLE_KEY] = COLLECTION_ROLE
            scene.collection.children.link(coll)
        self.collection = coll
        self.objects: dict[str, bpy.types.Object] = {}
        self.greys: dict[str, float] = {role: 0.0 for role in LAYOUT}
        # What update() put in each mesh, for class_map: role -> (corners (n, k, 2) float32 in Blender x/y, z, the
        # outline (E, 2, 2) where the polygons share edges, else None: every edge of every polygon).
        self.drawn: dict[str, tuple[np.ndarray, float, np.ndarray | None]] = {}
        for role, (_class_id, name, _z) in LAYOUT.items():
            obj = _member(coll, role)
            if obj is None:
                obj_name = f"{COLLECTION_NAME}.{name}"
                obj = _new_member(coll, role, obj_name, bpy.data.meshes.new(obj_name))
            obj.pass_index = OBJECT_IDS[role]
            obj.color = id_colour(OBJECT_IDS[role])
            if not obj.data.materials:
                obj.data.materials.append(_emission_material(f"{COLLECTION_NAME}.{name}"))
            self.objects[role] = obj
        cam = _member(coll, "camera")
        if cam is None:
            cam_name = f"{COLLECTION_NAME}.camera"
            cam = _new_member(coll, "camera", cam_name, bpy.data.cameras.new(cam_name))
        cam.data.type = "ORTHO"
        cam.data.sensor_fit = "HORIZONTAL"
        cam.data.clip_start = 1.0
        cam.data.clip_end = 2 * CAMERA_HEIGHT_PX
        cam.rotation_euler = (0.0, 0.0, 0.0)
        if use_as_scene_camera:
            scene.camera = cam
        self.camera = cam

    def remove(self) -> None:
        """Delete everything the builder made: its objects with their meshes, materials and camera, and the collection.

        The builder must not be used afterwards.
        """
        for obj in list(self.collection.objects):
            if obj.get(ROLE_KEY) is None:  # the user's, put there by hand: kept, and kept in the scene
                if len(obj.users_collection) == 1:
                    self.scene.collection.objects.link(obj)
                continue
            data = obj.data
            materials = list(data.materials) if isinstance(data, bpy.types.Mesh) else []
            bpy.data.objects.remove(obj)
            if data is not None and data.users == 0:  # a mesh the user linked elsewhere stays
                if isinstance(data, bpy.types.Mesh):
                    bpy.data.meshes.remove(data)
                elif isinstance(data, bpy.types.Camera):
                    bpy.data.cameras.remove(data)
            for mat in materials:
                if mat is not None and mat.users == 0:
                    bpy.data.materials.remove(mat)
        bpy.data.collections.remove(self.collection)
        self.objects = {}

    def update(self, spec: CoatingSpec, geometry: CoatingGeometry) -> None:
        """Show ``geometry`` with the grey levels of ``spec``.

        Sets the camera so that one pixel is exactly ``pixel_size_um``: the orthographic scale is the frame width
        (image plus margins) in Blender units, which are pixels; with ``use_as_scene_camera`` the scene's render
        resolution is set to the frame too.
        """
        g = geometry
        p = g.pixel_size_um
        frame_w = g.width_px + 2 * g.margin_px
        if self.use_as_scene_camera:
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
        # Region role -> its profile (rows, extended). Each region, and the resin plane below them all, ends where a
        # region above it covers the whole width (_region_ends).
        profiles = {f"class {classes.FE2AL5}": ext(g.fe2al5_top_um), f"class {classes.FEAL}": ext(g.feal_top_um),
                    f"class {classes.SUBSTRATE}": ext(g.feal_bottom_um)}
        extras = extra_objects(spec.grey, g)
        profiles.update({role: ext(drawn) for role, (drawn, _grey) in extras.items() if isinstance(drawn, np.ndarray)})
        ends = _region_ends(profiles, bottom)
        left, right = x_px[0] - 1.0, x_px[-1] + 1.0
        resin_end = ends[f"class {classes.BACKGROUND}"]
        resin = np.array([[[left, 1.0], [right, 1.0], [right, -resin_end], [left, -resin_end]]])
        shapes = {
            f"class {classes.BACKGROUND}": resin,
            f"class {classes.PORE}": np.concatenate([_polygons_px(g.pores, p), _polygons_px(g.line_pores, p),
                                                     _polygons_px(g.pits, p), _polygons_px(g.interface_voids, p)]),
            f"class {classes.CRACK}": _polygons_px(g.cracks, p),
        }
        rect_blocks = {}
        for role, top in profiles.items():
            shapes[role], rect_blocks[role] = _region_below(x_px, top, bottom, ends[role])
        greys = {role: spec.grey.for_class(class_id) for role, (class_id, _n, _z) in LAYOUT.items()}
        regions = set(profiles)
        for role, (drawn, grey) in extras.items():
            if not isinstance(drawn, np.ndarray):
                shapes[role] = np.zeros((0, 4, 2)) if drawn is None else _polygons_px(drawn, p)
            greys[role] = grey
        precipitates = _polygons_px(g.precipitates, p)
        phase_greys = spec.grey.precipitate_phase_greys()
        last = len(classes.PRECIPITATE_PHASES) - 1
        phase = g.precipitate_phase if g.precipitate_phase.size == len(g.precipitates) else np.full(
            len(g.precipitates), last)
        for k, ph in enumerate(classes.PRECIPITATE_PHASES):
            role = f"class {classes.PRECIPITATE}" if k == last else f"precipitate {ph.name}"
            shapes[role] = precipitates[phase == k]
            greys[role] = phase_greys[k]
        for role in LAYOUT:
            obj = self.objects[role]
            corners = _fill_polygons(obj.data, shapes[role], HEIGHTS[role], self.keep_faces)
            outline = (_region_outline(corners, len(x_px) - 1, rect_blocks[role]) if role in regions and len(corners)
                       else None)
            self.drawn[role] = (corners, HEIGHTS[role], outline)
            grey = float(greys[role])
            self.greys[role] = grey
            obj[GREY_KEY] = grey
            for mat in obj.data.materials:
                if mat is not None:
                    mat.diffuse_color = (grey, grey, grey, 1.0)

    def id_tables(self) -> IdTables:
        """Per object id, the class and the grey of the current image (id 0, the empty world: background, black)."""
        class_of_id = np.zeros(MAX_OBJECT_ID + 1, np.uint8)
        grey_of_id = np.zeros(MAX_OBJECT_ID + 1, np.float32)
        for role, (class_id, _name, _z) in LAYOUT.items():
            class_of_id[OBJECT_IDS[role]] = class_id
            grey_of_id[OBJECT_IDS[role]] = self.greys[role]
        return IdTables(class_of_id, grey_of_id)

    def class_map(self, ids: np.ndarray, should_stop: StopCheck | None = None) -> tuple[np.ndarray, np.ndarray, int]:
        """(signal float32, mask uint8, pixels decided by the pixel-centre rule) of the object ids (H, W) uint8 an
        engine drew of the current image through the builder's camera (see :mod:`.class_map`); ``should_stop`` is
        asked between the rule's steps."""
        height, width = ids.shape
        drawn = drawn_objects(self.drawn, OBJECT_IDS, self.camera, width, height)
        return class_map(ids, self.id_tables(), drawn, should_stop)
