"""Shot noise: the Poisson law's mean, variance and skewness at every mean count, exact counts below the bound."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.render_node.sem_image import EXACT_POISSON_BELOW, normal_deviates, shot_noise

DOSE = 100.0
PIXELS = (500, 800)  # 400 000 draws per mean count


def _counts(mean_count: float, seed: int = 0) -> np.ndarray:
    grey = np.full(PIXELS, mean_count / DOSE, np.float32)
    return shot_noise(grey, DOSE, np.random.default_rng(seed)).astype(np.float64).ravel() * DOSE


@pytest.mark.parametrize("mean_count", [0.5, 3.0, 9.5, 10.0, 14.0, 40.0, 300.0, 5000.0])
def test_mean_variance_and_skewness_are_the_poisson_laws(mean_count: float) -> None:
    lam = float(np.float32(mean_count / DOSE)) * DOSE  # the mean the float32 grey holds
    x = _counts(mean_count)
    n = x.size
    # Each within 5 standard errors of its estimate (mean: sqrt(lam / n); variance: ~lam sqrt(2 / n); skewness:
    # sqrt(6 / n)), so the test fails on a wrong law, not on a draw.
    assert abs(x.mean() - lam) < 5 * np.sqrt(lam / n)
    assert abs(x.var() / lam - 1.0) < 5 * np.sqrt((2.0 + 1.0 / lam) / n)
    skew = ((x - x.mean()) ** 3).mean() / x.var() ** 1.5
    assert abs(skew - 1.0 / np.sqrt(lam)) < 5 * np.sqrt(6.0 / n)


def test_below_the_bound_the_counts_are_whole_poisson_counts() -> None:
    lam = 2.0
    x = _counts(lam, seed=1)
    assert np.all(np.abs(x - np.rint(x)) < 1e-3)  # whole electrons (float32 greys of count / dose)
    zeros = np.mean(np.rint(x) == 0)
    assert abs(zeros - np.exp(-lam)) < 5 * np.sqrt(np.exp(-lam) / x.size)
    # Above the bound the deviates are continuous: far more distinct values than counts within a few sd.
    above = _counts(4 * EXACT_POISSON_BELOW, seed=2)
    assert np.unique(above).size > 1000


def test_the_same_stream_gives_the_same_noise_and_dark_pixels_stay_dark() -> None:
    rng = np.random.default_rng(5)
    grey = rng.uniform(-0.05, 1.2, (300, 257)).astype(np.float32)  # mean counts 0 to 120 across the bound
    a = shot_noise(grey, DOSE, np.random.default_rng(9))
    b = shot_noise(grey, DOSE, np.random.default_rng(9))
    assert a.dtype == np.float32 and a.shape == grey.shape
    assert np.array_equal(a, b)
    assert np.all(a[grey <= 0] == 0.0)  # no electrons, no noise
    assert not np.array_equal(a, shot_noise(grey, DOSE, np.random.default_rng(10)))


@pytest.mark.parametrize(("mean_count", "detector_std"), [(3.0, 0.02), (40.0, 0.05), (300.0, 0.1), (5000.0, 0.3)])
def test_with_the_detectors_noise_the_moments_are_those_of_the_count_plus_a_gaussian(
    mean_count: float, detector_std: float
) -> None:
    lam = float(np.float32(mean_count / DOSE)) * DOSE
    grey = np.full(PIXELS, mean_count / DOSE, np.float32)
    x = shot_noise(grey, DOSE, np.random.default_rng(3), detector_std=detector_std).astype(np.float64).ravel() * DOSE
    n = x.size
    var = lam + (detector_std * DOSE) ** 2  # counts^2: the Poisson law's plus the Gaussian's
    assert abs(x.mean() - lam) < 5 * np.sqrt(var / n)
    assert abs(x.var() / var - 1.0) < 5 * np.sqrt(2.0 / n) * 1.5
    skew = ((x - x.mean()) ** 3).mean() / x.var() ** 1.5
    assert abs(skew - lam / var**1.5) < 5 * np.sqrt(6.0 / n)  # the third cumulant is the count's alone


def test_the_normal_deviates_follow_the_normal_law() -> None:
    z = normal_deviates(np.random.default_rng(4), (1000, 1000)).astype(np.float64).ravel()
    assert z.dtype == np.float64 and z.size == 1_000_000
    n = z.size
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.var() - 1.0) < 5 * np.sqrt(2.0 / n)
    assert abs((z**3).mean()) < 5 * np.sqrt(15.0 / n)
    assert abs((z**4).mean() - 3.0) < 5 * np.sqrt(96.0 / n)
    # The distribution function at a few points, within 5 standard errors of the law's.
    for x, p in ((-2.0, 0.02275), (-1.0, 0.15866), (0.0, 0.5), (0.5, 0.69146), (1.5, 0.93319), (3.0, 0.99865)):
        assert abs(np.mean(z <= x) - p) < 5 * np.sqrt(p * (1 - p) / n)
    assert np.abs(z).max() < 4.4  # the table's last quantile
    again = normal_deviates(np.random.default_rng(4), (1000, 1000)).astype(np.float64).ravel()
    assert np.array_equal(z, again)
