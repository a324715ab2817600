"""The instrument data bar along the bottom of an SEM image: scale bar and acquisition labels on black."""

from __future__ import annotations

import cv2
import numpy as np

NICE_LENGTHS_UM = (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def scale_bar_um(width_px: int, pixel_size_um: float) -> float:
    """The longest round length (1-2-5 steps, µm) that fits into a fifth of the image width."""
    limit = 0.2 * width_px * pixel_size_um
    fitting = [v for v in NICE_LENGTHS_UM if v <= limit]
    return float(fitting[-1] if fitting else NICE_LENGTHS_UM[0])


def _length_label(length_um: float) -> str:
    return f"{length_um:g} um"  # Hershey fonts have no micro sign


def draw_data_bar(width_px: int, height_px: int, pixel_size_um: float) -> np.ndarray:
    """The data bar as a float32 grey array (0-1) of shape (height_px, width_px).

    Shows the detector (BSE), beam voltage, working distance, horizontal field width and a scale bar whose length
    in pixels is ``length_um / pixel_size_um``, rounded.
    """
    canvas = np.zeros((height_px, width_px), dtype=np.uint8)
    canvas[:2, :] = 200  # the bright rule that separates the bar from the micrograph
    font = cv2.FONT_HERSHEY_SIMPLEX
    text_scale = max(0.3, min(1.2, height_px / 60.0))
    thickness = max(1, int(round(text_scale * 1.6)))
    baseline_y = int(height_px * 0.68)
    field_um = width_px * pixel_size_um
    info = f"BSE  15.0 kV  WD 10.1 mm  HFW {field_um:.1f} um"
    cv2.putText(canvas, info, (int(0.02 * width_px), baseline_y), font, text_scale, (255,), thickness, cv2.LINE_AA)
    length_um = scale_bar_um(width_px, pixel_size_um)
    bar_px = int(round(length_um / pixel_size_um))
    x1 = width_px - int(0.03 * width_px)
    x0 = x1 - bar_px
    bar_y = int(height_px * 0.42)
    cv2.rectangle(canvas, (x0, bar_y), (x1, bar_y + max(2, height_px // 12)), (255,), -1)
    label = _length_label(length_um)
    (tw, _th), _ = cv2.getTextSize(label, font, text_scale, thickness)
    cv2.putText(canvas, label, (x0 + (bar_px - tw) // 2, int(height_px * 0.88)), font, text_scale, (255,),
                thickness, cv2.LINE_AA)
    return canvas.astype(np.float32) / 255.0
