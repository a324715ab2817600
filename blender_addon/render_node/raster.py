"""The raster engine: the builder's meshes drawn straight into an offscreen OpenGL buffer through Blender's ``gpu``
module, each object's triangles in its id as a flat 8-bit colour, and the buffer read back as the id map.

It is the rasterisation Workbench does (the same OpenGL, one sample at each pixel centre, each polygon drawn as
triangles that cover exactly it: :func:`triangulate` for layers and inclusions, Blender's own tessellation for the
rest) without what Workbench adds around it for a picture: its shading passes, the render result with its colour
management, the EXR file and reading it back. On two cores that is about a third of
Workbench's time per 1024x768 frame. Objects are drawn in the order of their height (lowest first, no depth test), so
where two overlap the higher one shows, as with the depth test of the other engines. Pixels beside an edge are then
decided by the pixel-centre rule (:mod:`blender_addon.scene.pixel_centres`) like every engine's, so the frames equal
Workbench's and Cycles' bit for bit.

Blender opens its GPU module to Python in a background process only once something started OpenGL: the renderer
starts it with one tiny Workbench render of its own scene (:meth:`GpuRaster.start`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import bpy
import gpu
import numpy as np
from gpu_extras.batch import batch_for_shader
from mathutils import Matrix

from blender_addon.render_node.frame import RenderError

# The largest frame side drawn in one offscreen buffer (OpenGL 4.3 guarantees 16384; Mesa's llvmpipe gives 16384).
MAX_SIDE_PX = 16384


@dataclass
class RasterObject:
    """One object to draw: its id (1-255), its height (higher is drawn later, on top), its corners (n, 2) float32 in
    Blender x/y (one Blender unit is one pixel) and its triangles (t, 3) int32, indices into the corners."""

    object_id: int
    height: float
    corners: np.ndarray
    triangles: np.ndarray


def mesh_triangles(mesh: bpy.types.Mesh, n_vertices: int) -> np.ndarray:
    """Blender's tessellation of ``mesh`` (the triangles every Blender engine draws): (t, 3) int32 vertex indices,
    those of its first ``n_vertices`` vertices only (the builder's meshes keep spare faces collapsed to a point)."""
    mesh.calc_loop_triangles()
    tris = np.empty(len(mesh.loop_triangles) * 3, np.int32)
    mesh.loop_triangles.foreach_get("vertices", tris)
    tris = tris.reshape(-1, 3)
    return tris[tris.max(axis=1) < n_vertices] if len(tris) else tris


# A fan triangle of a polygon about its centre must have at least this doubled area (px^2) for the fan to be used:
# far above the float32 rounding of corners on a frame of thousands of pixels, far below any real inclusion's.
_FAN_MIN_AREA2_PX2 = 1e-3


def triangulate(polygons: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Triangles covering ``polygons`` (n, k, 2) float32 exactly, without Blender: (points (m, 2) float32: the corners,
    then any added centres; triangles (t, 3) int32 indices into them), or None when some polygon needs Blender's
    tessellation.

    Layers are thousands of convex quads and inclusions are star-shaped about their centre: quads are split along the
    diagonal from corner 0 to 2 (when it lies inside every quad), other polygons become fans about the mean of their
    corners (when every fan triangle turns the same way, the fan covers the polygon exactly). That spares Blender's
    tessellation and reading it back, about half of this engine's time.
    """
    n, k = polygons.shape[:2]
    corners = polygons.reshape(-1, 2).astype(np.float32, copy=False)
    q = polygons.astype(np.float64)
    if k == 4:
        d = q[:, 2] - q[:, 0]
        sides = [d[:, 0] * (q[:, c, 1] - q[:, 0, 1]) - d[:, 1] * (q[:, c, 0] - q[:, 0, 0]) for c in (1, 3)]
        if np.any(sides[0] * sides[1] > 0):  # corners 1 and 3 on the same side: the diagonal leaves the quad
            return None
        base = np.arange(n, dtype=np.int32)[:, None] * 4
        return corners, (base + np.array([0, 1, 2, 0, 2, 3], np.int32)).reshape(-1, 3)
    centres = q.mean(axis=1).astype(np.float32)  # as drawn: the checks below use the rounded centre
    a = q - centres[:, None, :].astype(np.float64)
    b = np.roll(a, -1, axis=1)
    area2 = a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
    if not np.all(np.all(area2 > _FAN_MIN_AREA2_PX2, axis=1) | np.all(area2 < -_FAN_MIN_AREA2_PX2, axis=1)):
        return None
    corner = np.arange(n * k, dtype=np.int32).reshape(n, k)
    centre = np.repeat(np.arange(n * k, n * k + n, dtype=np.int32), k).reshape(n, k)
    triangles = np.stack([centre, corner, np.roll(corner, -1, axis=1)], axis=-1).reshape(-1, 3)
    return np.concatenate([corners, centres]), triangles


def projection(width_px: int, height_px: int, centre_xy: tuple[float, float], px_per_unit: float) -> Matrix:
    """The orthographic projection of an image ``width_px`` x ``height_px`` centred on ``centre_xy`` (Blender x/y)
    at ``px_per_unit`` pixels per Blender unit, as the builder's camera frames it: x right, y up, OpenGL's rows bottom
    up."""
    sx, sy = 2.0 * px_per_unit / width_px, 2.0 * px_per_unit / height_px
    cx, cy = centre_xy
    return Matrix(((sx, 0.0, 0.0, -sx * cx), (0.0, sy, 0.0, -sy * cy), (0.0, 0.0, 1.0, 0.0), (0.0, 0.0, 0.0, 1.0)))


class GpuRaster:
    """Draws id maps offscreen with Blender's GPU module (see the module's docstring). Needs OpenGL started in this
    process (:meth:`start`)."""

    def __init__(self) -> None:
        self._shader = gpu.shader.from_builtin("UNIFORM_COLOR")
        self._offscreen: gpu.types.GPUOffScreen | None = None

    @staticmethod
    def start(scene: bpy.types.Scene) -> None:
        """Start OpenGL in this process by rendering ``scene`` (Workbench, with a camera) once at 4x4 pixels, the
        only way Blender offers a background process, and check that the GPU module answers.

        Raises
        ------
        RenderError
            when the GPU module stays closed or cannot make an offscreen buffer (the message says which).
        """
        render = scene.render
        size = render.resolution_x, render.resolution_y, render.resolution_percentage
        render.resolution_x, render.resolution_y, render.resolution_percentage = 4, 4, 100
        try:
            bpy.ops.render.render(write_still=False, scene=scene.name)
        except RuntimeError as exc:
            raise RenderError(f"the raster engine cannot start OpenGL: Blender's Workbench render failed ({exc})") \
                from exc
        finally:
            render.resolution_x, render.resolution_y, render.resolution_percentage = size
        try:
            gpu.types.GPUOffScreen(4, 4, format="RGBA8").free()
        except (SystemError, RuntimeError, ValueError) as exc:
            raise RenderError(f"the raster engine cannot draw through Blender's GPU module: {exc}") from exc

    def _buffer(self, width_px: int, height_px: int) -> gpu.types.GPUOffScreen:
        off = self._offscreen
        if off is None or (off.width, off.height) != (width_px, height_px):
            if off is not None:
                off.free()
            self._offscreen = None
            try:
                off = gpu.types.GPUOffScreen(width_px, height_px, format="RGBA8")
            except (SystemError, RuntimeError, ValueError) as exc:
                raise RenderError(f"the raster engine cannot make a {width_px}x{height_px} offscreen buffer: "
                                  f"{exc}") from exc
            self._offscreen = off
        return off

    def draw_ids(self, objects: Iterable[RasterObject], width_px: int, height_px: int, view: Matrix) -> np.ndarray:
        """The id map (height, width) uint8, rows from the top, of ``objects`` drawn through the projection ``view``
        (see :func:`projection`) on an empty (id 0) frame.

        Raises
        ------
        RenderError
            for a frame larger than ``MAX_SIDE_PX`` on a side, or an id outside 1-255.
        """
        if not (0 < width_px <= MAX_SIDE_PX and 0 < height_px <= MAX_SIDE_PX):
            raise RenderError(f"the raster engine draws frames of at most {MAX_SIDE_PX} px a side, not "
                              f"{width_px}x{height_px}; render this size with --engine workbench or cycles")
        off = self._buffer(width_px, height_px)
        shader = self._shader
        with off.bind():
            framebuffer = gpu.state.active_framebuffer_get()
            framebuffer.clear(color=(0.0, 0.0, 0.0, 0.0))
            gpu.state.depth_test_set("NONE")
            gpu.state.blend_set("NONE")
            with gpu.matrix.push_pop(), gpu.matrix.push_pop_projection():
                gpu.matrix.load_identity()
                gpu.matrix.load_projection_matrix(view)
                shader.bind()
                for obj in sorted(objects, key=lambda o: o.height):  # painter's order: the highest shows
                    if not 0 < obj.object_id <= 255:
                        raise RenderError(f"object id {obj.object_id} cannot be drawn as an 8-bit colour (1-255)")
                    if not len(obj.triangles):
                        continue
                    batch = batch_for_shader(shader, "TRIS", {"pos": obj.corners}, indices=obj.triangles)
                    shader.uniform_float("color", (obj.object_id / 255.0, 0.0, 0.0, 1.0))
                    batch.draw(shader)
            pixels = framebuffer.read_color(0, 0, width_px, height_px, 1, 0, "UBYTE")
        # Blender's Buffer reports Fortran strides for memory laid out row by row (OpenGL's order, bottom row first):
        # read it in memory order, whatever strides it reports.
        ids = np.asarray(pixels).ravel(order="K")
        return ids.reshape(height_px, width_px)[::-1].copy()

    def close(self) -> None:
        """Free the offscreen buffer."""
        if self._offscreen is not None:
            self._offscreen.free()
            self._offscreen = None
