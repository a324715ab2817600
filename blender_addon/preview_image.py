"""The preview's SEM image formation, numpy only (Blender's Python has neither SciPy nor OpenCV).

The mask follows the render node's rules exactly (``render_node/sem_image.py``): the same scan-line shifts from the
same random stream, the mask read at the nearest rendered pixel, the data-bar rows set to background. So the preview's
mask of image ``i`` equals the mask the cluster writes for image ``i`` (a test compares them). The grey image is a
faithful sketch: edge brightening, Gaussian probe, shot and detector noise, scan bandwidth, brightness and contrast,
a plain data bar; it leaves out the specimen's grain texture, depth gradient, scratches and detector shading, which
the render node adds with OpenCV.
"""

from __future__ import annotations

import numpy as np

from semcoat import classes
from semcoat.spec import ImagingSpec

# The render node's random streams of one image (``render_node/batch_render.py``): np.random.default_rng([seed, k]).
GEOMETRY_STREAM, NOISE_STREAM = 0, 2
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
EDGE_SIGMA_PX = 0.9
SCAN_BANDWIDTH_KERNEL = np.array([0.2, 0.6, 0.2], dtype=np.float32)


def scan_margin_px(imaging: ImagingSpec) -> int:
    """Columns drawn on each side of the image so that every shifted scan line stays inside the frame."""
    return int(np.ceil(abs(imaging.drift_px)
                       + 6.0 * imaging.scan_line_jitter_px * float(np.sqrt(imaging.frame_count)))) + 2


def line_shifts_px(imaging: ImagingSpec, height_px: int, margin_px: int, rng: np.random.Generator) -> np.ndarray:
    """Horizontal beam offset of each scan line, px: Gaussian jitter plus a linear drift, limited to the margin."""
    jitter = rng.normal(0.0, 1.0, height_px) * imaging.scan_line_jitter_px
    drift = imaging.drift_px * np.linspace(0.0, 1.0, height_px)
    limit = margin_px - 1.0
    return np.clip(jitter + drift, -limit, limit)


def apply_line_shifts(signal: np.ndarray, mask: np.ndarray, shifts_px: np.ndarray,
                      margin_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Read each image line from the wider frame at ``c + shift``: the signal interpolated, the mask nearest."""
    height, frame_w = mask.shape
    width = frame_w - 2 * margin_px
    pos = np.arange(width, dtype=np.float64)[None, :] + margin_px + shifts_px[:, None]
    left = np.floor(pos).astype(np.intp)
    frac = (pos - left).astype(np.float32)
    rows = np.arange(height)[:, None]
    out_signal = (1.0 - frac) * signal[rows, left] + frac * signal[rows, left + 1]
    return out_signal.astype(np.float32), mask[rows, np.rint(pos).astype(np.intp)]


def _gaussian_kernel(sigma_px: float) -> np.ndarray:
    radius = max(1, int(np.ceil(4.0 * sigma_px)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma_px) ** 2)
    return (kernel / kernel.sum()).astype(np.float32)


def _convolve_rows(image: np.ndarray, kernel: np.ndarray, mode: str = "symmetric") -> np.ndarray:
    """Convolve every row with a symmetric 1-D kernel; ``mode`` is np.pad's ("symmetric" is OpenCV's
    BORDER_REFLECT, "reflect" its default BORDER_REFLECT_101)."""
    radius = len(kernel) // 2
    padded = np.pad(image, ((0, 0), (radius, radius)), mode=mode)  # type: ignore[call-overload]
    out = np.zeros_like(image, dtype=np.float32)
    for k, weight in enumerate(kernel):
        out += weight * padded[:, k:k + image.shape[1]]
    return out


def gaussian_blur(image: np.ndarray, sigma_px: float, mode: str = "symmetric") -> np.ndarray:
    """Separable Gaussian blur of standard deviation ``sigma_px`` (0: unchanged); ``mode`` as np.pad's."""
    if sigma_px <= 0:
        return image.astype(np.float32)
    kernel = _gaussian_kernel(sigma_px)
    return _convolve_rows(_convolve_rows(image, kernel, mode).T, kernel, mode).T


def edge_map(mask: np.ndarray) -> np.ndarray:
    """Bright rims on solid material next to a void (pore, crack or resin), 0-1 (the topographic edge effect)."""
    void = (mask == classes.PORE) | (mask == classes.BACKGROUND) | (mask == classes.CRACK)
    padded = np.pad(void, 1, mode="edge")
    near = np.zeros_like(void)
    for dy in range(3):
        for dx in range(3):
            near |= padded[dy:dy + void.shape[0], dx:dx + void.shape[1]]
    rim = (near & ~void).astype(np.float32)
    return gaussian_blur(rim, EDGE_SIGMA_PX, "reflect") * np.float32((2.0 * np.pi * EDGE_SIGMA_PX**2) ** 0.5)


def form_preview(signal: np.ndarray, mask: np.ndarray, imaging: ImagingSpec, margin_px: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The preview image (float32 grey, 0-1) and its mask (uint8 class ids), both (height_px, width_px).

    Parameters
    ----------
    signal, mask : the rendered frame, (height, width + 2 * margin_px): the phase grey at each pixel centre and its
        class id.
    imaging : the virtual microscope.
    margin_px : columns drawn on each side (:func:`scan_margin_px`).
    rng : the image's noise stream, ``np.random.default_rng([image_seed, NOISE_STREAM])`` as on the render node.
    """
    shifts = line_shifts_px(imaging, mask.shape[0], margin_px, rng)
    sig, out_mask = apply_line_shifts(signal, mask, shifts, margin_px)
    if imaging.edge_brightening > 0:
        sig = sig + np.float32(imaging.edge_brightening) * edge_map(out_mask)
    p = imaging.pixel_size_um
    core = gaussian_blur(sig, imaging.probe_fwhm_um / p / FWHM_PER_SIGMA)
    if imaging.probe_halo_fraction > 0:
        halo = gaussian_blur(sig, imaging.probe_halo_fwhm_um / p / FWHM_PER_SIGMA)
        core = np.float32(1.0 - imaging.probe_halo_fraction) * core + np.float32(imaging.probe_halo_fraction) * halo
    sig = core
    expected = np.clip(sig, 0.0, None).astype(np.float64) * imaging.dose_electrons_per_px
    sig = (rng.poisson(expected) / imaging.dose_electrons_per_px).astype(np.float32)
    sig = sig + rng.standard_normal(sig.shape, dtype=np.float32) * np.float32(imaging.detector_noise_std)
    sig = _convolve_rows(sig, SCAN_BANDWIDTH_KERNEL)
    sig = (sig - np.float32(0.5)) * np.float32(imaging.contrast) + np.float32(0.5 + imaging.brightness)
    if imaging.data_bar:
        rows = imaging.data_bar_height_px
        bar = np.full((rows, sig.shape[1]), 0.08, np.float32)
        length = max(1, sig.shape[1] // 5)
        bar[rows // 2 - 1: rows // 2 + 2, 16:16 + length] = 1.0  # a scale bar (the render node also writes its label)
        sig[-rows:] = bar
        out_mask[-rows:] = classes.BACKGROUND
    return np.clip(sig, 0.0, 1.0), out_mask


CLASS_COLOURS = {
    classes.BACKGROUND: (0.05, 0.05, 0.08), classes.FE2AL5: (0.20, 0.55, 0.85), classes.FEAL: (0.95, 0.70, 0.20),
    classes.SUBSTRATE: (0.55, 0.55, 0.55), classes.PORE: (0.90, 0.15, 0.15), classes.PRECIPITATE: (0.25, 0.85, 0.35),
    classes.CRACK: (0.92, 0.35, 0.92),
}


def mask_colours(mask: np.ndarray) -> np.ndarray:
    """An RGB picture (float32, 0-1, shape (h, w, 3)) of a class mask, one colour per class."""
    palette = np.zeros((256, 3), np.float32)
    for class_id, colour in CLASS_COLOURS.items():
        palette[class_id] = colour
    return palette[mask]
