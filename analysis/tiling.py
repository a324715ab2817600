"""Tiled inference with overlap: large micrographs are cut into tiles, predicted in batches and blended back.

Each tile's class probabilities are weighted by a window that falls off linearly over the overlap, so seams between
tiles carry no visible step; dividing by the summed weights makes the blend exact where tiles do not overlap.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from analysis.model import ModelRunError
from semcoat.errors import InvalidArgument

LogitsFn = Callable[[np.ndarray], np.ndarray]
"""Maps a float32 batch (N, 1, rows, columns) in [0, 1] to class logits (N, classes, rows, columns)."""


def tile_starts(length_px: int, tile_px: int, overlap_px: int) -> list[int]:
    """Start offsets of tiles of ``tile_px`` covering ``length_px`` with at least ``overlap_px`` overlap.

    The last tile ends flush with the edge; a length no longer than one tile gives ``[0]``.
    """
    if tile_px <= 0:
        raise InvalidArgument(f"the tile edge must be a positive number of pixels; got {tile_px}", argument="tile_px")
    if not 0 <= overlap_px < tile_px:
        raise InvalidArgument(
            f"the tile overlap must be at least 0 and less than the tile edge ({tile_px} px); got {overlap_px}",
            argument="overlap_px",
        )
    if length_px <= tile_px:
        return [0]
    stride = tile_px - overlap_px
    starts = list(range(0, length_px - tile_px, stride))
    return [*starts, length_px - tile_px]


def _ramp(n: int, overlap_px: int) -> np.ndarray:
    """1-D blending weight: linear from near 0 to 1 over ``overlap_px`` at both ends, never exactly 0."""
    i = np.arange(n, dtype=np.float32) + 0.5
    ramp = max(overlap_px, 1)
    return np.minimum(1.0, np.minimum(i, n - i) / ramp).astype(np.float32)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predict_probabilities(
    logits_fn: LogitsFn,
    image: np.ndarray,
    n_classes: int,
    tile_px: int = 512,
    overlap_px: int = 64,
    size_multiple: int = 32,
    batch_size: int = 4,
    tile_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Class probabilities (classes, rows, columns) of a grey image, predicted tile by tile.

    Parameters
    ----------
    logits_fn : callable
        The model: float32 (N, 1, h, w) in [0, 1] to logits (N, classes, h, w).
    image : ndarray, shape (rows, columns)
        Float image in [0, 1]; not modified.
    n_classes : int
        Number of classes of the table (the output's first axis). A model may return fewer channels, from 2 up:
        one trained before classes were appended to the table (``crack``, say) knows the first ids only, and the
        classes it lacks get probability 0.
    tile_px, overlap_px : int
        Tile edge and minimum overlap between neighbouring tiles, pixels.
    size_multiple : int
        Tile edges are rounded up to a multiple of this (U-Nets halve the size several times); small images are
        padded by reflection up to it.
    batch_size : int
        Tiles per model call.
    tile_shape : (rows, columns), optional
        Exact tile size, for models with a fixed input size; replaces ``tile_px`` and ``size_multiple`` (images
        smaller than it are padded by reflection).
    """
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D image; got shape {image.shape}")
    rows, cols = image.shape
    if tile_shape is not None:
        tile_r, tile_c = tile_shape
    else:
        tile_r = -(-min(tile_px, rows) // size_multiple) * size_multiple
        tile_c = -(-min(tile_px, cols) // size_multiple) * size_multiple
    pad_r, pad_c = max(0, tile_r - rows), max(0, tile_c - cols)
    padded = np.pad(image, ((0, pad_r), (0, pad_c)), mode="reflect" if min(rows, cols) > 1 else "edge")
    pr, pc = padded.shape
    overlap_r, overlap_c = min(overlap_px, tile_r - 1), min(overlap_px, tile_c - 1)
    origins = [(r, c) for r in tile_starts(pr, tile_r, overlap_r) for c in tile_starts(pc, tile_c, overlap_c)]
    weight = np.outer(_ramp(tile_r, overlap_r), _ramp(tile_c, overlap_c))

    acc = np.zeros((n_classes, pr, pc), np.float32)
    norm = np.zeros((pr, pc), np.float32)
    for k in range(0, len(origins), batch_size):
        batch_origins = origins[k : k + batch_size]
        batch = np.stack([padded[r : r + tile_r, c : c + tile_c] for r, c in batch_origins])[:, None]
        logits = np.asarray(logits_fn(np.ascontiguousarray(batch, dtype=np.float32)))
        expected = (len(batch_origins), n_classes, tile_r, tile_c)
        if logits.ndim != 4 or logits.shape[::2] != expected[::2] or logits.shape[3] != tile_c or not (
                2 <= logits.shape[1] <= n_classes):
            raise ModelRunError(f"the model returned logits of shape {logits.shape}; expected {expected} (or fewer "
                                "classes, from 2, for a model trained on the first classes of the table)")
        if not np.isfinite(logits).all():  # else every pixel's argmax is class 0: "no coating", a false reading
            raise ModelRunError("the model returned non-finite logits (NaN or infinity): the model is broken (a "
                                "training that diverged?), not the image")
        probs = _softmax(logits.astype(np.float32))
        known = probs.shape[1]
        for (r, c), p in zip(batch_origins, probs, strict=True):
            acc[:known, r : r + tile_r, c : c + tile_c] += p * weight
            norm[r : r + tile_r, c : c + tile_c] += weight
    return (acc / norm)[:, :rows, :cols]
