"""Wide blurs at a reduced resolution keep the asked Gaussian: its width, its total and its shape."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from blender_addon.render_node.blur import shrink_factor, wide_blur

SIZE = 300  # a whole number of shrunk pixels


@pytest.mark.parametrize("sigma_px", [1.5, 3.0, 4.5, 9.0, 20.0])
@pytest.mark.parametrize("offset", [0, 1, 3])
def test_an_impulse_spreads_into_the_asked_gaussian(sigma_px: float, offset: int) -> None:
    impulse = np.zeros((SIZE, SIZE), np.float32)
    centre = SIZE // 2 + offset
    impulse[centre, centre] = 1.0
    out = wide_blur(impulse, sigma_px)
    assert out.dtype == np.float32 and out.shape == impulse.shape
    assert float(out.sum()) == pytest.approx(1.0, abs=1e-4)
    k = shrink_factor(sigma_px, impulse.shape)
    r = np.arange(SIZE)
    means = []
    for profile in (out.sum(axis=1), out.sum(axis=0)):
        mean = float((profile * r).sum())
        assert abs(mean - centre) <= k / 2 + 0.02  # centred on its shrunk pixel
        assert np.sqrt((profile * (r - mean) ** 2).sum()) == pytest.approx(sigma_px, rel=0.01)
        means.append(mean)
    # The Gaussian's shape around that centre, not only its width.
    gy, gx = (np.exp(-0.5 * ((r - m) / sigma_px) ** 2) for m in means)
    gaussian = np.outer(gy, gx) / (2 * np.pi * sigma_px**2)
    assert np.abs(out - gaussian).max() < 0.03 * gaussian.max()


def test_only_wide_blurs_of_large_enough_images_are_shrunk() -> None:
    assert shrink_factor(2.9, (500, 500)) == 1
    assert shrink_factor(3.0, (500, 500)) == 2
    assert shrink_factor(9.0, (500, 500)) == 4
    assert shrink_factor(9.0, (12, 500)) == 2  # 12 rows: three at a quarter, too few
    image = np.random.default_rng(0).random((7, 40)).astype(np.float32)
    assert np.array_equal(wide_blur(image, 8.0), cv2.GaussianBlur(image, (0, 0), 8.0, borderType=cv2.BORDER_REFLECT))
