"""Wide Gaussian blurs at a reduced resolution: a blur several pixels wide is smooth at that scale, so it is computed
on the image shrunk by area averaging and enlarged by linear interpolation, deterministically, in a fraction of the
time of a full-size blur (the probe's halo, the rounded top edge's defocus)."""

from __future__ import annotations

import cv2
import numpy as np

# (least sigma px, shrink factor, variance px^2 that the area average and the linear enlargement add, measured on
# impulses): a blur of sigma >= 9 px is computed at a quarter of the resolution, one of sigma >= 3 px at half; the
# shrunk image's blur is narrowed by the added variance, so the whole is the asked sigma to within 1 %. A pixel's
# light lands centred on its shrunk pixel, up to k / 2 px (a sixth of sigma at most) from its own centre.
SHRINK_STEPS = ((9.0, 4, 2.7), (3.0, 2, 0.75))


def shrink_factor(sigma_px: float, shape: tuple[int, int]) -> int:
    """The factor the image of ``shape`` (rows, columns) is shrunk by to blur it with ``sigma_px`` (1: not shrunk;
    an image under 4 shrunk pixels across is not shrunk)."""
    for min_sigma, factor, _ in SHRINK_STEPS:
        if sigma_px >= min_sigma and min(shape) >= 4 * factor:
            return factor
    return 1


def wide_blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """``image`` (float32, rows x columns) through a Gaussian of ``sigma_px`` (mirrored border), float32, at the
    resolution :func:`shrink_factor` picks."""
    rows, cols = image.shape
    k = shrink_factor(sigma_px, (rows, cols))
    if k == 1:
        return cv2.GaussianBlur(image, (0, 0), sigma_px, borderType=cv2.BORDER_REFLECT)
    added = next(var for _, factor, var in SHRINK_STEPS if factor == k)
    small = cv2.resize(image, (cols // k, rows // k), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), float(np.sqrt(sigma_px**2 - added)) / k, borderType=cv2.BORDER_REFLECT)
    return np.asarray(cv2.resize(small, (cols, rows), interpolation=cv2.INTER_LINEAR), np.float32)
