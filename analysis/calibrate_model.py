"""What calibration assumes about how a micrograph is formed: the render node's image model, read backwards.

The estimators of ``semcoat spec calibrate`` invert the image formation of ``blender_addon/render_node/sem_image.py``
(the analysis part does not import the render node: these constants mirror it, and
``tests/analysis/test_calibrate_model.py`` checks them against it, so a change there fails a test here).

In display units ``y`` (0-1) with contrast 1 and brightness 0, a pixel of a flat phase of grey ``g`` is::

    y = g * texture * shading(x, y)          (probe blur: a Gaussian core plus a wide halo, at edges)
        + shot noise       variance SHOT_VARIANCE_FACTOR * y / dose
        + detector noise   variance DETECTOR_VARIANCE_FACTOR * detector_noise_std**2
        + quantisation     variance step**2 / 12

Contrast and brightness cannot be told apart from the grey levels and the dose in one image (a gain scales the greys
and the noise alike), so calibration estimates *display* greys and writes them with contrast 1 and brightness 0:
renders of that spec have the measured means and the measured noise at every grey.
"""

from __future__ import annotations

import numpy as np

from semcoat.errors import SemcoatError

FWHM_PER_SIGMA = float(2.0 * np.sqrt(2.0 * np.log(2.0)))

# The scan bandwidth: a [0.2, 0.6, 0.2] filter along each line after the shot and detector noise. It leaves the sum
# of its squared weights of a white noise's variance ...
SCAN_BANDWIDTH_KERNEL = (0.2, 0.6, 0.2)
SHOT_VARIANCE_FACTOR = float(sum(w * w for w in SCAN_BANDWIDTH_KERNEL))
DETECTOR_VARIANCE_FACTOR = SHOT_VARIANCE_FACTOR
# ... and widens an edge along the line by the variance of its taps (px^2).
BANDWIDTH_VARIANCE_PX2 = float(sum(w * (k - 1) ** 2 for k, w in enumerate(SCAN_BANDWIDTH_KERNEL)))

# Width (sigma, px) of the bright rim the topographic edge effect puts on solid material next to a void; its peak is
# ``edge_brightening`` before the probe blur.
RIM_SIGMA_PX = 0.9


class EstimateError(SemcoatError):
    """One estimate an image does not allow (no flat region, no usable edge, no coating): the message says which
    estimate and why; the other estimates of the image go on."""


def shading_basis(rows: np.ndarray, cols: np.ndarray, frame_rows: int, frame_cols: int) -> np.ndarray:
    """The detector shading's terms at pixel positions, shape (n, 4): x, y, x^2, y^2 over the frame's [-1, 1] grid,
    each with its mean over the whole frame removed (the model's ramp is a tilted plane plus a bowl, mean 1).

    Parameters
    ----------
    rows, cols : pixel coordinates (float), in the full frame (data bar rows included: the ramp spans them).
    frame_rows, frame_cols : size of the full frame, px.
    """
    x = -1.0 + 2.0 * np.asarray(cols, np.float64) / max(frame_cols - 1, 1)
    y = -1.0 + 2.0 * np.asarray(rows, np.float64) / max(frame_rows - 1, 1)
    mean_x2 = float(np.mean(np.linspace(-1.0, 1.0, frame_cols) ** 2))
    mean_y2 = float(np.mean(np.linspace(-1.0, 1.0, frame_rows) ** 2))
    return np.stack([x, y, x * x - mean_x2, y * y - mean_y2], axis=-1)
