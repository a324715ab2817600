"""The mount above the coating's surface (issue 11 point 6): an edge-retention plating, a shrinkage gap between the
resin and the specimen, and filler specks in the resin. All of it is class 0 (background) in the mask: none of it
is coating, so the surface the measurements find is the coating's.

From the coating outwards: the plating (``layers.plating_thickness_um``, e.g. Ni, brighter than the steel) follows
the surface; the gap (``layers.shrinkage_gap_um``, black like an open pore) opens between the specimen (the plating
where there is one) and the resin, along part of the width where the resin pulled away in curing; filler specks
(``layers.resin_filler_per_100um2``) lie in the resin. Profiles are drawn in the coating's frame (turned with it);
the specks, round and scattered at random, are drawn straight in the image frame, over the resin the frame shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semcoat.spec import LayerSpec

from .placement import Inclusions, star_polygons

# The plating's thickness varies slowly by this share of its mean.
PLATING_VARIATION = 0.15
# The gap opens where a slow random wave (mean 0, amplitude 1) exceeds GAP_THRESHOLD; its width rises to the full
# opening over GAP_RAMP of the wave's amplitude: open along some 40 % of the width, closing smoothly at both ends.
GAP_THRESHOLD = 0.2
GAP_RAMP = 0.5
# Filler specks: spread of the radius (standard deviation over mean), elongation drawn in [1, max].
FILLER_RADIUS_SPREAD = 0.5
FILLER_MAX_ASPECT = 1.8


@dataclass
class Mount:
    """Depth profiles (µm, coating frame) of the mount's layers' upper edges: the plating's top, and the gap's top
    (the resin's edge); None where there is no such layer."""

    plating_top_um: np.ndarray | None
    gap_top_um: np.ndarray | None


def _slow_wave(x_um: np.ndarray, wavelength_um: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth random wave along ``x_um`` of amplitude about 1 and mean about 0 (three sinusoids)."""
    n = 3
    wavelength = wavelength_um * rng.uniform(0.5, 1.5, n)
    phase = rng.uniform(0.0, 2 * np.pi, n)
    weight = rng.uniform(0.5, 1.0, n)
    wave = (weight[:, None] * np.sin(2 * np.pi * x_um[None, :] / wavelength[:, None] + phase[:, None])).sum(0)
    return wave / weight.sum() * 1.6


def mount_layers(lay: LayerSpec, x_um: np.ndarray, surface_um: np.ndarray, rng: np.random.Generator) -> Mount:
    """The plating and the gap over ``surface_um`` (µm on the columns ``x_um``), drawn with the mount's stream."""
    width_um = float(np.ptp(x_um)) + 1.0
    plating_top = gap_top = None
    specimen_top = surface_um
    if lay.plating_thickness_um > 0:
        wave = _slow_wave(x_um, width_um, rng)
        plating_top = surface_um - lay.plating_thickness_um * (1.0 + PLATING_VARIATION * np.clip(wave, -1.0, 1.0))
        specimen_top = plating_top
    if lay.shrinkage_gap_um > 0:
        wave = _slow_wave(x_um, width_um / 2, rng)
        opening = np.clip((wave - GAP_THRESHOLD) / GAP_RAMP, 0.0, 1.0)
        gap_top = specimen_top - lay.shrinkage_gap_um * opening
    return Mount(plating_top, gap_top)


def filler_specks(
    lay: LayerSpec, x_um: np.ndarray, resin_bottom_um: np.ndarray, usable_um: float, rng: np.random.Generator
) -> Inclusions:
    """Filler specks in the resin of the image frame: Poisson in number over the resin's area (each column's resin
    from the top edge down to ``resin_bottom_um``, at most ``usable_um``), uniform over it, slightly elongated and
    irregular. They may overlap each other and the layers below (which are drawn over them)."""
    if lay.resin_filler_per_100um2 <= 0 or x_um.size < 2:
        return Inclusions.empty()
    p = float(x_um[1] - x_um[0])
    depth = np.clip(resin_bottom_um, 0.0, usable_um)
    area_um2 = float(depth.sum() * p)
    n = int(rng.poisson(lay.resin_filler_per_100um2 * area_um2 / 100.0))
    if n == 0:
        return Inclusions.empty()
    column = rng.choice(x_um.size, n, p=depth / depth.sum())
    centres = np.stack([x_um[column] + rng.uniform(-0.5, 0.5, n) * p, rng.uniform(0.0, 1.0, n) * depth[column]], 1)
    sigma = np.sqrt(np.log1p(FILLER_RADIUS_SPREAD**2))
    radii = np.maximum(rng.lognormal(np.log(lay.resin_filler_radius_um) - sigma**2 / 2, sigma, n), 0.8 * p)
    aspects = rng.uniform(1.0, FILLER_MAX_ASPECT, n)
    polygons, areas = star_polygons(centres, radii, aspects, rng.uniform(0.0, np.pi, n), rng)
    return Inclusions(polygons, areas)
