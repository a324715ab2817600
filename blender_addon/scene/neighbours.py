"""Neighbourhood queries in plain numpy: running extrema over a window of samples, point pairs within a distance,
clashing circles.

They replace ``scipy.ndimage.maximum_filter1d`` / ``minimum_filter1d`` (with ``mode="nearest"``, ``origin=0``) and
``scipy.spatial.cKDTree.query_pairs``, which the Python inside Blender does not have, with exactly their results:
maxima and minima are exact operations, and the pairs are the same set (sorted, where the KD-tree's order is its own).
Clashing circles are found on grids of size classes (:func:`circle_clashes`), or for placement's rounds, where a few
dozen candidates meet a few hundred placed circles, by a sweep along x (:func:`candidate_clashes`): the same clashes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stopping import StopCheck, check


def _sliding_extremum(values: np.ndarray, size: int, ufunc: np.ufunc) -> np.ndarray:
    """Running ``ufunc`` (maximum or minimum) over windows of ``size`` samples, one per sample, in a few passes
    whatever the size (van Herk / Gil-Werman).

    Window ``i`` covers samples ``i - size // 2 .. i - size // 2 + size - 1`` (scipy's centring at ``origin=0``:
    for an even size the window reaches one sample further to the left), and samples past either end repeat the
    end sample (scipy's ``mode="nearest"``). The samples so extended are cut into blocks of ``size``: a window is
    the tail of one block (its running extremum from the block's right end) and the head of the next (from that
    block's left end).
    """
    if values.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {values.shape}")
    if size < 1:
        raise ValueError(f"size must be at least 1 sample, got {size}")
    n = values.size
    if n == 0:
        return values.copy()
    left = size // 2
    blocks = np.empty(-(-(n + size - 1) // size) * size, dtype=values.dtype)
    blocks[:left] = values[0]
    blocks[left : left + n] = values
    blocks[left + n :] = values[-1]
    blocks = blocks.reshape(-1, size)
    from_left = ufunc.accumulate(blocks, axis=1).ravel()
    from_right = ufunc.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    return ufunc(from_right[:n], from_left[size - 1 : size - 1 + n])


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
    return _sliding_extremum(values, size, np.maximum)


def sliding_min(values: np.ndarray, size: int) -> np.ndarray:
    """Running minimum over ``size`` neighbouring samples (see :func:`sliding_max` for the window and the ends)."""
    return _sliding_extremum(values, size, np.minimum)


def _cell_candidates(targets: np.ndarray, queries: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """(target index, query index) of every target in a query's grid cell or one of the eight around it.

    The plane is cut into square cells of side ``cell``, so every target within ``cell`` of a query is among them.
    """
    if targets.shape[0] == 0 or queries.shape[0] == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    t_cell = np.floor(targets / cell).astype(np.int64)
    q_cell = np.floor(queries / cell).astype(np.int64)
    low = np.minimum(t_cell.min(axis=0), q_cell.min(axis=0))
    t_cell -= low
    q_cell -= low
    # One integer key per cell; the column stride leaves room for the row offsets -1..+1, so keys never alias.
    stride = int(max(t_cell[:, 1].max(), q_cell[:, 1].max())) + 3
    t_key = t_cell[:, 0] * stride + (t_cell[:, 1] + 1)
    q_key = q_cell[:, 0] * stride + (q_cell[:, 1] + 1)
    order = np.argsort(t_key, kind="stable")
    sorted_key = t_key[order]
    found_t, found_q = [], []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            target = q_key + dx * stride + dy
            lo = np.searchsorted(sorted_key, target, side="left")
            counts = np.searchsorted(sorted_key, target, side="right") - lo
            total = int(counts.sum())
            if total == 0:
                continue
            # Position within each query's run of candidates, added to where that run starts in ``order``.
            run_start = np.repeat(np.cumsum(counts) - counts, counts)
            found_t.append(order[np.repeat(lo, counts) + np.arange(total) - run_start])
            found_q.append(np.repeat(np.arange(queries.shape[0]), counts))
    if not found_t:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    return np.concatenate(found_t).astype(np.int64), np.concatenate(found_q).astype(np.int64)


def pairs_within(points: np.ndarray, max_distance: float, first_new: int = 0) -> np.ndarray:
    """Index pairs ``(i, j)``, ``i < j``, of 2-D points at most ``max_distance`` apart, found with a uniform grid hash.

    The plane is cut into square cells of side ``max_distance``, so a point's partners lie in its own cell or one of
    the eight around it; only those are measured. The distance is ``np.hypot`` of the coordinate differences.

    Parameters
    ----------
    points : shape (n, 2), coordinates (any unit, the same as ``max_distance``).
    max_distance : largest distance of a pair (inclusive), > 0.
    first_new : only pairs with ``j >= first_new`` (at least one point from ``first_new`` on) are wanted.

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
    i, j = _cell_candidates(points, points[first_new:], max_distance)
    j += first_new
    # A pair of two queried points is met from both ends: keep it from its larger index only (and never a point with
    # itself); every partner below first_new is met once, from the queried end.
    keep = i < j
    i, j = i[keep], j[keep]
    d = np.hypot(*(points[i] - points[j]).T)
    pairs = np.stack([i, j], axis=1)[d <= max_distance]
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))].astype(np.int64)


# Circles are sorted into size classes of this ratio of radii, so each class meets the others at a reach set by
# their own sizes, not by the largest circle of all.
SIZE_CLASS_RATIO = 2.0
# Queries (circles asked about, summed over the joins of size classes) searched in one pass: a few passes at most for
# the largest images, each a stop check apart; one pass for a preset image.
QUERIES_PER_PASS = 1 << 17
# Largest cell key of one pass; a pass of more cells (circles spread over far more cells than a frame holds) is split.
_KEY_LIMIT = 1 << 62


@dataclass
class _Join:
    """Every pair of a target and a query circle within ``cell`` of each other (a join of two size classes)."""

    targets: np.ndarray  # circle indices
    queries: np.ndarray
    cell: float
    lower_targets_only: bool  # keep only targets below the query (both from the same class)


def _joined_candidates(centres: np.ndarray, joins: list[_Join]) -> tuple[np.ndarray, np.ndarray]:
    """(target, query) circle indices of every target in a query's grid cell or one of the eight around it, for all
    ``joins`` at once (each on its own grid: cell keys of different joins lie in disjoint ranges), in one sort and
    one search instead of a few dozen small ones per join. Targets not below a ``lower_targets_only`` query are
    dropped.

    Raises ValueError when the cells of one join alone do not fit 62-bit keys (circles spread over more than about
    2^31 cells along each axis).
    """
    t_join = np.repeat(np.arange(len(joins)), [j.targets.size for j in joins])
    q_join = np.repeat(np.arange(len(joins)), [j.queries.size for j in joins])
    t_idx = np.concatenate([j.targets for j in joins])
    q_idx = np.concatenate([j.queries for j in joins])
    cells = np.array([j.cell for j in joins])
    t_cell = np.floor(centres[t_idx] / cells[t_join, None]).astype(np.int64)
    q_cell = np.floor(centres[q_idx] / cells[q_join, None]).astype(np.int64)
    # Per join: cells counted from its lowest (targets and queries together), x + 1 and y + 1 so that the neighbours
    # at -1 stay inside the join's range of keys.
    t_start = np.cumsum([0] + [j.targets.size for j in joins[:-1]])
    q_start = np.cumsum([0] + [j.queries.size for j in joins[:-1]])
    low = np.minimum(np.minimum.reduceat(t_cell, t_start), np.minimum.reduceat(q_cell, q_start))
    high = np.maximum(np.maximum.reduceat(t_cell, t_start), np.maximum.reduceat(q_cell, q_start)) - low
    t_cell -= low[t_join]
    q_cell -= low[q_join]
    # One integer key per cell: rows of ``stride`` keys (room for y - 1 .. y + 1), each join's rows after the last's.
    stride = int(high[:, 1].max()) + 3
    rows = [int(x) + 3 for x in high[:, 0]]
    if max(rows) * stride >= _KEY_LIMIT:
        raise ValueError(f"circles spread over {max(rows)} x {stride} grid cells of one size class: more than "
                         "62-bit cell keys hold")
    if sum(rows) * stride >= _KEY_LIMIT:  # many joins of huge grids: each on its own
        found = [_joined_candidates(centres, [j]) for j in joins]
        return np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])
    base = np.cumsum([0] + rows[:-1], dtype=np.int64) * stride
    t_key = base[t_join] + (t_cell[:, 0] + 1) * stride + (t_cell[:, 1] + 1)
    q_key = base[q_join] + (q_cell[:, 0] + 1) * stride + (q_cell[:, 1] + 1)
    order = np.argsort(t_key, kind="stable")
    sorted_key = t_key[order]
    around = (np.array([-1, 0, 1])[:, None] * stride + np.array([-1, 0, 1])[None, :]).ravel()
    wanted = (q_key[:, None] + around[None, :]).ravel()
    lo = np.searchsorted(sorted_key, wanted, side="left")
    counts = np.searchsorted(sorted_key, wanted, side="right") - lo
    total = int(counts.sum())
    # Position within each (query, cell)'s run of targets, added to where that run starts in ``order``.
    run_start = np.repeat(np.cumsum(counts) - counts, counts)
    t = t_idx[order[np.repeat(lo, counts) + np.arange(total) - run_start]]
    q_row = np.repeat(np.arange(q_idx.size).repeat(around.size), counts)
    q = q_idx[q_row]
    lower = np.array([j.lower_targets_only for j in joins])[q_join[q_row]]
    keep = ~lower | (t < q)
    return t[keep], q[keep]


# A sweep along x measures every pair within a circle's reach along x; while that is at most this many pairs per
# circle (plus SWEEP_PAIRS_MIN), it costs less than sorting the circles into grids of size classes (a third of the
# time on the preset images, few pairs per circle); beyond it (a few giants widen every window) the grids are used.
SWEEP_PAIRS_PER_CIRCLE = 64
SWEEP_PAIRS_MIN = 1 << 14
# and never more pairs than this in one sweep (memory, and a stop check between the grids' passes for huge frames)
SWEEP_PAIRS_MAX = 1 << 20
# Up to this many pairs, measuring them all costs less than picking those within reach along y first.
_MEASURE_ALL = 256
# Windows along x are widened by this share, so that rounding in ``x -+ reach`` cannot lose a pair at the reach.
_WINDOW_SLACK = 1e-9


def _runs(lo: np.ndarray, hi: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(owner, position) of every position in the runs ``lo[k] .. hi[k] - 1`` (none where ``hi <= lo``); None when
    the runs hold more than ``limit`` positions."""
    counts = np.maximum(hi - lo, 0)
    ends = np.cumsum(counts)
    if ends.size and ends[-1] > limit:
        return None
    owner = np.repeat(np.arange(lo.size), counts)
    # Position within each run, added to where that run starts.
    return owner, np.arange(owner.size) + np.repeat(lo - (ends - counts), counts)


def _clashing(
    xa: np.ndarray, ya: np.ndarray, ra: np.ndarray, xb: np.ndarray, yb: np.ndarray, rb: np.ndarray, gap: float
) -> np.ndarray:
    """Which of the pairs of circles (``xa[k]``, ``ya[k]``, ``ra[k]``) and (``xb[k]``, ...) clash, by the test of
    :func:`circle_clashes`."""
    reach = ra + rb + gap
    dy = ya - yb
    if reach.size <= _MEASURE_ALL:
        return np.hypot(xa - xb, dy) < reach
    # hypot is never below either leg: only pairs within the reach along y are measured.
    near = np.flatnonzero(np.abs(dy) < reach)
    clash = np.zeros(reach.size, dtype=bool)
    clash[near] = np.hypot(xa[near] - xb[near], dy[near]) < reach[near]
    return clash


def _window(x: np.ndarray, radii: np.ndarray, largest: float, gap: float) -> np.ndarray:
    """Half-width along x that holds every circle of radius ``largest`` or less that may clash with these."""
    reach = radii + largest + gap
    return reach + _WINDOW_SLACK * (reach + np.abs(x))


def _sweep_between(
    centres_a: np.ndarray, radii_a: np.ndarray, centres_b: np.ndarray, radii_b: np.ndarray, gap: float, limit: int
) -> np.ndarray | None:
    """Indices into ``a`` of the circles that clash with some circle of ``b`` (sorted along x, each circle of ``a``
    measured against those within its reach along x); None when that is more than ``limit`` pairs."""
    if radii_a.size == 0 or radii_b.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(centres_b[:, 0], kind="stable")
    xb, yb, rb = centres_b[order, 0], centres_b[order, 1], radii_b[order]
    x = centres_a[:, 0]
    w = _window(x, radii_a, float(rb.max()), gap)
    runs = _runs(np.searchsorted(xb, x - w, side="left"), np.searchsorted(xb, x + w, side="right"), limit)
    if runs is None:
        return None
    a, b = runs
    return a[_clashing(x[a], centres_a[a, 1], radii_a[a], xb[b], yb[b], rb[b], gap)]


def _sweep_within(centres: np.ndarray, radii: np.ndarray, gap: float, limit: int) -> np.ndarray | None:
    """Index pairs ``(i, j)``, ``i < j``, of clashing circles of one set, in no particular order (sorted along x,
    each circle measured against those after it within its reach); None when that is more than ``limit`` pairs."""
    if radii.size < 2:
        return np.zeros((0, 2), dtype=np.int64)
    order = np.argsort(centres[:, 0], kind="stable")
    x, y, r = centres[order, 0], centres[order, 1], radii[order]
    w = _window(x, r, float(r.max()), gap)
    runs = _runs(np.arange(1, x.size + 1), np.searchsorted(x, x + w, side="right"), limit)
    if runs is None:
        return None
    a, b = runs
    clash = _clashing(x[a], y[a], r[a], x[b], y[b], r[b], gap)
    a, b = order[a[clash]], order[b[clash]]
    return np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)


def candidate_clashes(
    placed_centres: np.ndarray, placed_radii: np.ndarray, centres: np.ndarray, radii: np.ndarray, gap: float,
    should_stop: StopCheck | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Clashes of candidate circles with placed ones and among themselves (the test of :func:`circle_clashes`).

    A sweep along x while the circles' reaches hold few pairs (placement's rounds), else :func:`circle_clashes`;
    both find the same clashes.

    Parameters
    ----------
    placed_centres, placed_radii : the placed circles, shape (n, 2) and (n,) (clashes among them are not asked).
    centres, radii : the candidates, shape (m, 2) and (m,).
    gap : least clearance between two circles that do not clash, >= 0 (the unit of the centres and radii).
    should_stop : asked at least once; :class:`~.stopping.Interrupted` when it answers True.

    Returns
    -------
    blocked : bool per candidate: it clashes with a placed circle.
    pairs : int64, shape (k, 2), candidate index pairs ``(i, j)``, ``i < j``, that clash, in no particular order.
    """
    check(should_stop)
    n_old, m = placed_radii.size, radii.size
    limit = min(SWEEP_PAIRS_MIN + SWEEP_PAIRS_PER_CIRCLE * (n_old + m), SWEEP_PAIRS_MAX)
    blocked = np.zeros(m, dtype=bool)
    hit = _sweep_between(centres, radii, placed_centres, placed_radii, gap, limit)
    pairs = None if hit is None else _sweep_within(centres, radii, gap, limit)
    if hit is not None and pairs is not None:
        blocked[hit] = True
        return blocked, pairs
    found = circle_clashes(np.concatenate([placed_centres, centres]), np.concatenate([placed_radii, radii]), gap,
                           first_new=n_old, should_stop=should_stop)
    blocked[found[found[:, 0] < n_old, 1] - n_old] = True
    return blocked, found[found[:, 0] >= n_old] - n_old


def circle_clashes(
    centres: np.ndarray, radii: np.ndarray, gap: float, first_new: int = 0, should_stop: StopCheck | None = None
) -> np.ndarray:
    """Index pairs ``(i, j)``, ``i < j``, ``j >= first_new``, of circles closer than ``radii[i] + radii[j] + gap``.

    The distance is ``np.hypot`` of the centres' coordinate differences and the test is strict, so two circles exactly
    ``gap`` apart do not clash. Circles are grouped into size classes (radii within a factor ``SIZE_CLASS_RATIO``);
    every two classes are joined on a grid whose cell is the largest reach between them, so a few large circles do
    not make every small one search a wide neighbourhood: the work stays near the number of circles times their
    typical neighbours, however long the tail of the sizes. All joins are searched together, in passes of at most
    ``QUERIES_PER_PASS`` queries.

    Parameters
    ----------
    centres : shape (n, 2), centre coordinates (any unit, the same as ``radii`` and ``gap``).
    radii : shape (n,), radii, >= 0.
    gap : least clearance between two circles that do not clash, >= 0.
    first_new : only pairs with at least one circle from ``first_new`` on are wanted: placement asks about new
        candidates among many placed circles, whose clashes among themselves it never needs.
    should_stop : asked before each pass; :class:`~.stopping.Interrupted` when it answers True.

    Returns
    -------
    ndarray
        int64, shape (m, 2), sorted by ``i`` then ``j``.
    """
    n = radii.size
    first_new = max(int(first_new), 0)
    if n < 2 or first_new >= n:
        return np.zeros((0, 2), dtype=np.int64)
    smallest = max(float(radii.min()), float(radii.max()) * 1e-6, 1e-300)
    size_class = np.floor(np.log(np.maximum(radii, smallest) / smallest) / np.log(SIZE_CLASS_RATIO)).astype(np.int64)
    is_new = np.arange(n) >= first_new
    # Members of each class in index order (a stable sort by class keeps it within a class).
    by_class = np.argsort(size_class, kind="stable")
    classes, first = np.unique(size_class[by_class], return_index=True)
    members = dict(zip(classes.tolist(), np.split(by_class, first[1:]), strict=True))
    largest = dict(zip(classes.tolist(), np.maximum.reduceat(radii[by_class], first).tolist(), strict=True))
    joins: list[_Join] = []

    def join(targets: np.ndarray, queries: np.ndarray, reach: float, lower_targets_only: bool) -> None:
        if targets.size and queries.size:
            # A cell a hair wider than the reach, so that rounding in ``centre / cell`` cannot lose a pair at the reach.
            joins.append(_Join(targets, queries, reach * (1.0 + 1e-9), lower_targets_only))

    for a, in_a in members.items():
        new_a = in_a[is_new[in_a]]
        for b, in_b in members.items():
            if b < a:
                continue
            reach = largest[a] + largest[b] + gap
            if not reach > 0:
                reach = 1.0  # every radius and the gap are 0: only coincident centres clash, any cell finds them
            if a == b:  # new circles with the class's lower indices: old ones, and each new pair once, from its end
                join(in_a, new_a, reach, True)
            else:  # every pair between the two classes with a new circle in it, each met once
                join(in_a, in_b[is_new[in_b]], reach, False)
                join(in_b[~is_new[in_b]], new_a, reach, False)
    found_i, found_j = [], []
    while joins:
        check(should_stop)
        batch: list[_Join] = []
        queried = 0
        while joins and (not batch or queried + joins[0].queries.size <= QUERIES_PER_PASS):
            queried += joins[0].queries.size
            batch.append(joins.pop(0))
        t, q = _joined_candidates(centres, batch)
        found_i.append(np.minimum(t, q))
        found_j.append(np.maximum(t, q))
    if not found_i:
        return np.zeros((0, 2), dtype=np.int64)
    i, j = np.concatenate(found_i), np.concatenate(found_j)
    d = np.hypot(*(centres[i] - centres[j]).T)
    clash = d < radii[i] + radii[j] + gap
    pairs = np.stack([i[clash], j[clash]], axis=1)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))].astype(np.int64)
