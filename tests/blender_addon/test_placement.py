"""The clash test of inclusion placement: a candidate is kept exactly when its circle keeps the gap to every placed
circle and to every earlier kept candidate (brute-force greedy reference); the stop check abandons placement and
changes nothing when it never answers True."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.scene.geometry import build_geometry
from blender_addon.scene.placement import PlacedCircles, first_in_draw_order
from blender_addon.scene.stopping import Interrupted
from tests.blender_addon.specs import small_batch


def _greedy(placed_c, placed_r, cand_c, cand_r, gap):
    kept_c, kept_r, ok = list(placed_c), list(placed_r), []
    for c, r in zip(cand_c, cand_r, strict=True):
        free = all(np.hypot(*(c - kc)) >= r + kr + gap for kc, kr in zip(kept_c, kept_r, strict=True))
        ok.append(free)
        if free:
            kept_c.append(c)
            kept_r.append(r)
    return np.array(ok)


@pytest.mark.parametrize("seed", range(8))
def test_free_keeps_exactly_the_greedy_choice(seed: int) -> None:
    rng = np.random.default_rng(seed)
    placed = PlacedCircles()
    old_c, old_r = rng.uniform(0.0, 30.0, (40, 2)), rng.uniform(0.1, 1.0, 40)
    keep = _greedy([], [], old_c, old_r, 0.15)
    placed.add(old_c[keep], old_r[keep])
    cand_c, cand_r = rng.uniform(0.0, 30.0, (300, 2)), rng.lognormal(-1.0, 0.6, 300)
    ok = placed.free(cand_c, cand_r, 0.15)
    expected = _greedy(list(old_c[keep]), list(old_r[keep]), cand_c, cand_r, 0.15)
    assert 0 < ok.sum() < ok.size  # the case tests both outcomes
    np.testing.assert_array_equal(ok, expected)


def _first_in_order_loop(eligible: np.ndarray, clashes: np.ndarray) -> np.ndarray:
    ok = eligible.copy()
    for i, j in clashes[np.lexsort((clashes[:, 0], clashes[:, 1]))]:
        if ok[i] and ok[j]:
            ok[j] = False
    return ok


@pytest.mark.parametrize("seed", range(6))
def test_rounds_keep_what_a_pass_in_draw_order_keeps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 2000
    i = rng.integers(0, n, 12000)
    j = rng.integers(0, n, 12000)
    pairs = np.unique(np.stack([np.minimum(i, j), np.maximum(i, j)], 1)[i != j], axis=0)
    eligible = rng.random(n) > 0.2
    np.testing.assert_array_equal(first_in_draw_order(eligible, pairs), _first_in_order_loop(eligible, pairs))


def test_the_geometry_is_the_same_with_a_stop_check_that_never_stops() -> None:
    spec = small_batch(count=1, pores={"area_fraction_pct": 12.0}).sample(0)
    asked: list[int] = []

    def never() -> bool:
        asked.append(1)
        return False

    plain = build_geometry(spec, np.random.default_rng(4), 3)
    checked = build_geometry(spec, np.random.default_rng(4), 3, should_stop=never)
    assert len(asked) > 12  # every placement round at least
    for name in ("x_um", "surface_um", "fe2al5_bottom_um", "feal_bottom_um"):
        np.testing.assert_array_equal(getattr(plain, name), getattr(checked, name))
    for name in ("pores", "line_pores", "precipitates"):
        np.testing.assert_array_equal(getattr(plain, name).polygons_um, getattr(checked, name).polygons_um)
    assert plain.designed == checked.designed


@pytest.mark.parametrize("stop_after", [0, 1, 5, 20])
def test_a_stop_request_abandons_the_geometry(stop_after: int) -> None:
    spec = small_batch(count=1, pores={"area_fraction_pct": 12.0}).sample(0)
    asked: list[int] = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > stop_after

    with pytest.raises(Interrupted):
        build_geometry(spec, np.random.default_rng(4), 3, should_stop=should_stop)
    assert len(asked) == stop_after + 1  # it stops at the first check that answers True
