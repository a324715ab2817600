"""Pixel size and scan area from Thermo/FEI and Zeiss TIFF metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from analysis.sem_tiff import SemMetadataError, read_sem_metadata

FEI_TEXT = """[User]
Date=03/14/2024
Time=10:21:07 AM
[Beam]
HV=15000
[Scan]
InternalScan=1
Dwelltime=3e-06
PixelWidth=4.9609375e-08
PixelHeight=4.9609375e-08
HorFieldsize=5.08e-05
[Image]
ResolutionX=1024
ResolutionY=884
"""


def write_fei_tiff(path: Path, image: np.ndarray, text: str = FEI_TEXT) -> Path:
    """A TIFF carrying Thermo/FEI metadata (tag 34682, FEI_HELIOS) as the instruments write it."""
    tifffile.imwrite(path, image, extratags=[(34682, "s", 0, text, True)])
    return path


def test_thermo_fei_pixel_size_and_scan_height(tmp_path: Path) -> None:
    path = write_fei_tiff(tmp_path / "fei.tif", np.zeros((943, 1024), np.uint16))
    meta = read_sem_metadata(path)
    assert meta.instrument == "thermo-fei"
    assert meta.pixel_size_um == pytest.approx(0.049609375)
    assert meta.scan_height_px == 884


def test_zeiss_pixel_size(tmp_path: Path) -> None:
    text = "\r\n".join(["0", "AP_IMAGE_PIXEL_SIZE", "Image Pixel Size = 12.5 nm", ""])
    tifffile.imwrite(tmp_path / "z.tif", np.zeros((32, 32), np.uint8), extratags=[(34118, "s", 0, text, True)])
    meta = read_sem_metadata(tmp_path / "z.tif")
    assert meta.instrument == "zeiss"
    assert meta.pixel_size_um == pytest.approx(0.0125)


def test_plain_tiff_has_no_metadata(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "p.tif", np.zeros((8, 8), np.uint8))
    assert read_sem_metadata(tmp_path / "p.tif").pixel_size_um is None


def test_bad_fei_pixel_size(tmp_path: Path) -> None:
    path = write_fei_tiff(tmp_path / "bad.tif", np.zeros((8, 8), np.uint8), FEI_TEXT.replace("4.9609375e-08", "0"))
    with pytest.raises(SemMetadataError, match="bad.tif"):
        read_sem_metadata(path)


def test_a_file_that_is_not_a_tiff_is_a_metadata_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "junk.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(SemMetadataError, match="junk.tif: cannot read the TIFF"):
        read_sem_metadata(tmp_path / "junk.tif")
