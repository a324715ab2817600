"""Pixel size and image area from the metadata that SEMs write into their TIFF files (read through tifffile).

- Thermo Fisher / FEI: tag 34682 (``FEI_HELIOS``) or 34680 (``FEI_SFEG``), an INI-like text whose ``[Scan]`` section
  holds ``PixelWidth`` in metres and whose ``[Image]`` section holds ``ResolutionY``, the height of the scanned area
  (the instrument's data bar lies below it).
- Zeiss: tag 34118 (``CZ_SEM``), whose ``ap_image_pixel_size`` entry holds the pixel size with its unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semcoat.errors import SemcoatError

_UNIT_TO_UM = {"pm": 1e-6, "nm": 1e-3, "um": 1.0, "µm": 1.0, "\u03bcm": 1.0, "mm": 1e3, "m": 1e6}


class SemMetadataError(SemcoatError):
    """SEM metadata that is present but cannot be understood (with the file, the entry and its value)."""


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
    SemMetadataError
        When the file is not a readable TIFF, or a tag is present but its pixel size is missing, not positive or in
        an unknown unit.
    """
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    except (OSError, tifffile.TiffFileError) as exc:
        raise SemMetadataError(f"{path}: cannot read the TIFF ({exc})") from exc
    with tif:
        try:
            if tif.is_fei:
                fei = tif.fei_metadata or {}
                meta = SemMetadata("thermo-fei", fei_pixel_size_um(fei), fei_scan_height_px(fei))
            elif tif.is_sem:
                meta = SemMetadata("zeiss", zeiss_pixel_size_um(tif.sem_metadata or {}), None)
            else:
                return NO_METADATA
        # tifffile's parsers raise TypeError/ValueError on malformed tag text: that is the file's fault.
        except (SemMetadataError, TypeError, ValueError) as exc:
            raise SemMetadataError(f"{path}: unreadable SEM metadata: {exc}") from exc
    if meta.pixel_size_um is not None and not meta.pixel_size_um > 0:
        raise SemMetadataError(f"{path}: {meta.instrument} metadata gives pixel size {meta.pixel_size_um} µm")
    return meta
