"""The coating's edges as a backscatter image shows them: the bottom of FeAl blending into the steel, and the top
edge rounded by polishing. Greys only; the mask keeps its sharp boundaries.

Blend. Aluminium diffuses on into the steel, so the composition, and the grey, pass from FeAl's to the steel's over
a micrometre or a few instead of stepping at the boundary the mask draws. Per column, with ``b`` the first steel row,
``g_up`` the signal of the FeAl pixel nearest above it and ``g_st`` the steel's just below, FeAl pixels gain
``(g_st - g_up) S`` and steel pixels lose ``(g_st - g_up) (1 - S)``, with ``S`` a logistic step of the distance to the
boundary that rises from 10 % to 90 % over ``width``: the grey passes continuously from one to the other, each
pixel keeping its own phase's texture. Columns where Fe2Al5 (or a void) lies on the steel keep a sharp step.
"""

from __future__ import annotations

import numpy as np

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
    first = np.argmax(steel, axis=0)
    reach = int(np.ceil(BLEND_REACH_WIDTHS * width_px)) + 1
    top = max(0, int(first[has_steel].min()) - reach)
    bottom = min(mask.shape[0], int(first[has_steel].max()) + reach + 1)
    band = mask[top:bottom]
    rows = np.arange(top, bottom)[:, None]
    # Per column, the solid layer pixel nearest above the first steel row (past any void on the interface).
    layer = ((band == classes.FEAL) | (band == classes.FE2AL5)) & (rows < first[None, :])
    nearest = np.where(layer, rows, -1).max(axis=0)
    cols = np.arange(mask.shape[1])
    valid = has_steel & (nearest >= 0)
    upper_class = np.where(valid, mask[np.maximum(nearest, 0), cols], 0)
    valid &= upper_class == classes.FEAL
    if not valid.any():
        return None
    step = np.where(valid, signal[first, cols] - signal[np.maximum(nearest, 0), cols], 0.0).astype(np.float32)
    # Pixel centres sit at row + 0.5; the boundary at the top edge of the first steel row.
    distance = (rows.astype(np.float32) + np.float32(0.5) - first[None, :].astype(np.float32)) / np.float32(width_px)
    rise = np.float32(1.0) / (np.float32(1.0) + np.exp(np.float32(-LOGISTIC_10_90) * distance))
    in_feal = (band == classes.FEAL) & valid[None, :]
    in_steel = (band == classes.SUBSTRATE) & valid[None, :]
    offsets = np.where(in_feal, step * rise, np.where(in_steel, step * (rise - np.float32(1.0)), np.float32(0.0)))
    return top, offsets.astype(np.float32)
