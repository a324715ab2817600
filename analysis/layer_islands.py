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
the stack (cracks cut the coating into pieces; each piece still meets the resin or a crack that does). Two guards
make it robust to what a model gets wrong at the anchors and at the band:

- a layer counts as anchored only where one of its components meets the anchor along at least a quarter of the
  columns (:data:`MIN_ANCHOR_SHARE`), so a speck that happens to touch it (a filler particle in the resin read as
  pore, a bright particle on the bottom edge read as steel) cannot make the real layer an island. Steel is thus left
  as read where it does not run off the bottom edge (upside down, the sample's edge inside the frame), coating where
  it meets neither the resin nor the top edge; a sideways frame has both anchors and is treated like an upright one.
  The verdict on such frames is :func:`analysis.measure.check_layered`'s;
- narrow gaps in the FeAl-and-steel band (its ends short of the side edges, a stretch where the FeAl was missed) are
  bridged for the coating's connectivity (:func:`band_bridges`), so steel misread as coating below the band does not
  join the coating through them.

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
# A layer is anchored where one of its components meets its anchor (the bottom edge for steel; the resin or the top
# edge for the coating) in at least this share of the columns; a speck on the anchor (a bright particle on the bottom
# edge read as steel, a filler particle in the resin read as pore) is not enough to call the real layer an island.
MIN_ANCHOR_SHARE = 0.25
# The FeAl and steel under the coating form a band across the frame. A model may leave gaps in it (at the frame's side
# edges, where a tile has no context beyond; a stretch where it missed the FeAl), and a misread patch of steel below
# then joins the coating through them. The band is the FeAl-and-steel components at least MAX_BAND_GAP_SHARE of the
# width wide (specks are no band); where they cover at least MIN_BAND_SPAN_SHARE of the columns, each gap no wider
# than MAX_BAND_GAP_SHARE is bridged for the coating's connectivity by a line BRIDGE_PX rows thick along the band's
# top, interpolated between the columns beside the gap (the nearest one's at a side edge).
MAX_BAND_GAP_SHARE = 0.05
MIN_BAND_SPAN_SHARE = 0.8
BRIDGE_PX = 5


def _components(region: np.ndarray) -> tuple[int, np.ndarray]:
    """Number of labels (0 = outside) and the label image of the 8-connected components of a boolean region."""
    count, labels = cv2.connectedComponents(region.astype(np.uint8), connectivity=8)
    return int(count), labels


def _not_anchored(labels: np.ndarray, count: int, anchored: np.ndarray) -> np.ndarray:
    """Pixels of the components none of whose pixels is in ``anchored``; nothing when no component has anchored
    pixels in at least :data:`MIN_ANCHOR_SHARE` of the columns (a speck on the anchor is no layer)."""
    rows, cols = np.nonzero(anchored)
    pairs = np.unique(labels[rows, cols].astype(np.int64) * labels.shape[1] + cols)
    contact_columns = np.bincount(pairs // labels.shape[1], minlength=count)
    contact_columns[0] = 0  # label 0 is outside the region
    if contact_columns.max() < MIN_ANCHOR_SHARE * labels.shape[1]:
        return np.zeros(labels.shape, bool)
    keep = contact_columns > 0
    keep[0] = True
    return ~keep[labels]


def band_bridges(mask: np.ndarray) -> np.ndarray:
    """Pixels that bridge the gaps of the FeAl-and-steel band of a class mask (see :data:`MAX_BAND_GAP_SHARE`): in each
    column of a gap no wider than that share of the width, :data:`BRIDGE_PX` rows from the band's top interpolated
    between the columns beside the gap; nothing where the band covers fewer than :data:`MIN_BAND_SPAN_SHARE` of the
    columns, or all of them."""
    rows, cols = mask.shape
    bridges = np.zeros(mask.shape, bool)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        ((mask == FEAL) | (mask == SUBSTRATE)).astype(np.uint8), connectivity=8
    )
    # a connected component covers an unbroken run of columns: its bounding box's
    wide = np.flatnonzero(stats[1:, cv2.CC_STAT_WIDTH] >= MAX_BAND_GAP_SHARE * cols) + 1
    covered = np.zeros(cols, bool)
    for label in wide:
        left = stats[label, cv2.CC_STAT_LEFT]
        covered[left : left + stats[label, cv2.CC_STAT_WIDTH]] = True
    if covered.sum() < MIN_BAND_SPAN_SHARE * cols or covered.all():
        return bridges
    band = np.isin(labels, wide)
    known = np.flatnonzero(covered)
    top = np.interp(np.arange(cols), known, np.argmax(band, axis=0)[known])  # the nearest one's beyond the outermost
    gaps = np.flatnonzero(~covered)
    run_starts = np.flatnonzero(np.diff(gaps, prepend=-2) > 1)
    for start, end in zip(run_starts, [*run_starts[1:], gaps.size], strict=True):
        if end - start <= MAX_BAND_GAP_SHARE * cols:
            for c in gaps[start:end]:
                first = int(round(top[c]))
                bridges[first : first + BRIDGE_PX, c] = True
    return bridges


def coating_islands(mask: np.ndarray) -> np.ndarray:
    """Pixels of the coating components (Fe2Al5, pores, precipitates, cracks; 8-connected, through no bridge of
    :func:`band_bridges`) of a class mask that neither touch the resin (background, 8-neighbours) nor reach the top
    edge; nothing when no component does so along :data:`MIN_ANCHOR_SHARE` of the columns. The bridges' own pixels
    are no island."""
    coating = np.isin(mask, COATING_CLASSES) & ~band_bridges(mask)
    count, labels = _components(coating)
    if count <= 2:
        return np.zeros(mask.shape, bool)
    near_resin = cv2.dilate((mask == BACKGROUND).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    anchored = coating & near_resin
    anchored[0] |= coating[0]
    return _not_anchored(labels, count, anchored)


def steel_islands(mask: np.ndarray) -> np.ndarray:
    """Pixels of the substrate components (8-connected) of a class mask that do not reach the bottom edge; nothing
    when none reaches it along :data:`MIN_ANCHOR_SHARE` of the columns."""
    steel = mask == SUBSTRATE
    count, labels = _components(steel)
    if count <= 2:
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
