"""Islands of a layer cut off from where the cross-section puts that layer, in a model's prediction, given back to
the likeliest class that fits there.

A cross-section is resin over the coating over the substrate. The steel substrate is one region that runs off the
frame's bottom edge; the coating (Fe2Al5 with the pores, precipitates and cracks it holds) is one region that meets
the resin at the surface, or runs off the frame's top edge. A model that sees a tile at a time can still read the
textured steel of a long heat treatment as Fe2Al5 with precipitates, under a whole FeAl band, or a bright stretch of
Fe2Al5 as steel (issue 12: one held-out image lost 155k of its 210k steel pixels so). Nothing in a tile tells those
apart, but the whole mask does: such a patch is a connected region cut off from its layer.

:func:`remove_layer_islands` finds them on the class map of the probabilities and gives their pixels the likeliest
class that fits there, in three steps:

1. coating islands take FeAl or steel, whichever is likelier (the textured steel under the FeAl band);
2. steel islands take their likeliest class other than steel (Fe2Al5 for a bright stretch of Fe2Al5). A pocket of
   Fe2Al5 inside such a steel island, which step 1 made steel, goes back with it;
3. step 2 can leave a patch of Fe2Al5 inside the FeAl band: coating islands then take FeAl or resin, never steel
   again, so the three steps end in a mask with no island of either kind.

It is nnU-Net's "keep the main component" post-processing, with the main component chosen by the layer's place in
the stack (cracks cut the coating into pieces; each piece still meets the resin or a crack that does), and one guard
from size: a component at least as large as the largest anchored one is never an island, so a speck that happens to
touch the anchor (a filler particle in the resin read as precipitate, a bright particle on the bottom edge read as
steel) cannot make the layer itself one. Steel is left as read where none reaches the bottom edge (upside down, or
the sample's edge inside the frame), coating where none meets the resin or the top edge; a sideways frame has both
anchors and is treated like an upright one. The verdict on such frames is :func:`analysis.measure.check_layered`'s.

Known limits (real features the renderer never draws, taken for misreadings): a pore or a remnant of Fe2Al5 enclosed
in the FeAl band, a sectioned Fe2Al5 tongue tip inside the steel and a piece of crack in the steel take FeAl or steel;
a bump of steel cut off by a side edge takes FeAl. Each is small against its layer (on synthetic cases: FeAl
thickness moved by 0.2-1.5 µm, pore % and crack density not at all); ``semcoat predict --keep-islands`` keeps them.
"""

from __future__ import annotations

import cv2
import numpy as np

from semcoat.classes import BACKGROUND, CRACK, FE2AL5, FEAL, PORE, PRECIPITATE, SUBSTRATE

# The coating: Fe2Al5 and what it holds. A pore or crack joins the pieces a crack cuts apart.
COATING_CLASSES = (FE2AL5, PORE, PRECIPITATE, CRACK)
# What a coating island can be instead: the layers below the coating.
BELOW_COATING = (FEAL, SUBSTRATE)


def _components(region: np.ndarray) -> tuple[int, np.ndarray]:
    """Number of labels (0 = outside) and the label image of the 8-connected components of a boolean region."""
    count, labels = cv2.connectedComponents(region.astype(np.uint8), connectivity=8)
    return int(count), labels


def _not_anchored(labels: np.ndarray, count: int, anchored: np.ndarray) -> np.ndarray:
    """Pixels of the components none of whose pixels is in ``anchored`` and that are smaller than the largest
    component with one (``anchored`` holds at least one pixel of a component)."""
    keep = np.zeros(count, bool)
    keep[np.unique(labels[anchored])] = True
    keep[0] = True  # label 0 is outside the region
    sizes = np.bincount(labels.ravel(), minlength=count)
    keep |= sizes >= sizes[1:][keep[1:]].max()
    return ~keep[labels]


def coating_islands(mask: np.ndarray) -> np.ndarray:
    """Pixels of the coating components (Fe2Al5, pores, precipitates, cracks; 8-connected) of a class mask that
    neither touch the resin (background, 8-neighbours) nor reach the top edge; nothing when no component does."""
    coating = np.isin(mask, COATING_CLASSES)
    count, labels = _components(coating)
    if count <= 2:
        return np.zeros(mask.shape, bool)
    near_resin = cv2.dilate((mask == BACKGROUND).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    anchored = coating & near_resin
    anchored[0] |= coating[0]
    if not anchored.any():
        return np.zeros(mask.shape, bool)
    return _not_anchored(labels, count, anchored)


def steel_islands(mask: np.ndarray) -> np.ndarray:
    """Pixels of the substrate components (8-connected) of a class mask that do not reach the bottom edge; nothing
    when none reaches it."""
    steel = mask == SUBSTRATE
    count, labels = _components(steel)
    if count <= 2 or not steel[-1].any():
        return np.zeros(mask.shape, bool)
    anchored = np.zeros(mask.shape, bool)
    anchored[-1] = steel[-1]
    return _not_anchored(labels, count, anchored)


def _relabel(mask: np.ndarray, probabilities: np.ndarray, islands: np.ndarray, allowed: list[int]) -> None:
    """Give each island pixel of ``mask`` (in place) the likeliest of the ``allowed`` classes."""
    rows, cols = np.nonzero(islands)
    choice = probabilities[:, rows, cols][allowed].argmax(axis=0)  # the island's pixels only, not whole planes
    mask[rows, cols] = np.asarray(allowed, np.uint8)[choice]


def remove_layer_islands(probabilities: np.ndarray) -> np.ndarray:
    """Class-id mask (uint8, rows x columns) of class probabilities (classes, rows, columns, at least up to the
    substrate's id) with the steel and coating islands relabelled in the three steps of the module docstring.

    Only the order of a pixel's values counts: logits give the same mask. Without islands the result is the plain
    argmax; ``probabilities`` is not modified.

    Raises
    ------
    ValueError
        When ``probabilities`` is not (classes, rows, columns) with the substrate among its classes.
    """
    if probabilities.ndim != 3 or probabilities.shape[0] <= SUBSTRATE:
        raise ValueError(
            f"probabilities must be (classes, rows, columns) with at least {SUBSTRATE + 1} classes; "
            f"got shape {probabilities.shape}"
        )
    n_classes = probabilities.shape[0]
    mask = probabilities.argmax(axis=0).astype(np.uint8)
    if mask.size == 0:  # OpenCV's component labelling crashes on an empty image
        return mask
    coating = coating_islands(mask)
    if coating.any():
        _relabel(mask, probabilities, coating, list(BELOW_COATING))
    steel = steel_islands(mask)
    if steel.any():
        _relabel(mask, probabilities, steel, [c for c in range(n_classes) if c != SUBSTRATE])
        coating = coating_islands(mask)
        if coating.any():
            _relabel(mask, probabilities, coating, [BACKGROUND, FEAL])
    return mask
