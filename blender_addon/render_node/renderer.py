"""Headless Cycles render of one coating frame: the phase signal and the exact class mask from the same render.

Cycles renders flat emission at one sample per pixel with a 0.01 px pixel filter, so every pixel is one ray through
(very nearly) its centre: the Combined pass is the emission of the object hit there (the phase's grey level) and
the Object Index pass is that object's ``pass_index``, the class id. Both come from the same ray, so the mask is
exact by construction: a pixel's class is the phase at its centre, with no blended edges. The two passes are written
to one multilayer EXR in a scratch folder and read back with the OpenImageIO bundled in bpy.

A frame of more than ``STRIP_PIXELS`` pixels is rendered as horizontal strips (Blender's border render, cropped),
one render call each, and the strips are joined: a Cycles render cannot be cancelled from Python, so a stop request
(Ctrl-C, scancel) is honoured between strips, within about a strip's time. Each pixel is still one ray through its
own centre with the same sampling pattern, so the joined strips equal the single render bit for bit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import bpy
import numpy as np

from blender_addon.render_node.frame import RenderedFrame, RenderError
from blender_addon.scene.builder import SceneBuilder
from blender_addon.scene.geometry import CoatingGeometry
from blender_addon.scene.render_setup import configure_exact_render
from blender_addon.scene.stopping import StopCheck, check
from semcoat.spec import CoatingSpec

SCENE_NAME = "semcoat.render"
# Most pixels rendered in one call: about a quarter of a second on two cores (a 1024x768 image with its margins is
# one strip). A frame of 6144x4096 goes in 25 strips, each a stop check apart.
STRIP_PIXELS = 1 << 20


@contextlib.contextmanager
def _stdout_to(path: Path) -> Iterator[None]:
    """Send what Blender's C code prints on file descriptor 1 ("Saved: ...", timings) to ``path``.

    Blender writes to the process's stdout directly, past ``sys.stdout``, one line per render; the render command's own
    progress lines would drown in them.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(path, "wb") as sink:
            os.dup2(sink.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def _scratch_dir() -> Path:
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="semcoat-render-", dir=base))


def configure_scene(scene: bpy.types.Scene, threads: int = 0) -> None:
    """The exact-mask settings (:func:`configure_exact_render`) plus what repeated renders in one process want:
    persistent data, and ``threads`` render threads (0 lets Blender use every core).

    Meant for the renderer's own scene: it changes ``scene``'s render settings and its world's colour (black).
    """
    configure_exact_render(scene)
    scene.render.use_persistent_data = True
    scene.render.threads_mode = "FIXED" if threads > 0 else "AUTO"
    if threads > 0:
        scene.render.threads = threads


def strip_rows(width_px: int, height_px: int) -> list[tuple[int, int]]:
    """Row ranges ``(top, bottom)`` (bottom exclusive) of the strips a frame is rendered in: as few as keep each strip
    at most ``STRIP_PIXELS`` pixels, of equal height to a row."""
    n = max(1, -(-width_px * height_px // STRIP_PIXELS))
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
    threads : Cycles threads (0 = all cores).
    """

    def __init__(self, threads: int = 0) -> None:
        bpy.utils.expose_bundled_modules()
        import OpenImageIO  # only importable once bpy exposed its bundled modules

        self._oiio = OpenImageIO
        self._removed = False
        self.scene = bpy.data.scenes.new(SCENE_NAME)
        try:
            self.scene.world = bpy.data.worlds.new(f"{SCENE_NAME}.world")
            configure_scene(self.scene, threads)
            self.builder = SceneBuilder(self.scene, use_as_scene_camera=True)
        except BaseException:
            self._remove_scene()
            raise
        self._dir = _scratch_dir()  # last: nothing after it can fail and leave it behind
        self._exr = self._dir / "frame.exr"
        self.scene.render.filepath = str(self._exr)

    def build(self, spec: CoatingSpec, geometry: CoatingGeometry) -> None:
        """Put ``geometry`` into the scene (see :meth:`SceneBuilder.update`)."""
        self.builder.update(spec, geometry)

    def render(self, should_stop: StopCheck | None = None) -> RenderedFrame:
        """Render the current scene and read back the signal and the class mask.

        Parameters
        ----------
        should_stop : asked before each strip (see the module's docstring); None never stops.

        Raises
        ------
        RenderError
            when Blender renders nothing or the EXR lacks a pass.
        Interrupted
            when ``should_stop`` answered True (nothing of the frame is returned).
        """
        render = self.scene.render
        width, height = render.resolution_x, render.resolution_y
        rows = strip_rows(width, height)
        if len(rows) == 1:
            check(should_stop)
            return self._render_once()
        signals, masks = [], []
        render.use_border, render.use_crop_to_border = True, True
        try:
            for top, bottom in rows:
                check(should_stop)
                # The border counts from the bottom edge in fractions of the frame; Blender truncates fraction x
                # height to whole rows, so aim half a row past each edge.
                render.border_min_x, render.border_max_x = 0.0, 1.0
                render.border_min_y = (height - bottom + 0.5) / height
                render.border_max_y = min(1.0, (height - top + 0.5) / height)
                strip = self._render_once()
                if strip.mask.shape != (bottom - top, width):
                    raise RenderError(f"Blender rendered a strip of {strip.mask.shape[1]}x{strip.mask.shape[0]} px "
                                      f"for rows {top}..{bottom - 1} of a {width}x{height} frame")
                signals.append(strip.signal)
                masks.append(strip.mask)
        finally:
            render.use_border, render.use_crop_to_border = False, False
        return RenderedFrame(np.concatenate(signals), np.concatenate(masks))

    def _render_once(self) -> RenderedFrame:
        self._exr.unlink(missing_ok=True)
        log = self._dir / "blender.log"
        try:
            with _stdout_to(log):
                bpy.ops.render.render(write_still=True, scene=self.scene.name)
        except RuntimeError as exc:
            raise RenderError(f"Blender failed to render: {exc} (Blender said: {_tail(log)})") from exc
        if not self._exr.is_file():
            raise RenderError(f"Blender rendered but wrote no file at {self._exr} (Blender said: {_tail(log)})")
        return self._read_exr()

    def _read_exr(self) -> RenderedFrame:
        inp = self._oiio.ImageInput.open(str(self._exr))
        if inp is None:
            raise RenderError(f"cannot open {self._exr}: {self._oiio.geterror()}")
        signal = mask = None
        try:
            sub = 0
            while inp.seek_subimage(sub, 0):
                names = list(inp.spec().channelnames)
                for k, name in enumerate(names):
                    if name.endswith("Combined.R"):
                        signal = inp.read_image(sub, 0, k, k + 1, "float")
                    elif name.endswith("Object Index.X") or name.endswith("IndexOB.X"):
                        index = inp.read_image(sub, 0, k, k + 1, "float")
                        mask = np.rint(index).astype(np.uint8)
                sub += 1
        finally:
            inp.close()
        if signal is None or mask is None:
            raise RenderError(f"{self._exr} lacks the Combined or Object Index pass")
        return RenderedFrame(
            np.ascontiguousarray(signal[:, :, 0], dtype=np.float32), np.ascontiguousarray(mask[:, :, 0]))

    def close(self) -> None:
        """Remove the renderer's scene with everything in it, and the scratch folder."""
        self._remove_scene()
        shutil.rmtree(self._dir, ignore_errors=True)

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
