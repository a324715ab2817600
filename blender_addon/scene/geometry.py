"""Coating geometry from a spec: interface profiles and inclusion polygons, in micrometres, without bpy.

Coordinates: ``x_um`` runs along the surface from the left image edge, ``depth_um`` runs down from the top image edge
(rows = depth). The frame is the image plus ``margin_px`` columns on each side (room for scan-line shifts), so
``x_um`` spans ``[-margin_px * p, (width_px + margin_px) * p]``.

The layers are described by depth profiles sampled at every pixel-column centre of the frame (the renderer joins the
samples with straight lines): the coating surface, the bottom of Fe2Al5 and the bottom of FeAl (equal to the bottom
of Fe2Al5 when there is no FeAl). Pores, pore-line pores and precipitates are star-shaped polygons (perturbed ellipses)
that never overlap one another and lie wholly inside the Fe2Al5 band, so the area of each class is the sum of its
polygons' areas.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from semcoat.classes import PRECIPITATE_PHASES
from semcoat.spec import CoatingSpec

from .cracks import draw_cracks
from .framing import Framing
from .interface import KIRKENDALL_RADIUS_SPREAD, FeAlZone, feal_zone, hugging_bottom, needs_zone
from .mount import filler_specks, mount_layers
from .neighbours import sliding_max, sliding_min
from .placement import (
    GAP_PX,
    PLACEMENT_ROUNDS,
    VERTICES_PER_INCLUSION,
    DepthWindow,
    Inclusions,
    PlacedCircles,
    Population,
    covered_columns,
    max_reach_um,
    place,
)
from .pore_shapes import outer_weighting, pore_shapes, reach_factor
from .precipitates import GROUP_ATTEMPTS, GROUP_ROUNDS, draw_phases, group_layout, group_window, split_pullouts
from .stopping import Interrupted, StopCheck, check
from .surface_phases import feal3_band, slurry_particles

__all__ = [
    "LINE_PORE_MAX_ASPECT", "VERTICES_PER_INCLUSION", "CoatingGeometry", "Inclusions", "Interrupted", "StopCheck",
    "build_geometry", "designed_values", "rough_profile",
]

# Pores of the pore line are elongated along the line, up to this aspect ratio.
LINE_PORE_MAX_ASPECT = 2.5
# Random streams drawn for the features of issue 11 after every earlier one (a fixed number, so one more feature
# moves none of the others).
NEW_STREAMS = 8


@dataclass
class CoatingGeometry:
    """Everything the renderer draws for one image, in micrometres.

    Attributes
    ----------
    pixel_size_um, width_px, height_px, margin_px : the frame (image plus margins left and right).
    x_um : column-centre positions of the frame, shape (width_px + 2 * margin_px,).
    surface_um, fe2al5_bottom_um, feal_bottom_um : depth profiles at ``x_um``; equal bottoms mean no FeAl.
    pores, line_pores, precipitates : the inclusions.
    cracks : crack polygons (drawn over everything else of the Fe2Al5 band, see :mod:`.cracks`).
    precipitate_phase : per precipitate, its phase (index into ``semcoat.classes.PRECIPITATE_PHASES``).
    pits : pull-out pits, where precipitates were torn out in polishing (pores in the mask).
    tilt_rad : turn of the cross-section in the frame (``imaging.tilt_deg``), positive clockwise.
    feal2_bottom_um, fe3al_top_um : the FeAl2 and Fe3Al sub-bands of the FeAl zone (see :mod:`.interface`): FeAl2
        from ``fe2al5_bottom_um`` down to this, Fe3Al from this down to ``feal_bottom_um``; None where absent.
    interface_voids : Kirkendall voids along the bottom of the Fe2Al5 band (pores in the mask).
    plating_top_um, gap_top_um : the mount above the surface (see :mod:`.mount`): the plating from its top down to the
        surface, the shrinkage gap from its top down to the plating (or the surface); None where absent.
    filler_specks : filler particles in the resin (background in the mask).
    feal3_bottom_um : bottom of the FeAl3 band below the surface (class Fe2Al5, see :mod:`.surface_phases`); None
        where absent.
    slurry_particles : leftover Al particles sitting on the surface (background in the mask).
    designed : the values the geometry was designed to have (see :func:`designed_values`).
    """

    pixel_size_um: float
    width_px: int
    height_px: int
    margin_px: int
    x_um: np.ndarray
    surface_um: np.ndarray
    fe2al5_bottom_um: np.ndarray
    feal_bottom_um: np.ndarray
    pores: Inclusions
    line_pores: Inclusions
    precipitates: Inclusions
    cracks: Inclusions = field(default_factory=Inclusions.empty)
    precipitate_phase: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    pits: Inclusions = field(default_factory=Inclusions.empty)
    tilt_rad: float = 0.0
    feal2_bottom_um: np.ndarray | None = None
    fe3al_top_um: np.ndarray | None = None
    interface_voids: Inclusions = field(default_factory=Inclusions.empty)
    plating_top_um: np.ndarray | None = None
    gap_top_um: np.ndarray | None = None
    filler_specks: Inclusions = field(default_factory=Inclusions.empty)
    feal3_bottom_um: np.ndarray | None = None
    slurry_particles: Inclusions = field(default_factory=Inclusions.empty)
    designed: dict[str, Any] = field(default_factory=dict)

    @property
    def fe2al5_top_um(self) -> np.ndarray:
        """Top of the Fe2Al5 proper: below the FeAl3 band where there is one (both are class Fe2Al5)."""
        return self.surface_um if self.feal3_bottom_um is None else self.feal3_bottom_um

    @property
    def feal_top_um(self) -> np.ndarray:
        """Top of the FeAl layer proper: below the FeAl2 sub-band where there is one."""
        return self.fe2al5_bottom_um if self.feal2_bottom_um is None else self.feal2_bottom_um

    @property
    def in_image(self) -> slice:
        """Index range of ``x_um`` (and the profiles) that falls inside the image."""
        return slice(self.margin_px, self.margin_px + self.width_px)


def rough_profile(
    x_um: np.ndarray, amplitude_um: float, wavelength_um: float, rng: np.random.Generator
) -> np.ndarray:
    """Zero-mean random roughness: a sum of sinusoids around ``wavelength_um`` plus weaker finer ones.

    Parameters
    ----------
    x_um : positions along the surface, µm.
    amplitude_um : half the peak-to-valley height of the result over ``x_um``, µm (0 gives a flat profile).
    wavelength_um : dominant wavelength, µm.
    rng : random generator (consumed the same way whatever the amplitude, so other draws do not shift).

    Returns
    -------
    ndarray
        Depth offsets, µm, with mean 0 over ``x_um`` and (max - min) / 2 == amplitude_um.
    """
    n_main, n_fine = 6, 8
    wavelengths = np.concatenate([
        wavelength_um * np.exp(rng.normal(0.0, 0.3, n_main)),
        wavelength_um / 3.5 * np.exp(rng.normal(0.0, 0.4, n_fine)),
    ])
    weights = np.concatenate([np.ones(n_main), np.full(n_fine, 0.22)]) * rng.uniform(0.6, 1.0, n_main + n_fine)
    phases = rng.uniform(0.0, 2 * np.pi, n_main + n_fine)
    profile = (weights[:, None] * np.sin(2 * np.pi * x_um[None, :] / wavelengths[:, None] + phases[:, None])).sum(0)
    profile -= profile.mean()
    half_range = (profile.max() - profile.min()) / 2
    if amplitude_um <= 0 or half_range <= 0:
        return np.zeros_like(x_um)
    return profile * (amplitude_um / half_range)


def build_geometry(
    spec: CoatingSpec, rng: np.random.Generator, margin_px: int = 0, should_stop: StopCheck | None = None
) -> CoatingGeometry:
    """The coating of ``spec`` drawn with ``rng``: layer profiles and inclusions, in micrometres.

    Parameters
    ----------
    spec : the (validated) coating spec of one image.
    rng : random generator; the same generator state always gives the same geometry.
    margin_px : extra columns on each side of the image (scan-line shifts read into them).
    should_stop : asked at least every few tenths of a second (e.g. ``threading.Event().is_set``); None never stops.
        It draws nothing from ``rng``: the geometry is the same, bit for bit, with or without it.

    Returns
    -------
    CoatingGeometry
        In the image frame (a tilted cross-section is drawn level, then turned, see :mod:`.framing`), with
        ``designed`` holding the design values (µm, %).

    Raises
    ------
    Interrupted
        when ``should_stop`` answered True; nothing of the geometry is returned.
    """
    img, lay = spec.imaging, spec.layers
    p = img.pixel_size_um
    frame = Framing.of(spec, margin_px)
    # The coating's own frame (its surface level); the image frame itself when there is no tilt.
    u_um = frame.u_um
    n_cols = u_um.size
    inside_u = frame.in_image_u
    width_um = img.width_px * p

    surface = lay.surface_depth_um + rough_profile(
        u_um, lay.surface_roughness_amplitude_um, lay.surface_roughness_wavelength_um, rng)
    variation = rough_profile(u_um, lay.fe2al5_thickness_variation_um, max(width_um * 0.6, 1.0), rng)
    interface = rough_profile(u_um, lay.interface_roughness_amplitude_um, lay.interface_roughness_wavelength_um, rng)
    # The interface follows the surface (the coating grows inwards from it), so roughness does not change thickness.
    thickness = lay.fe2al5_thickness_um + variation + interface
    thickness -= thickness[inside_u].mean() - lay.fe2al5_thickness_um
    fe2al5_bottom = surface + np.maximum(thickness, p)
    feal_profile = rough_profile(u_um, 0.25 * lay.feal_thickness_um, max(width_um * 0.3, 1.0), rng)
    feal_thickness = np.maximum(lay.feal_thickness_um + feal_profile, 0.3 * lay.feal_thickness_um)
    if lay.feal_present:
        feal_bottom = fe2al5_bottom + feal_thickness
    else:
        feal_bottom = fe2al5_bottom.copy()

    line = spec.pore_line
    pore_shape = reach_factor(spec.pores.irregularity, spec.pores.merged_fraction)
    shapes = pore_shapes(spec.pores.irregularity, spec.pores.merged_fraction)
    pore_reach_um = max_reach_um(spec.pores.radius_mean_um, spec.pores.elongation, pore_shape)
    line_reach_um = max_reach_um(line.pore_radius_mean_um, LINE_PORE_MAX_ASPECT, pore_shape)
    pre = spec.precipitates
    pre_reach_um = max_reach_um(pre.radius_mean_um, 1.6 * pre.elongation)
    visible = _visible_band(frame, max(pore_reach_um, line_reach_um, pre_reach_um))

    band_top, band_bottom = visible(surface, fe2al5_bottom)
    band_area_um2 = float((band_bottom - band_top).sum() * p)
    placed = PlacedCircles()
    gap_um = GAP_PX * p
    every_column = np.ones(n_cols, dtype=bool)

    def band_window(top: np.ndarray, bottom: np.ndarray, reach_um: float) -> DepthWindow:
        # Running max/min over the widest inclusion, so a centre's whole bounding circle stays in the band.
        size = 2 * int(np.ceil(reach_um / p)) + 1
        top, bottom = visible(top, bottom)
        top_max = sliding_max(top, size)
        bottom_min = sliding_min(bottom, size)

        def window(ix: np.ndarray, reach: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return top_max[ix] + reach + gap_um, bottom_min[ix] - reach - gap_um

        return window

    line_pores = Inclusions.empty()
    covered = np.zeros(img.width_px, dtype=bool)
    line_coverage_rng = np.random.default_rng(rng.integers(2**63))
    line_rng = np.random.default_rng(rng.integers(2**63))
    if line.present:
        covered = covered_columns(img.width_px, line.lateral_coverage, line_coverage_rng)
        covered_frame = covered[(np.arange(n_cols) - margin_px - frame.extra_columns) % img.width_px]
        inside = band_window(surface, fe2al5_bottom, line_reach_um)
        local_top = surface + line.depth_um - line.width_um / 2

        def line_window(ix: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            lo, hi = inside(ix, r)
            return np.maximum(lo, local_top[ix]), np.minimum(hi, local_top[ix] + line.width_um)

        line_pores = place(
            Population(
                target_area_um2=line.area_fraction_pct / 100 * line.width_um * p * float(covered_frame.sum()),
                radius_mean_um=line.pore_radius_mean_um, radius_std_um=line.pore_radius_std_um,
                aspect=("max", LINE_PORE_MAX_ASPECT), angle_mean_rad=0.0, angle_spread_rad=np.deg2rad(12.0),
                depth_window=line_window, shapes=shapes),
            u_um, covered_frame, placed, p, line_rng, should_stop)

    pores_rng = np.random.default_rng(rng.integers(2**63))
    pores = place(
        Population(
            target_area_um2=spec.pores.area_fraction_pct / 100 * band_area_um2,
            radius_mean_um=spec.pores.radius_mean_um, radius_std_um=spec.pores.radius_std_um,
            aspect=("max", spec.pores.elongation), angle_mean_rad=0.0, angle_spread_rad=np.inf,
            depth_window=band_window(surface, fe2al5_bottom, pore_reach_um), shapes=shapes,
            depth_share=outer_weighting(spec.pores.outer_weighting)),
        u_um, every_column, placed, p, pores_rng, should_stop)

    pre_rng = np.random.default_rng(rng.integers(2**63))
    pre_bottom = surface + pre.depth_limit_fraction * (fe2al5_bottom - surface)
    pre_target_um2 = pre.area_fraction_pct / 100 * band_area_um2
    pre_inside = band_window(surface, pre_bottom, pre_reach_um)

    def precipitate_population(target_um2: float, window: DepthWindow, rounds: int = PLACEMENT_ROUNDS) -> Population:
        return Population(
            target_area_um2=target_um2, radius_mean_um=pre.radius_mean_um, radius_std_um=pre.radius_std_um,
            aspect=("mean", pre.elongation), angle_mean_rad=np.deg2rad(pre.orientation_deg),
            angle_spread_rad=np.deg2rad(pre.orientation_spread_deg), depth_window=window,
            cube_fraction=pre.cube_fraction, rounds=rounds)

    precipitates = place(precipitate_population((1.0 - pre.cluster_fraction) * pre_target_um2, pre_inside),
                         u_um, every_column, placed, p, pre_rng, should_stop)

    check(should_stop)
    # Drawn last, from streams of their own: with a feature off, every other draw is what it always was.
    crack_rng = np.random.default_rng(rng.integers(2**63))
    group_rng, phase_rng, pullout_rng = (np.random.default_rng(s) for s in rng.integers(2**63, size=3))
    grouped_um2 = pre.cluster_fraction * pre_target_um2
    # Groups fill their boxes unevenly: new boxes for what is still missing, a few times over.
    for _ in range(GROUP_ATTEMPTS if grouped_um2 > 0 else 0):
        layout = group_layout(pre, grouped_um2, u_um, surface, pre_bottom, group_rng)
        grouped = place(precipitate_population(grouped_um2, group_window(layout, pre_inside), GROUP_ROUNDS),
                        u_um, layout.columns, placed, p, group_rng, should_stop)
        precipitates = Inclusions(np.concatenate([precipitates.polygons_um, grouped.polygons_um]),
                                  np.concatenate([precipitates.areas_um2, grouped.areas_um2]))
        grouped_um2 -= float(grouped.areas_um2.sum())
        if grouped_um2 <= 0.1 * np.pi * pre.radius_mean_um**2:
            break
    phases = draw_phases(pre, len(precipitates), phase_rng)
    precipitates, phases, pits = split_pullouts(precipitates, phases, pre.pullout_fraction, pullout_rng)

    # The geometry of issue 11 points 4, 6 and 9, each from a stream of its own (drawn after every earlier one).
    streams = [np.random.default_rng(s) for s in rng.integers(2**63, size=NEW_STREAMS)]
    zone_rng, void_rng, mount_rng, speck_rng, feal3_rng, particle_rng = streams[:6]
    zone = FeAlZone(None, None, feal_bottom)
    if needs_zone(lay):
        zone = feal_zone(lay, u_um, fe2al5_bottom, feal_thickness, zone_rng)
    voids = Inclusions.empty()
    pores_spec = spec.pores
    if pores_spec.kirkendall_per_100um > 0:
        void_reach_um = max_reach_um(pores_spec.kirkendall_radius_um, LINE_PORE_MAX_ASPECT, pore_shape)
        void_area_um2 = np.pi * pores_spec.kirkendall_radius_um**2 * (1 + KIRKENDALL_RADIUS_SPREAD**2)
        voids = place(
            Population(
                target_area_um2=pores_spec.kirkendall_per_100um * float(np.ptp(u_um) + p) / 100.0 * void_area_um2,
                radius_mean_um=pores_spec.kirkendall_radius_um,
                radius_std_um=KIRKENDALL_RADIUS_SPREAD * pores_spec.kirkendall_radius_um,
                aspect=("max", LINE_PORE_MAX_ASPECT), angle_mean_rad=0.0, angle_spread_rad=np.deg2rad(12.0),
                depth_window=hugging_bottom(band_window(surface, fe2al5_bottom, void_reach_um)), shapes=shapes),
            u_um, every_column, placed, p, void_rng, should_stop)

    mount = mount_layers(lay, u_um, surface, mount_rng)
    feal3 = feal3_band(lay, u_um, surface, fe2al5_bottom, p, feal3_rng)
    particles = slurry_particles(lay, u_um, surface, particle_rng)

    # Into the image frame (nothing moves without a tilt); cracks are drawn there, against the turned surface, and
    # the resin's filler specks over the resin the frame shows.
    surface_img = frame.profile_to_image(surface)
    plating_top_img = None if mount.plating_top_um is None else frame.profile_to_image(mount.plating_top_um)
    gap_top_img = None if mount.gap_top_um is None else frame.profile_to_image(mount.gap_top_um)
    resin_bottom = next(top for top in (gap_top_img, plating_top_img, surface_img) if top is not None)
    specks = filler_specks(lay, frame.x_um, resin_bottom, frame.usable_height_px * p, speck_rng)
    fe2al5_bottom_img = frame.profile_to_image(fe2al5_bottom)
    cracks = draw_cracks(spec.cracks, frame.x_um, surface_img, fe2al5_bottom_img, p, crack_rng, frame.tilt_rad)
    turn = frame.inclusions_to_image
    geometry = CoatingGeometry(
        pixel_size_um=p, width_px=img.width_px, height_px=img.height_px, margin_px=margin_px, x_um=frame.x_um,
        surface_um=surface_img, fe2al5_bottom_um=fe2al5_bottom_img,
        feal_bottom_um=frame.profile_to_image(zone.feal_bottom_um),
        feal2_bottom_um=None if zone.feal2_bottom_um is None else frame.profile_to_image(zone.feal2_bottom_um),
        fe3al_top_um=None if zone.fe3al_top_um is None else frame.profile_to_image(zone.fe3al_top_um),
        interface_voids=turn(voids), plating_top_um=plating_top_img, gap_top_um=gap_top_img, filler_specks=specks,
        feal3_bottom_um=None if feal3 is None else frame.profile_to_image(feal3), slurry_particles=turn(particles),
        pores=turn(pores), line_pores=turn(line_pores), precipitates=turn(precipitates), cracks=cracks,
        precipitate_phase=phases, pits=turn(pits), tilt_rad=frame.tilt_rad)
    geometry.designed = designed_values(spec, geometry, covered)
    return geometry


BandClip = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _visible_band(frame: Framing, margin_um: float) -> BandClip:
    """(top, bottom) depth profiles -> the part of the band inclusions are placed in: all of it, or in a frame that
    may cut the coating, only what lies within ``margin_um`` of the depths the frame shows (a coating of a
    millimetre under a frame of 40 µm places nothing where no pixel sees it)."""
    if not frame.partial:
        return lambda top, bottom: (top, bottom)
    lo, hi = frame.depth_range_um(margin_um)

    def clip(top: np.ndarray, bottom: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        top = np.clip(top, lo, hi)
        return top, np.clip(bottom, top, hi)

    return clip


def _specimen_top(g: CoatingGeometry) -> np.ndarray:
    """The specimen's upper edge: the plating's top where there is a plating, else the coating's surface."""
    return g.surface_um if g.plating_top_um is None else g.plating_top_um


def designed_values(spec: CoatingSpec, geometry: CoatingGeometry, covered: np.ndarray) -> dict[str, Any]:
    """What the image was designed to show (µm, %): the spec's targets and what the drawn geometry holds.

    ``*_target`` values are the spec's; the others are measured on the drawn geometry inside the image (polygon
    areas over the Fe2Al5 band area, before pixel sampling), lengths across the coating (x cos(tilt)). A frame that
    cuts the coating counts what lies inside it (inclusions by their centre) and has a thickness only where most of
    its columns show both edges of the band, as :func:`analysis.measure.measure` reads it.
    """
    g = geometry
    inside = g.in_image
    p = g.pixel_size_um
    lo_um, hi_um = 0.0, g.width_px * p
    cos_tilt = float(np.cos(g.tilt_rad))
    surface, bottom = g.surface_um[inside], g.fe2al5_bottom_um[inside]
    band = bottom - surface
    top_um, usable_um = 0.0, np.inf
    if spec.imaging.partial_frame:
        usable_um = (g.height_px - (spec.imaging.data_bar_height_px if spec.imaging.data_bar else 0)) * p
        band = np.clip(bottom, 0.0, usable_um) - np.clip(surface, 0.0, usable_um)
    # A pixel shows what lies at its centre: the surface is seen when row 0 is above it, the bottom when a row is below.
    whole = (surface > 0.5 * p) & (bottom <= usable_um - 0.5 * p)
    whole_frame = np.count_nonzero(whole) >= 0.5 * np.count_nonzero(band > 0)
    band_area = float(band.sum() * p)

    def area_inside(inc: Inclusions) -> float:
        if not len(inc):
            return 0.0
        cx = inc.polygons_um[:, :, 0].mean(1)
        cd = inc.polygons_um[:, :, 1].mean(1)
        return float(inc.areas_um2[(cx >= lo_um) & (cx < hi_um) & (cd >= top_um) & (cd < usable_um)].sum())

    pore_area = area_inside(g.pores) + area_inside(g.line_pores) + area_inside(g.pits) + area_inside(g.interface_voids)
    # A crack is in the image when some of it is (a pixel's width or more).
    crack_x = g.cracks.polygons_um[:, :, 0]
    crack_count = int(np.count_nonzero((crack_x.max(1) >= lo_um + p) & (crack_x.min(1) < hi_um - p)))
    line = spec.pore_line
    # The FeAl zone (sub-bands included: all class FeAl) where it is a pixel thick or more; patchy FeAl is present
    # when it lies under at least half of the width, as the measurement reads it.
    feal = (g.feal_bottom_um - g.fe2al5_bottom_um)[inside]
    has_feal = feal >= p
    feal_present = bool(spec.layers.feal_present) and np.count_nonzero(has_feal) >= 0.5 * feal.size
    return {
        "fe2al5_thickness_um": float((bottom - surface)[whole].mean()) * cos_tilt if whole_frame else None,
        "fe2al5_thickness_target_um": spec.layers.fe2al5_thickness_um,
        "fe2al5_thickness_std_um": float((bottom - surface)[whole].std()) * cos_tilt if whole_frame else None,
        "feal_present": feal_present,
        "feal_thickness_um": float(feal[has_feal].mean()) * cos_tilt if feal_present else 0.0,
        "feal_coverage": float(np.mean(has_feal)) if spec.layers.feal_present else 0.0,
        "kirkendall_void_count": len(g.interface_voids),
        "plating_thickness_um": (float((g.surface_um - g.plating_top_um)[inside].mean())
                                 if g.plating_top_um is not None else 0.0),
        "shrinkage_gap_max_um": (float((_specimen_top(g) - g.gap_top_um)[inside].max())
                                 if g.gap_top_um is not None else 0.0),
        "filler_speck_count": len(g.filler_specks),
        "feal3_thickness_um": (float((g.feal3_bottom_um - g.surface_um)[inside].mean())
                               if g.feal3_bottom_um is not None else 0.0),
        "slurry_particle_count": len(g.slurry_particles),
        "pore_fraction_pct": 100.0 * pore_area / band_area,
        "scattered_pore_fraction_pct": 100.0 * area_inside(g.pores) / band_area,
        "scattered_pore_fraction_target_pct": spec.pores.area_fraction_pct,
        "pore_line_present": bool(line.present),
        "pore_line_depth_um": line.depth_um if line.present else None,
        "pore_line_coverage": float(covered.mean()) if line.present else 0.0,
        "precipitate_fraction_pct": 100.0 * area_inside(g.precipitates) / band_area,
        "precipitate_fraction_target_pct": spec.precipitates.area_fraction_pct,
        "pore_count": len(g.pores) + len(g.line_pores),
        "precipitate_count": len(g.precipitates),
        "pit_fraction_pct": 100.0 * area_inside(g.pits) / band_area,
        "precipitate_phase_counts": {ph.name: int(np.count_nonzero(g.precipitate_phase == k))
                                     for k, ph in enumerate(PRECIPITATE_PHASES)},
        "crack_count": crack_count,
        "crack_density_per_mm": 1000.0 * crack_count * cos_tilt / (hi_um - lo_um),
        "crack_density_target_per_mm": 10.0 * spec.cracks.density_per_100um,
        "tilt_deg": spec.imaging.tilt_deg,
    }
