"""Which phase each precipitate of a rendered mask is, and which are too faint to see.

The class mask holds one precipitate class; the renderer draws each precipitate in its phase's grey
(:meth:`semcoat.spec.GreyLevelSpec.precipitate_phase_greys`: Al8Cr5 about Fe2Al5's grey, Cr2Al ~70 % of the way to
Cr23C6). The phases are not stored: they are drawn again from an image's meta (its spec and seed give the geometry
bit for bit). Training leaves the faint ones out of the loss and the metrics (a model cannot learn what the image does
not show); ``bench/train_quality.py`` reports them apart.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from blender_addon.render_node.batch_render import image_geometry
from blender_addon.scene.geometry import CoatingGeometry
from semcoat.classes import PRECIPITATE, PRECIPITATE_PHASES
from semcoat.errors import SemcoatError
from semcoat.spec import CoatingSpec

# Below this share of a mask's precipitate pixels covered by the geometry's precipitates, the geometry is not the
# mask's (another renderer version, an edited mask): no phase is given. The fill covers 99.5-99.8 % on the presets.
MIN_COVERAGE = 0.95


def precipitate_phase_map(geometry: CoatingGeometry, mask: np.ndarray) -> np.ndarray | None:
    """Phase (index into :data:`semcoat.classes.PRECIPITATE_PHASES`) of each precipitate pixel of ``mask``, -1
    elsewhere (int8, the mask's shape); None when ``geometry`` is not the mask's (:data:`MIN_COVERAGE`).

    The geometry's precipitates are filled per phase, and each connected precipitate of the mask takes the phase
    that covers most of it: the fill reaches a little past the renderer's pixel-centre rule, and scan jitter and drift
    move rows, so pixels alone would disagree at the edges.
    """
    filled = np.zeros(mask.shape, np.uint8)  # phase + 1
    corners = geometry.precipitates.polygons_um / geometry.pixel_size_um - 0.5  # pixel (c, r) is centred on (c, r)
    for polygon, phase in zip(corners, geometry.precipitate_phase, strict=True):
        cv2.fillPoly(filled, [np.round(polygon * 16).astype(np.int32)], (int(phase) + 1,), shift=4)
    target = mask == PRECIPITATE
    total = int(np.count_nonzero(target))
    if total == 0:
        return np.full(mask.shape, -1, np.int8)
    if np.count_nonzero(target & (filled > 0)) < MIN_COVERAGE * total:
        return None
    count, labels = cv2.connectedComponents(target.astype(np.uint8), connectivity=8)
    votes = np.zeros((count, len(PRECIPITATE_PHASES) + 1), np.int64)
    np.add.at(votes, (labels[target], filled[target]), 1)
    votes[:, 0] = 0
    # A precipitate no fill reaches (a speck of a few pixels moved by jitter) counts as the most contrasted phase.
    phase_of_label = np.where(votes.any(axis=1), votes.argmax(axis=1) - 1, len(PRECIPITATE_PHASES) - 1)
    phase_of_label[0] = -1
    return phase_of_label.astype(np.int8)[labels]


def faint_precipitates(meta: dict[str, Any], mask: np.ndarray, contrast_min: float) -> np.ndarray | None:
    """Pixels (bool, the mask's shape) of the precipitates of a rendered image whose phase's grey differs from
    Fe2Al5's by less than ``contrast_min`` (0-1 grey); None when the image is no render of this renderer (its
    ``meta`` holds no spec and seed, or the geometry drawn from them is not the mask's).
    """
    params, seed = meta.get("params"), meta.get("image_seed")
    if not isinstance(params, dict) or not isinstance(seed, int):
        return None
    try:
        spec = CoatingSpec.from_dict(params)
        geometry = image_geometry(spec, seed)
    except SemcoatError:  # a spec this version refuses or cannot draw (SpecError among them)
        return None
    phase = precipitate_phase_map(geometry, mask)
    if phase is None:
        return None
    greys = np.array(spec.grey.precipitate_phase_greys())
    faint_phase = np.abs(greys - spec.grey.fe2al5) < contrast_min
    return (phase >= 0) & faint_phase[np.maximum(phase, 0)]
