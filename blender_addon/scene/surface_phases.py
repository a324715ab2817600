"""What the slurry leaves at the surface (issue 11 point 9): an FeAl3 band at the top of the coating and leftover Al
particles sitting on the surface.

Coordinates as in :mod:`.geometry` (the coating's own frame). FeAl3, the most Al-rich aluminide, forms where Al was
left at the surface: a band below it (``layers.feal3_thickness_um``), a little darker than Fe2Al5 (Z ~18.3), over
part of the width or all of it (``layers.feal3_coverage``). It is class Fe2Al5 in the mask: annotators and the
measurement table have no FeAl3, and it is part of the aluminide layer whose thickness the Fe2Al5 measurement
reports, so the band is carved from the top of the Fe2Al5 band and changes no measurement.

Leftover slurry particles (``layers.slurry_particles_per_100um``) are Al spheres of ``slurry_particle_diameter_um``
(about 32 um) cut by the section at a random height, so each shows as a disc of up to the sphere's diameter, sitting
on the surface and partly sintered into it (its lower part sunk below the surface, where the coating, drawn over it,
shows). Al is not coating: class 0 (background), its grey by backscatter (Z 13, between resin and Fe2Al5).
"""

from __future__ import annotations

import numpy as np

from semcoat.spec import LayerSpec

from .interface import PATCH_TAPER_MIN_UM, patch_envelope
from .placement import Inclusions

# The FeAl3 band varies slowly along the surface by this share of its mean thickness.
FEAL3_VARIATION = 0.3
# A particle's disc: corners of its outline (it is large: 32 would show as a polygon), the spread of the sphere's
# diameter (standard deviation over mean), how far the section may lie from the sphere's centre (share of its
# radius), and how deep the disc sinks below the surface (share of its radius: partly sintered).
PARTICLE_VERTICES = 96
PARTICLE_DIAMETER_SPREAD = 0.2
SECTION_OFFSET_MAX = 0.9
SINK_RANGE = (0.05, 0.3)
PARTICLE_WOBBLE = 0.03


def feal3_band(
    lay: LayerSpec, x_um: np.ndarray, surface_um: np.ndarray, fe2al5_bottom_um: np.ndarray, pixel_size_um: float,
    rng: np.random.Generator,
) -> np.ndarray | None:
    """Bottom of the FeAl3 band below ``surface_um`` (µm on the columns ``x_um``), or None without one; it stays a
    pixel above the Fe2Al5 band's bottom."""
    if lay.feal3_thickness_um <= 0:
        return None
    envelope = np.ones(x_um.size)
    if lay.feal3_coverage < 1.0:
        envelope = patch_envelope(x_um, lay.feal3_coverage, max(4.0 * lay.feal3_thickness_um, PATCH_TAPER_MIN_UM), rng)
    n = 3
    wavelength = (np.ptp(x_um) + 1.0) * rng.uniform(0.2, 0.8, n)
    phase = rng.uniform(0.0, 2 * np.pi, n)
    wave = np.sin(2 * np.pi * x_um[None, :] / wavelength[:, None] + phase[:, None]).mean(0)
    thickness = lay.feal3_thickness_um * (1.0 + FEAL3_VARIATION * wave) * envelope
    return np.minimum(surface_um + thickness, fe2al5_bottom_um - pixel_size_um)


def slurry_particles(
    lay: LayerSpec, x_um: np.ndarray, surface_um: np.ndarray, rng: np.random.Generator
) -> Inclusions:
    """Discs of leftover Al particles sitting on ``surface_um`` (Poisson in number over the width of ``x_um``)."""
    if lay.slurry_particles_per_100um <= 0 or x_um.size < 2:
        return Inclusions.empty()
    p = float(x_um[1] - x_um[0])
    x_lo, x_hi = float(x_um[0]) - 0.5 * p, float(x_um[-1]) + 0.5 * p
    n = int(rng.poisson(lay.slurry_particles_per_100um * (x_hi - x_lo) / 100.0))
    if n == 0:
        return Inclusions.empty()
    sphere = np.maximum(lay.slurry_particle_diameter_um * (1.0 + PARTICLE_DIAMETER_SPREAD * rng.normal(0.0, 1.0, n)),
                        0.2 * lay.slurry_particle_diameter_um) / 2
    # The section through the sphere at a random height: a disc of radius sqrt(R^2 - h^2).
    radius = sphere * np.sqrt(1.0 - (SECTION_OFFSET_MAX * rng.uniform(0.0, 1.0, n)) ** 2)
    cx = rng.uniform(x_lo, x_hi, n)
    sink = rng.uniform(*SINK_RANGE, n) * radius
    t = np.linspace(0.0, 2 * np.pi, PARTICLE_VERTICES, endpoint=False)
    wobble = 1.0 + PARTICLE_WOBBLE * np.cos(3 * t[None, :] + rng.uniform(0.0, 2 * np.pi, (n, 1)))
    # Sitting on the surface below it: the lowest point of the disc lies ``sink`` below the surface there.
    column = np.clip(np.rint((cx - x_um[0]) / p).astype(np.intp), 0, x_um.size - 1)
    cd = surface_um[column] - radius + sink
    x = cx[:, None] + radius[:, None] * wobble * np.cos(t)[None, :]
    depth = cd[:, None] - radius[:, None] * wobble * np.sin(t)[None, :]
    y = -depth
    areas = 0.5 * (x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(1)
    return Inclusions(np.stack([x, depth], axis=-1), areas)
