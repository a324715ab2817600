"""The bottom interface of the coating (issue 11 point 4): a patchy FeAl layer, FeAl2 and Fe3Al sub-bands, and
Kirkendall voids along the bottom of the Fe2Al5 layer.

Coordinates as in :mod:`.geometry` (the coating's own frame). The FeAl zone below the Fe2Al5 band holds, from the
top: FeAl2 (``layers.feal2_thickness_um``), FeAl, Fe3Al (``layers.fe3al_thickness_um``), then the steel. All three
are class FeAl in the mask: the measurement table knows Fe2Al5 and FeAl only, and an annotator counts the whole
zone below the Fe2Al5 band as its FeAl, so the FeAl thickness measured on the mask is the zone's. Each has its own
grey (by backscatter: FeAl2 between Fe2Al5 and FeAl, Fe3Al between FeAl and the steel). With ``layers.feal_coverage``
below 1 the zone (sub-bands included) lies in one to three patches whose thickness falls to nothing at their ends,
as FeAl forms after a short anneal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semcoat.spec import LayerSpec

from .placement import DepthWindow, covered_columns

# A patch of FeAl thins over this many times its mean thickness from each end (at least PATCH_TAPER_MIN_UM), as a lens.
PATCH_TAPER = 4.0
PATCH_TAPER_MIN_UM = 2.0
# Sub-band thickness varies along the interface by this share of its mean (slow roughness).
SUBBAND_VARIATION = 0.25
# Spread of the Kirkendall voids' radii (standard deviation over mean); a void's centre lies within this share of its
# reach above the deepest place the band leaves it, so it sits on the interface.
KIRKENDALL_RADIUS_SPREAD = 0.4
KIRKENDALL_HUG = 0.5


@dataclass
class FeAlZone:
    """Depth profiles (µm, on the coating frame's columns) of the zone below the Fe2Al5 band.

    ``feal2_bottom_um`` and ``fe3al_top_um`` are None where there is no such sub-band; ``feal_bottom_um`` is the top
    of the steel.
    """

    feal2_bottom_um: np.ndarray | None
    fe3al_top_um: np.ndarray | None
    feal_bottom_um: np.ndarray


def patch_envelope(x_um: np.ndarray, coverage: float, taper_um: float, rng: np.random.Generator) -> np.ndarray:
    """Thickness factor (0-1) along ``x_um``: 1-3 patches over ``coverage`` of the width, each rising from 0 at its
    ends to 1 over ``taper_um`` (a square root: rounded, lens-like ends)."""
    covered = covered_columns(x_um.size, coverage, rng)
    gaps = np.flatnonzero(~covered)
    if gaps.size == 0:
        return np.ones(x_um.size)
    p = float(x_um[1] - x_um[0]) if x_um.size > 1 else 1.0
    # Distance of each column to the nearest uncovered one (the patches repeat around the width, as the columns do).
    ix = np.arange(x_um.size)
    period = x_um.size
    nearest = np.searchsorted(gaps, ix)
    before = gaps[(nearest - 1) % gaps.size]
    after = gaps[nearest % gaps.size]
    distance = np.minimum((ix - before) % period, (after - ix) % period) * p
    return np.sqrt(np.clip(distance / taper_um, 0.0, 1.0))


def feal_zone(
    lay: LayerSpec, x_um: np.ndarray, fe2al5_bottom_um: np.ndarray, feal_thickness_um: np.ndarray,
    rng: np.random.Generator,
) -> FeAlZone:
    """The FeAl zone below ``fe2al5_bottom_um`` whose FeAl alone is ``feal_thickness_um`` thick (per column), drawn
    with the zone's own stream ``rng``: patches, then the sub-bands' slow variations."""
    envelope = np.ones(x_um.size)
    if lay.feal_coverage < 1.0:
        taper_um = max(PATCH_TAPER * lay.feal_thickness_um, PATCH_TAPER_MIN_UM)
        envelope = patch_envelope(x_um, lay.feal_coverage, taper_um, rng)

    def band(thickness_um: float) -> np.ndarray:
        # A slow variation: a few sinusoids a width or so long.
        n = 3
        wavelength = np.ptp(x_um) * rng.uniform(0.3, 1.2, n) + 1.0
        phase = rng.uniform(0.0, 2 * np.pi, n)
        wave = np.sin(2 * np.pi * x_um[None, :] / wavelength[:, None] + phase[:, None]).mean(0)
        return thickness_um * (1.0 + SUBBAND_VARIATION * wave) * envelope

    feal2 = band(lay.feal2_thickness_um) if lay.feal2_thickness_um > 0 else None
    fe3al = band(lay.fe3al_thickness_um) if lay.fe3al_thickness_um > 0 else None
    feal2_bottom = fe2al5_bottom_um + (feal2 if feal2 is not None else 0.0)
    fe3al_top = feal2_bottom + feal_thickness_um * envelope
    return FeAlZone(
        feal2_bottom_um=feal2_bottom if feal2 is not None else None,
        fe3al_top_um=fe3al_top if fe3al is not None else None,
        feal_bottom_um=fe3al_top + (fe3al if fe3al is not None else 0.0),
    )


def needs_zone(lay: LayerSpec) -> bool:
    """Whether the FeAl zone differs from a plain FeAl layer (patches or sub-bands): drawn by :func:`feal_zone`."""
    return lay.feal_present and (lay.feal_coverage < 1.0 or lay.feal2_thickness_um > 0 or lay.fe3al_thickness_um > 0)


def hugging_bottom(inside: DepthWindow) -> DepthWindow:
    """Depth window of a Kirkendall void: inside the band (``inside``), within :data:`KIRKENDALL_HUG` of its reach
    above the deepest centre the band allows, so the void lies along the band's bottom (the usual gap apart)."""

    def window(ix: np.ndarray, reach: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = inside(ix, reach)
        return np.maximum(lo, hi - KIRKENDALL_HUG * reach), hi

    return window
