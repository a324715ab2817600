"""What the scan adds to an SEM image besides shot and detector noise: frame averaging, line-correlated noise and JPEG
saving. Pure numpy/OpenCV functions of float32 frames; :mod:`sem_image` calls them in order.

Frame averaging. A microscope averaging ``N`` frames of ``dose / N`` electrons per pixel each scans every line ``N``
times, each time with its own jitter. The final image's line ``r`` is read at a mean offset ``s_r`` (the shift the
mask follows, drawn as for a single frame) and frame ``k`` at ``s_r + d_rk``: the ``d_rk`` are drawn with the
per-frame jitter ``j sqrt(N)`` (``j``: the jitter of the final image's lines) and centred over the frames, which is
exactly the joint law of ``N`` independent jittered scans whose mean is ``s_r``. The averaged signal is the mean of the
``N`` interpolated lines: edges smear along the scan by the per-frame jitter. The shot noise of the sum of ``N``
Poisson counts is the Poisson count of the summed mean, so one draw at the final image's dose is exact and the noise
parameters keep meaning the noise of the final image.
"""

from __future__ import annotations

import cv2
import numpy as np

# Samples per correlation length in the coarse grid the line noise is drawn on (then interpolated linearly: smooth
# at that scale, so its variance does not ripple between grid points).
LINE_NOISE_SAMPLES_PER_LENGTH = 4.0
# Blur of the coarse white noise, in grid samples: the noise decorrelates over about one length.
LINE_NOISE_BLUR_SAMPLES = 2.0
# Rows read at once by the frame average (~0.25 MB of a 1024 px frame's float32: its taps stay in cache).
READ_BLOCK_ROWS = 64


def frame_margin_px(jitter_px: float, frame_count: int) -> float:
    """Reach (px) of the per-frame jitter: six per-frame standard deviations, ``6 j sqrt(N)`` (a single frame:
    ``6 j``)."""
    return 6.0 * jitter_px * float(np.sqrt(frame_count))


def frame_deviations_px(
    height_px: int, frame_count: int, jitter_px: float, rng: np.random.Generator
) -> np.ndarray:
    """Offsets ``d`` (rows, frames), px, of each frame's line from the line's mean position, centred over the frames.

    Drawn with the per-frame jitter ``jitter_px * sqrt(frame_count)``: the mean of ``frame_count`` such scans then
    jitters by ``jitter_px``, the jitter of the final image's lines.
    """
    per_frame = rng.standard_normal((height_px, frame_count)) * (jitter_px * np.sqrt(frame_count))
    return per_frame - per_frame.mean(axis=1, keepdims=True)


def frame_averaged_signal(
    signal: np.ndarray, shifts_px: np.ndarray, deviations_px: np.ndarray, margin_px: int
) -> np.ndarray:
    """The mean over frames of each line read at ``c + shift + deviation`` (linear interpolation), float32.

    The mean of ``N`` linear interpolations of a line is one filter per line whose taps sit at whole-pixel offsets,
    so the frame is read as a weighted sum of at most ``2 margin_px + 1`` shifted copies (contiguous slices, no
    gathers): the time of two or three single reads for any ``N``.

    Parameters
    ----------
    signal : float32 frame, (height, width + 2 * margin_px).
    shifts_px : (height,) mean offset of each line.
    deviations_px : (height, frames) offsets of each frame's line from its mean.
    margin_px : columns added on each side; positions are kept within ``margin_px - 1`` of the image.
    """
    height, frame_w = signal.shape
    width = frame_w - 2 * margin_px
    limit = margin_px - 1.0
    pos = np.clip(shifts_px[:, None] + deviations_px, -limit, limit)  # offset of each frame's read, px
    offsets = np.arange(-margin_px + 1, margin_px, dtype=np.float64)  # whole-pixel taps from -limit to limit
    # Tent weights: a read at p takes (1 - |j - p|) of tap j; averaged over the frames.
    weights = np.clip(1.0 - np.abs(offsets[None, :, None] - pos[:, None, :]), 0.0, None).mean(axis=2)
    weights = weights.astype(np.float32)
    out = np.empty((height, width), np.float32)
    # In blocks of rows that stay in cache through their taps; a tap is added only where its weight is not 0.
    for top in range(0, height, READ_BLOCK_ROWS):
        block_w = weights[top:top + READ_BLOCK_ROWS]
        block_out = out[top:top + READ_BLOCK_ROWS]
        taps = np.flatnonzero(block_w.any(axis=0))
        for n, k in enumerate(taps):
            start = margin_px + int(offsets[k])
            part = signal[top:top + READ_BLOCK_ROWS, start:start + width]
            if n == 0:
                np.multiply(block_w[:, k, None], part, out=block_out)
            else:
                block_out += block_w[:, k, None] * part
    return out


def line_noise(shape: tuple[int, int], std: float, length_px: float, rng: np.random.Generator) -> np.ndarray:
    """Noise correlated along the scan line, float32, of standard deviation ``std`` over the frame (to about 1 %).

    Each line gets its own smooth random wander that decorrelates over about ``length_px`` pixels of the line
    (a length beyond the width is an offset per line, a slight slope at most); lines are independent of each other.
    Drawn as white noise on a grid of ``LINE_NOISE_SAMPLES_PER_LENGTH`` samples per length (reaching beyond both
    ends), blurred along the line, scaled to ``std`` on the grid and interpolated linearly (:func:`along_lines`;
    0: zeros, nothing drawn).
    """
    rows, cols = shape
    if std <= 0:
        return np.zeros(shape, np.float32)
    step_px = max(1.0, length_px / LINE_NOISE_SAMPLES_PER_LENGTH)
    pad = int(3 * LINE_NOISE_BLUR_SAMPLES) + 1  # grid samples beyond each end, so the blur sees no border
    samples = int(np.ceil((cols - 1) / step_px)) + 2 + 2 * pad
    white = rng.standard_normal((rows, samples), dtype=np.float32)
    blur = cv2.getGaussianKernel(2 * pad + 1, LINE_NOISE_BLUR_SAMPLES).astype(np.float32)
    coarse = np.asarray(cv2.sepFilter2D(white, -1, blur, np.ones((1, 1), np.float32), borderType=cv2.BORDER_REFLECT),
                        np.float32)
    # Scaled on the grid (its spread is the line's: the interpolation of a field this smooth keeps the variance).
    spread = float(coarse[:, pad:-pad].std())
    coarse *= np.float32(std / spread) if spread > 0 else np.float32(0.0)
    return along_lines(coarse[:, pad:], step_px, cols)


def along_lines(grid: np.ndarray, step_px: float, cols: int) -> np.ndarray:
    """Each row of ``grid`` (samples ``step_px`` apart) read at ``cols`` pixels by linear interpolation, float32:
    column ``c`` at grid position ``c / step_px + phase``, the phase under one pixel (0 when the line lies within
    the first interval). ``grid`` holds at least ``(cols - 1) / step_px + 2`` samples.

    cv2.resize given the scale (``fx``) reads its output column ``x`` at ``(x + 0.5) / fx - 0.5`` exactly, a tenth of
    warpAffine's time; its output starts half a step before the grid, so the line is cut from it where the reads
    start at or past the first sample.
    """
    if (cols - 1) / step_px < 1.0:  # the whole line lies between the first two samples
        t = np.arange(cols, dtype=np.float32) * np.float32(1.0 / step_px)
        return grid[:, :1] + (grid[:, 1:2] - grid[:, :1]) * t[None, :]
    needed = int(np.ceil((cols - 1) / step_px)) + 2
    fine = cv2.resize(grid[:, :needed], None, fx=step_px, fy=1.0, interpolation=cv2.INTER_LINEAR)
    first = int(np.ceil(step_px / 2.0 - 0.5))
    return fine[:, first:first + cols]


def jpeg_roundtrip(pixels: np.ndarray, quality: int) -> np.ndarray:
    """The image after saving as a JPEG of ``quality`` (1-100) and reading it back: block and ringing artefacts.

    JPEG holds 8 bits: a 16-bit image is rounded to 8 bits, compressed, and widened back (x 257), as a 16-bit
    micrograph saved as JPEG would be. Deterministic (libjpeg's exact integer DCT).
    """
    deep = pixels.dtype == np.uint16
    eight = np.rint(pixels / 257.0).astype(np.uint8) if deep else pixels
    ok, buf = cv2.imencode(".jpg", eight, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"JPEG encoding failed for an array of shape {pixels.shape}")
    back = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return back.astype(np.uint16) * np.uint16(257) if deep else back
