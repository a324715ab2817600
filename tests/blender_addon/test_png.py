"""The render node's own grey PNG writer: every reader decodes its files to the pixels written."""

from __future__ import annotations

import io
import struct

import cv2
import numpy as np
import pytest
from PIL import Image

from blender_addon.render_node.png import FILTER_NONE, FILTER_SUB, IMAGE_CODING, MASK_CODING, grey_png


def _noisy(shape: tuple[int, int], dtype: type, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    ramp = np.linspace(0.1, 0.9, shape[1])[None, :] * top
    return np.clip(ramp + rng.normal(0.0, 0.05 * top, shape), 0, top).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("coding", [IMAGE_CODING, MASK_CODING], ids=["image", "mask"])
@pytest.mark.parametrize("shape", [(37, 53), (1, 1), (2, 300)])
def test_opencv_and_pillow_read_back_the_pixels(dtype: type, coding: tuple[int, int, int],
                                                shape: tuple[int, int]) -> None:
    pixels = _noisy(shape, dtype)
    pixels[0, 0], pixels[-1, -1] = 0, np.iinfo(dtype).max  # both ends of the range, through the Sub filter's wrap
    data = grey_png(pixels, coding)
    assert np.array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), pixels)
    with Image.open(io.BytesIO(data)) as im:
        assert np.array_equal(np.asarray(im), pixels)
    width, height, bits, colour = struct.unpack(">IIBB", data[16:26])
    assert (width, height, bits, colour) == (shape[1], shape[0], 8 * np.dtype(dtype).itemsize, 0)


def test_the_same_pixels_give_the_same_bytes_and_masks_stay_small() -> None:
    image = _noisy((200, 300), np.uint8, seed=1)
    assert grey_png(image, IMAGE_CODING) == grey_png(image.copy(), IMAGE_CODING)
    mask = np.zeros((200, 300), np.uint8)
    mask[60:] = 1
    mask[150:] = 3
    mask[80:90, 100:140] = 4
    data = grey_png(mask)  # masks by default
    assert len(data) < 0.02 * mask.size
    assert np.array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), mask)
    # The Sub filter pays on noisy images.
    huffman = IMAGE_CODING[1:]
    assert len(grey_png(image, (FILTER_SUB, *huffman))) < len(grey_png(image, (FILTER_NONE, *huffman)))


@pytest.mark.parametrize("bad", [np.zeros((3, 4), np.float32), np.zeros((3, 4, 3), np.uint8),
                                 np.zeros((0, 4), np.uint8)], ids=["float", "colour", "empty"])
def test_arrays_a_grey_png_cannot_hold_are_refused(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="non-empty 2-D uint8 or uint16"):
        grey_png(bad)
    with pytest.raises(ValueError, match="unknown PNG row filter 4"):
        grey_png(np.zeros((3, 4), np.uint8), (4, 0, 1))
