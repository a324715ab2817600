"""What each column of a class mask shows of the Fe2Al5 band, and the tilt of the cross-section in the frame.

A frame may show the whole coating, or cut it: the band may run off the bottom edge (the substrate not reached) or
start above the top edge (the surface not in the frame). :func:`frame_columns` says, per column, which of the band's
two edges the frame shows; :func:`tilt_rad` estimates how far the cross-section is turned in the frame from the
lines those edges draw. Only numpy is imported (the renderer measures its truth without scipy).

The edges of a column are step fits, so that stray pixels of a predicted mask do not move them (issue 12: a lone
FeAl or steel blob inside the Fe2Al5, a speck of coating in the resin moved the first-row edges by hundreds of rows):

- the surface s(c) is the solid (non-background) row that leaves the fewest pixels on the wrong side of it: solid
  pixels above it plus background pixels from it down to the column's last solid row. A run of solid pixels in the
  resin is therefore skipped when the resin below it is longer than the run; a column with no background between its
  first and last solid rows (every rendered truth column) has s(c) = its first solid row;
- the band's bottom b(c) is the FeAl or substrate row at or below s(c) that leaves the fewest misplaced pixels:
  FeAl and substrate pixels from s(c) down to above it, plus Fe2Al5 pixels below it (pores, precipitates, cracks and
  resin count on neither side). An island of FeAl or steel inside the band is skipped when the Fe2Al5 below it
  outnumbers it; the column has no bottom when the FeAl and steel it shows are outnumbered by Fe2Al5 below every
  one of their rows (an island in a band that runs off the bottom edge). A column with nothing but FeAl and substrate
  from its first FeAl or substrate row down to its last solid row has b(c) = that first row, as before.

Ties go to the upper row (the first-row rule of the clean case).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semcoat.classes import BACKGROUND, FE2AL5, FEAL, SUBSTRATE

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
    surface_row : s(c), the coating's first row (the first solid row, stray specks in the resin skipped; see the
        module docstring).
    band_bottom_row : b(c), the first FeAl or substrate row of the layer below the band (stray islands skipped).
    band_end_row : e(c), the row below the Fe2Al5 band: b(c) where it exists, else the row below the column's last
        non-background row (the band runs off the bottom edge, or into a data bar).
    banded : the column shows some Fe2Al5 band (rows s(c) .. e(c) - 1).
    surface_seen : banded, and its surface lies inside the frame (resin above it: s(c) > 0).
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


# The per-column passes read the mask in stripes of whole rows, about this many pixels each (at most 255 rows, so that
# a row's weight in a stripe fits a byte): the temporaries of a pass stay small. Full-frame temporaries (a transposed
# copy, flags of a class) made the allocator hand memory back and fault it in again on every mask, some 40 % of
# measure's time on 1024 x 768 masks.
STRIPE_PX = 1 << 17
STRIPE_MAX_ROWS = 255


def stripe_rows(width: int) -> int:
    """Rows in one stripe of a mask ``width`` pixels wide (see :data:`STRIPE_PX`)."""
    return min(STRIPE_MAX_ROWS, max(1, STRIPE_PX // max(1, width)))


def stripes(start: int, stop: int, width: int) -> range:
    """First rows of the stripes that cover rows ``start .. stop - 1`` of a mask ``width`` pixels wide."""
    return range(start, stop, stripe_rows(width))


class _ColumnScan:
    """Per column of a flag fed stripe by stripe from the top: its first True row, whether it has one, the number of
    True rows and (when asked) its last True row.

    In a stripe of ``k`` rows, the maximum over the rows of flag x (k - i) (or x (i + 1)) locates the first (last)
    True row of every column at once, along memory; the search runs only in stripes where some column shows its
    first True row.
    """

    def __init__(self, width: int, height: int, track_last: bool) -> None:
        self.first = np.zeros(width, dtype=np.intp)
        self.found = np.zeros(width, dtype=bool)
        count_dtype = np.int16 if height < 1 << 15 else np.int32  # counts up to the height
        self.count: np.ndarray = np.zeros(width, dtype=count_dtype)
        self.last: np.ndarray | None = np.full(width, -1, dtype=np.intp) if track_last else None
        rows = stripe_rows(width)
        self._down = np.arange(rows, 0, -1, dtype=np.uint8)[:, None]
        self._up = np.arange(1, rows + 1, dtype=np.uint8)[:, None]

    def add(self, flags: np.ndarray, row: int) -> None:
        """Take in the stripe ``flags`` (k x width bool) that starts at ``row``."""
        k = flags.shape[0]
        stripe_count = np.add.reduce(flags.view(np.uint8), axis=0, dtype=self.count.dtype)
        self.count += stripe_count
        hit = stripe_count != 0
        new = np.flatnonzero(hit & ~self.found)
        if new.size:
            top = np.maximum.reduce(flags.view(np.uint8) * self._down[-k:], axis=0)
            self.first[new] = row + k - top[new].astype(np.intp)
            self.found[new] = True
        if self.last is not None and hit.any():
            bottom = np.maximum.reduce(flags.view(np.uint8) * self._up[:k], axis=0)
            seen = np.flatnonzero(hit)
            self.last[seen] = row - 1 + bottom[seen].astype(np.intp)

    def add_all(self, row: int, k: int) -> None:
        """Take in a stripe of ``k`` rows from ``row`` on that is True everywhere."""
        self.count += k
        self.first[~self.found] = row
        self.found[:] = True
        if self.last is not None:
            self.last[:] = row + k - 1


def frame_columns(m: np.ndarray) -> FrameColumns:
    """Classify the columns of a validated uint8 class mask ``m`` (see :class:`FrameColumns`).

    The mask is read in stripes of whole rows (:data:`STRIPE_PX`); only the columns whose edges need a step fit are
    copied out, as (columns, rows) arrays.
    """
    height, n_cols = m.shape
    # Last solid row: the bottom edge where the column reaches it (nearly always), else found by the scan.
    solid = _ColumnScan(n_cols, height, track_last=bool(np.any(m[-1] == BACKGROUND)))
    bottom = _ColumnScan(n_cols, height, track_last=False)
    rows = stripe_rows(n_cols)
    for r in stripes(0, height, n_cols):
        block = m[r : r + rows]
        low, high = int(block.min()), int(block.max())
        if low != BACKGROUND:
            solid.add_all(r, block.shape[0])
        elif high != BACKGROUND:
            solid.add(block != BACKGROUND, r)
        if FEAL <= low and high <= SUBSTRATE:
            bottom.add_all(r, block.shape[0])
        elif low <= SUBSTRATE and high >= FEAL:
            bottom.add((block - np.uint8(FEAL)) <= np.uint8(SUBSTRATE - FEAL), r)  # uint8 wraps other ids past 1
    s, has_coating = solid.first, solid.found
    last_solid = np.full(n_cols, height - 1) if solid.last is None else solid.last
    last_solid = np.where(has_coating, last_solid, -1)
    # Background between the first and the last solid row: a speck above the surface may have moved s(c).
    gappy = np.flatnonzero(has_coating & (solid.count < last_solid - s + 1))
    if gappy.size:
        s[gappy] = _surface_fit(np.ascontiguousarray(m[:, gappy].T) != BACKGROUND)

    b, has_bottom = bottom.first, bottom.found
    # Anything but FeAl and substrate below b(c) (an island above Fe2Al5), or FeAl/substrate above s(c) (in the
    # resin): fitted; otherwise b(c) is the first FeAl or substrate row.
    mixed = np.flatnonzero(has_bottom & has_coating & ((bottom.count < last_solid - b + 1) | (b < s)))
    if mixed.size:
        mt = np.ascontiguousarray(m[:, mixed].T)
        b[mixed], has_bottom[mixed] = _bottom_fit(mt, (mt - np.uint8(FEAL)) <= np.uint8(SUBSTRATE - FEAL), s[mixed])
    has_bottom &= has_coating

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


def _surface_fit(solid: np.ndarray) -> np.ndarray:
    """Surface row of each row of ``solid`` (transposed columns holding some solid pixel): the solid index ``r`` that
    minimises (solid above r) + (background from r to the last solid index), the first such on a tie.

    With S(r) the solid count above r and L the last solid index, the cost is S(r) + (L + 1 - r) - (N - S(r)), which
    is 2 S(r) - r up to a per-column constant; at a solid index S(r) = C(r) - 1 with C the inclusive running count.
    """
    count = np.cumsum(solid, axis=1, dtype=np.int32)
    score = 2 * count - np.arange(solid.shape[1], dtype=np.int32)
    score[~solid] = np.iinfo(np.int32).max
    return score.argmin(axis=1)


def _bottom_fit(mt: np.ndarray, bottom_class: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(b(c), whether the column has one) for rows of the transposed mask ``mt``: the FeAl or substrate index r >= s
    that minimises (FeAl and substrate in s .. r - 1) + (Fe2Al5 from r on), the first such on a tie; none when no
    such index does better than (FeAl and substrate from s on): the band running off the end."""
    idx = np.arange(mt.shape[1])
    below_surface = idx[None, :] >= s[:, None]
    step = bottom_class.astype(np.int32) - (mt == FE2AL5)
    step[~below_surface] = 0
    # C(r) inclusive: at a FeAl/substrate index the cost is C(r) - 1 plus the column's Fe2Al5 count (a constant);
    # no bottom costs C(end) plus the same constant.
    count = np.cumsum(step, axis=1)
    candidate = bottom_class & below_surface
    score = np.where(candidate, count, np.iinfo(np.int32).max)
    b = score.argmin(axis=1)
    rows = np.arange(mt.shape[0])
    has = candidate[rows, b] & (score[rows, b] - 1 <= count[:, -1])
    return b, has


def _line_slope(rows: np.ndarray, cols: np.ndarray) -> float:
    """Least-squares slope (rows per column) of the points, fitted twice: the second time without outliers."""
    x = cols.astype(np.float64)
    y = rows.astype(np.float64)
    keep = np.ones(x.size, dtype=bool)
    slope = 0.0
    for _ in range(2):
        xk, yk = x[keep], y[keep]
        if xk.size < 2 or xk.max() == xk.min():
            break
        x_mean, y_mean = xk.mean(), yk.mean()
        xc = xk - x_mean
        slope = float((xc * (yk - y_mean)).sum() / (xc * xc).sum())
        residual = np.abs(y - (y_mean + slope * (x - x_mean)))
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
