"""Headless render of one coating frame: the object id at each pixel centre, turned into the class mask and signal.

Three engines draw the same ids. The raster engine (:mod:`.raster`) draws the meshes' triangles straight into an
offscreen OpenGL buffer through Blender's GPU module and reads the ids back from memory: the fastest, with no file in
between. The other two are Blender render engines (see :mod:`blender_addon.scene.render_setup`): Workbench, a
rasteriser with anti-aliasing off (one sample at each pixel centre, the object's flat id colour; needs OpenGL through
EGL, Mesa's llvmpipe on a node without a GPU), and Cycles, the reference and the fallback (one ray per pixel through
its centre, the Object Index pass). Each of those two writes an uncompressed half-float EXR to a scratch folder
(Blender gives a render's pixels to Python only through a file or the compositor, and the file is the cheaper), read
with numpy. Then :func:`blender_addon.scene.class_map.class_map` decides the pixels beside an edge exactly and maps ids
to classes and greys, the same code for every engine: the frames are identical whichever engine drew them.

``engine="auto"`` takes the raster engine when OpenGL starts here (asked in a child process, :mod:`.egl`: Blender
aborts rather than raises without it; Workbench if the GPU module then stays closed) and Cycles otherwise, saying why
in :attr:`Renderer.engine_note`.

A render cannot be cancelled from Python, so a large frame is rendered as horizontal strips, one render call each,
and a stop request (Ctrl-C, scancel) is honoured between strips, within about a strip's time. Cycles renders a frame
of more than ``STRIP_PIXELS`` pixels in border strips (cropped); each pixel is still one ray through its own centre
with the same sampling pattern, so the joined strips equal the single render bit for bit. Workbench renders the whole
frame whatever the border, so above ``WORKBENCH_STRIP_PIXELS`` it renders strip-sized frames through a camera moved
down by whole rows: each pixel keeps its centre, to float rounding far inside the pixel-centre rule's band. The
raster engine draws a whole frame in one go (about 0.05 s per million pixels on one core).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from blender_addon import exr
from blender_addon.render_node import egl
from blender_addon.render_node.frame import RenderedFrame, RenderError
from blender_addon.render_node.raster import GpuRaster, RasterObject, mesh_triangles, projection, triangulate
from blender_addon.scene.builder import SceneBuilder
from blender_addon.scene.class_map import MAX_OBJECT_ID, ClassMapError, ids_from_colour
from blender_addon.scene.geometry import CoatingGeometry
from blender_addon.scene.render_setup import configure_exact_render, configure_flat_render
from blender_addon.scene.stopping import StopCheck, check
from semcoat.batch import RENDER_ENGINES
from semcoat.spec import CoatingSpec

SCENE_NAME = "semcoat.render"
# Most pixels Cycles renders in one call: about a quarter of a second on two cores (a 1024x768 image with its
# margins is one strip). A frame of 4096x3072 goes in 12 strips, each a stop check apart.
STRIP_PIXELS = 1 << 20
# Workbench: about 0.3 s for 4 Mpx on two cores (a 4096x3072 frame in 3 strips; a 1024x768 image is one). Each strip
# repeats Workbench's per-render cost (~0.05 s), so its strips are larger than Cycles'.
WORKBENCH_STRIP_PIXELS = 1 << 22
ENGINE_NAMES = {"raster": "raster", "workbench": "Workbench", "cycles": "Cycles"}  # as the render log writes them
STEPS = ("render_s", "read_s", "rule_s")  # what Renderer.seconds adds up: engine, EXR read, pixel-centre rule + lookup


@dataclass(frozen=True)
class EngineChoice:
    """The engine a renderer uses (``"raster"``, ``"workbench"`` or ``"cycles"``) and why, in words for the render
    log."""

    engine: str
    note: str


def choose_engine(requested: str, probe: Callable[[], egl.EglStatus] = egl.probe) -> EngineChoice:
    """The engine for ``requested`` (``"auto"``, ``"raster"``, ``"workbench"`` or ``"cycles"``): the one asked for,
    and under ``"auto"`` the raster engine when OpenGL starts here (``probe``), else Cycles.

    Raises
    ------
    RenderError
        when ``"raster"`` or ``"workbench"`` was asked for and OpenGL does not start (the message says why and what to
        do), or for an unknown name.
    """
    if requested not in RENDER_ENGINES:
        raise RenderError(f"unknown render engine {requested!r}; accepted: {', '.join(RENDER_ENGINES)}")
    if requested == "cycles":
        return EngineChoice("cycles", "Cycles, as asked")
    status = probe()
    if status.available:
        if requested == "workbench":
            return EngineChoice("workbench", f"Workbench through OpenGL: {status.detail}")
        return EngineChoice("raster", f"the raster engine through OpenGL: {status.detail}")
    if requested != "auto":
        raise RenderError(f"the {ENGINE_NAMES[requested]} engine needs OpenGL through EGL, which does not start here: "
                          f"{status.detail}. Install libegl1 and Mesa (libegl-mesa0, libgl1-mesa-dri), or render "
                          "with --engine cycles (or auto, which falls back to Cycles)")
    return EngineChoice("cycles", f"Cycles: OpenGL, which the raster engine needs, is unavailable here "
                                  f"({status.detail})")


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send what Blender's C code prints on file descriptors 1 and 2 ("Saved: ...", timings, the EGL errors of its
    first OpenGL attempt) to ``path``.

    Blender writes to the process's stdout and stderr directly, past ``sys.stdout``, one line per render; the render
    command's own progress lines would drown in them. A failed render quotes the file's last lines.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(path, "wb") as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        for fd, old in zip((1, 2), saved, strict=True):
            os.dup2(old, fd)
            os.close(old)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def _scratch_dir() -> Path:
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="semcoat-render-", dir=base))


def configure_scene(scene: bpy.types.Scene, threads: int = 0, engine: str = "cycles") -> None:
    """The settings of ``engine`` (:func:`configure_exact_render` for Cycles, :func:`configure_flat_render` for
    Workbench and the raster engine, which starts OpenGL with one Workbench render) plus what repeated renders in one
    process want: persistent data, and ``threads`` render threads (0 lets Blender use every core).

    Meant for the renderer's own scene: it changes ``scene``'s render settings and its world's colour (black).
    """
    (configure_exact_render if engine == "cycles" else configure_flat_render)(scene)
    scene.render.use_persistent_data = True
    scene.render.threads_mode = "FIXED" if threads > 0 else "AUTO"
    if threads > 0:
        scene.render.threads = threads


def strip_rows(width_px: int, height_px: int, max_pixels: int | None = None) -> list[tuple[int, int]]:
    """Row ranges ``(top, bottom)`` (bottom exclusive) of the strips a frame is rendered in: as few as keep each strip
    at most ``max_pixels`` (default ``STRIP_PIXELS``) pixels, of equal height to a row."""
    n = max(1, -(-width_px * height_px // (STRIP_PIXELS if max_pixels is None else max_pixels)))
    n = min(n, height_px)
    edges = [round(k * height_px / n) for k in range(n + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


class Renderer:
    """Renders coating frames in this process, in a scene of its own that it reuses (objects refilled, never rebuilt).

    The renderer adds one scene (``semcoat.render``) with its own world, collection, objects and camera, renders only
    that scene and removes all of it in :meth:`close`. The open file, the user's scenes and the active scene are left
    as they are (inside Blender, only the "Render Result" image shows the last render, as for any render).

    Parameters
    ----------
    threads : render threads, Cycles' and (when set before OpenGL starts in this process) llvmpipe's; 0 = all cores.
    engine : ``"auto"`` (the raster engine when OpenGL starts here, else Cycles), ``"raster"``, ``"workbench"`` or
        ``"cycles"``.

    Attributes
    ----------
    engine, engine_note : the engine drawing the frames and why (for the render log).
    seconds : time per step (``STEPS``) summed over the renders.
    pixels_decided : pixels beside an edge that the pixel-centre rule decided, summed over the renders.

    Raises
    ------
    RenderError
        when ``engine="raster"`` or ``"workbench"`` was asked for and OpenGL does not start here, or the raster
        engine was asked for and Blender's GPU module does not open.
    """

    def __init__(self, threads: int = 0, engine: str = "auto") -> None:
        choice = choose_engine(engine)
        self.engine, self.engine_note = choice.engine, choice.note
        if self.engine != "cycles" and threads > 0:
            os.environ.setdefault("LP_NUM_THREADS", str(threads))  # llvmpipe's threads, read when OpenGL starts
        self.seconds = dict.fromkeys(STEPS, 0.0)
        self.pixels_decided = 0
        self._removed = False
        self.scene = bpy.data.scenes.new(SCENE_NAME)
        try:
            self.scene.world = bpy.data.worlds.new(f"{SCENE_NAME}.world")
            configure_scene(self.scene, threads, self.engine)
            self.builder = SceneBuilder(self.scene, use_as_scene_camera=True, keep_faces=True)
        except BaseException:
            self._remove_scene()
            raise
        self._dir = _scratch_dir()
        # a renderer dropped without close() (a script's) still leaves no scratch folder in /dev/shm at exit
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._dir, ignore_errors=True)
        self._exr = self._dir / "frame.exr"
        self.scene.render.filepath = str(self._exr)
        self._raster: GpuRaster | None = None
        if self.engine == "raster":
            try:
                self._raster = self._start_raster()
            except RenderError as exc:
                if engine != "auto":
                    self.close()
                    raise
                self.engine, self.engine_note = "workbench", f"Workbench: the raster engine did not start ({exc})"

    def _start_raster(self) -> GpuRaster:
        log = self._dir / "blender.log"
        try:
            with _output_to(log):
                GpuRaster.start(self.scene)
                return GpuRaster()
        except RenderError as exc:
            raise RenderError(f"{exc} (Blender said: {_tail(log)})") from exc

    def build(self, spec: CoatingSpec, geometry: CoatingGeometry) -> None:
        """Put ``geometry`` into the scene (see :meth:`SceneBuilder.update`)."""
        self.builder.update(spec, geometry)

    def render(self, should_stop: StopCheck | None = None) -> RenderedFrame:
        """Render the current scene and read back the signal and the class mask.

        Parameters
        ----------
        should_stop : asked before each strip (see the module's docstring) and between the steps of the pixel-centre
            rule; None never stops.

        Raises
        ------
        RenderError
            when Blender renders nothing or the EXR lacks a pass.
        Interrupted
            when ``should_stop`` answered True (nothing of the frame is returned).
        """
        ids = self.render_ids(should_stop)
        t0 = time.perf_counter()
        signal, mask, decided = self.builder.class_map(ids, should_stop)
        self.seconds["rule_s"] += time.perf_counter() - t0
        self.pixels_decided += decided
        return RenderedFrame(signal, mask)

    def render_ids(self, should_stop: StopCheck | None = None) -> np.ndarray:
        """The object ids (H, W) uint8 of the current scene as the engine drew them, before the pixel-centre rule
        (what :meth:`render` turns into the frame; tests compare engines with it). Raises as :meth:`render`."""
        render = self.scene.render
        width, height = render.resolution_x, render.resolution_y
        rows = strip_rows(width, height, None if self.engine == "cycles" else WORKBENCH_STRIP_PIXELS)
        if self._raster is not None:
            check(should_stop)
            ids = self._draw_raster(width, height)
        elif len(rows) == 1:
            check(should_stop)
            ids = self._render_once()
        elif self.engine == "workbench":
            ids = self._camera_strips(rows, should_stop)
        else:
            strips = []
            render.use_border, render.use_crop_to_border = True, True
            try:
                for top, bottom in rows:
                    check(should_stop)
                    # The border counts from the bottom edge in fractions of the frame; Blender truncates fraction x
                    # height to whole rows, so aim half a row past each edge.
                    render.border_min_x, render.border_max_x = 0.0, 1.0
                    render.border_min_y = (height - bottom + 0.5) / height
                    render.border_max_y = min(1.0, (height - top + 0.5) / height)
                    strips.append(self._render_strip(top, bottom, width, height))
            finally:
                render.use_border, render.use_crop_to_border = False, False
            ids = np.concatenate(strips)
        if ids.shape != (height, width):
            raise RenderError(f"Blender rendered {ids.shape[1]}x{ids.shape[0]} px for a {width}x{height} frame")
        return ids

    def _camera_strips(self, rows: list[tuple[int, int]], should_stop: StopCheck | None) -> np.ndarray:
        """The ids of the frame rendered as one frame per strip of ``rows``: the resolution cut to the strip's rows
        and the camera moved down to its middle (whole rows: the pixel grid stays where it was), then put back."""
        render, camera = self.scene.render, self.builder.camera
        width, height = render.resolution_x, render.resolution_y
        scale = width / camera.data.ortho_scale  # pixels per Blender unit (the builder's camera fits the width)
        y0 = camera.location.y
        strips = []
        try:
            for top, bottom in rows:
                check(should_stop)
                render.resolution_y = bottom - top
                camera.location.y = y0 + (height - (bottom - top) - 2 * top) / (2 * scale)
                strips.append(self._render_strip(top, bottom, width, height))
        finally:
            render.resolution_y = height
            camera.location.y = y0
        return np.concatenate(strips)

    def _render_strip(self, top: int, bottom: int, width: int, height: int) -> np.ndarray:
        """One render call of rows ``top..bottom - 1`` (as the border or camera selects them), its size checked."""
        strip = self._render_once()
        if strip.shape != (bottom - top, width):
            raise RenderError(f"Blender rendered a strip of {strip.shape[1]}x{strip.shape[0]} px for rows "
                              f"{top}..{bottom - 1} of a {width}x{height} frame")
        return strip

    def _draw_raster(self, width: int, height: int) -> np.ndarray:
        """The ids of the frame drawn by the raster engine (the builder's meshes as they are now)."""
        assert self._raster is not None
        t0 = time.perf_counter()
        camera = self.builder.camera
        objects = []
        for role, (corners, z, _outline) in self.builder.drawn.items():
            if not len(corners):
                continue
            obj = self.builder.objects[role]
            points, triangles = triangulate(corners) or (
                corners.reshape(-1, 2), mesh_triangles(obj.data, corners.shape[0] * corners.shape[1]))
            objects.append(RasterObject(obj.pass_index, z, points, triangles))
        view = projection(width, height, (camera.location.x, camera.location.y), width / camera.data.ortho_scale)
        ids = self._raster.draw_ids(objects, width, height, view)
        self.seconds["render_s"] += time.perf_counter() - t0
        return ids

    def _render_once(self) -> np.ndarray:
        """The object ids (uint8) of one render call: the frame, or the strip the border or camera selects."""
        t0 = time.perf_counter()
        self._exr.unlink(missing_ok=True)
        log = self._dir / "blender.log"
        try:
            with _output_to(log):
                bpy.ops.render.render(write_still=True, scene=self.scene.name)
        except RuntimeError as exc:
            raise RenderError(f"Blender failed to render: {exc} (Blender said: {_tail(log)})") from exc
        if not self._exr.is_file():
            raise RenderError(f"Blender rendered but wrote no file at {self._exr} (Blender said: {_tail(log)})")
        t1 = time.perf_counter()
        try:
            ids = self._read_ids()
        except (exr.ExrError, ClassMapError) as exc:
            raise RenderError(f"cannot read the {self.engine} render {self._exr}: {exc}") from exc
        self.seconds["render_s"] += t1 - t0
        self.seconds["read_s"] += time.perf_counter() - t1
        return ids

    def _read_ids(self) -> np.ndarray:
        if self.engine == "workbench":  # one channel: the object's flat colour
            channels = exr.read_channels(self._exr)
            if len(channels) != 1:
                raise exr.ExrError(f"expected one channel, found {', '.join(sorted(channels)) or 'none'}")
            return ids_from_colour(next(iter(channels.values())))
        index = exr.find_channel(exr.read_channels(self._exr, ("Object Index.X", "IndexOB.X")), "Object Index.X",
                                 "IndexOB.X")
        if index.size and (index.min() < 0 or index.max() > MAX_OBJECT_ID or np.any(index != np.rint(index))):
            raise exr.ExrError(f"the Object Index pass holds values other than ids 0-{MAX_OBJECT_ID}")
        return index.astype(np.uint8)

    def close(self) -> None:
        """Remove the renderer's scene with everything in it, the raster engine's buffer and the scratch folder."""
        raster = getattr(self, "_raster", None)
        if raster is not None:
            raster.close()
            self._raster = None
        self._remove_scene()
        self._cleanup()

    def _remove_scene(self) -> None:
        if self._removed:  # close() twice, or after a failed start
            return
        self._removed = True
        builder = getattr(self, "builder", None)
        if builder is not None:
            builder.remove()
        world = self.scene.world
        bpy.data.scenes.remove(self.scene)
        if world is not None and world.users == 0:
            bpy.data.worlds.remove(world)
