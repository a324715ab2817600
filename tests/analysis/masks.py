"""Class masks whose measurements are known exactly, for the analysis tests."""

from __future__ import annotations

import numpy as np

from semcoat.classes import FE2AL5, FEAL, PORE, SUBSTRATE


def coating(
    surface_row: np.ndarray, thickness_px: np.ndarray, height: int, feal_px: np.ndarray | int = 0
) -> np.ndarray:
    """A mask with background above ``surface_row[c]``, Fe2Al5 for ``thickness_px[c]`` rows, FeAl, then substrate."""
    surface_row = np.asarray(surface_row)
    width = surface_row.size
    thickness_px = np.broadcast_to(thickness_px, (width,))
    feal_px = np.broadcast_to(feal_px, (width,))
    rows = np.arange(height)[:, None]
    bottom = surface_row + thickness_px
    mask = np.zeros((height, width), np.uint8)
    mask[rows >= surface_row] = FE2AL5
    mask[rows >= bottom] = FEAL
    mask[rows >= bottom + feal_px] = SUBSTRATE
    return mask


def slab(height: int = 200, width: int = 300, surface: int = 40, thickness: int = 60, feal: int = 0) -> np.ndarray:
    """A flat coating: ``thickness`` rows of Fe2Al5 from row ``surface``, then ``feal`` rows of FeAl, then substrate."""
    return coating(np.full(width, surface), np.full(width, thickness), height, feal)


def square_lattice(
    mask: np.ndarray, surface_row: np.ndarray, depths: range, columns: range, size: int, value: int = PORE
) -> int:
    """Paint ``size`` x ``size`` squares whose top-left corner sits ``depth`` below the local surface.

    Squares follow the surface row of their first column. Returns the number of painted pixels.
    """
    n = 0
    for c in columns:
        for d in depths:
            top = surface_row[c] + d
            mask[top : top + size, c : c + size] = value
            n += size * size
    return n


def scattered_squares(
    mask: np.ndarray, n: int, size: int, rows: tuple[int, int], rng: np.random.Generator, value: int = PORE
) -> None:
    """Paint ``n`` non-overlapping ``size`` x ``size`` squares at random within rows ``rows[0] .. rows[1]``."""
    placed = 0
    height, width = mask.shape
    while placed < n:
        r = int(rng.integers(rows[0], rows[1] - size + 1))
        c = int(rng.integers(0, width - size + 1))
        block = mask[r - 1 : r + size + 1, max(0, c - 1) : c + size + 1]
        if np.any(block != FE2AL5):
            continue
        mask[r : r + size, c : c + size] = value
        placed += 1
