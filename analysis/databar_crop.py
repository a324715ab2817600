"""Finding and cropping the instrument's data bar at the bottom of an SEM micrograph.

SEMs print a bar of acquisition data (magnification, HV, scale bar, logo) under the scanned area: a band of rows
drawn digitally on a uniform background, with text, separated from the micrograph by a sharp horizontal edge. A
Thermo/FEI TIFF says where it starts (``[Image] ResolutionY``, see :mod:`analysis.sem_tiff`); for other files the
bar is detected from the pixels.
"""

from __future__ import annotations

import numpy as np

from semcoat.errors import SemcoatError

# Only the bottom part of the image is searched: bars are never taller than this share of the image.
MAX_BAR_FRACTION = 0.35
MIN_BAR_ROWS = 6
# A bar row has at least this share of its pixels within one grey level (of 256 over the image's range) of its mode;
# rows of a micrograph, with their shot noise, stay far below it.
MIN_UNIFORM_SHARE = 0.5
# Of the rows from the bar's top edge down to the bottom, at least this share are bar rows (text lines may be dense).
MIN_BAR_ROW_SHARE = 0.8
# The bar's top edge differs from the row above by at least this many times the median row-to-row difference.
MIN_EDGE_RATIO = 2.0
# Text: at least this share of the bar's pixels lies far (a quarter of the range) from the bar's background level.
MIN_TEXT_SHARE = 0.002
# A scan height from the metadata must keep at least this share of the image's rows: no instrument's data bar takes
# half the frame (they take 5-15 %), so a smaller scan area is damaged metadata, not a bar.
MIN_SCAN_SHARE = 0.5


class DatabarError(SemcoatError):
    """Metadata that places the data bar where it cannot be (it would crop most of the micrograph away)."""


def _quantise(image: np.ndarray) -> np.ndarray:
    img = image.astype(np.float32)
    low, high = float(img.min()), float(img.max())
    return np.round((img - low) * (255.0 / max(high - low, 1e-12))).astype(np.int64)


def _row_modes(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the most common level (+-1) and the share of the row's pixels within one level of it."""
    n_rows, width = levels.shape
    counts = np.bincount((levels + 256 * np.arange(n_rows)[:, None]).ravel(), minlength=256 * n_rows)
    counts = counts.reshape(n_rows, 256)
    near = counts.copy()
    near[:, 1:] += counts[:, :-1]
    near[:, :-1] += counts[:, 1:]
    mode = near.argmax(axis=1)
    return mode, near[np.arange(n_rows), mode] / width


def find_databar_top(image: np.ndarray) -> int | None:
    """Row where the data bar starts, or None when the image has none.

    Parameters
    ----------
    image : ndarray, shape (rows, columns)
        Grey micrograph, any numeric dtype.

    Returns
    -------
    int or None
        Index of the bar's first row: ``image[:row]`` is the micrograph.

    Notes
    -----
    Among the bottom 35 % of the rows, a candidate top edge ``y`` must satisfy: row ``y`` is a bar row (at least half
    of its pixels within one grey level of its mode), row ``y - 1`` is not, at least 80 % of rows ``y ..`` are bar
    rows, the mean absolute difference between rows ``y - 1`` and ``y`` is at least twice the median over the image,
    and the rows below hold text (pixels far from the bar's background level). The strongest such edge wins.
    """
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D grey image; got shape {img.shape}")
    n_rows = img.shape[0]
    first = int(n_rows * (1 - MAX_BAR_FRACTION))
    if n_rows - first < MIN_BAR_ROWS + 1 or float(img.max()) == float(img.min()):
        return None
    levels = _quantise(img)
    mode, uniform = _row_modes(levels[first - 1 :])
    bar_row = uniform >= MIN_UNIFORM_SHARE
    # Share of bar rows from each row to the bottom.
    share_below = np.cumsum(bar_row[::-1])[::-1] / np.arange(bar_row.size, 0, -1)
    row_diff = np.abs(np.diff(img.astype(np.float32), axis=0)).mean(axis=1)  # row_diff[r - 1]: rows r - 1, r
    typical = float(np.median(row_diff)) + 1e-6

    best: tuple[float, int] | None = None
    for k in range(1, bar_row.size - MIN_BAR_ROWS + 1):
        if not bar_row[k] or bar_row[k - 1] or share_below[k] < MIN_BAR_ROW_SHARE:
            continue
        y = first - 1 + k
        ratio = float(row_diff[y - 1]) / typical
        if ratio < MIN_EDGE_RATIO:
            continue
        background = int(np.median(mode[k:][bar_row[k:]]))
        text_share = float(np.mean(np.abs(levels[y:] - background) > 64))
        if text_share < MIN_TEXT_SHARE:
            continue
        if best is None or ratio > best[0]:
            best = (ratio, y)
    return None if best is None else best[1]


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
