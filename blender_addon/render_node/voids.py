"""How pores look in a backscatter image: interiors from black up to the resin's grey, bright rims at their edges.

Interiors. A pore cut open by polishing is empty (black: few electrons come back from its far walls and bottom),
filled with mounting resin (the resin's grey) or partly filled, with debris or resin that did not reach its bottom.
Each pore (a connected region of the pore class in the mask; merged pores are one) gets one fill level ``u`` drawn in
``[0, fill_max]``: its grey is ``pore + u (resin - pore)``.

Rims. The solid just around a pore shows brighter (the edge effect: electrons escape through the pore's wall), over
a physical width: ``rim x exp(-d / width)`` at a distance ``d`` from the pore, on solid phases only. This comes on top
of ``imaging.edge_brightening``, a one-pixel rim at every void edge.

Both are worked out on the rows that hold pores only; the mask is unchanged.
"""

from __future__ import annotations

import cv2
import numpy as np

from semcoat import classes

# Rims reach this many widths from a pore (exp(-4) = 2 % of the rim).
RIM_REACH_WIDTHS = 4.0


def _pore_rows(pores: np.ndarray, margin: int = 0) -> tuple[int, int] | None:
    """The rows from the first to the last holding a pore, widened by ``margin`` (None: no pore)."""
    rows = np.flatnonzero(pores.any(axis=1))
    if rows.size == 0:
        return None
    return max(0, int(rows[0]) - margin), min(pores.shape[0], int(rows[-1]) + 1 + margin)


def pore_fill_offset(
    mask: np.ndarray, pore_grey: float, resin_grey: float, fill_max: float, rng: np.random.Generator
) -> tuple[int, np.ndarray] | None:
    """Grey to add to each pore's pixels for its fill level: ``(first_row, offsets)``, offsets float32 for the rows
    ``first_row ..`` that hold pores (0 outside pores); None when nothing changes (no pore, or ``fill_max`` 0: then
    nothing is drawn).

    Parameters
    ----------
    mask : uint8 class ids.
    pore_grey, resin_grey : the greys of an empty pore and of the resin (0-1).
    fill_max : largest fill level (0: every pore empty; 1: up to the resin's grey).
    rng : the pores' own stream: one level per pore, in the order of the pores' labels (top to bottom).
    """
    if fill_max <= 0:
        return None
    pores = mask == classes.PORE
    span = _pore_rows(pores)
    if span is None:
        return None
    top, bottom = span
    band = pores[top:bottom]
    count, labels = cv2.connectedComponents(band.view(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    levels = np.zeros(count, np.float32)
    levels[1:] = rng.uniform(0.0, fill_max, count - 1) * (resin_grey - pore_grey)
    # Looked up on the pore pixels only (a few per cent of the rows' pixels), zeros elsewhere.
    offsets = np.zeros(band.shape, np.float32)
    inside = np.flatnonzero(band)
    offsets.reshape(-1)[inside] = levels[labels.reshape(-1)[inside]]
    return top, offsets


def pore_rim(mask: np.ndarray, pixel_size_um: float, width_um: float) -> tuple[int, np.ndarray] | None:
    """The rim profile ``exp(-d / width)`` (float32, 0-1) on solid pixels near pores: ``(first_row, profile)`` for
    the rows around the pores; None without pores.

    ``d`` is the distance from the pixel's centre to the nearest pore pixel's centre less one pixel (so a solid pixel
    touching a pore is at 0); the rim is drawn only on solid phases (not resin or cracks).
    """
    width_px = width_um / pixel_size_um
    reach = int(np.ceil(RIM_REACH_WIDTHS * width_px)) + 1
    pores = mask == classes.PORE
    span = _pore_rows(pores, reach)
    if span is None:
        return None
    top, bottom = span
    band = mask[top:bottom]
    profile = cv2.distanceTransform((band != classes.PORE).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)
    # exp((1 - d) / width), in place: the distance is at least 1 off the pores, and pores themselves are zeroed below.
    profile -= np.float32(1.0)
    profile *= np.float32(-1.0 / width_px)
    cv2.exp(profile, dst=profile)
    profile *= (band != classes.PORE) & (band != classes.BACKGROUND) & (band != classes.CRACK)  # solid only
    return top, profile
