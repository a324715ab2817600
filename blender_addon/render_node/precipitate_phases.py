"""Which phase each precipitate of a rendered mask is: the dataset's optional phase map.

The class mask holds one precipitate class; the renderer draws each precipitate in its phase's grey
(:meth:`semcoat.spec.GreyLevelSpec.precipitate_phase_greys`: Al8Cr5 about Fe2Al5's grey, Cr2Al ~70 % of the way to
Cr23C6). The render node writes each image's phases beside its mask (``phases/<id>.png``, :mod:`semcoat.dataset`), so
that training can leave the faint ones out of the loss and the metrics (a model cannot learn what the image does not
show) and ``bench/train_quality.py`` can report them apart, without drawing the geometry again.
"""

from __future__ import annotations

import cv2
import numpy as np

from blender_addon.scene.geometry import CoatingGeometry
from semcoat.classes import PRECIPITATE, PRECIPITATE_PHASES

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
    # rounded once for all polygons (per polygon, numpy's overhead was three quarters of the fill's 8 ms)
    fixed_point = np.round(corners * 16).astype(np.int32)
    for polygon, value in zip(fixed_point, (geometry.precipitate_phase.astype(np.int64) + 1).tolist(), strict=True):
        cv2.fillPoly(filled, [polygon], (value,), shift=4)
    target = mask == PRECIPITATE
    total = int(np.count_nonzero(target))
    if total == 0:
        return np.full(mask.shape, -1, np.int8)
    fill = filled[target]
    if np.count_nonzero(fill) < MIN_COVERAGE * total:
        return None
    count, labels = cv2.connectedComponents(target.astype(np.uint8), connectivity=8)
    n_values = len(PRECIPITATE_PHASES) + 1
    votes = np.bincount(labels[target] * n_values + fill, minlength=count * n_values).reshape(count, n_values)
    votes[:, 0] = 0
    # A precipitate no fill reaches (a speck of a few pixels moved by jitter) counts as the most contrasted phase.
    phase_of_label = np.where(votes.any(axis=1), votes.argmax(axis=1) - 1, len(PRECIPITATE_PHASES) - 1)
    phase_of_label[0] = -1
    return phase_of_label.astype(np.int8)[labels]


def phase_map_pixels(phase: np.ndarray) -> np.ndarray:
    """The phase map as the dataset stores it (uint8: 0 off the precipitates, 1 + the phase's index on them)."""
    return (phase.astype(np.int16) + 1).astype(np.uint8)
