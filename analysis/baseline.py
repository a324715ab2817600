"""A classical (non-learned) baseline segmenter: grey levels estimated per image, thresholds, connectivity.

It lets ``semcoat predict --model classical`` run the whole predict → measure → report pipeline before any network is
trained, and it is the reference a learned model has to beat. Only numpy, scipy and scikit-image.

Method (backscatter contrast: resin and open pores dark, Fe2Al5 mid grey, Cr-rich precipitates and FeAl a little
brighter, steel substrate brightest; surface at the top, substrate at the bottom):

1. **Denoise** with Gaussian filters: a small one (``sigma_px``) for pores and precipitates, a wider one
   (``layer_sigma_px``) for the layer boundaries.
2. **Grey levels per image**: three-class Otsu thresholds on the small-filtered image split dark / mid / bright; the
   dark and substrate levels are the medians of the outer classes, the Fe2Al5 level the histogram mode of the mid
   class (the matrix dominates it; FeAl and precipitates only skew it). Every later threshold is a fraction of the
   Fe2Al5 → substrate *gap* or a midpoint between levels, so brightness and contrast changes cancel out.
3. **Dark** pixels lie below ``dark_frac`` of the way from the dark level to the Fe2Al5 level (0.6 rather than the
   midpoint: the dark level is mostly resin's, pores are darker, and void rims are brightened).
   Dark regions connected to the top edge are **background** (resin, and any pore open to the surface); the other
   dark regions are **pores**.
4. **Substrate**: wide-filtered pixels above a cut, the connected regions touching the bottom edge, holes filled. A
   first cut at ``substrate_frac`` of the gap finds it roughly; the final cut lies halfway between the substrate
   level and the level of the layer above it (FeAl when found, else Fe2Al5).
5. **FeAl** (optional): the mean grey profile of the coating against the distance to the rough substrate decides
   whether a band brighter than Fe2Al5 lines the substrate (a plateau after the blurred edge, :func:`feal_band`). If
   so, the FeAl pixels are the wide-filtered pixels above the Fe2Al5/FeAl midpoint within twice the band's depth of
   the substrate, connected to it.
6. **Precipitates**: in the rest of the coating farther than ``rim_px`` from any dark or substrate pixel (void
   edges are brightened by topography in backscatter images; the substrate's blurred edge is as bright),
   small-filtered pixels above a cut between the matrix level and the precipitates' own level
   (:func:`precipitate_cut`, at least a few noise sigmas above the matrix), components of at least
   ``min_precipitate_px`` pixels.
7. Everything else between the background and the substrate is **Fe2Al5**.

Known limits: it assumes the layout above (a darker resin at the top, a bright substrate at the bottom, three grey
modes); no shading correction; precipitates touching pores lose their rim; a FeAl band not much thicker than the
blurred substrate edge (a few px) is not seen; pores inside the substrate are kept as pores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from analysis.model import ModelRunError
from semcoat.classes import BACKGROUND, FE2AL5, FEAL, NUM_CLASSES, PORE, PRECIPITATE, SUBSTRATE

CLASSICAL_MODEL_NAME = "classical"
"""What ``--model`` takes to use this segmenter instead of a model file."""

ONE_HOT_LOGIT = 20.0
"""Logit of the chosen class when the segmenter is called like a network (the others get 0)."""


@dataclass(frozen=True)
class BaselineParams:
    """Tuning of :func:`segment` (pixels, or fractions of the Fe2Al5 → substrate grey gap).

    Defaults were set on rendered 20h_650C and 5h_650C batches (0.17 µm/px, probe blur FWHM 0.8-2.2 px);
    ``dark_frac`` in particular is calibrated to that renderer's void-rim brightening.
    """

    sigma_px: float = 1.0
    dark_frac: float = 0.6
    layer_sigma_px: float = 2.0
    substrate_frac: float = 0.72
    feal_min_frac: float = 0.08
    feal_min_px: int = 4
    feal_flatness: float = 0.7
    precipitate_frac: float = 0.45
    precipitate_min_sigma: float = 2.5
    precipitate_seed_sigma: float = 4.0
    rim_px: int = 2
    min_precipitate_px: int = 4
    min_pore_px: int = 3


@dataclass(frozen=True)
class GreyLevels:
    """Grey levels of one image, on the image's scale."""

    dark: float
    fe2al5: float
    substrate: float

    @property
    def gap(self) -> float:
        """Fe2Al5 → substrate contrast, the unit of the other thresholds."""
        return self.substrate - self.fe2al5


def grey_levels(smooth: np.ndarray) -> GreyLevels:
    """Dark, Fe2Al5 and substrate levels of a denoised image (three-class Otsu, then medians and a mode).

    Raises
    ------
    ModelRunError
        When the image is uniform (a single grey level).
    """
    from skimage.filters import threshold_multiotsu

    values = smooth.ravel()
    if np.ptp(values) <= 0:
        raise ModelRunError("the image is uniform: no phases to separate")
    low, high = threshold_multiotsu(values, classes=3)
    dark = float(np.median(values[values < low])) if np.any(values < low) else float(values.min())
    bright_values = values[values > high]
    substrate = float(np.median(bright_values)) if bright_values.size else float(values.max())
    mid = values[(values >= low) & (values <= high)]
    counts, edges = np.histogram(mid, bins=128)
    counts = ndi.uniform_filter1d(counts.astype(np.float64), 5)
    fe2al5 = float(0.5 * (edges[np.argmax(counts)] + edges[np.argmax(counts) + 1]))
    return GreyLevels(dark, fe2al5, substrate)


def _touching(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The connected components (8-connectivity) of ``mask`` that contain a pixel of ``seeds``."""
    labels, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return np.zeros_like(mask)
    keep = np.zeros(n + 1, bool)
    keep[np.unique(labels[seeds & mask])] = True
    keep[0] = False
    return keep[labels]


def _edge(mask_shape: tuple[int, ...], row: int) -> np.ndarray:
    edge = np.zeros(mask_shape, bool)
    edge[row] = True
    return edge


def _small_removed(mask: np.ndarray, min_px: int) -> np.ndarray:
    labels, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = sizes >= min_px
    keep[0] = False
    return keep[labels]


def _feal_profile(
    wide: np.ndarray, dist: np.ndarray, coating: np.ndarray, levels: GreyLevels, max_px: int
) -> np.ndarray:
    """Mean grey of coating pixels at each whole distance 0..max_px from the substrate, as a fraction of the gap."""
    d = np.rint(dist[coating]).astype(np.intp)
    near = d <= max_px
    sums = np.bincount(d[near], weights=wide[coating][near], minlength=max_px + 1)
    counts = np.bincount(d[near], minlength=max_px + 1)
    mean = np.divide(sums, counts, out=np.full(max_px + 1, levels.fe2al5), where=counts > 0)
    return (mean - levels.fe2al5) / levels.gap


def feal_band(profile: np.ndarray, params: BaselineParams) -> tuple[int, float] | None:
    """(depth px, level as a fraction of the gap) of a FeAl band seen in a distance profile, or None.

    Next to the substrate the profile first falls steeply (the blurred substrate edge), whether or not FeAl is there.
    A FeAl band shows as a plateau after that fall: the first distance ``d`` whose grey is at least ``feal_min_frac``
    of the gap and still at least ``feal_flatness`` of it ``feal_min_px`` further out starts the band; its level is
    the median over those ``feal_min_px + 1`` distances, its depth the distance where the profile falls below half
    that level.
    """
    k = params.feal_min_px
    if profile.size <= k + 2:
        return None
    d = np.arange(1, profile.size - k)
    flat = (profile[d] >= params.feal_min_frac) & (profile[d + k] >= params.feal_flatness * profile[d])
    if not flat.any():
        return None
    start = int(d[np.argmax(flat)])
    level = float(np.median(profile[start : start + k + 1]))
    below = profile[start:] < 0.5 * level
    depth = start + (int(np.argmax(below)) if below.any() else int(below.size))
    return depth, level


def precipitate_cut(small: np.ndarray, matrix: np.ndarray, fe2al5: float, params: BaselineParams) -> float:
    """Grey above which a Fe2Al5-matrix pixel of the small-filtered image is a precipitate.

    The noise ``sigma`` is the robust spread of the matrix below its level (precipitates and void rims are all above
    it). The precipitate level is the median peak grey of the blobs that rise ``precipitate_seed_sigma`` sigmas above
    the matrix. The cut lies ``precipitate_frac`` of the way from the matrix to that level, but never closer than
    ``precipitate_min_sigma`` sigmas to the matrix (when precipitates barely differ from it, noise would win).
    """
    values = small[matrix]
    lower = fe2al5 - values[values < fe2al5]
    sigma = float(np.median(lower)) / 0.6745 if lower.size else 0.0
    floor = fe2al5 + params.precipitate_min_sigma * sigma
    labels, n = ndi.label(matrix & (small > fe2al5 + params.precipitate_seed_sigma * sigma), np.ones((3, 3), bool))
    if n == 0:
        return floor
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    peaks = np.asarray(ndi.maximum(small, labels, np.arange(1, n + 1)))[sizes >= params.min_precipitate_px]
    if peaks.size == 0:
        return floor
    return max(floor, fe2al5 + params.precipitate_frac * (float(np.median(peaks)) - fe2al5))


def _substrate(wide: np.ndarray, cut: float, background: np.ndarray) -> np.ndarray:
    """Pixels above ``cut`` connected to the bottom edge, holes filled, never background."""
    substrate = _touching(wide > cut, _edge(wide.shape, wide.shape[0] - 1))
    if not substrate.any():
        return substrate
    padded = np.vstack([substrate, np.ones((1, wide.shape[1]), bool)])
    return np.asarray(ndi.binary_fill_holes(padded))[:-1] & ~background


def segment(image: np.ndarray, params: BaselineParams | None = None) -> np.ndarray:
    """Class-id mask (uint8, same shape) of a grey cross-section: surface at the top, substrate at the bottom.

    Parameters
    ----------
    image : ndarray, shape (rows, columns)
        Grey image, any scale (float in [0, 1] or integers); not modified.
    params : BaselineParams, optional
        Thresholds and filter sizes; the defaults otherwise.

    Raises
    ------
    ModelRunError
        For images with a single grey level.
    ValueError
        For arrays that are not 2-D (a caller's bug: every reader gives 2-D grey images).
    """
    p = params or BaselineParams()
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D grey image; got shape {image.shape}")
    x = image.astype(np.float32, copy=False)
    small = ndi.gaussian_filter(x, p.sigma_px, mode="reflect")
    wide = ndi.gaussian_filter(x, p.layer_sigma_px, mode="reflect")
    levels = grey_levels(small)
    gap = levels.gap
    rows = x.shape[0]

    dark = small < levels.dark + p.dark_frac * (levels.fe2al5 - levels.dark)
    background = _touching(dark, _edge(x.shape, 0))
    pores = _small_removed(dark & ~background, p.min_pore_px)

    substrate = _substrate(wide, levels.fe2al5 + p.substrate_frac * gap, background)
    feal = np.zeros_like(substrate)
    if substrate.any() and not (dark | substrate).all():
        surface = np.argmax(~background, axis=0)
        interface = np.where(substrate.any(axis=0), np.argmax(substrate, axis=0), rows)
        max_px = int(max(8, 0.3 * np.median(np.maximum(interface - surface, 0))))
        dist = ndi.distance_transform_edt(~substrate)
        band = feal_band(_feal_profile(wide, dist, ~(dark | substrate), levels, max_px), p)
        # The substrate edge sits halfway between the substrate and the layer above it (FeAl or Fe2Al5).
        above = 0.0 if band is None else band[1]
        substrate = _substrate(wide, levels.fe2al5 + 0.5 * (1.0 + above) * gap, background)
        if band is not None:
            depth, level = band
            dist = ndi.distance_transform_edt(~substrate)
            candidates = ~(dark | substrate) & (wide > levels.fe2al5 + 0.5 * level * gap) & (dist <= 2 * depth + 2)
            feal = _touching(candidates, ndi.binary_dilation(substrate))
    coating = ~(dark | substrate)
    mask = np.full(x.shape, FE2AL5, np.uint8)
    mask[substrate] = SUBSTRATE
    mask[feal] = FEAL

    # Void rims are brightened by topography, and the substrate's blurred edge is as bright as a precipitate.
    edges = ndi.binary_dilation(dark | substrate, iterations=p.rim_px) if p.rim_px > 0 else dark | substrate
    matrix = coating & ~feal & ~edges
    if matrix.any():
        cut = precipitate_cut(small, matrix, levels.fe2al5, p)
        mask[_small_removed(matrix & (small > cut), p.min_precipitate_px)] = PRECIPITATE
    mask[pores] = PORE
    mask[dark & ~background & ~pores] = FE2AL5  # specks too small to be pores
    mask[background] = BACKGROUND
    return mask


class ClassicalSegmenter:
    """The baseline behind the model interface of :mod:`analysis.model`.

    :func:`analysis.predict.predict_mask` calls :meth:`segment` on the whole image (the method reasons about the top
    and bottom edges, so it must not see tiles); called like a network, it segments each tile on its own and returns
    one-hot logits.
    """

    n_classes = NUM_CLASSES

    def __init__(self, params: BaselineParams | None = None) -> None:
        self.params = params or BaselineParams()

    def segment(self, image: np.ndarray) -> np.ndarray:
        """Class-id mask (uint8) of a whole grey image."""
        return segment(image, self.params)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """One-hot logits (N, classes, rows, columns) of a float32 batch (N, 1, rows, columns)."""
        n, _, h, w = batch.shape
        logits = np.zeros((n, NUM_CLASSES, h, w), np.float32)
        for i in range(n):
            ids = segment(batch[i, 0], self.params)
            np.put_along_axis(logits[i], ids[None].astype(np.intp), ONE_HOT_LOGIT, axis=0)
        return logits
