"""Neighbourhood queries in plain numpy: running extrema over a window of samples, point pairs within a distance.

They replace ``scipy.ndimage.maximum_filter1d`` / ``minimum_filter1d`` (with ``mode="nearest"``, ``origin=0``) and
``scipy.spatial.cKDTree.query_pairs``, which the Python inside Blender does not have, with exactly their results:
maxima and minima are exact operations, and the pairs are the same set (sorted, where the KD-tree's order is its own).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _windows(values: np.ndarray, size: int) -> np.ndarray:
    """Every window of ``size`` samples, one per sample, shape (n, size).

    Window ``i`` covers samples ``i - size // 2 .. i - size // 2 + size - 1`` (scipy's centring at ``origin=0``:
    for an even size the window reaches one sample further to the left), and samples past either end repeat the
    end sample (scipy's ``mode="nearest"``).
    """
    if values.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {values.shape}")
    if size < 1:
        raise ValueError(f"size must be at least 1 sample, got {size}")
    left = size // 2
    padded = np.pad(values, (left, size - 1 - left), mode="edge")
    return sliding_window_view(padded, size)


def sliding_max(values: np.ndarray, size: int) -> np.ndarray:
    """Running maximum over ``size`` neighbouring samples, the ends extended by repeating the end samples.

    Parameters
    ----------
    values : 1-D samples (any unit; the result has the same unit).
    size : window length, samples (>= 1); odd sizes are centred, even ones reach one sample further left.

    Returns
    -------
    ndarray
        Same shape and dtype as ``values``; equal to ``scipy.ndimage.maximum_filter1d(values, size, mode="nearest")``.
    """
    if values.size == 0:
        return values.copy()
    return _windows(values, size).max(axis=1)


def sliding_min(values: np.ndarray, size: int) -> np.ndarray:
    """Running minimum over ``size`` neighbouring samples (see :func:`sliding_max` for the window and the ends)."""
    if values.size == 0:
        return values.copy()
    return _windows(values, size).min(axis=1)


def pairs_within(points: np.ndarray, max_distance: float, first_new: int = 0) -> np.ndarray:
    """Index pairs ``(i, j)``, ``i < j``, of 2-D points at most ``max_distance`` apart, found with a uniform grid hash.

    The plane is cut into square cells of side ``max_distance``, so a point's partners lie in its own cell or one of
    the eight around it; only those are measured. The distance is ``np.hypot`` of the coordinate differences.

    Parameters
    ----------
    points : shape (n, 2), coordinates (any unit, the same as ``max_distance``).
    max_distance : largest distance of a pair (inclusive), > 0.
    first_new : only pairs with ``j >= first_new`` (at least one point from ``first_new`` on) are wanted: placement
        asks about new candidates among many placed points, whose pairs among themselves it never needs.

    Returns
    -------
    ndarray
        int64, shape (m, 2), sorted by ``i`` then ``j``: with ``first_new=0`` the same set as
        ``cKDTree(points).query_pairs(max_distance)``.
    """
    n = points.shape[0]
    if not max_distance > 0 or not np.isfinite(max_distance):
        raise ValueError(f"max_distance must be a positive finite distance, got {max_distance}")
    first_new = max(int(first_new), 0)
    if n < 2 or first_new >= n:
        return np.zeros((0, 2), dtype=np.int64)
    cell = np.floor(points / max_distance).astype(np.int64)
    cell -= cell.min(axis=0)
    # One integer key per cell; the column stride leaves room for the row offsets -1..+1, so keys never alias.
    stride = int(cell[:, 1].max()) + 3
    key = cell[:, 0] * stride + (cell[:, 1] + 1)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    query = np.arange(first_new, n)
    found = []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            target = key[query] + dx * stride + dy
            lo = np.searchsorted(sorted_key, target, side="left")
            counts = np.searchsorted(sorted_key, target, side="right") - lo
            total = int(counts.sum())
            if total == 0:
                continue
            j = np.repeat(query, counts)
            # Position within each query's run of candidates, added to where that run starts in ``order``.
            run_start = np.repeat(np.cumsum(counts) - counts, counts)
            i = order[np.repeat(lo, counts) + np.arange(total) - run_start]
            # A pair of two queried points is met from both ends: keep it from its larger index only (and never
            # a point with itself); every partner below first_new is met once, from the queried end.
            keep = i < j
            found.append(np.stack([i[keep], j[keep]], axis=1))
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    cand = np.concatenate(found)
    d = np.hypot(*(points[cand[:, 0]] - points[cand[:, 1]]).T)
    pairs = cand[d <= max_distance]
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))].astype(np.int64)
