"""The coating's edges as a backscatter image shows them: the bottom of FeAl blending into the steel, and the top
edge rounded by polishing. Greys only; the mask keeps its sharp boundaries.

Blend. Aluminium diffuses on into the steel, so the composition, and the grey, pass from FeAl's to the steel's over
a micrometre or a few instead of stepping at the boundary the mask draws. Per column, with ``b`` the first steel row,
``g_up`` the signal of the FeAl pixel nearest above it and ``g_st`` the steel's just below, FeAl pixels gain
``(g_st - g_up) S`` and steel pixels lose ``(g_st - g_up) (1 - S)``, with ``S`` a logistic step of the distance to the
boundary that rises from 10 % to 90 % over ``width``: the grey passes continuously from one to the other, each
pixel keeping its own phase's texture. Columns where Fe2Al5 (or a void) lies on the steel keep a sharp step.

Edge rounding. Polishing rounds the coating's top edge against the softer resin over a micrometre or a few: the
sloping edge sends more electrons back (a bright rim) and lies out of the flat section's plane (it looks soft). With
``s`` the first coating row of a column (under resin; columns whose coating starts at the frame's top edge have no
edge), the coating brightens by ``1 + brightness W`` with ``W = exp(-d / width)`` at depth ``d`` below ``s``; then the
signal is mixed with its Gaussian blur (sigma ``width / 2``, :func:`.blur.wide_blur`) by ``exp(-|d| / width)``
above the edge (the rim's light spills into the resin) and by half that below it (the rim is soft but stays bright).
"""

from __future__ import annotations

import cv2
import numpy as np

from blender_addon.render_node.blur import wide_blur
from semcoat import classes

# A logistic step 1 / (1 + exp(-k x / w)) rises from 10 % to 90 % over w for k = 2 ln 9.
LOGISTIC_10_90 = 2.0 * float(np.log(9.0))
# The blend is worked out within this many widths of the boundary (S < 2e-4 beyond).
BLEND_REACH_WIDTHS = 2.0


def substrate_blend_offset(signal: np.ndarray, mask: np.ndarray, width_px: float) -> tuple[int, np.ndarray] | None:
    """Grey to add to the FeAl and steel pixels near their boundary: ``(first_row, offsets)``, float32 offsets for a
    band of rows from ``first_row`` (0 elsewhere); None when nothing changes (width 0, no steel or no FeAl on it).

    Parameters
    ----------
    signal : float32 rendered phase greys (rows, columns).
    mask : uint8 class ids of the same pixels.
    width_px : distance over which the grey rises from 10 % to 90 % of the step, px.
    """
    if width_px <= 0:
        return None
    steel = mask == classes.SUBSTRATE
    has_steel = steel.any(axis=0)
    if not has_steel.any():
        return None
    # The first steel row of each column lies above the first row that is steel all across.
    whole = np.flatnonzero(steel.all(axis=1))
    from_row = int(np.flatnonzero(steel.any(axis=1))[0])
    to_row = int(whole[0]) + 1 if whole.size else mask.shape[0]
    first = from_row + np.argmax(steel[from_row:to_row], axis=0)
    reach = int(np.ceil(BLEND_REACH_WIDTHS * width_px)) + 1
    top = max(0, int(first[has_steel].min()) - reach)
    bottom = min(mask.shape[0], int(first[has_steel].max()) + reach + 1)
    band = mask[top:bottom]
    rows = np.arange(top, bottom)[:, None]
    # Per column, the solid layer pixel nearest above the first steel row (past any void on the interface).
    layer = ((band == classes.FEAL) | (band == classes.FE2AL5)) & (rows < first[None, :])
    nearest = (layer * (rows.astype(np.int32) + 1)).max(axis=0) - 1  # -1: none
    cols = np.arange(mask.shape[1])
    valid = has_steel & (nearest >= 0)
    upper_class = np.where(valid, mask[np.maximum(nearest, 0), cols], 0)
    valid &= upper_class == classes.FEAL
    if not valid.any():
        return None
    step = np.where(valid, signal[first, cols] - signal[np.maximum(nearest, 0), cols], 0.0).astype(np.float32)
    # Pixel centres sit at row + 0.5; the boundary at the top edge of the first steel row.
    distance = (rows.astype(np.float32) + np.float32(0.5) - first[None, :].astype(np.float32)) / np.float32(width_px)
    np.clip(distance, -10.0, 10.0, out=distance)  # the step is whole by then; exp stays finite in float32
    rise = np.float32(1.0) / (np.float32(1.0) + np.exp(np.float32(-LOGISTIC_10_90) * distance))
    # step x rise on FeAl, step x (rise - 1) on steel, 0 elsewhere (columns not valid have step 0), branch-free
    rise -= np.float32(1.0) * (band == classes.SUBSTRATE)
    rise *= (band == classes.FEAL) | (band == classes.SUBSTRATE)
    rise *= step[None, :]
    return top, rise


# Edge rounding is worked out within this many widths of the surface (exp(-4) = 2 %).
EDGE_REACH_WIDTHS = 4.0
# Share of the blur in the coating's rim (the resin side takes the blur whole).
COATING_SOFTNESS = 0.5


def round_top_edge(signal: np.ndarray, mask: np.ndarray, width_px: float, brightness: float) -> None:
    """Round the coating's top edge in ``signal``, in place: brighter and soft over ``width_px`` (nothing changes when
    the width is 0 or no column shows resin above the coating).

    Parameters
    ----------
    signal : float32 (rows, columns), changed in place.
    mask : uint8 class ids of the same pixels.
    width_px : decay length of the rim, px.
    brightness : relative brightening of the coating right at the edge (0.3 = 30 % brighter).
    """
    if width_px <= 0:
        return
    coating = mask != classes.BACKGROUND
    edge = (mask[0] == classes.BACKGROUND) & coating.any(axis=0)  # resin above the coating in this column
    if not edge.any():
        return
    # The first coating row of each column lies above the first row that is coating all across.
    whole = np.flatnonzero(coating.all(axis=1))
    first_rows = int(np.flatnonzero(coating.any(axis=1))[0])
    last_rows = int(whole[0]) + 1 if whole.size else mask.shape[0]
    surface = first_rows + np.argmax(coating[first_rows:last_rows], axis=0)
    reach = int(np.ceil(EDGE_REACH_WIDTHS * width_px)) + 1
    top = max(0, int(surface[edge].min()) - reach)
    bottom = min(mask.shape[0], int(surface[edge].max()) + reach + 1)
    band, band_signal = mask[top:bottom], signal[top:bottom]
    depth = np.arange(top, bottom, dtype=np.float32)[:, None] + np.float32(0.5) - surface[None, :].astype(np.float32)
    below = depth > 0
    near = cv2.exp(-np.abs(depth) * np.float32(1.0 / width_px))
    near *= edge[None, :]
    # Branch-free arithmetic with the boolean masks (masked writes and np.where cost several times as much).
    solid = (band == classes.FE2AL5) | (band == classes.FEAL) | (band == classes.SUBSTRATE) | (
        band == classes.PRECIPITATE)
    gain = near * (solid & below)
    gain *= np.float32(brightness)
    gain += np.float32(1.0)
    lit = band_signal * gain
    soft = wide_blur(lit, width_px / 2.0)
    # The rim's light spills into the resin above (soft there); the rim itself is half defocused, so it stays bright.
    mix = near * (np.float32(1.0) - np.float32(1.0 - COATING_SOFTNESS) * below)
    soft -= lit
    soft *= mix
    soft += lit
    signal[top:bottom] = soft
