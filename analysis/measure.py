"""Coating measurements from a class mask: Fe2Al5 thickness, FeAl, porosity, the pore line, precipitates, cracks.

The mask holds the class ids of :mod:`semcoat.classes`; rows are depth (coating surface at the top) and columns run
along the surface. Every length is returned in micrometres (pixel count x ``pixel_size_um``), every fraction in percent.

Definitions (the analysis issue is the reference; this module is its executable form). For each column ``c``:

- ``s(c)``: the local surface, the first row whose class is not background;
- ``b(c)``: the band's bottom, the first row at or below ``s(c)`` whose class is FeAl or substrate;

  both skipping stray pixels of a predicted mask (a speck of coating in the resin, an island of FeAl or steel inside
  the band), which a step fit of each edge tells apart (:mod:`analysis.frame_columns`; a clean mask's edges are the
  first rows as said);
- the column shows the surface when resin lies above ``s(c)`` (``s(c) > 0``), and the band's bottom when ``b(c)``
  exists;
- it is *whole* when it shows both and ``b(c) > s(c)`` (a column whose first coating row is already FeAl or
  substrate has no Fe2Al5 band); its Fe2Al5 band is rows ``s(c) .. b(c) - 1``, pores, precipitates, cracks and any
  resin inclusions included; its thickness is ``(b(c) - s(c))`` pixels.

A frame that shows the whole coating (whole columns are at least half of the columns with some Fe2Al5) is measured
on its whole columns. A frame may also cut the coating (the substrate not reached, or the surface above the top
edge): it is measured on every column that shows some band (down to its last non-background row where ``b(c)`` is
missing), and a measurement that needs an edge the frame does not show is None (see :func:`measure`).

Lengths are perpendicular to the coating: the cross-section may be turned by a small tilt in the frame, estimated from
the surface and bottom lines (:func:`analysis.frame_columns.tilt_rad`), and every length (and the crack density's
width) is multiplied by cos(tilt).

Only numpy is imported, so the renderer can call :func:`measure` to write ground truth without scipy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from analysis.frame_columns import FrameColumns, frame_columns, stripe_rows, stripes, tilt_rad
from semcoat.classes import BACKGROUND, CLASS_IDS, CLASS_NAMES, CRACK, FEAL, PORE, PRECIPITATE, SUBSTRATE
from semcoat.errors import InvalidArgument, SemcoatError
from semcoat.measurements import MEASUREMENT_NAMES, missing_names

# A pore line must span at least this share of the measured columns ("most of the width"), where the gaps between
# the pores of the line are part of its span ...
LINE_MIN_SPAN = 0.5
# ... a gap counting as "between pores of the line" when it is at most this many times the median width of the pores
# at the line's depth (pores of a line sit a pore or two apart; the ends of a partial line are much farther);
LINE_GAP_BRIDGE_FACTOR = 2.0
# ... and the share of columns holding a pore at the line's depth must be at least this many times the typical share
# at other depths of the band, so that heavy but scattered porosity is not taken for a line.
LINE_MIN_CONTRAST = 2.0
# Half height of the depth window, as a share of the median band thickness (at least LINE_MIN_HALF_WINDOW_PX):
# pores of one line sit at slightly different depths below a rough surface.
LINE_HALF_WINDOW_FRACTION = 0.015
LINE_MIN_HALF_WINDOW_PX = 2
# The band of depths that makes up the line: contiguous depths around the peak whose single-row coverage stays above
# background + this share of (peak - background).
LINE_EXTENT_LEVEL = 0.2
# FeAl is present when it starts right below the Fe2Al5 band in at least this share of the measured columns.
FEAL_MIN_COLUMN_SHARE = 0.5
# A frame shows the whole coating when at least this share of the columns with some Fe2Al5 show both edges of the
# band; an edge (or a FeAl run) is taken as seen when at least this share of the columns that could show it do.
FRAME_MIN_COLUMN_SHARE = 0.5
# A predicted mask shows a coating when at least this share of its columns is layered: they read from top to bottom as
# resin, an Fe2Al5 band, then FeAl or substrate down to the bottom edge, or as a part of that order that the frame cuts
# (resin then the band down to the bottom edge; the band from the top edge down to FeAl or substrate, or down to the
# bottom edge) ...
LAYERED_MIN_COLUMN_SHARE = 0.6
# ... and at most this share of the pixels below the surface of the banded columns is out of that order
# (background below the surface, anything but FeAl and substrate below the band). Renders of both presets: >= 99 %
# layered, <= 6 % out of order; noise, blank frames and photographs of other things: <= 51 % layered or >= 28 %.
LAYER_ORDER_MAX_SHARE = 0.25
# Pores and cracks make at most this share of the band of those columns: more is not a coating's band (preset renders,
# whole or cut at 0.05-0.13 um/px: truth <= 11 %, the classical baseline <= 19 %; pixel noise and blurred noise
# through the baseline: >= 25 %, mostly dark specks; some blurred noise reads as resin, coating, substrate).
MAX_VOID_SHARE = 0.25
# The Fe2Al5 band of a frame that shows the whole stack is at least this many pixels thick in the median whole column:
# a sliver between resin and a bright phase is no band to measure, not to 10 % (the classical baseline, taking the
# brighter part of a close-up's Fe2Al5 for steel, leaves 2-6 px under the surface; preset renders at 0.35 um/px have
# >= 57 px).
MIN_BAND_PX = 10
# A frame that does not show the substrate in those columns (a close-up of the surface, or of the band alone) shows
# only two classes in order, which segmented noise and pictures of other things show as well: its band must also hold
# what a coating holds. Pores, precipitates and cracks together make at most this share of it (the baseline on whole
# preset renders: <= 33 %, most of it precipitates; noise, checkerboards, photographs: 36-90 %) ...
CLOSE_UP_MAX_INCLUSION_SHARE = 0.35
# ... pores or background run along at most this share of the bottom edge (more is resin below the coating: an
# upside-down image; upside-down renders through the classical baseline: >= 57 %, most 95-100 %) ...
CLOSE_UP_MAX_DARK_BOTTOM_SHARE = 0.5
# ... and a frame that shows neither the surface nor the band's bottom in most of those columns holds at least this
# share of inclusions: plain Fe2Al5 from edge to edge cannot be told from a blank frame.
CLOSE_UP_MIN_INCLUSION_SHARE = 0.001
# Accepted pixel sizes, µm per pixel: beyond the spec's range (0.001 to 100) on the small side, where electron
# microscopes go; anything outside is a unit mistake or damaged metadata (a PixelWidth of a kilometre), never a scale.
MIN_PIXEL_SIZE_UM = 1e-5
MAX_PIXEL_SIZE_UM = 100.0
# A crack region counts as a crack when it reaches at least this far in depth (µm, and at least CRACK_MIN_EXTENT_PX):
# a few stray crack pixels of a predicted mask are not a crack. Drawn cracks reach 20 % of the layer or more.
CRACK_MIN_EXTENT_UM = 1.0
CRACK_MIN_EXTENT_PX = 3
# Number of set bits of each byte value (counts of packed flags).
_BITS_SET = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


class MaskError(SemcoatError):
    """A mask that cannot be measured (empty, not 2-D, wrong dtype, unknown class ids, no coating).

    Parameters
    ----------
    message : str
        What is wrong, with the offending value and what is accepted.
    source : str, optional
        The file the mask came from; it prefixes the message so a user knows which file to fix.
    """

    def __init__(self, message: str, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class NoCoatingError(MaskError):
    """A valid mask in which no column can be measured (all background, or no Fe2Al5 band with a bottom)."""


@dataclass(frozen=True)
class Measurements:
    """Per-image coating measurements: one field per row of :data:`semcoat.measurements.MEASUREMENTS`, in its order.

    The table gives each field's unit (lengths in µm, fractions in %), kind, label and definition; a test checks
    that these fields and their types match it.
    """

    fe2al5_thickness_um: float | None
    fe2al5_thickness_std_um: float | None
    fe2al5_top_thickness_um: float | None
    fe2al5_bottom_thickness_um: float | None
    feal_present: bool | None
    feal_thickness_um: float | None
    pore_fraction_pct: float
    pore_line_present: bool | None
    pore_line_depth_um: float | None
    precipitate_fraction_pct: float
    crack_density_per_mm: float

    def as_dict(self) -> dict[str, Any]:
        """The measurements as a plain dict in table order (JSON-ready: floats, bools and None)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Measurements:
        """Build from a dict holding at least every measurement name (extra keys are ignored).

        Raises
        ------
        InvalidArgument
            Naming the measurements ``values`` lacks.
        """
        missing = missing_names(values)
        if missing:
            raise InvalidArgument(
                f"measurements lack {', '.join(missing)}; expected keys: {', '.join(MEASUREMENT_NAMES)}",
                argument="values",
            )
        return cls(**{n: values[n] for n in MEASUREMENT_NAMES})


@dataclass(frozen=True)
class ColumnProfile:
    """Per-column geometry of the Fe2Al5 band (row indices; -1 where a column has none).

    Attributes
    ----------
    surface_row : s(c), the coating's first row (see :class:`analysis.frame_columns.FrameColumns`), -1 in columns
        without coating.
    band_bottom_row : b(c), the first row of the FeAl or substrate below the band, -1 where there is none.
    measured : columns that have an Fe2Al5 band with a bottom.
    pixel_size_um : edge length of one pixel, µm.
    """

    surface_row: np.ndarray
    band_bottom_row: np.ndarray
    measured: np.ndarray
    pixel_size_um: float

    @property
    def thickness_um(self) -> np.ndarray:
        """Fe2Al5 band thickness per column, µm (NaN in columns that are not measured)."""
        t = (self.band_bottom_row - self.surface_row).astype(np.float64) * self.pixel_size_um
        t[~self.measured] = np.nan
        return t


def validate_mask(mask: np.ndarray, source: str | None = None) -> np.ndarray:
    """Check a class mask and return it as uint8 (the input itself when it already is; never modified).

    Parameters
    ----------
    mask : ndarray, shape (rows, columns)
        Integer class ids.
    source : str, optional
        File name used in error messages.

    Raises
    ------
    MaskError
        When the mask is empty, not 2-D, not of an integer dtype or holds ids outside the class table.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise MaskError(f"mask must be 2-D (rows, columns) of class ids; got shape {m.shape}", source)
    if m.size == 0:
        raise MaskError(f"mask is empty (shape {m.shape})", source)
    if m.dtype == np.bool_ or m.dtype.kind not in "ui":
        raise MaskError(f"mask dtype must be an integer type holding class ids; got {m.dtype}", source)
    low, high = (0, int(m.max())) if m.dtype.kind == "u" else (int(m.min()), int(m.max()))
    if low < 0 or high > max(CLASS_IDS):
        unknown = [int(v) for v in np.unique(m) if int(v) not in CLASS_IDS]
        accepted = ", ".join(f"{i} ({CLASS_NAMES[i]})" for i in sorted(CLASS_IDS))
        shown = ", ".join(map(str, unknown[:10])) + (" ..." if len(unknown) > 10 else "")
        raise MaskError(f"mask holds unknown class ids {shown}; accepted ids: {accepted}", source)
    return m if m.dtype == np.uint8 else m.astype(np.uint8)


def check_pixel_size_um(pixel_size_um: float, argument: str = "pixel_size_um") -> float:
    """The pixel size (µm per pixel) as a float, when it is a positive finite number from
    :data:`MIN_PIXEL_SIZE_UM` (1e-5) to :data:`MAX_PIXEL_SIZE_UM` (100).

    The one pixel-size check of the analysis: :func:`measure`, every command option and the SEM metadata reader call
    it. The range also keeps every measurement finite (lengths are pixel counts x the pixel size).

    Raises
    ------
    InvalidArgument
        Otherwise, about ``argument`` (the caller's name for the value, which adapters turn into an option name).
    """
    try:
        p = float(pixel_size_um)
    except (TypeError, ValueError, OverflowError):
        p = float("nan")
    if not MIN_PIXEL_SIZE_UM <= p <= MAX_PIXEL_SIZE_UM:
        raise InvalidArgument(
            f"the pixel size must be a positive finite number of µm per pixel from {MIN_PIXEL_SIZE_UM:g} to "
            f"{MAX_PIXEL_SIZE_UM:g} (e.g. 0.05); got {pixel_size_um!r:.40}",
            argument=argument,
        )
    return p


def _profile(m: np.ndarray, pixel_size_um: float) -> ColumnProfile:
    cols = frame_columns(m)
    return ColumnProfile(
        surface_row=cols.surface_row,
        band_bottom_row=cols.band_bottom_row,
        measured=cols.bottom_seen,
        pixel_size_um=pixel_size_um,
    )


def column_profile(mask: np.ndarray, pixel_size_um: float, source: str | None = None) -> ColumnProfile:
    """Per-column surface row, band bottom row and measured flag of a class mask (for thickness profiles).

    Parameters
    ----------
    mask : ndarray, shape (rows, columns)
        Class ids; not modified.
    pixel_size_um : float
        Edge length of one pixel, µm.
    source : str, optional
        File name used in error messages.
    """
    return _profile(validate_mask(mask, source), check_pixel_size_um(pixel_size_um))


def measure(mask: np.ndarray, pixel_size_um: float, source: str | None = None) -> Measurements:
    """Measure the coating in a class mask.

    Parameters
    ----------
    mask : ndarray, shape (rows, columns)
        Class ids (:mod:`semcoat.classes`), surface at the top. Any integer dtype; never modified.
    pixel_size_um : float
        Edge length of one (square) pixel, µm.
    source : str, optional
        The file the mask came from, named in error messages.

    Returns
    -------
    Measurements
        Lengths in µm (perpendicular to the coating), fractions in %. See the module docstring for s(c), b(c), the
        measured columns and the tilt.

    Raises
    ------
    MaskError
        Empty, non-2-D, non-integer masks and unknown class ids.
    NoCoatingError
        A valid mask without a column holding some Fe2Al5 band.
    InvalidArgument
        A pixel size that is not a positive finite number.

    Notes
    -----
    Measured columns: the whole columns when the frame shows the whole coating (at least half of the columns with
    some Fe2Al5 are whole), else every column with some Fe2Al5 band, its band running from ``s(c)`` to ``b(c)`` or,
    where ``b(c)`` is missing, down to the column's last non-background row.

    Thickness: mean and population standard deviation of ``b(c) - s(c)`` over measured columns, x cos(tilt); None
    when the frame cuts the coating.

    FeAl: present when class FeAl is found at ``b(c)`` in at least half of the measured columns (of a cut frame: of
    its columns that show the band's bottom, None when fewer than half do); its thickness is the mean length of the
    FeAl run that starts at ``b(c)`` over those columns, x cos(tilt), None when more than half of the runs reach the
    column's last non-background row (the frame's bottom edge or a data bar cuts them).

    Fractions: pore (precipitate) pixels over all pixels of the measured columns' bands, x 100.

    Pore line criterion. Every pore pixel of a band gets a depth ``d = row - s(c)`` below its column's surface. Let
    ``h = max(2 px, 1.5 % of the median band thickness)`` and, for each depth ``d``, ``coverage(d)`` = the share of
    measured columns holding at least one pore pixel at a depth in ``[d - h, d + h]``. At the peak depth ``d*``:

    - the pores at that depth span at least half of the measured columns: the columns holding a pore in the window,
      with every gap between two of them that is at most twice the median pore width (the median run of covered
      columns) counted as spanned too. Pores of a line sit a pore or two apart, so a line with gaps between its pores
      spans the width it runs along; a line over less than half the width is not a line;
    - ``coverage(d*) >= 2 x`` the median coverage over depths ``0 .. median thickness``: the band stands out from
      the rest of the coating, so scattered or uniformly heavy porosity is never a line.

    Scattered pores of the same total area spread over the whole thickness, so a window of height ``2h + 1`` holds only
    a small share of them and their coverage stays low. When both hold, the line's extent is the run of depths around
    the peak whose single-depth coverage stays above background + 20 % of (peak - background), and its depth is the
    mean depth of the pore pixels in that run, measured to pixel centres (``d + 0.5``, so a pore occupying depths
    ``a .. a+k-1`` is centred at ``a + k/2``), x cos(tilt). ``fe2al5_top_thickness_um`` is that depth and
    ``fe2al5_bottom_thickness_um`` the mean thickness minus it, so top + bottom = thickness. The line is looked for
    in the measured columns that show the surface; with fewer than half of them showing it, presence and depth are
    None, and a cut frame without a line found says None (the line may lie beyond its edge), not False.

    Crack density: the crack pixels of the measured columns' bands are grouped into 8-connected regions; a region is
    a crack when its rows span at least ``max(3 px, 1 µm)`` in depth. The density is the number of cracks over the
    length of surface the measured columns span (measured columns x pixel size / cos(tilt)), per mm.
    """
    m = validate_mask(mask, source)
    p = check_pixel_size_um(pixel_size_um)
    cols = frame_columns(m)
    n_banded = int(np.count_nonzero(cols.banded))
    if n_banded == 0:
        if not np.any(cols.surface_row >= 0):
            raise NoCoatingError("mask holds only background (class 0): there is no coating to measure", source)
        raise NoCoatingError(
            "no column has an Fe2Al5 band (the first coating row of every column is FeAl or substrate); nothing to "
            "measure",
            source,
        )
    cos_tilt = float(np.cos(tilt_rad(cols)))
    s = cols.surface_row
    whole = cols.whole
    whole_frame = np.count_nonzero(whole) >= FRAME_MIN_COLUMN_SHARE * n_banded
    # A frame that shows the whole band is measured on the columns that show both its edges, as it always was; a
    # frame that cuts the coating on every column that shows some of the band (fractions of what is seen).
    measured = whole if whole_frame else cols.banded
    n_measured = int(np.count_nonzero(measured))
    end = np.where(measured, cols.band_end_row, 0)
    band_px = (end - s)[measured]
    band_pixels = int(band_px.sum())

    pore_rows, pore_cols, n_precipitate, crack_rows, crack_cols = _band_inclusions(m, s, end, measured)
    n_cracks = _crack_count(crack_rows, crack_cols, m.shape[1], max(CRACK_MIN_EXTENT_PX, CRACK_MIN_EXTENT_UM / p))

    thickness_px = float(band_px.mean()) * cos_tilt if whole_frame else None
    line_present, line_depth_px = _pore_line(cols, measured, whole_frame, pore_rows, pore_cols, cos_tilt)
    feal_present, feal_px = _feal(m, cols, measured if whole_frame else cols.bottom_seen, n_banded, cos_tilt)

    def um(px: float | None) -> float | None:
        return None if px is None else px * p

    result = Measurements(
        fe2al5_thickness_um=um(thickness_px),
        fe2al5_thickness_std_um=float(band_px.std()) * cos_tilt * p if whole_frame else None,
        fe2al5_top_thickness_um=um(line_depth_px),
        fe2al5_bottom_thickness_um=(
            None if line_depth_px is None or thickness_px is None else (thickness_px - line_depth_px) * p
        ),
        feal_present=feal_present,
        feal_thickness_um=um(feal_px),
        pore_fraction_pct=100.0 * pore_rows.size / band_pixels,
        pore_line_present=line_present,
        pore_line_depth_um=um(line_depth_px),
        precipitate_fraction_pct=100.0 * n_precipitate / band_pixels,
        # Cracks per mm along the surface: the measured width is its projection, cos(tilt) x the surface's length.
        crack_density_per_mm=1000.0 * n_cracks * cos_tilt / (n_measured * p),
    )
    # Unreachable with an accepted pixel size; a table must never hold inf or NaN, whatever the caller did.
    bad = [k for k, v in result.as_dict().items() if isinstance(v, float) and not np.isfinite(v)]
    if bad:
        raise MaskError(f"{', '.join(bad)} overflow at {p} µm per pixel; nothing is reported", source)
    return result


def _band_inclusions(
    m: np.ndarray, s: np.ndarray, end: np.ndarray, measured: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray]:
    """(pore rows, pore columns, precipitate count, crack rows, crack columns) inside the bands s(c) .. end(c) - 1 of
    the measured columns of the mask ``m``; pixels in row order, columns ascending within a row."""
    columns = np.flatnonzero(measured)
    # Only the rows and columns spanned by measured bands matter: most of the frame on thin coatings.
    r0, r1 = int(s[columns].min()), int(end[columns].max())
    c0, c1 = int(columns[0]), int(columns[-1]) + 1
    # A pixel at row r of column c is in a measured band when lo(c) <= r < hi(c).
    lo = np.where(measured, s, r1)[c0:c1].astype(np.int32)
    hi = np.where(measured, end, 0)[c0:c1].astype(np.int32)
    width, rows = c1 - c0, stripe_rows(c1 - c0)
    pores, cracks, n_precipitate = [], [], 0
    # Pores, precipitates and cracks (the ids from PORE up) are a few % of the pixels of a band: their pixels inside
    # the bands are listed stripe by stripe, without a mask of the bands over the whole frame.
    for r in stripes(r0, r1, width):
        block = m[r : min(r1, r + rows), c0:c1]
        row_index = np.arange(r, r + block.shape[0], dtype=np.int32)[:, None]
        flags = block >= PORE
        flags &= row_index >= lo
        flags &= row_index < hi
        at = np.flatnonzero(flags).astype(np.int32)  # a stripe holds < 2**31 pixels
        kind = block.reshape(-1)[at]  # a view where the band's columns are the whole width
        row, col = np.divmod(at, np.int32(width))
        row += np.int32(r)
        pore = kind == PORE
        n_precipitate += int(np.count_nonzero(kind == PRECIPITATE))
        pores.append((row[pore], col[pore]))
        crack = kind == CRACK
        if crack.any():
            cracks.append((row[crack], col[crack]))
    pore_rows, pore_cols = _joined(pores)
    crack_rows, crack_cols = _joined(cracks)
    return pore_rows, pore_cols + c0, n_precipitate, crack_rows, crack_cols + c0


def _joined(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The (rows, columns) pairs of ``parts`` joined into one pair of arrays."""
    if not parts:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32)
    return np.concatenate([r for r, _ in parts]), np.concatenate([c for _, c in parts])


def _pore_line(
    cols: FrameColumns, measured: np.ndarray, whole_frame: bool, pore_rows: np.ndarray, pore_cols: np.ndarray,
    cos_tilt: float,
) -> tuple[bool | None, float | None]:
    """(present, depth below the surface in px along the normal) of the pore line, None where the frame cannot tell.

    The line is looked for among the measured columns that show the surface (depths are counted from it), when they
    are at least :data:`FRAME_MIN_COLUMN_SHARE` of the measured columns; without a line found, a frame that cuts the
    band cannot say there is none (it may lie beyond the edge).
    """
    seen = measured & cols.surface_seen
    n_measured = int(np.count_nonzero(measured))
    if np.count_nonzero(seen) < FRAME_MIN_COLUMN_SHARE * n_measured:
        return None, None
    on_seen = seen[pore_cols]
    s = cols.surface_row.astype(pore_rows.dtype)
    depth_px = pore_rows[on_seen] - s[pore_cols[on_seen]]
    visible_px = (np.where(seen, cols.band_end_row, 0) - s)[seen]
    depth = _pore_line_depth_px(depth_px, pore_cols[on_seen], seen, visible_px)
    if depth is None:
        return (False if whole_frame else None), None
    return True, depth * cos_tilt


def _feal(
    m: np.ndarray, cols: FrameColumns, seen: np.ndarray, n_banded: int, cos_tilt: float
) -> tuple[bool | None, float | None]:
    """(present, thickness in px along the normal) of FeAl below the band of the mask ``m``, None where the frame
    cannot tell.

    ``seen``: the columns whose band's bottom is looked at. FeAl is present when it starts at b(c) in at least half of
    them; its thickness is the mean run over those columns, None when most runs reach the column's last
    non-background row (the bottom edge or a data bar cuts them). Without the bottom seen in
    :data:`FRAME_MIN_COLUMN_SHARE` of the banded columns, both are None.
    """
    n_seen = int(np.count_nonzero(seen))
    if n_seen == 0 or n_seen < FRAME_MIN_COLUMN_SHARE * n_banded:
        return None, None
    b = cols.band_bottom_row
    feal_columns = seen & (m[np.maximum(b, 0), np.arange(m.shape[1])] == FEAL)
    n_feal = int(np.count_nonzero(feal_columns))
    if n_feal < FEAL_MIN_COLUMN_SHARE * n_seen:
        return False, 0.0
    run, cut = _feal_runs_px(m, b, cols.last_solid_row, feal_columns)
    if np.count_nonzero(~cut) < FRAME_MIN_COLUMN_SHARE * n_feal:
        return True, None
    return True, float(run[~cut].mean()) * cos_tilt


def check_layered(mask: np.ndarray, source: str | None = None) -> None:
    """Refuse a predicted mask that shows no coating cross-section, or no part of one: its classes are not laid out as
    resin, coating, substrate from top to bottom, or not as a coating holds them.

    A column is *layered* when it has an Fe2Al5 band (see :class:`analysis.frame_columns.FrameColumns`) and reads as
    the stack or a part of it that the frame cuts: its band ends on FeAl or substrate and its last row is FeAl or
    substrate, or its band runs down to the bottom edge (the substrate below the frame); its top is resin, or the band
    from the top edge (the surface above the frame). A mask shows a coating when at least
    :data:`LAYERED_MIN_COLUMN_SHARE` (60 %) of the columns are layered, at most :data:`LAYER_ORDER_MAX_SHARE` (25 %)
    of the pixels below the surface of the banded columns are out of order (background below the surface, or a class
    other than FeAl and substrate below the band), and pores and cracks make at most :data:`MAX_VOID_SHARE` (25 %) of
    the layered columns' band. A segmenter run on noise, a blank frame or a photograph of something else finds
    scattered classes that :func:`measure` would still turn into numbers.

    Where the columns show the substrate (at least 60 % of them end on it), the order is evidence enough, when the
    band between is at least :data:`MIN_BAND_PX` (10) pixels thick in the median column that shows both its edges (a
    thinner sliver is a segmenter's misreading of a close-up, not a band).

    A close-up that does not reach the substrate shows only resin over coating, or coating alone, which noise can
    show too, so its band must also look like a coating's: pores, precipitates and cracks at most
    :data:`CLOSE_UP_MAX_INCLUSION_SHARE` (35 %) of it, pores or resin along at most
    :data:`CLOSE_UP_MAX_DARK_BOTTOM_SHARE` (50 %) of the bottom edge (resin below the coating: upside down), and,
    without the surface or the band's bottom in most of its columns, some inclusions at all
    (:data:`CLOSE_UP_MIN_INCLUSION_SHARE`): plain Fe2Al5 from edge to edge is what a model makes of a blank frame.
    Known limit: an upside-down close-up with no resin in the frame reads as an upright one (the classes cannot tell;
    the classical baseline takes steel above the coating for coating).

    Parameters
    ----------
    mask : ndarray, shape (rows, columns)
        Class ids; not modified.
    source : str, optional
        The file the mask came from, named in the error.

    Raises
    ------
    NoCoatingError
        Saying which part of the criterion failed, with the shares found; also every error of :func:`validate_mask`.
    """
    m = validate_mask(mask, source)
    cols = frame_columns(m)
    rows = np.arange(m.shape[0])[:, None]
    bottom_class = (m == FEAL) | (m == SUBSTRATE)
    below_band = (rows >= cols.band_bottom_row[None, :]) & cols.bottom_seen[None, :]
    misplaced = (m == BACKGROUND) | (~bottom_class & below_band)

    def disorder(columns: np.ndarray) -> float:
        below_surface = (rows >= cols.surface_row[None, :]) & columns[None, :]
        return np.count_nonzero(misplaced & below_surface) / max(1, int(np.count_nonzero(below_surface)))

    def refuse(problem: str) -> NoCoatingError:
        return NoCoatingError(
            f"no coating found: the predicted classes are {problem}; the image does not look like a coating "
            "cross-section, so nothing is measured",
            source,
        )

    # The whole stack: the band ends on FeAl or substrate, which reaches the bottom edge.
    layered = cols.bottom_seen & bottom_class[-1]
    whole = np.mean(layered) >= LAYERED_MIN_COLUMN_SHARE and disorder(cols.bottom_seen) <= LAYER_ORDER_MAX_SHARE
    if not whole:
        # Or a part of it: columns whose band runs down to the bottom edge count too.
        layered = cols.banded & (m[-1] != BACKGROUND) & (bottom_class[-1] | ~cols.bottom_seen)
        share, out_of_order = float(np.mean(layered)), disorder(cols.banded)
        if share < LAYERED_MIN_COLUMN_SHARE or out_of_order > LAYER_ORDER_MAX_SHARE:
            raise refuse(
                f"not laid out as resin, coating, substrate from top to bottom ({share:.0%} of the columns read as "
                f"resin, an Fe2Al5 band and FeAl or substrate reaching the bottom edge, or as a part of that order cut "
                f"by the frame's edges (at least {LAYERED_MIN_COLUMN_SHARE:.0%} needed), and {out_of_order:.0%} of "
                f"the pixels below the surface are out of that order (at most {LAYER_ORDER_MAX_SHARE:.0%}))"
            )
    layout = "laid out as resin, coating, substrate" if whole else (
        "laid out as a close-up that does not reach the substrate")
    rows_in_band = (rows >= cols.surface_row[None, :]) & (rows < cols.band_end_row[None, :]) & layered[None, :]
    n_band = max(1, int(np.count_nonzero(rows_in_band)))
    voids = np.count_nonzero(((m == PORE) | (m == CRACK)) & rows_in_band) / n_band
    if voids > MAX_VOID_SHARE:
        raise refuse(
            f"{layout}, but pores and cracks make {voids:.0%} of the Fe2Al5 band (at most {MAX_VOID_SHARE:.0%} in a "
            "coating; segmented noise makes more)"
        )
    band_px = (cols.band_bottom_row - cols.surface_row)[cols.whole & layered]
    if whole and band_px.size and float(np.median(band_px)) < MIN_BAND_PX:
        raise refuse(
            f"{layout}, but the Fe2Al5 band is {float(np.median(band_px)):.1f} px thick in the median column (at "
            f"least {MIN_BAND_PX} px): a sliver between resin and a bright phase, not a band to measure (a grey-level "
            "segmenter reads the brighter Fe2Al5 of a close-up as steel)"
        )
    if not whole:
        inclusions = voids + np.count_nonzero((m == PRECIPITATE) & rows_in_band) / n_band
        problem = _close_up_problem(m, cols, layered, inclusions)
        if problem is not None:
            raise refuse(f"{layout}, but {problem}")


def _close_up_problem(m: np.ndarray, cols: FrameColumns, layered: np.ndarray, inclusions: float) -> str | None:
    """What, in a frame that does not show the substrate, does not look like a coating's band (see
    :func:`check_layered`): ``layered`` flags its layered columns, ``inclusions`` is the share of their band that is
    pores, precipitates or cracks. None when nothing."""
    if inclusions > CLOSE_UP_MAX_INCLUSION_SHARE:
        return (
            f"pores, precipitates and cracks make {inclusions:.0%} of the Fe2Al5 band (at most "
            f"{CLOSE_UP_MAX_INCLUSION_SHARE:.0%} in a coating)"
        )
    dark_bottom = float(np.mean((m[-1] == BACKGROUND) | (m[-1] == PORE)))
    if dark_bottom > CLOSE_UP_MAX_DARK_BOTTOM_SHARE:
        return (
            f"pores or resin run along {dark_bottom:.0%} of the bottom edge (at most "
            f"{CLOSE_UP_MAX_DARK_BOTTOM_SHARE:.0%}): resin below the coating, is the image upside down?"
        )
    edges = np.count_nonzero(layered & (cols.surface_seen | cols.bottom_seen)) / max(1, int(np.count_nonzero(layered)))
    if edges < FRAME_MIN_COLUMN_SHARE and inclusions < CLOSE_UP_MIN_INCLUSION_SHARE:
        return (
            "plain Fe2Al5 from edge to edge, with no surface, interface, pore or precipitate: nothing tells it from a "
            "blank frame"
        )
    return None


def _feal_runs_px(
    m: np.ndarray, b: np.ndarray, last_solid: np.ndarray, feal_columns: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Length, in pixels, of the FeAl run starting at b(c) in each column flagged in ``feal_columns`` of the mask
    ``m``, and whether the run is cut: it reaches the column's last non-background row (the bottom edge, or the top of
    a data bar)."""
    cols = np.flatnonzero(feal_columns)
    start = b[cols]
    height = m.shape[0]
    # First row after b(c) that is not FeAl; a run that reaches the last row ends there (rows past it count as not
    # FeAl). Each column's rows from b(c) + 1 on are read in blocks of doubling height, while its run goes on: FeAl is
    # a thin layer, so one block of 16 rows nearly always does.
    end = np.full(cols.size, height)
    running = np.arange(cols.size)
    offset, step = 1, 16
    while running.size and offset < height:
        rows = start[running] + np.arange(offset, offset + step)[:, None]
        leaves = (rows >= height) | (m[np.minimum(rows, height - 1), cols[running]] != FEAL)
        ended = np.flatnonzero(leaves.any(axis=0))
        end[running[ended]] = rows[leaves[:, ended].argmax(axis=0), ended]
        running = np.delete(running, ended)
        offset, step = offset + step, 2 * step
    return (end - start).astype(np.float64), end > last_solid[cols]


def _span_share(hit: np.ndarray, measured: np.ndarray) -> float:
    """Share of the measured columns spanned by the runs of ``hit`` once the gaps between runs that are at most
    LINE_GAP_BRIDGE_FACTOR x the median run length are counted as spanned."""
    edges = np.diff(np.concatenate([[0], hit.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # runs [start, end)
    if starts.size == 0:
        return 0.0
    max_gap = LINE_GAP_BRIDGE_FACTOR * float(np.median(ends - starts))
    bridge = (starts[1:] - ends[:-1]) <= max_gap
    fill = np.zeros(hit.size + 1, dtype=np.int32)
    np.add.at(fill, ends[:-1][bridge], 1)
    np.add.at(fill, starts[1:][bridge], -1)
    spanned = hit | (np.cumsum(fill)[:-1] > 0)
    return float(np.count_nonzero(spanned & measured)) / float(np.count_nonzero(measured))


def _pore_line_depth_px(
    depth_px: np.ndarray, cols: np.ndarray, measured: np.ndarray, thickness_px: np.ndarray
) -> float | None:
    """Depth of the pore line's centre below the surface in pixels, or None when the pores form no line.

    ``depth_px`` and ``cols`` locate every pore pixel of the measured bands, ``measured`` flags the measured
    columns; see :func:`measure` for the criterion.
    """
    if depth_px.size == 0:
        return None
    width, n_measured = measured.size, int(np.count_nonzero(measured))
    n_depths = int(depth_px.max()) + 1
    median_thickness = float(np.median(thickness_px))
    half = max(LINE_MIN_HALF_WINDOW_PX, int(round(LINE_HALF_WINDOW_FRACTION * median_thickness)))

    occupied = np.zeros((n_depths + 2 * half + 1, width), dtype=np.bool_)
    occupied.reshape(-1)[np.add(depth_px, half + 1, dtype=np.intp) * width + cols] = True
    # Eight columns to a byte: the window's passes and the counts read an eighth of the memory.
    occupied_bits = np.packbits(occupied, axis=1)
    del occupied
    # Columns with a pore at each single depth, and within [d - h, d + h].
    single = _bit_counts(occupied_bits[half + 1 : half + 1 + n_depths]) / n_measured
    in_window = _window_any(occupied_bits[1:], 2 * half + 1)  # row d: depths d - h .. d + h
    coverage = _bit_counts(in_window) / n_measured

    peak = int(np.argmax(coverage))
    # Typical coverage inside the band: depths beyond the deepest pore have none.
    n_inside = max(1, int(median_thickness))
    background = float(np.median(_head(coverage, n_inside)))
    if coverage[peak] < LINE_MIN_CONTRAST * background:
        return None
    if _span_share(np.unpackbits(in_window[peak], count=width).view(np.bool_), measured) < LINE_MIN_SPAN:
        return None

    # Extent of the line: contiguous depths around the strongest single depth near the peak.
    lo_w, hi_w = max(0, peak - half), min(n_depths, peak + half + 1)
    centre = lo_w + int(np.argmax(single[lo_w:hi_w]))
    single_background = float(np.median(_head(single, n_inside)))
    level = single_background + LINE_EXTENT_LEVEL * (single[centre] - single_background)
    below = np.flatnonzero(single[:centre] <= level)
    above = np.flatnonzero(single[centre:] <= level)
    lo = int(below[-1]) + 1 if below.size else 0
    hi = centre + int(above[0]) if above.size else n_depths
    selected = depth_px[(depth_px >= lo) & (depth_px < hi)]
    return float(selected.mean()) + 0.5


def _crack_count(rows: np.ndarray, cols: np.ndarray, width: int, min_extent_px: float) -> int:
    """Number of 8-connected regions of the pixels (``rows``, ``cols``) of a frame ``width`` columns wide whose rows
    span at least ``min_extent_px`` (first to last row + 1).

    Union-find over the pixels, numpy only (the renderer measures without scipy): each pixel is joined to its
    neighbours right, below-left, below and below-right, found by binary search in the sorted pixel keys; roots are
    hooked to the smaller root and paths halved until every pair agrees.
    """
    n = rows.size
    if n == 0:
        return 0
    key = np.sort(rows.astype(np.int64) * (width + 2) + cols)  # +2: a column step never wraps into the next row
    rows = key // (width + 2)
    a_list, b_list = [], []
    for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):
        target = key + dr * (width + 2) + dc
        at = np.minimum(np.searchsorted(key, target), n - 1)
        hit = key[at] == target
        a_list.append(np.flatnonzero(hit))
        b_list.append(at[hit])
    a, b = np.concatenate(a_list), np.concatenate(b_list)
    parent = np.arange(n)
    while True:
        ra, rb = parent[a], parent[b]
        differ = ra != rb
        if not differ.any():
            break
        low, high = np.minimum(ra, rb)[differ], np.maximum(ra, rb)[differ]
        np.minimum.at(parent, high, low)
        while True:  # compress until every pixel points at a root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    roots, region = np.unique(parent, return_inverse=True)
    top = np.full(roots.size, np.iinfo(np.int64).max)
    bottom = np.full(roots.size, -1)
    np.minimum.at(top, region, rows)
    np.maximum.at(bottom, region, rows)
    return int(np.count_nonzero(bottom - top + 1 >= min_extent_px))


def _head(profile: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` values of a depth profile, zero-padded past its end."""
    out = np.zeros(n)
    k = min(n, profile.size)
    out[:k] = profile[:k]
    return out


def _bit_counts(bits: np.ndarray) -> np.ndarray:
    """Number of set bits in each row of a 2-D uint8 array (int32), by looking its bytes up."""
    return np.add.reduce(_BITS_SET[bits], axis=1, dtype=np.int32)


def _window_any(flags: np.ndarray, length: int) -> np.ndarray:
    """``out[i] = flags[i : i + length].any(axis=0)`` for every full window, by doubling (log2(length) passes); on
    uint8 rows of packed flags, bit by bit."""
    span = 1
    acc = flags
    while 2 * span <= length:
        acc = acc[:-span] | acc[span:]
        span *= 2
    # acc[i] covers rows i .. i + span - 1; two overlapping spans cover the whole window.
    n = flags.shape[0] - length + 1
    return acc[:n] | acc[length - span : length - span + n]
