"""The render node's own data bar, found to the row, over a sweep of frames.

The images are formed by the render node's ``form_image`` (numpy and OpenCV, no Blender) from a layered class map,
so the bar is the one ``databar_draw`` draws into every render: a grey rule (200) over black with white text and a
scale bar, written over the image after brightness/contrast, then quantised (8 or 16 bit) and, for some renders,
saved as a JPEG.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from analysis.databar_crop import crop_databar, find_databar_top
from blender_addon.render_node.scan_noise import jpeg_roundtrip
from semcoat.spec import GreyLevelSpec
from tests.analysis.calibrate_images import GREYS, formed, imaging, layered_mask

# Substrate 0.88 (224 of 255): the bar's rule (200) is close to it, the case that had failed.
BRIGHT = GREYS
DARK = dataclasses.replace(GREYS, resin=0.04, fe2al5=0.2, feal=0.24, substrate=0.3, pore=0.01, precipitate=0.3)


def render(width: int, height: int, bar_px: int, greys: GreyLevelSpec = BRIGHT, seed: int = 0,
           **changes: Any) -> np.ndarray:
    """Pixels of a rendered micrograph (resin, Fe2Al5 with pores, substrate at the bottom); a data bar of
    ``bar_px`` rows when it is above 0."""
    mask = layered_mask(height, width, 0.15 * height, 0.5 * height, pores=10, seed=seed)
    spec = imaging(data_bar=bar_px > 0, data_bar_height_px=max(bar_px, 8), **changes)
    return formed(mask, spec, seed=seed, greys=greys)[0]


# (width, height, bar rows, greys, imaging changes): frame widths 384-2048, bars 8-64 rows (2-17 % of the height),
# bright, dark and saturated substrates, shot noise from 30 to 2000 e-/px (with frame averaging), 8 and 16 bit.
CASES = [
    (512, 384, 32, BRIGHT, {"pixel_size_um": 0.13}),  # the reported case: the row after the text line won (368)
    (512, 384, 32, BRIGHT, {"dose_electrons_per_px": 2000.0, "frame_count": 8, "pixel_size_um": 0.35}),
    (384, 288, 8, BRIGHT, {"dose_electrons_per_px": 30.0}),  # text drawn over the rule
    (384, 288, 12, DARK, {"bit_depth": 16}),
    (385, 291, 16, BRIGHT, {"brightness": 0.2, "contrast": 1.3}),  # substrate saturated at white above the rule
    (517, 389, 20, DARK, {"dose_electrons_per_px": 2000.0, "frame_count": 8, "bit_depth": 16}),
    (640, 480, 24, BRIGHT, {"contrast": 0.7, "brightness": -0.1, "pixel_size_um": 0.5}),
    (768, 576, 48, DARK, {"dose_electrons_per_px": 30.0, "pixel_size_um": 0.05}),
    (1000, 750, 64, BRIGHT, {"detector_noise_std": 0.03}),
    (999, 1333, 40, DARK, {"brightness": 0.1}),
    (1024, 768, 36, BRIGHT, {"bit_depth": 16, "pixel_size_um": 0.17}),
    (2048, 1536, 64, BRIGHT, {"dose_electrons_per_px": 2000.0, "pixel_size_um": 0.05}),
    (2048, 1024, 10, DARK, {}),
]


@pytest.mark.parametrize(("width", "height", "bar_px", "greys", "changes"), CASES)
def test_rendered_bar_top_row_is_found_exactly(
    width: int, height: int, bar_px: int, greys: GreyLevelSpec, changes: dict[str, Any]
) -> None:
    pixels = render(width, height, bar_px, greys, seed=width + bar_px, **changes)
    assert find_databar_top(pixels) == height - bar_px
    cropped, top = crop_databar(pixels)
    assert top == height - bar_px and cropped.shape == (height - bar_px, width)


@pytest.mark.parametrize(("height", "bar_px", "quality", "greys"), [
    (384, 32, 90, BRIGHT), (389, 32, 70, BRIGHT), (389, 24, 95, DARK), (581, 48, 70, DARK), (389, 16, 85, BRIGHT),
    (391, 32, 80, BRIGHT), (768, 48, 50, DARK),
])
def test_jpeg_bar_is_found_within_the_block_that_holds_its_edge(
    height: int, bar_px: int, quality: int, greys: GreyLevelSpec
) -> None:
    """A JPEG smears the 8x8 block that holds the bar's top edge (the rule, ringing): the top is found in that
    block or at its lower boundary (or, where the two-row rule straddles a boundary, right under the rule), never
    in the bar's text below."""
    pixels = jpeg_roundtrip(render(512, height, bar_px, greys, seed=bar_px, dose_electrons_per_px=2000.0), quality)
    top, want = find_databar_top(pixels), height - bar_px
    block = want // 8 * 8
    assert top is not None and block <= top <= max(block + 8, want + 2)
    if want % 8 == 0:
        assert top == want  # an edge on a block boundary is not smeared


@pytest.mark.parametrize(("width", "height", "greys", "changes", "quality"), [
    (512, 384, BRIGHT, {}, 0),
    (384, 288, DARK, {"dose_electrons_per_px": 30.0}, 0),
    (517, 389, BRIGHT, {"brightness": 0.2, "contrast": 1.3}, 0),  # saturated substrate at the bottom
    (640, 480, BRIGHT, {"dose_electrons_per_px": 1e7, "detector_noise_std": 0.0, "frame_count": 8}, 0),  # no noise
    (1024, 768, DARK, {"bit_depth": 16}, 0),
    (512, 384, BRIGHT, {"dose_electrons_per_px": 2000.0, "frame_count": 8}, 50),
    (768, 576, DARK, {}, 70),
])
def test_render_without_bar_keeps_every_row(
    width: int, height: int, greys: GreyLevelSpec, changes: dict[str, Any], quality: int
) -> None:
    pixels = render(width, height, 0, greys, seed=width, **changes)
    if quality:
        pixels = jpeg_roundtrip(pixels, quality)
    assert find_databar_top(pixels) is None
