"""What each column of a class mask shows of the Fe2Al5 band, and the tilt of the cross-section in the frame.

A frame may show the whole coating, or cut it: the band may run off the bottom edge (the substrate not reached) or
start above the top edge (the surface not in the frame). :func:`frame_columns` says, per column, which of the band's
two edges the frame shows; :func:`tilt_rad` estimates how far the cross-section is turned in the frame from the
lines those edges draw. Only numpy is imported (the renderer measures its truth without scipy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semcoat.classes import BACKGROUND, FEAL, SUBSTRATE

# An edge line (the surface, the band's bottom) takes part in the tilt estimate when the frame shows it in at least
# this share of the columns.
TILT_MIN_COLUMN_SHARE = 0.25
# The line fit is repeated once without the columns whose row lies farther than this many times the median absolute
# residual (plus one pixel) from the first fit: a stray blob of a predicted mask must not turn the estimate.
TILT_OUTLIER_FACTOR = 3.0


@dataclass(frozen=True)
class FrameColumns:
    """Per column of a mask (bool arrays and row indices; -1 where a column has none).

    Attributes
    ----------
    surface_row : s(c), the first row that is not background.
    band_bottom_row : b(c), the first FeAl or substrate row.
    band_end_row : e(c), the row below the Fe2Al5 band: b(c) where it exists, else the row below the column's last
        non-background row (the band runs off the bottom edge, or into a data bar).
    banded : the column shows some Fe2Al5 band (rows s(c) .. e(c) - 1).
    surface_seen : banded, and its surface lies inside the frame (row 0 is background).
    bottom_seen : banded, and the band ends on FeAl or substrate inside the frame.
    last_solid_row : the column's last non-background row (-1 in a column of background only).
    """

    surface_row: np.ndarray
    band_bottom_row: np.ndarray
    band_end_row: np.ndarray
    banded: np.ndarray
    surface_seen: np.ndarray
    bottom_seen: np.ndarray
    last_solid_row: np.ndarray

    @property
    def whole(self) -> np.ndarray:
        """Columns that show both edges of the band."""
        return self.surface_seen & self.bottom_seen


def _first_true_row(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First True row per column, and whether the column has one at all."""
    first = flags.argmax(axis=0)
    return first, flags[first, np.arange(flags.shape[1])]


def frame_columns(m: np.ndarray) -> FrameColumns:
    """Classify the columns of a validated uint8 class mask ``m`` (see :class:`FrameColumns`)."""
    solid = m != BACKGROUND
    s, has_coating = _first_true_row(solid)
    # FeAl (2) and substrate (3) in one pass: uint8 arithmetic wraps every other id past 1.
    b, has_bottom = _first_true_row((m - np.uint8(FEAL)) <= np.uint8(SUBSTRATE - FEAL))
    last_from_bottom, _ = _first_true_row(solid[::-1])
    last_solid = np.where(has_coating, m.shape[0] - 1 - last_from_bottom, -1)
    end = np.where(has_bottom, b, last_solid + 1)
    banded = has_coating & (end > s)
    return FrameColumns(
        surface_row=np.where(has_coating, s, -1),
        band_bottom_row=np.where(has_bottom, b, -1),
        band_end_row=np.where(banded, end, -1),
        banded=banded,
        surface_seen=banded & (s > 0),
        bottom_seen=banded & has_bottom,
        last_solid_row=last_solid,
    )


def _line_slope(rows: np.ndarray, cols: np.ndarray) -> float:
    """Least-squares slope (rows per column) of the points, fitted twice: the second time without outliers."""
    x = cols.astype(np.float64)
    y = rows.astype(np.float64)
    keep = np.ones(x.size, dtype=bool)
    slope = 0.0
    for _ in range(2):
        xk, yk = x[keep], y[keep]
        if xk.size < 2 or np.ptp(xk) == 0:
            break
        xc = xk - xk.mean()
        slope = float((xc * (yk - yk.mean())).sum() / (xc * xc).sum())
        residual = np.abs(y - (yk.mean() + slope * (x - xk.mean())))
        keep = residual <= TILT_OUTLIER_FACTOR * float(np.median(residual)) + 1.0
    return slope


def tilt_rad(columns: FrameColumns) -> float:
    """How far the cross-section is turned in the frame, rad (positive: its lines descend to the right).

    The slope of a straight line fitted to the surface rows s(c) of the columns that show the surface, and one fitted
    to the band's bottom rows b(c) of the columns that show it, each used when the frame shows it in at least
    :data:`TILT_MIN_COLUMN_SHARE` of the columns, averaged with the number of columns as weights; 0 when neither is
    shown. Both lines run along the specimen's edge (the coating grows inwards from the surface), so their mean slope
    is the tilt; roughness and a slow thickness variation tip either by a few tenths of a degree at most.
    """
    width = columns.banded.size
    slopes, weights = [], []
    for seen, rows in ((columns.surface_seen, columns.surface_row), (columns.bottom_seen, columns.band_bottom_row)):
        n = int(np.count_nonzero(seen))
        if n >= 2 and n >= TILT_MIN_COLUMN_SHARE * width:
            cols = np.flatnonzero(seen)
            slopes.append(_line_slope(rows[cols], cols))
            weights.append(n)
    if not slopes:
        return 0.0
    return float(np.arctan(np.average(slopes, weights=weights)))
