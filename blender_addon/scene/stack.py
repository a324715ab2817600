"""The objects of issue 11's geometry that the scene builder draws beside its first nine, and their greys.

Each is a region below a depth profile (everything below it, hidden under the objects stacked higher) or a set of
polygons, with a class id, a height (z) in the stack and a grey. Regions stacked by height make bands without a band
shape: FeAl2 is the region below the Fe2Al5 bottom, stacked between Fe2Al5 and FeAl, and the FeAl object starts
below it (:attr:`.geometry.CoatingGeometry.feal_top_um`). The stack, bottom to top:

========  =====  ==============================================================
z         class  object
========  =====  ==============================================================
0         0      resin (the builder's plane)
0.1       0      filler specks in the resin
0.2       0      shrinkage gap below its top (the resin's edge), black
0.3       0      plating below its top (Ni, bright)
0.4       0      leftover Al particles of the slurry on the surface
0.5       1      FeAl3 below the surface (a band at the top of the coating)
1         1      Fe2Al5 below the FeAl3 bottom (or the surface)
1.5       2      FeAl2 below the Fe2Al5 bottom (sub-band)
2         2      FeAl below the FeAl2 bottom (or the Fe2Al5 bottom)
2.5       2      Fe3Al below its top (sub-band)
3         3      steel below the FeAl zone
4-6       5/4/6  precipitates, pores (Kirkendall voids among them), cracks
========  =====  ==============================================================

Greys follow backscatter physics like the defaults of ``semcoat.spec.GreyLevelSpec``: :func:`grey_of_z` places a
phase of mean atomic number Z between the image's own greys of resin, Fe2Al5, FeAl and steel by its backscatter
coefficient, so randomised greys keep every phase in order. Pure numpy (no bpy): the builder and the tests' raster
fake draw the same list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from semcoat import classes
from semcoat.spec import GreyLevelSpec

from .placement import Inclusions

if TYPE_CHECKING:
    from .geometry import CoatingGeometry

# Mass-weighted mean atomic numbers: FeAl2 (50.9 wt% Fe) and Fe3Al (86.1 wt% Fe); an edge-retention plating of Ni
# (Z 28, brighter than the steel); filler specks of silica or glass (Z ~10.8, between resin and Al).
Z_FEAL2 = 19.6
Z_FE3AL = 24.2
Z_PLATING = 28.0
Z_FILLER = 10.8
# FeAl3 (40.8 wt% Fe: a little darker than Fe2Al5) and the slurry's leftover Al.
Z_FEAL3 = 18.3
Z_AL = 13.0

# Role (the builder's mark) -> (class id, object name, z), appended to the builder's LAYOUT.
EXTRA_LAYOUT: dict[str, tuple[int, str, float]] = {
    "resin filler": (classes.BACKGROUND, "resin.filler", 0.1),
    "mount gap": (classes.BACKGROUND, "mount.gap", 0.2),
    "mount plating": (classes.BACKGROUND, "mount.plating", 0.3),
    "slurry particles": (classes.BACKGROUND, "slurry_particles", 0.4),
    "band feal3": (classes.FE2AL5, "feal3", 0.5),
    "band feal2": (classes.FEAL, "feal2", 1.5),
    "band fe3al": (classes.FEAL, "fe3al", 2.5),
}

# What an extra object draws: a depth profile (µm) it covers everything below of, polygons, or nothing (None).
Shape = np.ndarray | Inclusions | None


def grey_of_z(grey: GreyLevelSpec, mean_atomic_number: float) -> float:
    """Grey (0-1) of a phase of mean atomic number Z among the image's greys of resin, Fe2Al5, FeAl and steel.

    Piecewise linear in the backscatter coefficient between those four (at Z 6, 18.9, 21.8 and 25.8), extended along
    the last segment beyond them, and clipped to 0-1: a Ni plating (Z 28) sits a little above the steel.
    """
    eta = classes.backscatter_coefficient
    anchors = [(eta(classes.CLASSES[c].mean_atomic_number), grey.for_class(c))
               for c in (classes.BACKGROUND, classes.FE2AL5, classes.FEAL, classes.SUBSTRATE)]
    e = eta(mean_atomic_number)
    k = min(max(int(np.searchsorted([a[0] for a in anchors], e)), 1), len(anchors) - 1)
    (e0, g0), (e1, g1) = anchors[k - 1], anchors[k]
    return float(np.clip(g0 + (g1 - g0) * (e - e0) / (e1 - e0), 0.0, 1.0))


def extra_objects(spec_grey: GreyLevelSpec, g: CoatingGeometry) -> dict[str, tuple[Shape, float]]:
    """Role -> (what the object draws, its grey) of every entry of :data:`EXTRA_LAYOUT`, for geometry ``g``."""
    return {
        "resin filler": (g.filler_specks, grey_of_z(spec_grey, Z_FILLER)),
        "mount gap": (g.gap_top_um, spec_grey.pore),
        "mount plating": (g.plating_top_um, grey_of_z(spec_grey, Z_PLATING)),
        "slurry particles": (g.slurry_particles, grey_of_z(spec_grey, Z_AL)),
        "band feal3": (g.surface_um if g.feal3_bottom_um is not None else None, grey_of_z(spec_grey, Z_FEAL3)),
        "band feal2": (g.fe2al5_bottom_um if g.feal2_bottom_um is not None else None,
                       grey_of_z(spec_grey, Z_FEAL2)),
        "band fe3al": (g.fe3al_top_um, grey_of_z(spec_grey, Z_FE3AL)),
    }
