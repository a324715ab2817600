"""Tiled inference with overlap."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.model import ModelRunError
from analysis.tiling import predict_probabilities, tile_starts
from semcoat.errors import InvalidArgument


def test_tile_starts_cover_with_overlap() -> None:
    assert tile_starts(100, 128, 16) == [0]
    starts = tile_starts(1000, 256, 32)
    assert starts[0] == 0 and starts[-1] == 1000 - 256
    assert all(b - a <= 256 - 32 for a, b in zip(starts, starts[1:], strict=False))
    with pytest.raises(InvalidArgument, match="overlap") as info:
        tile_starts(100, 32, 32)
    assert info.value.argument == "overlap_px"


def pixelwise(batch: np.ndarray) -> np.ndarray:
    """A model whose logits at a pixel depend on that pixel only: tiling must not change its output."""
    x = batch[:, 0]
    return np.stack([np.sin(3 * x + k) * 4 for k in range(6)], axis=1)


@pytest.mark.parametrize(
    ("shape", "tile", "overlap"), [((300, 410), 128, 32), ((50, 70), 512, 64), ((257, 129), 64, 0)]
)
def test_tiling_reproduces_a_pixelwise_model(shape: tuple[int, int], tile: int, overlap: int) -> None:
    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    probs = predict_probabilities(pixelwise, image, 6, tile_px=tile, overlap_px=overlap)
    logits = pixelwise(image[None, None])[0]
    expected = np.exp(logits - logits.max(0)) / np.exp(logits - logits.max(0)).sum(0)
    assert probs.shape == (6, *shape)
    np.testing.assert_allclose(probs, expected, atol=1e-5)


def test_tiles_are_rounded_to_the_size_multiple() -> None:
    seen: list[tuple[int, ...]] = []

    def model(batch: np.ndarray) -> np.ndarray:
        seen.append(batch.shape)
        return np.zeros((batch.shape[0], 6, *batch.shape[2:]), np.float32)

    predict_probabilities(model, np.zeros((45, 100), np.float32), 6, tile_px=64, overlap_px=8)
    assert all(s[2] % 32 == 0 and s[3] % 32 == 0 for s in seen)


def test_wrong_model_output_is_reported() -> None:
    with pytest.raises(ModelRunError, match="expected"):  # the model's fault: that image fails, the run goes on
        predict_probabilities(lambda b: b, np.zeros((32, 32), np.float32), 6)
