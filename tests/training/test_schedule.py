"""The learning-rate schedule: linear warm-up, then cosine decay to 1 %, by steps or by the time limit's share."""

from __future__ import annotations

import pytest

from training.module import LR_FLOOR, lr_factor


def test_step_schedule_warms_up_then_decays_to_the_floor() -> None:
    assert lr_factor(0, 1000, 50) == pytest.approx(1 / 50)
    assert lr_factor(24, 1000, 50) == pytest.approx(0.5)
    assert lr_factor(50, 1000, 50) == pytest.approx(1.0)
    assert lr_factor(525, 1000, 50) == pytest.approx(LR_FLOOR + (1 - LR_FLOOR) * 0.5)  # half way down
    assert lr_factor(1000, 1000, 50) == pytest.approx(LR_FLOOR)
    assert lr_factor(5000, 1000, 50) == pytest.approx(LR_FLOOR)
    assert lr_factor(0, 1000, 0) == pytest.approx(1.0)  # no warm-up


def test_a_short_timed_run_ends_its_warm_up_by_the_clock_and_decays_fully() -> None:
    # A 3-minute run makes ~100 steps where its step budget says thousands: 30 warm-up steps would be a third of it.
    total, warm = 12_800, 30
    assert lr_factor(5, total, warm, time_fraction=0.05) == pytest.approx(0.5)  # half the warm-up share of time
    assert lr_factor(12, total, warm, time_fraction=0.1) == pytest.approx(1.0)  # warm after 10 % of the time
    assert lr_factor(55, total, warm, time_fraction=0.55) == pytest.approx(LR_FLOOR + (1 - LR_FLOOR) * 0.5)
    assert lr_factor(99, total, warm, time_fraction=1.0) == pytest.approx(LR_FLOOR)
    factors = [lr_factor(s, total, warm, time_fraction=s / 100) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(factors, factors[1:], strict=False))  # it only decays after the warm-up
