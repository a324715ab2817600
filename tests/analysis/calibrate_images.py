"""Micrographs of known parameters for the calibration tests, formed by the render node's own image formation.

A layered class map (resin, Fe2Al5 with a few pores, substrate; rough edges) is turned into an SEM image by
``blender_addon.render_node.sem_image.form_image`` (numpy and OpenCV, no Blender), so the estimators are checked
against the model they invert, not against a copy of it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from blender_addon.render_node.sem_image import form_image, scan_margin_px
from semcoat import classes
from semcoat.spec import GreyLevelSpec, ImagingSpec

# Everything the estimators do not look at, off; every field the tests rely on, set.
QUIET: dict[str, Any] = {
    "pixel_size_um": 0.1, "probe_fwhm_um": 0.2, "probe_halo_fraction": 0.0, "probe_halo_fwhm_um": 3.0,
    "dose_electrons_per_px": 400.0, "detector_noise_std": 0.01, "scan_line_jitter_px": 0.0, "drift_px": 0.0,
    "brightness": 0.0, "contrast": 1.0, "edge_brightening": 0.0, "shading_amplitude": 0.0,
    "scratch_density_per_100um": 0.0, "data_bar": False, "bit_depth": 8,
}
GREYS = GreyLevelSpec(resin=0.12, fe2al5=0.62, feal=0.75, substrate=0.88, pore=0.03, precipitate=0.8)


def layered_mask(rows: int, cols: int, surface: float, interface: float, roughness_px: float = 4.0,
                 pores: int = 0, seed: int = 0) -> np.ndarray:
    """Resin above a wavy surface at row ``surface``, Fe2Al5, substrate below a wavy interface at ``interface``;
    ``pores`` round pores of radius 3-6 px scattered in the Fe2Al5 band."""
    rng = np.random.default_rng(seed)
    r = np.arange(rows)[:, None]
    c = np.arange(cols)[None, :]
    top = surface + roughness_px * np.sin(c / 37.0 + rng.uniform(0, 6)) + 0.5 * roughness_px * np.sin(c / 13.0)
    bottom = interface + roughness_px * np.sin(c / 29.0 + rng.uniform(0, 6))
    mask = np.where(r < top, classes.BACKGROUND, np.where(r < bottom, classes.FE2AL5, classes.SUBSTRATE))
    mask = mask.astype(np.uint8)
    for _ in range(pores):
        y = rng.uniform(surface + 15, interface - 15)
        x = rng.uniform(0, cols)
        radius = rng.uniform(3.0, 6.0)
        mask[((r - y) ** 2 + (c - x) ** 2 <= radius**2) & (mask == classes.FE2AL5)] = classes.PORE
    return mask


def imaging(**changes: Any) -> ImagingSpec:
    """An ImagingSpec with :data:`QUIET` and ``changes``."""
    return ImagingSpec(**{**QUIET, **changes})


def formed(mask: np.ndarray, img: ImagingSpec, seed: int = 0, greys: GreyLevelSpec = GREYS,
           texture: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(pixels, mask) of the SEM image the render node forms from ``mask`` (rows, columns) with ``img``.

    ``mask`` is widened by the scan margin on both sides (its edge columns repeated); ``texture`` multiplies the
    phase signal (the specimen's grain contrast), None for none.
    """
    img = dataclasses.replace(img, height_px=mask.shape[0], width_px=mask.shape[1])
    margin = scan_margin_px(img)
    frame = np.pad(mask, ((0, 0), (margin, margin)), mode="edge")
    grey = np.array([greys.for_class(k) for k in sorted(classes.CLASS_IDS)], np.float32)
    signal = grey[frame]
    if texture is not None:
        signal = signal * np.pad(texture, ((0, 0), (margin, margin)), mode="edge").astype(np.float32)
    sem = form_image(signal, frame, img, margin, np.random.default_rng(seed))
    return sem.pixels, sem.mask
