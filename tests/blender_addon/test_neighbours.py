"""The numpy neighbourhood queries against brute force: running extrema at every position (edges included, odd and
even windows), the grid hash's pairs and the candidates' clashes (sweep and grid alike) against an O(n²) search."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.scene import neighbours
from blender_addon.scene.neighbours import (
    candidate_clashes,
    circle_clashes,
    pairs_within,
    sliding_max,
    sliding_min,
)
from blender_addon.scene.stopping import Interrupted


def _brute_extremum(values: np.ndarray, size: int, pick) -> np.ndarray:
    """Window i covers i - size//2 .. i - size//2 + size - 1, indices clamped to the ends (scipy's "nearest")."""
    n = values.size
    out = np.empty_like(values)
    for i in range(n):
        idx = np.clip(np.arange(i - size // 2, i - size // 2 + size), 0, n - 1)
        out[i] = pick(values[idx])
    return out


def _brute_pairs(points: np.ndarray, max_distance: float) -> np.ndarray:
    found = [(i, j) for i in range(len(points)) for j in range(i + 1, len(points))
             if np.hypot(*(points[i] - points[j])) <= max_distance]
    return np.array(found, dtype=np.int64).reshape(-1, 2)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8, 9, 30, 31, 57])
@pytest.mark.parametrize("n", [1, 2, 7, 40, 203])
def test_sliding_extrema_equal_brute_force_at_every_position(size: int, n: int) -> None:
    values = np.random.default_rng(size * 100 + n).normal(0.0, 3.0, n)
    np.testing.assert_array_equal(sliding_max(values, size), _brute_extremum(values, size, np.max))
    np.testing.assert_array_equal(sliding_min(values, size), _brute_extremum(values, size, np.min))


def test_even_windows_reach_one_sample_further_left() -> None:
    values = np.array([0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 0.0])
    # size 2 covers (i-1, i): the peak at 3 shows at 3 and 4; size 4 covers i-2 .. i+1: at 2 .. 5.
    np.testing.assert_array_equal(sliding_max(values, 2), [0, 0, 0, 9, 9, 0, 0])
    np.testing.assert_array_equal(sliding_max(values, 4), [0, 0, 9, 9, 9, 9, 0])


def test_sliding_extrema_repeat_the_end_samples() -> None:
    values = np.array([5.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(sliding_min(values, 5), [1, 1, 1, 1])
    np.testing.assert_array_equal(sliding_max(values, 3), [5, 5, 3, 3])  # not reflected: the end repeats itself
    np.testing.assert_array_equal(sliding_max(values, 99), [5, 5, 5, 5])


def test_sliding_extrema_equal_scipy_where_it_is_installed() -> None:
    ndimage = pytest.importorskip("scipy.ndimage")
    values = np.random.default_rng(3).normal(0.0, 1.0, 300)
    for size in (1, 2, 6, 7, 81, 400):
        np.testing.assert_array_equal(sliding_max(values, size), ndimage.maximum_filter1d(values, size, mode="nearest"))
        np.testing.assert_array_equal(sliding_min(values, size), ndimage.minimum_filter1d(values, size, mode="nearest"))


def test_sliding_extrema_refuse_an_empty_window() -> None:
    with pytest.raises(ValueError, match="size"):
        sliding_max(np.zeros(4), 0)


@pytest.mark.parametrize("seed", range(6))
def test_grid_hash_finds_exactly_the_brute_force_pairs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 250))
    # Clustered and spread points, negative coordinates, and exact duplicates.
    points = np.concatenate([rng.uniform(-20.0, 40.0, (n, 2)), rng.normal(5.0, 0.3, (n // 3, 2))])
    points = np.concatenate([points, points[:3]])
    for max_distance in (0.05, 0.7, 3.0, 100.0):
        np.testing.assert_array_equal(pairs_within(points, max_distance), _brute_pairs(points, max_distance))


@pytest.mark.parametrize("first_new", [0, 1, 37, 120, 400])
def test_grid_hash_from_a_first_new_point_finds_exactly_the_brute_force_pairs_that_reach_it(first_new: int) -> None:
    points = np.random.default_rng(first_new).uniform(0.0, 25.0, (300, 2))
    expected = _brute_pairs(points, 1.5)
    np.testing.assert_array_equal(pairs_within(points, 1.5, first_new), expected[expected[:, 1] >= first_new])


def test_grid_hash_counts_a_pair_exactly_at_the_distance_and_not_beyond() -> None:
    points = np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 4.0 + 1e-9], [10.0, 0.0]])
    np.testing.assert_array_equal(pairs_within(points, 5.0), [[0, 1], [1, 2]])


def test_grid_hash_equals_the_kd_tree_where_scipy_is_installed() -> None:
    spatial = pytest.importorskip("scipy.spatial")
    points = np.random.default_rng(9).uniform(0.0, 60.0, (2000, 2))
    expected = spatial.cKDTree(points).query_pairs(1.3, output_type="ndarray")
    expected = expected[np.lexsort((expected[:, 1], expected[:, 0]))]
    np.testing.assert_array_equal(pairs_within(points, 1.3), expected)


def test_grid_hash_of_fewer_than_two_points_is_empty() -> None:
    assert pairs_within(np.zeros((1, 2)), 1.0).shape == (0, 2)
    assert pairs_within(np.zeros((0, 2)), 1.0).shape == (0, 2)
    with pytest.raises(ValueError, match="max_distance"):
        pairs_within(np.zeros((3, 2)), 0.0)


def _brute_clashes(centres: np.ndarray, radii: np.ndarray, gap: float, first_new: int) -> np.ndarray:
    n = len(radii)
    found = [(i, j) for i in range(n) for j in range(max(i + 1, first_new), n)
             if np.hypot(*(centres[i] - centres[j])) < radii[i] + radii[j] + gap]
    return np.array(found, dtype=np.int64).reshape(-1, 2)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("first_new", [0, 150])
def test_circle_clashes_equal_brute_force_with_a_long_tail_of_sizes(seed: int, first_new: int) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.0, 40.0, (400, 2))
    radii = rng.lognormal(-1.0, 1.0, 400)  # sizes spanning several size classes, a few giants among them
    radii[rng.integers(0, 400, 5)] = 0.0  # points clash only within the gap
    got = circle_clashes(centres, radii, 0.15, first_new)
    np.testing.assert_array_equal(got, _brute_clashes(centres, radii, 0.15, first_new))
    assert len(got) > 50


def test_circles_exactly_gap_apart_do_not_clash() -> None:
    centres = np.array([[0.0, 0.0], [2.5, 0.0], [2.4, 3.0]])
    radii = np.array([1.0, 1.0, 0.1])
    np.testing.assert_array_equal(circle_clashes(centres, radii, 0.5), np.zeros((0, 2)))
    np.testing.assert_array_equal(circle_clashes(centres, radii, 0.5 + 1e-9), [[0, 1]])
    assert circle_clashes(np.zeros((1, 2)), np.ones(1), 0.1).shape == (0, 2)
    assert circle_clashes(np.zeros((4, 2)), np.zeros(4), 0.0).shape == (0, 2)  # nothing closer than 0
    assert circle_clashes(np.zeros((3, 2)), np.ones(3), 0.1, first_new=3).shape == (0, 2)


def test_circle_clashes_ask_the_stop_check_and_stop() -> None:
    rng = np.random.default_rng(0)
    centres, radii = rng.uniform(0.0, 10.0, (50, 2)), rng.uniform(0.1, 1.0, 50)
    asked: list[int] = []

    def never() -> bool:
        asked.append(1)
        return False

    circle_clashes(centres, radii, 0.1, should_stop=never)
    assert asked
    with pytest.raises(Interrupted):
        circle_clashes(centres, radii, 0.1, should_stop=lambda: True)


def _spy_on_grids(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the calls of the grid search (it still runs)."""
    calls: list[int] = []
    grid = neighbours.circle_clashes

    def counted(*args, **kwargs):
        calls.append(1)
        return grid(*args, **kwargs)

    monkeypatch.setattr(neighbours, "circle_clashes", counted)
    return calls


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("giants", [0, 6])
def test_candidate_clashes_equal_brute_force_by_sweep_and_by_grid(
    seed: int, giants: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.0, 60.0, (700, 2))
    centres[rng.integers(0, 700, 20)] = centres[0]  # equal x (and y): ties in the sweep's order
    radii = rng.lognormal(-1.0, 0.5, 700)
    radii[rng.integers(0, 700, 5)] = 0.0
    n_old = 300
    radii[rng.integers(n_old, 700, giants)] = 60.0  # giants widen every sweep window: the grids take over
    grids = _spy_on_grids(monkeypatch)
    blocked, pairs = candidate_clashes(centres[:n_old], radii[:n_old], centres[n_old:], radii[n_old:], 0.15)
    assert len(grids) == (1 if giants else 0)
    brute = _brute_clashes(centres, radii, 0.15, n_old)
    expected_blocked = np.zeros(700 - n_old, dtype=bool)
    expected_blocked[brute[brute[:, 0] < n_old, 1] - n_old] = True
    np.testing.assert_array_equal(blocked, expected_blocked)
    got = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    np.testing.assert_array_equal(got, brute[brute[:, 0] >= n_old] - n_old)
    assert 0 < blocked.sum() < blocked.size and len(pairs) > 20


def test_too_many_pairs_for_one_sweep_go_to_the_grids(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(9)
    centres, radii = rng.uniform(0.0, 30.0, (300, 2)), rng.lognormal(-1.0, 0.5, 300)
    swept = candidate_clashes(centres[:100], radii[:100], centres[100:], radii[100:], 0.15)
    monkeypatch.setattr(neighbours, "SWEEP_PAIRS_MAX", 100)  # as a huge frame's round would hold
    grids = _spy_on_grids(monkeypatch)
    gridded = candidate_clashes(centres[:100], radii[:100], centres[100:], radii[100:], 0.15)
    assert len(grids) == 1
    np.testing.assert_array_equal(gridded[0], swept[0])
    np.testing.assert_array_equal(gridded[1], swept[1][np.lexsort((swept[1][:, 1], swept[1][:, 0]))])
    assert swept[0].any() and len(swept[1]) > 5


def test_candidates_exactly_gap_apart_do_not_clash() -> None:
    placed, placed_r = np.array([[0.0, 0.0]]), np.array([1.0])
    centres, radii = np.array([[2.5, 0.0], [2.5, 3.5], [0.0, 3.5]]), np.array([1.0, 2.0, 0.0])
    blocked, pairs = candidate_clashes(placed, placed_r, centres, radii, 0.5)
    np.testing.assert_array_equal(blocked, [False, False, False])
    assert pairs.shape == (0, 2)
    blocked, pairs = candidate_clashes(placed, placed_r, centres, radii, 0.5 + 1e-9)
    np.testing.assert_array_equal(blocked, [True, False, False])
    np.testing.assert_array_equal(pairs[np.argsort(pairs[:, 0])], [[0, 1], [1, 2]])
    empty = np.zeros((0, 2)), np.zeros(0)
    assert candidate_clashes(*empty, *empty, 0.1)[1].shape == (0, 2)
    assert candidate_clashes(*empty, centres[:1], radii[:1], 0.1)[0].tolist() == [False]


def test_candidate_clashes_ask_the_stop_check() -> None:
    with pytest.raises(Interrupted):
        candidate_clashes(np.zeros((0, 2)), np.zeros(0), np.zeros((3, 2)), np.ones(3), 0.1, should_stop=lambda: True)
