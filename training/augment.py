"""Augmentation that respects the physics of a cross-section micrograph (albumentations).

The surface is at the top and the substrate at the bottom (rows are depth): only horizontal flips are allowed, never
vertical flips, transposes or large rotations. What varies between micrographs is imitated instead: brightness,
contrast and gamma (detector gain and offset), shot and detector noise, probe blur, a small elastic deformation
(specimen preparation), and scan-line artefacts (line-to-line gain changes and horizontal jitter of a raster scan).
Grey images are float32 in [0, 1] (rows, columns); masks are uint8 class ids and follow every geometric change.

The intensity changes are kept small on purpose. A 256 px crop at 0.17 um/px (43 um) often lies wholly inside the
Fe2Al5 (20-100 um thick) or the steel, and then the absolute grey is the only thing that tells the two apart (steel is
~0.17 brighter on the presets' display). Brightness +-0.2, contrast +-25 % and gamma 0.75-1.35 (the first defaults)
spread each phase's grey by ~0.12 (sd), so that an Fe2Al5 crop read brighter than a steel crop in 14 % of draws, and a
short training labelled the steel as Fe2Al5 or FeAl (held-out substrate Dice 0.21 after 100 steps, 0.85 with these
defaults, everything else equal). The renderer already varies the display (contrast, brightness, phase greys, dose,
probe); a lab's own greys come from ``semcoat spec calibrate``, not from augmentation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check for a newer version on import
import albumentations as A  # noqa: E402


class ScanLines(A.ImageOnlyTransform):
    """Raster-scan artefacts: each row gets its own gain and a horizontal shift, as when the beam or the detector
    drifts from line to line.

    Parameters
    ----------
    gain_std : standard deviation of the per-row relative gain (0.02 = 2 %).
    jitter_px : largest per-row horizontal shift, pixels (integer shifts, edge pixels repeated).
    """

    def __init__(self, gain_std: float = 0.03, jitter_px: int = 1, p: float = 0.5) -> None:
        super().__init__(p=p)
        self.gain_std = gain_std
        self.jitter_px = jitter_px

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        """Per-row gains and shifts for the image at hand."""
        rows = params["shape"][0]
        gains = 1.0 + self.random_generator.normal(0.0, self.gain_std, rows)
        shifts = self.random_generator.integers(-self.jitter_px, self.jitter_px + 1, rows)
        return {"gains": gains.astype(np.float32), "shifts": shifts}

    def apply(self, img: np.ndarray, gains: np.ndarray | None = None, shifts: np.ndarray | None = None,
              **params: Any) -> np.ndarray:
        """The image with per-row gain and shift applied."""
        if gains is None or shifts is None:
            return img
        cols = img.shape[1]
        index = np.clip(np.arange(cols)[None, :] - shifts[:, None], 0, cols - 1)
        shifted = np.take_along_axis(img, index if img.ndim == 2 else index[..., None], axis=1)
        return (shifted * (gains[:, None] if img.ndim == 2 else gains[:, None, None])).astype(img.dtype)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        """Names of the arguments that serialise the transform."""
        return ("gain_std", "jitter_px")


@dataclass(frozen=True)
class AugmentConfig:
    """Strength of each augmentation (probabilities in [0, 1]; the others in the units given).

    Attributes
    ----------
    flip_p : probability of a horizontal flip.
    brightness : largest grey shift, in grey units of [0, 1] (0.05 = ±0.05).
    contrast : largest relative gain change (0.1 = ±10 %).
    gamma : (low, high) gamma range, in percent (80, 120 = gamma 0.8 to 1.2).
    noise_std : (low, high) standard deviation of added Gaussian noise, in grey units of [0, 1].
    blur_sigma_px : (low, high) Gaussian blur sigma, pixels (probe blur).
    elastic_alpha_px, elastic_sigma_px : elastic deformation magnitude and smoothness, pixels.
    scan_gain_std, scan_jitter_px : scan-line artefacts (see :class:`ScanLines`).
    """

    flip_p: float = 0.5
    brightness: float = 0.05
    contrast: float = 0.1
    gamma: tuple[float, float] = (90.0, 110.0)
    intensity_p: float = 0.8
    noise_std: tuple[float, float] = (0.01, 0.08)
    noise_p: float = 0.6
    blur_sigma_px: tuple[float, float] = (0.3, 1.5)
    blur_p: float = 0.4
    elastic_alpha_px: float = 8.0
    elastic_sigma_px: float = 6.0
    elastic_p: float = 0.2
    scan_gain_std: float = 0.03
    scan_jitter_px: int = 1
    scan_p: float = 0.3


def build_augmentation(config: AugmentConfig | None = None) -> A.Compose:
    """The training augmentation: geometric changes on image and mask, intensity changes on the image only."""
    c = config or AugmentConfig()
    return A.Compose([
        A.HorizontalFlip(p=c.flip_p),
        A.ElasticTransform(alpha=c.elastic_alpha_px, sigma=c.elastic_sigma_px, border_mode=4, p=c.elastic_p),
        A.GaussianBlur(blur_limit=0, sigma_limit=c.blur_sigma_px, p=c.blur_p),
        A.RandomBrightnessContrast(brightness_limit=c.brightness, contrast_limit=c.contrast, p=c.intensity_p),
        A.RandomGamma(gamma_limit=c.gamma, p=c.intensity_p),
        ScanLines(gain_std=c.scan_gain_std, jitter_px=c.scan_jitter_px, p=c.scan_p),
        A.GaussNoise(std_range=c.noise_std, p=c.noise_p),
    ])


def augment(transform: A.Compose, image: np.ndarray, mask: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``transform`` with its random state set from ``seed``; the image is clipped back to [0, 1].

    Seeding per call keeps data-loader workers independent (each draws its own seed) and a run reproducible.
    """
    transform.set_random_seed(seed)
    out = transform(image=image, mask=mask)
    return np.clip(out["image"], 0.0, 1.0).astype(np.float32), out["mask"]
