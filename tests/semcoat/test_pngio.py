"""The core's PNG encoder: 8-bit RGB beside greyscale, read back by an independent decoder (Pillow)."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from semcoat import pngio


def _pixels(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.randrange(256) for _ in range(n))


@pytest.mark.parametrize(("width", "height"), [(1, 1), (7, 5), (64, 3)])
def test_rgb_round_trips_through_pillow(width: int, height: int) -> None:
    pixels = _pixels(width * height * 3, width)
    data = pngio.encode_rgb(width, height, pixels)
    header = pngio.read_header(data)
    assert (header.width, header.height, header.bit_depth, header.color_type) == (width, height, 8, 2)
    assert not header.is_grey
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "RGB" and im.size == (width, height) and im.tobytes() == pixels


def test_grey_still_round_trips_and_rgb_of_the_same_bytes_differs_only_in_layout() -> None:
    pixels = _pixels(12 * 4, 1)
    grey = pngio.encode_grey(12, 4, 8, pixels)
    assert pngio.decode_grey(grey)[1] == pixels
    rgb = pngio.encode_rgb(4, 4, pixels)  # the same 48 bytes as 4 x 4 RGB pixels
    assert rgb != grey
    with Image.open(io.BytesIO(grey)) as im:
        assert im.mode == "L" and im.tobytes() == pixels


def test_a_buffer_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(pngio.PngError, match="expected 36 .* 3 channel"):
        pngio.encode_rgb(4, 3, bytes(35))
