"""Ground truth of one rendered image: the contract's measurements, computed from the exact mask.

The measurement definitions belong to the analysis package (:func:`analysis.measure.measure`); the renderer calls it
on the mask it writes, so the truth of a dataset and the analysis of a predicted mask can never disagree on a
definition.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from analysis.measure import measure


def ground_truth(mask: np.ndarray, pixel_size_um: float) -> dict[str, Any]:
    """Every measurement of ``semcoat.dataset.MEASUREMENT_NAMES`` for ``mask`` (µm, %, booleans; None if undefined).

    Parameters
    ----------
    mask : uint8 class ids, shape (rows, columns), surface at the top (data bar rows are class 0).
    pixel_size_um : edge length of one pixel, µm.
    """
    return measure(mask, pixel_size_um).as_dict()
