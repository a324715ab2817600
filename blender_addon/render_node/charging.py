"""Charging streaks: the insulating mounting resin charges under the beam, and a scan line that crosses a resin edge
carries a bright or dark streak from it along the scan, fading as the charge's effect on the beam and the detector
dies away.

A streak starts at every pixel where the class along the line changes between resin (background) and anything else
(in or out of the resin), adds ``a_r x min(1, sum of exp(-(c - c_edge) / length))`` to the rest of the line (the
sum over the line's edges at or before ``c``) and is drawn on a share of the lines that cross an edge, each with its
own amplitude ``a_r`` (normal, standard deviation ``amplitude``: bright or dark). Computed after the probe blur (the
streak is the beam's and detector's, not the specimen's) on the lines that carry one only.
"""

from __future__ import annotations

import cv2
import numpy as np

from semcoat import classes

# The streak's kernel runs this many decay lengths (exp(-5) < 1 %).
KERNEL_LENGTHS = 5.0


def charging_streaks(
    mask: np.ndarray, amplitude: float, length_px: float, line_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray] | None:
    """The streaks to add: ``(rows, values)``, the indices of the lines that carry one and their float32 values
    (``len(rows)`` x columns); None when no line does (nothing is drawn when ``amplitude`` or ``line_fraction`` is 0).

    Parameters
    ----------
    mask : uint8 class ids of the image (rows, columns), as the beam scanned it.
    amplitude : standard deviation of a streak's strength at its start, full scale 1.
    length_px : distance along the line over which a streak fades to 1/e, px.
    line_fraction : share of the lines crossing a resin edge that carry a streak.
    rng : the streaks' own stream.
    """
    if amplitude <= 0 or line_fraction <= 0:
        return None
    resin = mask == classes.BACKGROUND
    edges = np.zeros(mask.shape, np.float32)
    edges[:, 1:] = resin[:, 1:] != resin[:, :-1]
    crossing = np.flatnonzero(edges.any(axis=1))
    if crossing.size == 0:
        return None
    chosen = rng.uniform(0.0, 1.0, crossing.size) < line_fraction
    strength = rng.normal(0.0, amplitude, crossing.size).astype(np.float32)
    rows = crossing[chosen]
    if rows.size == 0:
        return None
    taps = max(2, int(np.ceil(KERNEL_LENGTHS * length_px)) + 1)
    # cv2 correlates with the kernel around its anchor: the last tap on the pixel itself makes the filter causal,
    # each edge feeding the pixels after it along the scan.
    kernel = np.exp(-np.arange(taps - 1, -1, -1, dtype=np.float32) / np.float32(length_px))[None, :]
    fed = cv2.filter2D(edges[rows], -1, kernel, anchor=(taps - 1, 0), borderType=cv2.BORDER_CONSTANT)
    values = strength[chosen][:, None] * np.minimum(fed, np.float32(1.0))
    return rows, values.astype(np.float32)
