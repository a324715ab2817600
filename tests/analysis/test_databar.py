"""Finding and cropping the instrument's data bar."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from analysis.databar_crop import crop_databar, find_databar_top


def micrograph(rng: np.random.Generator, rows: int = 600, columns: int = 800) -> np.ndarray:
    """Resin, coating, FeAl and substrate bands with shot noise and a wavy interface."""
    image = np.empty((rows, columns), np.float32)
    r = np.arange(rows)[:, None]
    surface = 100 + (10 * np.sin(np.arange(columns) / 40.0)).astype(int)
    image[:] = 30
    image[r >= surface] = 120
    image[r >= surface + 250] = 150
    image[r >= surface + 280] = 190
    image += rng.normal(0, 10, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def add_databar(image: np.ndarray, top: int, background: int = 0, text: int = 255) -> np.ndarray:
    """Draw a Thermo-style data bar from row ``top`` down: flat background, a border line, text."""
    out = image.copy()
    out[top:] = background
    out[top : top + 2] = text
    for k, words in enumerate(("HV 15.00 kV   mag 2 500 x   WD 10.1 mm", "HFW 50.8 um   det BSED   20 um")):
        cv2.putText(out, words, (12, top + 24 + 22 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (text,), 1)
    return out


@pytest.mark.parametrize(("top", "background", "text"), [(540, 0, 255), (520, 255, 0), (560, 40, 230)])
def test_data_bar_is_found_and_cropped(top: int, background: int, text: int) -> None:
    image = add_databar(micrograph(np.random.default_rng(1)), top, background, text)
    assert find_databar_top(image) == top
    cropped, found = crop_databar(image)
    assert found == top and cropped.shape == (top, 800)
    assert np.shares_memory(cropped, image)


def test_sixteen_bit_image() -> None:
    image = add_databar(micrograph(np.random.default_rng(2)), 540).astype(np.uint16) * 257
    assert find_databar_top(image) == 540


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_micrograph_without_bar_is_kept_whole(seed: int) -> None:
    image = micrograph(np.random.default_rng(seed))
    assert find_databar_top(image) is None
    assert crop_databar(image)[0].shape == image.shape


def test_flat_bright_substrate_without_text_is_not_a_bar() -> None:
    image = micrograph(np.random.default_rng(3))
    image[500:] = 255  # saturated substrate: uniform rows and a sharp edge, but no text
    assert find_databar_top(image) is None


def test_metadata_scan_height_wins() -> None:
    image = micrograph(np.random.default_rng(4))
    cropped, top = crop_databar(image, scan_height_px=512)
    assert top == 512 and cropped.shape[0] == 512
    assert crop_databar(image, scan_height_px=600)[1] is None  # no rows below the scan: fall back to detection
