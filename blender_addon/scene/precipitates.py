"""What the precipitates of Fe2Al5 are besides scattered particles: groups (clusters and strings), their phase, and
pull-out pits.

Coordinates as in :mod:`.geometry`. Groups are boxes along the local surface: a cluster is about as tall as wide, a
string is one particle tall and several long (a row of particles parallel to the surface, as along a grain boundary).
Each frame column belongs to at most one group; the grouped precipitates are placed like any others (never overlapping
anything, inside the band), only with their centres held inside their group's box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semcoat.spec import PrecipitateSpec

from .placement import DepthWindow, Inclusions

# Particles per group, and how densely a group's box is filled with them (area share).
PARTICLES_PER_GROUP = 6
GROUP_FILL = 0.25
STRING_SHARE = 0.5  # of the groups
GROUP_OVERPROVISION = 3.0
# Layouts of boxes tried for what is still missing, each with a few rounds of candidates: fresh boxes fill faster than
# more rounds in crowded ones (a round costs a clash search against everything placed).
GROUP_ATTEMPTS = 3
GROUP_ROUNDS = 4


@dataclass
class GroupLayout:
    """Which frame columns hold a group, and the depth window of each column's group (µm below the image top)."""

    columns: np.ndarray  # bool per frame column
    top_um: np.ndarray  # per frame column (NaN outside the groups)
    bottom_um: np.ndarray


def group_layout(
    spec: PrecipitateSpec, target_area_um2: float, x_um: np.ndarray, surface_um: np.ndarray,
    bottom_um: np.ndarray, rng: np.random.Generator,
) -> GroupLayout:
    """Boxes for ``target_area_um2`` of grouped precipitates (``bottom_um``: the deepest a precipitate may lie)."""
    n_cols = x_um.size
    p = float(x_um[1] - x_um[0]) if n_cols > 1 else 1.0
    top = np.full(n_cols, np.nan)
    bottom = np.full(n_cols, np.nan)
    mean_area = np.pi * (spec.radius_mean_um**2 + spec.radius_std_um**2)
    # Random placement fills about half of the boxes' room: twice the boxes the particles would need.
    n_groups = int(np.ceil(GROUP_OVERPROVISION * target_area_um2 / (PARTICLES_PER_GROUP * mean_area)))
    box_area = PARTICLES_PER_GROUP * mean_area / GROUP_FILL
    string = rng.uniform(0.0, 1.0, n_groups) < STRING_SHARE
    height = np.where(string, 5.0 * np.sqrt(spec.radius_mean_um**2 + spec.radius_std_um**2), np.sqrt(box_area))
    width = box_area / height
    centre_x = rng.uniform(x_um[0], x_um[-1], n_groups)
    share = rng.uniform(0.0, 1.0, n_groups)
    lo = np.maximum(0, np.floor((centre_x - width / 2 - x_um[0]) / p).astype(np.int64))
    hi = np.minimum(n_cols, np.ceil((centre_x + width / 2 - x_um[0]) / p).astype(np.int64) + 1)
    hi = np.maximum(hi, lo)
    # Every (group, column) its box spans; a box needs room in all its columns.
    group = np.repeat(np.arange(n_groups), hi - lo)
    column = np.arange(group.size) + np.repeat(lo - (np.cumsum(hi - lo) - (hi - lo)), hi - lo)
    room = np.full(n_groups, -np.inf)
    spans = hi > lo
    if spans.any():
        thickness = bottom_um - surface_um
        room[spans] = np.minimum.reduceat(thickness[column], (np.cumsum(hi - lo) - (hi - lo))[spans])
    room -= height
    # A column belongs to the first box (in draw order) that spans it and has room; the box follows the local
    # surface, at a random depth within the room the band leaves.
    fits = room[group] > 0
    group, column = group[fits], column[fits]
    owner = np.full(n_cols, n_groups)
    np.minimum.at(owner, column, group)
    held = owner < n_groups
    top[held] = surface_um[held] + share[owner[held]] * room[owner[held]]
    bottom[held] = top[held] + height[owner[held]]
    return GroupLayout(~np.isnan(top), top, bottom)


def group_window(layout: GroupLayout, inside: DepthWindow) -> DepthWindow:
    """Depth window of a grouped precipitate: inside its group's box and inside the band (``inside``)."""

    def window(ix: np.ndarray, reach: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = inside(ix, reach)
        return np.maximum(lo, layout.top_um[ix] + 0.5 * reach), np.minimum(hi, layout.bottom_um[ix] - 0.5 * reach)

    return window


def draw_phases(spec: PrecipitateSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """Phase index (into :data:`semcoat.classes.PRECIPITATE_PHASES`) of each of ``n`` precipitates, by the mix."""
    weights = np.array([spec.al8cr5_share, spec.cr2al_share, spec.cr23c6_share], dtype=np.float64)
    if n == 0 or weights.sum() <= 0:
        return np.full(n, weights.size - 1, dtype=np.int8)
    return rng.choice(weights.size, n, p=weights / weights.sum()).astype(np.int8)


def split_pullouts(
    precipitates: Inclusions, phases: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[Inclusions, np.ndarray, Inclusions]:
    """(kept precipitates, their phases, pits): each precipitate is pulled out with probability ``fraction``."""
    if fraction <= 0 or not len(precipitates):
        return precipitates, phases, Inclusions.empty()
    out = rng.uniform(0.0, 1.0, len(precipitates)) < fraction
    kept = Inclusions(precipitates.polygons_um[~out], precipitates.areas_um2[~out])
    pits = Inclusions(precipitates.polygons_um[out], precipitates.areas_um2[out])
    return kept, phases[~out], pits
