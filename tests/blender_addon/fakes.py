"""A bpy-free stand-in for the Blender renderer: rasterises the same geometry with OpenCV."""

from __future__ import annotations

import cv2
import numpy as np

from blender_addon.render_node.frame import RenderedFrame, RenderError
from blender_addon.scene.geometry import CoatingGeometry
from blender_addon.scene.stopping import StopCheck, check
from semcoat import classes
from semcoat.spec import CoatingSpec

_SHIFT = 4  # fixed-point bits of cv2.fillPoly


class RasterRenderer:
    """Draws the layers and inclusions in the Blender z order; can be told to fail on its n-th render."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls = 0
        self.fail_on_call = fail_on_call
        self.closed = False
        self._frame: RenderedFrame | None = None

    def build(self, spec: CoatingSpec, geometry: CoatingGeometry) -> None:
        g, p = geometry, geometry.pixel_size_um
        width = g.width_px + 2 * g.margin_px
        mask = np.zeros((g.height_px, width), np.uint8)
        cols = np.arange(width)[None, :]
        rows = np.arange(g.height_px)[:, None] + 0.5
        for class_id, top in ((classes.FE2AL5, g.surface_um), (classes.FEAL, g.fe2al5_bottom_um),
                              (classes.SUBSTRATE, g.feal_bottom_um)):
            mask[rows >= (top / p)[cols[0]][None, :]] = class_id
        # Precipitates of each phase get a code of their own (100 + phase) until the greys are looked up.
        phase_code = 100 + g.precipitate_phase.astype(np.int32) if g.precipitate_phase.size == len(
            g.precipitates) else np.full(len(g.precipitates), 100 + len(classes.PRECIPITATE_PHASES) - 1)
        for codes, inc in ((phase_code, g.precipitates), (classes.PORE, g.pores), (classes.PORE, g.line_pores),
                           (classes.PORE, g.pits), (classes.CRACK, g.cracks)):
            if len(inc):
                pts = np.rint((inc.polygons_um / p + np.array([g.margin_px, 0.0]) - 0.5) * (1 << _SHIFT))
                for code in np.unique(codes):
                    chosen = pts[np.broadcast_to(codes, (len(inc),)) == code].astype(np.int32)
                    cv2.fillPoly(mask, list(chosen), (int(code),), shift=_SHIFT)
        greys = np.zeros(256, np.float32)
        for c in classes.CLASS_IDS:
            greys[c] = spec.grey.for_class(c)
        for k, grey in enumerate(spec.grey.precipitate_phase_greys()):
            greys[100 + k] = grey
        signal = greys[mask]
        mask[mask >= 100] = classes.PRECIPITATE
        self._frame = RenderedFrame(signal, mask)

    def render(self, should_stop: StopCheck | None = None) -> RenderedFrame:
        check(should_stop)
        self.calls += 1
        if self.fail_on_call is not None and self.calls >= self.fail_on_call:
            raise RenderError("fake render failure")
        assert self._frame is not None
        return self._frame

    def close(self) -> None:
        self.closed = True
