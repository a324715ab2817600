"""Finding and cropping the instrument's data bar at the bottom of an SEM micrograph.

SEMs print a bar of acquisition data (magnification, HV, scale bar, logo) under the scanned area: a band of rows
drawn digitally on a flat background (black, grey or white), with text, often separated from the micrograph by a
rule. A Thermo/FEI TIFF says where it starts (``[Image] ResolutionY``, see :mod:`analysis.sem_tiff`); for other
files the bar is detected from the pixels.

What tells a bar from a micrograph is that it is drawn, not scanned: its background is one exact value over long
runs of pixels, where a scanned row carries shot noise (no run of equal pixels) even where it is dark or bright. The
detector therefore looks at exact values, never at grey-level differences, so it does not depend on how the bar's
grey compares with the micrograph's (a grey rule over a bright substrate gives no strong edge, yet its rows are
drawn).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semcoat.errors import SemcoatError

# Only the bottom half of the image is searched: a bar taller than that is not a bar (the renderer refuses one, and
# a metadata scan height that would keep less than half the rows is refused below, MIN_SCAN_SHARE).
MAX_BAR_FRACTION = 0.5
MIN_BAR_ROWS = 6
# A drawn pixel lies in a horizontal run of at least this many exactly equal pixels. A scanned row carries shot
# noise: four equal neighbours in a row are rare there, even where the micrograph is smooth.
RUN_PX = 4
# Values within this share of the image's range count as one level: a JPEG decodes the flat background of each 8x8
# block to a value a few levels from its neighbours'.
LEVEL_TOLERANCE = 0.02
# A bar row has at least this share of its pixels drawn at the bar's background level; a row through a line of
# dense text keeps that much (a quarter to a third), a scanned row at the same grey almost none.
MIN_BACKGROUND_SHARE = 0.15
# A line of the bar (a rule or a border, in any grey; text may cross it) is a row with at least this share of its
# pixels drawn at one level.
MIN_LINE_SHARE = 0.5
# Rules and borders are thin: more rows than this at one level is a flat (saturated) part of the micrograph.
MAX_LINE_ROWS = 4
# Up to this many rows in a row inside the bar may look like neither (text so dense, or a JPEG's ringing around it,
# that little flat background is left).
MAX_GAP_ROWS = 2
# The bar's first row makes an edge: at least this share of its drawn pixels is new, not the same drawn value as
# the pixel above it. Below a scanned row every drawn pixel is new; a flat part of a micrograph (saturated substrate,
# black pores) grows row by row under a wavy or tilted edge, most of its drawn pixels continuing from the row above.
MIN_NEW_SHARE = 0.6
# JPEG compresses 8x8 blocks: the block that holds the bar's edge is smeared by ringing (the rule and the rows
# below it in that block); each block below it is flat again where it holds no text.
JPEG_BLOCK_PX = 8
# The edge is looked for in this many rows from the run's top: text in the bar's first rows, or a JPEG's block that
# holds the edge, may put it below the first bar row.
EDGE_SEARCH_ROWS = JPEG_BLOCK_PX
# The bar's top edge is straight: at least this share of the columns is first drawn within a row of the most common
# first drawn row (a bar's rule or background starts in one row; text may start lower), or, in a JPEG, at the next
# block boundary. A flat region of a micrograph under a wavy edge starts in each column at another row.
MIN_STRAIGHT_SHARE = 0.5
# Text: at least this share of the bar's pixels lies far (a quarter of the image's range) from the bar's background.
MIN_TEXT_SHARE = 0.002
# A scan height from the metadata must keep at least this share of the image's rows: no instrument's data bar takes
# half the frame (they take 5-15 %), so a smaller scan area is damaged metadata, not a bar.
MIN_SCAN_SHARE = 0.5


class DatabarError(SemcoatError):
    """Metadata that places the data bar where it cannot be (it would crop most of the micrograph away)."""


def _in_flat_runs(region: np.ndarray) -> np.ndarray:
    """Boolean mask of the pixels that lie in a horizontal run of at least RUN_PX exactly equal pixels."""
    rows, columns = region.shape
    out = np.zeros((rows, columns), bool)
    windows = columns - RUN_PX + 1
    if windows <= 0:
        return out
    same = region[:, 1:] == region[:, :-1]  # same[:, j]: pixels j and j + 1 are equal
    full = same[:, :windows].copy()  # full[:, k]: pixels k .. k + RUN_PX - 1 are all equal
    for i in range(1, RUN_PX - 1):
        full &= same[:, i : i + windows]
    for i in range(RUN_PX):
        out[:, i : i + windows] |= full
    return out


def _mode(values: np.ndarray) -> tuple[float, float]:
    """The most common exact value of an array and the share of its elements that equal it (NaN, 0 when empty)."""
    if values.size == 0:
        return float("nan"), 0.0
    uniques, counts = np.unique(values, return_counts=True)
    k = int(counts.argmax())
    return float(uniques[k]), float(counts[k]) / values.size


@dataclass(frozen=True)
class _Rows:
    """The searched rows and which of their pixels look drawn."""

    pixels: np.ndarray  # the bottom rows of the image
    drawn: np.ndarray  # pixels in flat runs (:func:`_in_flat_runs`)
    background: float  # the bar's background level: the most common drawn value of the bottom rows
    tolerance: float  # LEVEL_TOLERANCE of the image's range
    background_share: np.ndarray  # per row: share of drawn pixels at the background level

    def line(self, k: int) -> tuple[float, float]:
        """Row ``k``'s most common drawn value and the share of its pixels drawn within the tolerance of it."""
        level, _ = _mode(self.pixels[k][self.drawn[k]])
        if level != level:  # NaN: no drawn pixel
            return level, 0.0
        near = np.abs(self.pixels[k].astype(np.float64) - level) <= self.tolerance
        return level, float(np.mean(near & self.drawn[k]))


def find_databar_top(image: np.ndarray) -> int | None:
    """Row where the data bar starts, or None when the image has none.

    Parameters
    ----------
    image : ndarray, shape (rows, columns)
        Grey micrograph, any numeric dtype (8 or 16 bit, float); not modified.

    Returns
    -------
    int or None
        Index of the bar's first row (its rule when it has one): ``image[:row]`` is the micrograph.

    Notes
    -----
    A bar is drawn, not scanned: its background lies in runs of four or more exactly equal pixels, which a scanned
    row's shot noise breaks, whatever the grey; so no contrast between the bar and the micrograph is needed (a grey
    rule over a bright substrate makes no strong edge). Only the bottom half is searched. The bar's background level
    is the most common drawn value of the bottom six rows. Scanning up from the bottom, a row belongs to the bar when
    at least 15 % of its pixels are drawn at that level (a row through dense text keeps that much), or half of them at
    one other level (a rule or a border, which text may cross; more than four rows of one level are a saturated part
    of the micrograph, and the bar starts below them); up to two rows that are neither are passed over (dense text,
    a JPEG's ringing). In the first eight rows of that run (text in the first rows, or the JPEG block that holds the
    edge, may push it down), the bar's first row is the first one that makes a straight edge: at least 15 % of it
    drawn, 60 % of that not continuing a drawn pixel of the same value above it, and half of the columns first drawn
    in the same row (+-1) or on the next JPEG block boundary. A flat region of a micrograph (white substrate, black
    resin) under a wavy edge fails this: it grows row by row. The bar must then hold text: 0.2 % of its pixels a
    quarter of the image's range away from its background, below drawn background in their column (what reaches
    down from the edge is the micrograph's). In a JPEG the top is found in the 8x8 block that holds the edge or at
    its lower boundary: ringing leaves that block's rows neither scanned nor drawn.
    """
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D grey image; got shape {img.shape}")
    n_rows, n_columns = img.shape
    first = int(np.ceil(n_rows * (1 - MAX_BAR_FRACTION)))
    if n_rows - first < MIN_BAR_ROWS + 1 or n_columns < 2 * RUN_PX:
        return None
    low, high = float(np.min(img)), float(np.max(img))
    if not high > low or not np.isfinite(high - low):  # flat, NaN or infinite values: nothing drawn to find
        return None
    pixels = img[first:]
    drawn = _in_flat_runs(pixels)
    background, _ = _mode(pixels[-MIN_BAR_ROWS:][drawn[-MIN_BAR_ROWS:]])
    if background != background:  # nothing drawn in the bottom rows: a micrograph down to its last row
        return None
    tolerance = LEVEL_TOLERANCE * (high - low)
    at_background = (pixels >= background - tolerance) & (pixels <= background + tolerance)
    rows = _Rows(pixels, drawn, background, tolerance, np.mean(drawn & at_background, axis=1))

    top = _run_top(rows)
    if top is None or top == 0:  # no run, or one reaching the middle of the image: a flat half, not a bar
        return None
    for k in range(top, min(top + EDGE_SEARCH_ROWS, len(pixels) - MIN_BAR_ROWS + 1)):
        drawn_share = float(np.mean(drawn[k]))
        new_share = float(np.mean(drawn[k] & ~(drawn[k - 1] & (pixels[k - 1] == pixels[k]))))
        if (drawn_share >= MIN_BACKGROUND_SHARE and new_share >= MIN_NEW_SHARE * drawn_share
                and _straight_share(drawn[k:], first + k) >= MIN_STRAIGHT_SHARE):
            return first + k if _text_share(rows, k, high - low) >= MIN_TEXT_SHARE else None
    return None


def _straight_share(drawn: np.ndarray, row: int) -> float:
    """Share of the columns of ``drawn`` (the bar's rows, the first being image row ``row``) whose first drawn pixel
    lies within a row of the most common first drawn row, or on the first JPEG block boundary below ``row`` (where
    a column whose 8x8 block the edge smeared is first flat again)."""
    has_drawn = np.any(drawn, axis=0)
    first_drawn = np.argmax(drawn, axis=0)[has_drawn]
    if first_drawn.size == 0:
        return 0.0
    mode = int(np.bincount(first_drawn).argmax())
    block_boundary = -row % JPEG_BLOCK_PX
    straight = (np.abs(first_drawn - mode) <= 1) | (first_drawn == block_boundary)
    return float(np.sum(straight)) / drawn.shape[1]


def _text_share(rows: _Rows, top: int, value_range: float) -> float:
    """Share of the bar's pixels (rows ``top`` on) that are text: a quarter of ``value_range`` from the background,
    with the bar's drawn background above them in their column. What reaches down from the top edge without
    background above it (the micrograph's features across a wavy edge of a flat region) is not text."""
    distance = np.abs(rows.pixels[top:].astype(np.float32) - np.float32(rows.background))
    below_background = np.logical_or.accumulate(rows.drawn[top:] & (distance <= rows.tolerance), axis=0)
    return float(np.mean((distance >= 0.25 * value_range) & below_background))


def _run_top(rows: _Rows) -> int | None:
    """Index (in ``rows.pixels``) of the first row of the run of bar rows that ends at the bottom; None without one
    or when it is shorter than MIN_BAR_ROWS."""
    n_rows = len(rows.pixels)
    top: int | None = None
    gap = 0
    line_level = float("nan")
    line_rows = 0
    for k in range(n_rows - 1, -1, -1):
        if rows.background_share[k] >= MIN_BACKGROUND_SHARE:
            top, gap, line_rows = k, 0, 0
            continue
        level, share = rows.line(k)
        if share >= MIN_LINE_SHARE and abs(level - rows.background) > rows.tolerance:
            line_rows = line_rows + 1 if abs(level - line_level) <= rows.tolerance else 1
            line_level = level
            if line_rows > MAX_LINE_ROWS:
                # A thick band at one level: a saturated part of the micrograph; the bar starts below it.
                top = k + line_rows
                break
            top, gap = k, 0
            continue
        line_rows = 0
        gap += 1
        if gap > MAX_GAP_ROWS:
            break
    return top if top is not None and n_rows - top >= MIN_BAR_ROWS else None


def crop_databar(image: np.ndarray, scan_height_px: int | None = None) -> tuple[np.ndarray, int | None]:
    """The micrograph without its data bar, and the bar's first row (None when there is no bar).

    Parameters
    ----------
    image : ndarray, shape (rows, columns)
        Grey micrograph; not modified (the result is a view of it).
    scan_height_px : int, optional
        Height of the scanned area from the file's metadata; when given and smaller than the image, it is used as is
        (zero, negative or at least the image's height: ignored, the bar is detected in the pixels).

    Raises
    ------
    DatabarError
        When ``scan_height_px`` would keep less than :data:`MIN_SCAN_SHARE` (half) of the rows.
    """
    rows = image.shape[0]
    if scan_height_px is not None and 0 < scan_height_px < MIN_SCAN_SHARE * rows:
        raise DatabarError(
            f"the metadata's scan height (ResolutionY = {scan_height_px}) would crop the image to {scan_height_px} of "
            f"its {rows} rows; a data bar never takes half an image, so the metadata is wrong (analyse the image "
            "without cropping the data bar to keep every row)"
        )
    if scan_height_px is not None and 0 < scan_height_px < rows:
        top: int | None = int(scan_height_px)
    else:
        top = find_databar_top(image)
    return (image if top is None else image[:top]), top
