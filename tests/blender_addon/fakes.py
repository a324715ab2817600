"""A bpy-free stand-in for the Blender renderer: rasterises the same geometry with OpenCV."""

from __future__ import annotations

import cv2
import numpy as np

from blender_addon.render_node.frame import RenderedFrame, RenderError
from blender_addon.scene.geometry import CoatingGeometry, Inclusions, build_geometry
from blender_addon.scene.stack import EXTRA_LAYOUT, extra_objects
from blender_addon.scene.stopping import StopCheck, check
from semcoat import classes
from semcoat.batch import BatchSpec
from semcoat.spec import CoatingSpec

_SHIFT = 4  # fixed-point bits of cv2.fillPoly


class RasterRenderer:
    """Draws the layers and inclusions in the Blender z order (the builder's objects and those of
    :mod:`blender_addon.scene.stack`); can be told to fail on its n-th render."""

    engine = "raster"
    engine_note = "OpenCV's rasteriser (a test's stand-in for Blender)"

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls = 0
        self.fail_on_call = fail_on_call
        self.closed = False
        self._frame: RenderedFrame | None = None

    def build(self, spec: CoatingSpec, geometry: CoatingGeometry) -> None:
        g, p = geometry, geometry.pixel_size_um
        width = g.width_px + 2 * g.margin_px
        rows = np.arange(g.height_px)[:, None] + 0.5
        # Every object gets a code (its index here): its class and grey are looked up once everything is drawn.
        class_of, grey_of = [classes.BACKGROUND], [spec.grey.resin]
        layers: list[tuple[float, int, np.ndarray | None]] = []  # (z, code, profile µm or polygons µm)

        def add(class_id: int, grey: float, z: float, shape: np.ndarray | None) -> None:
            class_of.append(class_id)
            grey_of.append(grey)
            layers.append((z, len(class_of) - 1, shape))

        add(classes.FE2AL5, spec.grey.fe2al5, 1.0, g.fe2al5_top_um)
        add(classes.FEAL, spec.grey.feal, 2.0, g.feal_top_um)
        add(classes.SUBSTRATE, spec.grey.substrate, 3.0, g.feal_bottom_um)
        last = len(classes.PRECIPITATE_PHASES) - 1
        phase = g.precipitate_phase if g.precipitate_phase.size == len(g.precipitates) else np.full(
            len(g.precipitates), last)
        for k, grey in enumerate(spec.grey.precipitate_phase_greys()):
            add(classes.PRECIPITATE, grey, 4.0, g.precipitates.polygons_um[phase == k])
        pores = [g.pores, g.line_pores, g.pits, g.interface_voids]
        add(classes.PORE, spec.grey.pore, 5.0, np.concatenate([inc.polygons_um for inc in pores]))
        add(classes.CRACK, spec.grey.crack, 6.0, g.cracks.polygons_um)
        for role, (drawn, grey) in extra_objects(spec.grey, g).items():
            class_id, _name, z = EXTRA_LAYOUT[role]
            add(class_id, grey, z, drawn.polygons_um if isinstance(drawn, Inclusions) else drawn)
        codes = np.zeros((g.height_px, width), np.uint8)
        for _z, code, shape in sorted(layers, key=lambda layer: layer[0]):
            if shape is None or not len(shape):
                continue
            if shape.ndim == 1:  # everything below a profile sampled at the column centres
                codes[rows >= (shape / p)[None, :]] = code
            else:
                pts = np.rint((shape / p + np.array([g.margin_px, 0.0]) - 0.5) * (1 << _SHIFT)).astype(np.int32)
                cv2.fillPoly(codes, list(pts), (code,), shift=_SHIFT)
        signal = np.array(grey_of, np.float32)[codes]
        self._frame = RenderedFrame(signal, np.array(class_of, np.uint8)[codes])

    def render(self, should_stop: StopCheck | None = None) -> RenderedFrame:
        check(should_stop)
        self.calls += 1
        if self.fail_on_call is not None and self.calls >= self.fail_on_call:
            raise RenderError("fake render failure")
        assert self._frame is not None
        return self._frame

    def close(self) -> None:
        self.closed = True


def raster_sample(batch: BatchSpec, index: int, margin_px: int = 3) -> tuple[CoatingSpec, CoatingGeometry, np.ndarray,
                                                                          np.ndarray]:
    """Image ``index`` of ``batch`` drawn with its geometry stream and rasterised by :class:`RasterRenderer`: (spec,
    geometry, mask, signal), the mask and signal without the ``margin_px`` columns each side."""
    spec = batch.sample(index)
    geometry = build_geometry(spec, np.random.default_rng(batch.image_seed(index)), margin_px)
    renderer = RasterRenderer()
    renderer.build(spec, geometry)
    frame = renderer.render()
    return spec, geometry, frame.mask[:, margin_px:-margin_px], frame.signal[:, margin_px:-margin_px]
