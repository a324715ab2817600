"""From the object ids a render draws to the class mask and the grey signal, the same way for every engine.

Every object the builder draws has an id (1, 2, ... in ``LAYOUT`` order; 0 is the empty world): Cycles writes it in the
Object Index pass (``pass_index``), Workbench draws it as the object's flat colour ``id / ID_COLOUR_SCALE``. The id
map goes through the pixel-centre rule (:mod:`.pixel_centres`: pixels beside an edge decided exactly, from the
polygons the builder put in the meshes), then two lookup tables map each id to its class (the mask) and its grey (the
signal). Both engines share all of that, so they agree by construction; a new ``LAYOUT`` entry needs nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .pixel_centres import DrawnObject, apply_pixel_centre_rule
from .stopping import StopCheck

# Workbench draws id k as the grey k / 256: exact in the half floats it renders to, and 1/512 from its neighbours.
ID_COLOUR_SCALE = 256.0
MAX_OBJECT_ID = 255


class ClassMapError(ValueError):
    """The render cannot be turned into ids (colour management in the way, a camera the rule does not handle)."""


def id_colour(object_id: int) -> tuple[float, float, float, float]:
    """The flat colour (RGBA, scene linear) Workbench draws for ``object_id``."""
    v = object_id / ID_COLOUR_SCALE
    return (v, v, v, 1.0)


def ids_from_colour(value: np.ndarray) -> np.ndarray:
    """The ids (uint8) of a Workbench render's grey ``value`` (float).

    Raises
    ------
    ClassMapError
        when a value lies more than a quarter step from every id (a view transform, exposure or dithering changed the
        colours: the flat render must pass them through untouched).
    """
    scaled = np.asarray(value, np.float32) * np.float32(ID_COLOUR_SCALE)
    ids = np.rint(scaled)
    off = np.abs(scaled - ids)
    if off.size and (float(off.max()) > 0.25 or float(ids.min()) < 0 or float(ids.max()) > MAX_OBJECT_ID):
        worst = np.unravel_index(int(np.argmax(off)), off.shape)
        raise ClassMapError(f"the flat render's colours are not object ids: {float(scaled[worst]):.4f} / "
                            f"{ID_COLOUR_SCALE:g} at pixel {tuple(int(i) for i in worst)}; the render must use the "
                            "'Standard' or 'Raw' view transform, no look, exposure 0, gamma 1 and no dithering")
    return ids.astype(np.uint8)


@dataclass
class IdTables:
    """Per object id (index 0-255): its class (the mask value) and its grey level (the rendered signal, 0-1)."""

    class_of_id: np.ndarray  # uint8 (256,)
    grey_of_id: np.ndarray  # float32 (256,)

    def apply(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(signal float32, mask uint8) of an id map."""
        return self.grey_of_id[ids], self.class_of_id[ids]


def drawn_objects(drawn: dict[str, tuple[np.ndarray, float, np.ndarray | None]], object_ids: dict[str, int],
                  camera: Any, width_px: int, height_px: int) -> list[DrawnObject]:
    """The polygons the builder put in its meshes (``SceneBuilder.drawn``: role -> (corners in Blender x/y, z,
    outline or None)) in frame pixels, as ``camera`` frames them on a ``width_px`` x ``height_px`` frame.

    Raises
    ------
    ClassMapError
        for a camera other than the builder's kind: orthographic, looking straight down, without shift.
    """
    cam = camera.data
    if (cam.type != "ORTHO" or cam.shift_x != 0 or cam.shift_y != 0 or any(camera.rotation_euler)
            or camera.parent is not None):
        raise ClassMapError(f"the pixel-centre rule needs an orthographic camera looking straight down without shift; "
                            f"{camera.name!r} is {cam.type}, rotated {tuple(camera.rotation_euler)}, shifted "
                            f"({cam.shift_x}, {cam.shift_y})")
    fit = cam.sensor_fit
    along = width_px if fit == "HORIZONTAL" or (fit == "AUTO" and width_px >= height_px) else height_px
    scale = along / cam.ortho_scale  # pixels per Blender unit (1 for the builder's camera)
    cx, cy = float(camera.location.x), float(camera.location.y)

    def to_px(xy: np.ndarray) -> np.ndarray:
        xy = xy.astype(np.float64)
        return np.stack([(xy[..., 0] - cx) * scale + width_px / 2.0, height_px / 2.0 - (xy[..., 1] - cy) * scale], -1)

    return [DrawnObject(object_ids[role], to_px(corners), z, None if outline is None else to_px(outline))
            for role, (corners, z, outline) in drawn.items()]


def class_map(ids: np.ndarray, tables: IdTables, objects: list[DrawnObject],
              should_stop: StopCheck | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """(signal float32, mask uint8, pixels decided by the rule) of an engine's id map (H, W) uint8; ``should_stop``
    as in :func:`.pixel_centres.apply_pixel_centre_rule`."""
    exact, decided = apply_pixel_centre_rule(ids, objects, should_stop=should_stop)
    signal, mask = tables.apply(exact)
    return signal, mask, decided
