"""Pixel size and image area from the metadata that SEMs write into their TIFF files (read through tifffile).

- Thermo Fisher / FEI: tag 34682 (``FEI_HELIOS``) or 34680 (``FEI_SFEG``), an INI-like text whose ``[Scan]`` section
  holds ``PixelWidth`` in metres and whose ``[Image]`` section holds ``ResolutionY``, the height of the scanned area
  (the instrument's data bar lies below it).
- Zeiss: tag 34118 (``CZ_SEM``), whose ``ap_image_pixel_size`` entry holds the pixel size with its unit.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.measure import MAX_PIXEL_SIZE_UM, MIN_PIXEL_SIZE_UM
from semcoat.errors import SemcoatError

_UNIT_TO_UM = {"pm": 1e-6, "nm": 1e-3, "um": 1.0, "µm": 1.0, "\u03bcm": 1.0, "mm": 1e3, "m": 1e6}


class SemMetadataError(SemcoatError):
    """SEM metadata that is present but cannot be understood (with the file, the entry and its value)."""


class SemPixelSizeError(SemMetadataError):
    """SEM metadata whose pixel size is not a scale (zero, negative, infinite, NaN or absurd: outside
    :data:`analysis.measure.MIN_PIXEL_SIZE_UM` .. :data:`analysis.measure.MAX_PIXEL_SIZE_UM`).

    ``metadata`` holds the rest of what the file says (pixel size None), for a caller that has a pixel size of its own.
    """

    def __init__(self, message: str, metadata: SemMetadata) -> None:
        super().__init__(message)
        self.metadata = metadata


@dataclass(frozen=True)
class SemMetadata:
    """What the analysis uses from an SEM TIFF's metadata.

    Attributes
    ----------
    instrument : "thermo-fei", "zeiss" or "none".
    pixel_size_um : edge length of one pixel, µm; None when the file does not say.
    scan_height_px : height of the scanned area in pixels (rows below it are the data bar); None when unknown.
    """

    instrument: str
    pixel_size_um: float | None
    scan_height_px: int | None


NO_METADATA = SemMetadata("none", None, None)


def fei_pixel_size_um(fei: dict[str, Any]) -> float | None:
    """Pixel width in µm from parsed Thermo/FEI metadata (``[Scan] PixelWidth`` in metres, else ``[EScan]``)."""
    for section in ("Scan", "EScan"):
        value = fei.get(section, {}).get("PixelWidth")
        if value is not None:
            return float(value) * 1e6
    return None


def fei_scan_height_px(fei: dict[str, Any]) -> int | None:
    """Height of the scanned area in pixels from parsed Thermo/FEI metadata (``[Image] ResolutionY``)."""
    value = fei.get("Image", {}).get("ResolutionY")
    return int(value) if value is not None else None


def zeiss_pixel_size_um(sem: dict[str, Any]) -> float | None:
    """Pixel size in µm from parsed Zeiss ``CZ_SEM`` metadata (``ap_image_pixel_size``: label, value, unit)."""
    entry = sem.get("ap_image_pixel_size")
    if entry is None:
        return None
    if not isinstance(entry, tuple) or len(entry) < 3:
        raise SemMetadataError(f"ap_image_pixel_size is not (label, value, unit): {entry!r}")
    value, unit = entry[1], str(entry[2]).strip()
    if unit not in _UNIT_TO_UM:
        raise SemMetadataError(f"ap_image_pixel_size has unit {unit!r}; known units: {', '.join(_UNIT_TO_UM)}")
    return float(value) * _UNIT_TO_UM[unit]


def read_sem_metadata(path: str | Path) -> SemMetadata:
    """Read pixel size and scan height from a TIFF's Thermo/FEI or Zeiss tags.

    Parameters
    ----------
    path : str or Path
        A TIFF file. Files without SEM tags give :data:`NO_METADATA`.

    Raises
    ------
    SemPixelSizeError
        When the pixel size is not a positive finite number from 1e-5 to 100 µm (the range of
        :func:`analysis.measure.check_pixel_size_um`): the message names the file, the instrument and the value.
    SemMetadataError
        When the file is not a readable TIFF, or a tag is present but cannot be parsed (a pixel size that is not a
        number, an unknown unit, a ``ResolutionY`` that is not an integer).
    """
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    # tifffile's TiffFileError is a ValueError; its parsers raise the others on damaged headers: the file's fault.
    except (OSError, ValueError, TypeError, KeyError, IndexError, struct.error, OverflowError, RecursionError) as exc:
        raise SemMetadataError(f"{path}: cannot read the TIFF ({exc!s:.200})") from exc
    with tif:
        try:
            if tif.is_fei:
                fei = tif.fei_metadata or {}
                meta = SemMetadata("thermo-fei", fei_pixel_size_um(fei), fei_scan_height_px(fei))
            elif tif.is_sem:
                meta = SemMetadata("zeiss", zeiss_pixel_size_um(tif.sem_metadata or {}), None)
            else:
                return NO_METADATA
        # tifffile's parsers raise these on malformed tag text: that is the file's fault.
        except (SemMetadataError, TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError,
                struct.error, RecursionError) as exc:  # fmt: skip
            raise SemMetadataError(f"{path}: unreadable SEM metadata: {exc!s:.200}") from exc
    size = meta.pixel_size_um
    if size is not None and not MIN_PIXEL_SIZE_UM <= size <= MAX_PIXEL_SIZE_UM:
        raise SemPixelSizeError(
            f"{path}: the {meta.instrument} metadata gives a pixel size of {size:g} µm, which is not a scale; "
            f"accepted: {MIN_PIXEL_SIZE_UM:g} to {MAX_PIXEL_SIZE_UM:g} µm per pixel",
            SemMetadata(meta.instrument, None, meta.scan_height_px),
        )
    return meta
