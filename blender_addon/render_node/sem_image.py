"""SEM image formation in numpy: from the rendered phase signal and mask to a backscatter micrograph.

Order of the steps (each a small function): scan-line shifts (and frame averaging) -> edge brightening -> detector
shading -> probe blur -> charging streaks -> shot noise and detector noise (independent, drawn at once) ->
line-correlated noise -> bandwidth with brightness/contrast (one filter) -> data bar -> quantisation -> JPEG saving
(frame averaging, line noise and JPEG: :mod:`scan_noise`; charging: :mod:`charging`; wide blurs: :mod:`blur`). The
specimen's own texture and artefacts are applied to the rendered frame before this (:mod:`specimen`).

Speed. A 1024x768 image is formed in ~30 ms on one core: float32 throughout, the work done in place on the
formation's own frame or on the rows a feature touches, masked writes (``where=``, boolean indexing) replaced by
arithmetic with boolean masks (ten times cheaper on a frame), and one normal draw per pixel for all its noise.

Scan-line jitter and drift (the alignment rule). Line ``r`` of a real scan samples the specimen at ``x + s_r``.
The renderer draws a frame ``margin_px`` wider on each side; image line ``r`` is read from it at ``c + s_r``:
the signal by linear interpolation, the mask by the nearest rendered pixel (``round(s_r)``). So the mask is the
class of the rendered pixel centre nearest to where the beam was, the same half-pixel rule by which any mask
quantises a phase boundary, and with no jitter or drift the mask is the render's index pass, pixel for pixel.
Edge brightening is computed from the shifted mask, so bright rims sit on the mask's edges.

Data bar rule. With ``imaging.data_bar`` the bottom ``data_bar_height_px`` rows of the image are the instrument's
data bar (scale bar and labels, no specimen) and are class 0 (background) in the mask.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from statistics import NormalDist

import cv2
import numpy as np

from blender_addon.render_node.artefacts import shading_field
from blender_addon.render_node.blur import wide_blur
from blender_addon.render_node.charging import charging_streaks
from blender_addon.render_node.databar_draw import draw_data_bar
from blender_addon.render_node.scan_noise import (
    frame_averaged_signal,
    frame_deviations_px,
    frame_margin_px,
    jpeg_roundtrip,
    line_noise,
)
from blender_addon.scene.stopping import StopCheck, check
from semcoat import classes
from semcoat.spec import ImagingSpec

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
# Width (sigma, px) of the bright rim that the edge effect puts on solid material next to a pore or the resin.
EDGE_SIGMA_PX = 0.9
# Detector / amplifier bandwidth: the signal of one pixel leaks into the next along the scan line.
SCAN_BANDWIDTH_KERNEL = np.array([0.2, 0.6, 0.2], dtype=np.float32)
NOISE_BLOCK_ROWS = 64  # a block of a 1024 px frame (~0.3 MB of float32) stays in cache through the noise's steps
# Shot noise: mean counts below this are drawn from numpy's Poisson sampler, larger ones by :func:`poisson_like`.
EXACT_POISSON_BELOW = 10.0
# The probe core's kernel reaches this many standard deviations (the weight beyond: 0.27 %).
CORE_REACH_SIGMAS = 3.0
# Random bits per normal deviate of the noise (:func:`normal_deviates`): a table of 2^16 quantiles (256 kB, in cache).
NORMAL_TABLE_BITS = 16


@dataclass
class SemImage:
    """The formed image and its mask, both ``(height_px, width_px)``.

    Attributes
    ----------
    pixels : uint8 or uint16 grey levels (per ``imaging.bit_depth``).
    mask : uint8 class ids, aligned with ``pixels``.
    line_shift_px : per-row horizontal beam offset used, px.
    """

    pixels: np.ndarray
    mask: np.ndarray
    line_shift_px: np.ndarray


@dataclass
class ScanStreams:
    """The random streams of the formation steps added after the first ones, one per feature, so that switching one
    off leaves the others' draws (and the main ``rng``'s) unchanged."""

    frames: np.random.Generator
    line_noise: np.random.Generator
    charging: np.random.Generator

    @classmethod
    def fixed(cls) -> ScanStreams:
        """Streams from fixed seeds (tests and sketches; a batch passes each image's own)."""
        return cls(np.random.default_rng(1), np.random.default_rng(2), np.random.default_rng(3))


def scan_margin_px(imaging: ImagingSpec) -> int:
    """Columns the renderer must add on each side so that every shifted scan line stays inside the frame (with frame
    averaging, every frame's line: the per-frame jitter is ``sqrt(frame_count)`` times the final image's)."""
    return int(np.ceil(abs(imaging.drift_px) + frame_margin_px(imaging.scan_line_jitter_px,
                                                                imaging.frame_count))) + 2


def line_shifts_px(imaging: ImagingSpec, height_px: int, margin_px: int, rng: np.random.Generator) -> np.ndarray:
    """Horizontal beam offset of each scan line, px: Gaussian jitter plus a linear drift, limited to the margin."""
    jitter = rng.normal(0.0, 1.0, height_px) * imaging.scan_line_jitter_px
    drift = imaging.drift_px * np.linspace(0.0, 1.0, height_px)
    limit = margin_px - 1.0
    return np.clip(jitter + drift, -limit, limit)


def apply_line_shifts(
    signal: np.ndarray, mask: np.ndarray, shifts_px: np.ndarray, margin_px: int
) -> tuple[np.ndarray, np.ndarray]:
    """Read each image line from the wider frame at ``c + shift``: signal interpolated, mask nearest.

    Parameters
    ----------
    signal, mask : frame arrays, shape (height, width + 2 * margin_px).
    shifts_px : per-row offsets, |shift| <= margin_px - 1.
    margin_px : columns added on each side of the image in the frame.

    Returns
    -------
    (signal, mask) of shape (height, width).
    """
    # A single scan is the average of one frame: the same weighted sum of whole-pixel shifted copies.
    deviations = np.zeros((len(shifts_px), 1))
    return frame_averaged_signal(signal, shifts_px, deviations, margin_px), shift_mask(mask, shifts_px, margin_px)


def shift_mask(mask: np.ndarray, shifts_px: np.ndarray, margin_px: int) -> np.ndarray:
    """The mask of :func:`apply_line_shifts` alone: line ``r`` reads the rendered pixel nearest to ``c + shift_r``,
    ``rint(c + margin_px + shift_r)`` in float64 (ties to even, as the preview's formula)."""
    height, frame_w = mask.shape
    width = frame_w - 2 * margin_px
    out_mask = np.empty((height, width), dtype=mask.dtype)
    shifts = np.asarray(shifts_px, np.float64)
    offsets = np.rint(shifts).astype(np.intp)
    # Away from a half pixel, rint(c + margin + s) is c + margin + rint(s) in every column: the line is one contiguous
    # slice, gathered with the other lines of its whole-pixel offset. Within 1e-9 of a half pixel the float sum
    # decides (ties to even alternate with the column), so such a line is read pixel by pixel.
    near_half = np.abs(shifts - np.floor(shifts) - 0.5) < 1e-9
    for offset in np.unique(offsets[~near_half]):
        rows = np.flatnonzero((offsets == offset) & ~near_half)
        start = margin_px + int(offset)
        out_mask[rows] = mask[rows, start:start + width]
    for row in np.flatnonzero(near_half):
        pos = np.arange(width, dtype=np.float64) + margin_px + shifts[row]
        out_mask[row] = mask[row, np.rint(pos).astype(np.intp)]
    return out_mask


def edge_map(mask: np.ndarray) -> np.ndarray:
    """Topographic edge effect, 0-1: solid phases next to a void (pore, crack or resin) light up in a narrow rim.

    Polishing leaves steps at voids but not between solid phases, so only void edges brighten.
    """
    void = ((mask == classes.PORE) | (mask == classes.BACKGROUND) | (mask == classes.CRACK)).view(np.uint8)
    near_void = cv2.dilate(void, np.ones((3, 3), np.uint8))
    rim = cv2.subtract(near_void, void)  # 1 on the solid pixels touching a void
    # The Gaussian of sigma EDGE_SIGMA_PX (GaussianBlur's kernel size for float32), read from the uint8 rim straight
    # into float32, the rim's peak scale folded into the row kernel.
    return cv2.sepFilter2D(rim, cv2.CV_32F, _EDGE_KERNEL_X, _EDGE_KERNEL_Y)


_EDGE_KERNEL_Y = cv2.getGaussianKernel(int(round(EDGE_SIGMA_PX * 8 + 1)) | 1, EDGE_SIGMA_PX, cv2.CV_32F)
_EDGE_KERNEL_X = (_EDGE_KERNEL_Y * np.float32((2.0 * np.pi * EDGE_SIGMA_PX**2) ** 0.5)).astype(np.float32)


def probe_blur(signal: np.ndarray, fwhm_px: float, halo_fraction: float = 0.0, halo_fwhm_px: float = 0.0) -> np.ndarray:
    """The resolution: ``(1 - halo_fraction)`` of the signal through a Gaussian core of full width at half maximum
    ``fwhm_px`` and ``halo_fraction`` through a wide Gaussian halo of ``halo_fwhm_px`` (0 and 0: an ideal probe).

    The halo is blurred at a reduced resolution when it is wide (:func:`.blur.wide_blur`: a quarter of the resolution
    from 9 px of sigma, half from 3 px; smooth at that scale, a tenth of the time of a full-size blur).
    """
    core = signal if fwhm_px <= 0 else gaussian_core(signal, fwhm_px / FWHM_PER_SIGMA)
    if halo_fraction <= 0 or halo_fwhm_px <= 0:
        return core
    halo = wide_blur(signal, halo_fwhm_px / FWHM_PER_SIGMA)
    return cv2.addWeighted(core, 1.0 - halo_fraction, halo, halo_fraction, 0.0, dst=None if core is signal else core)


def gaussian_core(signal: np.ndarray, sigma_px: float) -> np.ndarray:
    """``signal`` through a Gaussian of ``sigma_px`` (mirrored border), float32, its kernel cut at ``CORE_REACH_SIGMAS``
    standard deviations (renormalised; GaussianBlur's own cut, 4, spends a third more on 0.3 % of the weight)."""
    ksize = 2 * int(np.ceil(CORE_REACH_SIGMAS * sigma_px)) + 1
    return cv2.GaussianBlur(signal, (ksize, ksize), sigma_px, borderType=cv2.BORDER_REFLECT)


def shot_noise(
    signal: np.ndarray, dose_electrons_per_px: float, rng: np.random.Generator, should_stop: StopCheck | None = None,
    detector_std: float = 0.0, out: np.ndarray | None = None,
) -> np.ndarray:
    """Counting noise: a grey ``g`` is ``g * dose`` detected electrons on average, with the Poisson law's mean,
    variance and skewness; with ``detector_std``, plus the detector's independent Gaussian noise of that standard
    deviation (full scale 1), drawn at once.

    A mean count below ``EXACT_POISSON_BELOW`` is drawn from the Poisson law itself (numpy's; the detector's noise
    added as a normal deviate); a larger one, where numpy's sampler costs ~50 ns a pixel (most of an image's noise),
    from one standard normal ``z`` per pixel (:func:`normal_deviates`, :func:`poisson_like`): the mean, the variance
    and the skewness those of the Poisson count plus the Gaussian, the skewness to ``O(mean^-1.5)``. Drawn in blocks
    of rows, asking ``should_stop`` between them; the draws depend only on the signal and the stream, so the same
    inputs give the same image. ``out`` (float32, the signal's shape; the signal itself may be it) receives the noisy
    signal (None: a new array).
    """
    out = np.empty(signal.shape, dtype=np.float32) if out is None else out
    inv_dose = np.float32(1.0 / dose_electrons_per_px)
    extra_var = np.float32(detector_std) ** 2
    for top in range(0, signal.shape[0], NOISE_BLOCK_ROWS):
        check(should_stop)
        block = np.maximum(signal[top:top + NOISE_BLOCK_ROWS], np.float32(0.0))
        z = normal_deviates(rng, block.shape)
        exact = block < np.float32(EXACT_POISSON_BELOW) * inv_dose
        any_exact = bool(exact.any())
        z_exact = z[exact] if any_exact else z[:0, 0]
        noisy = poisson_like(block, inv_dose, extra_var, z)  # uses z as scratch
        noisy += block
        if any_exact:
            expected = block[exact].astype(np.float64) * dose_electrons_per_px
            noisy[exact] = rng.poisson(expected) / dose_electrons_per_px + z_exact * np.float32(detector_std)
        out[top:top + NOISE_BLOCK_ROWS] = noisy
    return out


def normal_deviates(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal deviates, float32, by lookup: ``NORMAL_TABLE_BITS`` (16) random bits pick one of ``2^16``
    equiprobable quantiles of the normal law (a third of the time of numpy's sampler, most of the noise's time).

    Symmetric and of unit variance exactly (the table is scaled to it); the law's own to 1/65536 in probability,
    with nothing beyond 4.3 standard deviations (where the law puts 1 draw in 66 000).
    """
    return np.take(_normal_quantiles(), rng.integers(0, 1 << NORMAL_TABLE_BITS, shape, dtype=np.uint16))


@functools.cache
def _normal_quantiles() -> np.ndarray:
    half = 1 << (NORMAL_TABLE_BITS - 1)
    inv_cdf = NormalDist().inv_cdf
    upper = np.array([inv_cdf(0.5 + (k + 0.5) / (2 * half)) for k in range(half)])  # ~10 ms, once a process
    upper /= np.sqrt(np.mean(upper**2))
    return np.concatenate([-upper[::-1], upper]).astype(np.float32)  # symmetric exactly: mean 0


def poisson_like(grey: np.ndarray, inv_dose: np.float32, extra_var: np.float32, z: np.ndarray) -> np.ndarray:
    """Deviations (float32, grey units) from ``grey`` of a Poisson count of mean ``grey / inv_dose`` (at least
    ``EXACT_POISSON_BELOW``) over the dose, plus an independent Gaussian deviate of variance ``extra_var``, from
    standard normal draws ``z`` (overwritten): ``a z + b (z^2 - 1)`` with ``b = k3 / (6 V)`` and
    ``a = sqrt(V - 2 b^2)``, where ``V = grey inv_dose + extra_var`` is the sum's variance and ``k3 = grey inv_dose^2``
    its third cumulant (the Poisson count's). The variance is ``V`` exactly (``a z + b (z^2 - 1)`` has
    ``a^2 + 2 b^2``), the third cumulant ``k3 - 4 b^3`` (the Cornish-Fisher term: Poisson's skewness
    ``1 / sqrt(mean)`` to ``O(mean^-1.5)``). Greys under the bound are taken at the bound (finite values, not the
    law's)."""
    g = np.maximum(grey, np.float32(EXACT_POISSON_BELOW) * inv_dose)
    var = g * inv_dose
    var += extra_var
    b = g * (inv_dose * inv_dose / np.float32(6.0))
    b /= var
    var -= np.float32(2.0) * b * b
    a = np.sqrt(var, out=var)
    a *= z
    z *= z
    z -= np.float32(1.0)
    z *= b
    a += z
    return a


def scan_bandwidth(
    signal: np.ndarray, contrast: float = 1.0, offset: float = 0.0, out: np.ndarray | None = None
) -> np.ndarray:
    """The detector's bandwidth (``SCAN_BANDWIDTH_KERNEL`` along the scan line), then the display's linear grey map
    ``contrast * s + offset`` in the same pass (float32; into ``out``, which may be ``signal``, or a new array)."""
    kernel = (SCAN_BANDWIDTH_KERNEL * np.float32(contrast))[None, :]
    return cv2.filter2D(signal, -1, kernel, dst=out, delta=float(offset), borderType=cv2.BORDER_REFLECT)


def quantise(signal: np.ndarray, bit_depth: int) -> np.ndarray:
    """Clip to [0, 1] and round to uint8 (8 bit) or uint16 (16 bit); ``signal`` (float32) is used as scratch."""
    top = np.float32(255 if bit_depth == 8 else 65535)
    np.clip(signal, np.float32(0.0), np.float32(1.0), out=signal)
    signal *= top
    np.rint(signal, out=signal)
    return signal.astype(np.uint8 if bit_depth == 8 else np.uint16)


def form_image(
    signal: np.ndarray, mask: np.ndarray, imaging: ImagingSpec, margin_px: int, rng: np.random.Generator,
    should_stop: StopCheck | None = None, streams: ScanStreams | None = None,
) -> SemImage:
    """Turn a rendered frame into an SEM image and its aligned mask.

    Parameters
    ----------
    signal : float32 frame, the phase grey (0-1) at each pixel centre; shape (height, width + 2 * margin_px).
    mask : uint8 class ids of the same frame.
    imaging : the virtual microscope (probe, dose, noise, scan, display, data bar, bit depth).
    margin_px : columns added on each side of the image in the frame (:func:`scan_margin_px`).
    rng : random generator for the scan shifts and the noise (same state, same image, bit for bit).
    should_stop : asked between the steps (a step of a 6144x4096 frame takes up to ~2 s on two cores);
        ``Interrupted`` is raised when it answers True. None never stops.
    streams : the frame-averaging, line-noise and charging streams (None: :meth:`ScanStreams.fixed`); drawn from
        only when the feature is on.
    """
    streams = streams or ScanStreams.fixed()
    height = mask.shape[0]
    shifts = line_shifts_px(imaging, height, margin_px, rng)
    if imaging.frame_count > 1:
        deviations = frame_deviations_px(height, imaging.frame_count, imaging.scan_line_jitter_px, streams.frames)
        sig = frame_averaged_signal(signal, shifts, deviations, margin_px)
        out_mask = shift_mask(mask, shifts, margin_px)
    else:
        sig, out_mask = apply_line_shifts(signal, mask, shifts, margin_px)
    check(should_stop)
    if imaging.edge_brightening > 0:
        cv2.scaleAdd(edge_map(out_mask), float(imaging.edge_brightening), sig, dst=sig)
    if imaging.shading_amplitude > 0:
        sig *= shading_field((sig.shape[0], sig.shape[1]), imaging.shading_amplitude, rng)
    p = imaging.pixel_size_um
    sig = probe_blur(sig, imaging.probe_fwhm_um / p, imaging.probe_halo_fraction, imaging.probe_halo_fwhm_um / p)
    check(should_stop)
    if imaging.charging_amplitude > 0:
        streaks = charging_streaks(out_mask, imaging.charging_amplitude, imaging.charging_length_um / p,
                                   imaging.charging_line_fraction, streams.charging)
        if streaks is not None:
            rows, values = streaks
            sig[rows] += values
        check(should_stop)
    # Shot and detector noise in one draw (the detector's is independent of the count and added before the
    # bandwidth filter, as the line noise is).
    shot_noise(sig, imaging.dose_electrons_per_px, rng, should_stop, imaging.detector_noise_std, out=sig)
    check(should_stop)
    if imaging.line_noise_std > 0:
        sig += line_noise((sig.shape[0], sig.shape[1]), imaging.line_noise_std, imaging.line_noise_length_px,
                          streams.line_noise)
        check(should_stop)
    # Bandwidth, then brightness and contrast: (s - 0.5) contrast + 0.5 + brightness, one pass.
    scan_bandwidth(sig, imaging.contrast, 0.5 + imaging.brightness - 0.5 * imaging.contrast, out=sig)
    check(should_stop)
    if imaging.data_bar:
        bar_rows = imaging.data_bar_height_px
        sig[-bar_rows:] = draw_data_bar(out_mask.shape[1], bar_rows, imaging.pixel_size_um)
        out_mask[-bar_rows:] = classes.BACKGROUND
    pixels = quantise(sig, imaging.bit_depth)
    if imaging.jpeg_quality > 0:
        check(should_stop)
        pixels = jpeg_roundtrip(pixels, imaging.jpeg_quality)
    return SemImage(pixels, out_mask, shifts)
