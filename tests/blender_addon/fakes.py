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
        for class_id, inc in ((classes.PRECIPITATE, g.precipitates), (classes.PORE, g.pores),
                              (classes.PORE, g.line_pores)):
            if len(inc):
                pts = inc.polygons_um / p + np.array([g.margin_px, 0.0]) - 0.5
                cv2.fillPoly(mask, list(np.rint(pts * (1 << _SHIFT)).astype(np.int32)), (class_id,), shift=_SHIFT)
        greys = np.array([spec.grey.for_class(c) for c in sorted(classes.CLASS_IDS)], np.float32)
        self._frame = RenderedFrame(greys[mask], mask)

    def render(self, should_stop: StopCheck | None = None) -> RenderedFrame:
        check(should_stop)
        self.calls += 1
        if self.fail_on_call is not None and self.calls >= self.fail_on_call:
            raise RenderError("fake render failure")
        assert self._frame is not None
        return self._frame

    def close(self) -> None:
        self.closed = True
