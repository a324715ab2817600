"""The clash test of inclusion placement: a candidate is kept exactly when its circle keeps the gap to every placed
circle and to every earlier kept candidate (brute-force greedy reference)."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.scene.placement import PlacedCircles


def _greedy(placed_c, placed_r, cand_c, cand_r, gap):  # type: ignore[no-untyped-def]
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
