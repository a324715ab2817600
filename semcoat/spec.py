"""The coating spec: every parameter of one synthetic SEM cross-section of a slurry aluminide coating.

Geometry (from the top of the image down): mounting resin, a rough coating surface, the Fe2Al5 layer (with pores,
an optional pore line and Cr-rich precipitates), an optional FeAl layer, then the steel substrate to the bottom edge.
Lengths are in micrometres (``_um``), image quantities in pixels (``_px``), fractions in percent (``_pct``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from semcoat import classes
from semcoat.params import FieldError, SpecError, dataclass_errors, dataclass_from_dict, param, section

# Bounds on the work one image may ask for (each field in range can still multiply into minutes and gigabytes),
# measured with bench/render_worst_case.py on two cores: a frame of 4096 x 3072 and inclusions of one kind just under
# 5000 each (the hardest placement found: elongated, spread in size, at the area-fraction maxima) render in ~10 s and
# ~1 GB per image. At 6144 x 4096 the same image took 14 s (Cycles ~0.2 us and image formation ~0.15 us per pixel on
# two cores); 5000 saturated inclusions of each kind take ~5.5 s to place, near-linearly. A preset image holds a few
# hundred inclusions in 1024 x 768.
MAX_FRAME_PIXELS = 4096 * 3072
MAX_INCLUSIONS_PER_IMAGE = 5_000
# Kinds of inclusion counted per length or area rather than by area fraction: the field to name and what to lower.
_COUNT_REMEDIES = {
    "cracks": ("cracks", "lower cracks.density_per_100um or the image width"),
    "kirkendall_voids": ("pores.kirkendall_per_100um", "lower pores.kirkendall_per_100um or the image width"),
    "resin_filler": ("layers.resin_filler_per_100um2",
                     "lower layers.resin_filler_per_100um2, the image width or layers.surface_depth_um"),
    "slurry_particles": ("layers.slurry_particles_per_100um",
                         "lower layers.slurry_particles_per_100um or the image width"),
}


def _grey_from_physics(phase_id: int) -> float:
    """Default display grey (0-1) of a phase: its backscatter coefficient stretched from resin-dark to steel-bright.

    eta(Z) spans ~0.06 (resin) to ~0.28 (9Cr steel); the stretch maps eta 0.04 -> 0 and 0.30 -> 1.
    """
    eta = classes.backscatter_coefficient(classes.CLASSES[phase_id].mean_atomic_number)
    return round(min(1.0, max(0.0, (eta - 0.04) / 0.26)), 3)


@dataclass
class LayerSpec:
    """Layer stack and interface roughness."""

    surface_depth_um: float = param(
        20.0, unit="um", minimum=-2000.0, maximum=2000.0,
        doc="Mean depth of the coating surface below the top edge of the image (the resin band); negative puts the "
            "surface above the top edge (the frame starts inside the coating), which needs imaging.partial_frame.")
    fe2al5_thickness_um: float = param(
        60.0, unit="um", minimum=1.0, maximum=1000.0, doc="Mean thickness of the Fe2Al5 layer.")
    fe2al5_thickness_variation_um: float = param(
        2.0, unit="um", minimum=0.0, maximum=200.0,
        doc="Amplitude of the slow variation of the Fe2Al5 thickness along the surface.")
    feal_present: bool = param(False, doc="Whether a thin FeAl layer lies between Fe2Al5 and the substrate.")
    feal_thickness_um: float = param(
        4.0, unit="um", minimum=0.0, maximum=200.0, doc="Mean thickness of the FeAl layer (used when present).")
    surface_roughness_amplitude_um: float = param(
        2.0, unit="um", minimum=0.0, maximum=200.0, doc="Amplitude (half peak-to-valley) of the surface roughness.")
    surface_roughness_wavelength_um: float = param(
        40.0, unit="um", minimum=1.0, maximum=10000.0, doc="Dominant wavelength of the surface roughness.")
    interface_roughness_amplitude_um: float = param(
        1.5, unit="um", minimum=0.0, maximum=200.0,
        doc="Amplitude of the roughness of the Fe2Al5 / (FeAl or substrate) interface.")
    interface_roughness_wavelength_um: float = param(
        25.0, unit="um", minimum=1.0, maximum=10000.0, doc="Dominant wavelength of the interface roughness.")
    feal_coverage: float = param(
        1.0, minimum=0.0, maximum=1.0,
        doc="Share of the width along which the FeAl zone lies (used when FeAl is present): below 1, in one to three "
            "patches whose thickness falls to nothing at their ends, as FeAl forms after a short anneal. The mask "
            "shows FeAl present when it lies under at least half of the width.")
    feal2_thickness_um: float = param(
        0.0, unit="um", minimum=0.0, maximum=50.0,
        doc="Mean thickness of an FeAl2 sub-band between Fe2Al5 and FeAl (used when FeAl is present; 0 = none). Class "
            "FeAl in the mask (the measurement table has no FeAl2: the zone below the Fe2Al5 band is the FeAl), its "
            "grey between Fe2Al5 and FeAl by backscatter (Z ~19.6).")
    fe3al_thickness_um: float = param(
        0.0, unit="um", minimum=0.0, maximum=50.0,
        doc="Mean thickness of an Fe3Al sub-band between FeAl and the steel (used when FeAl is present; 0 = none). "
            "Class FeAl in the mask, its grey between FeAl and the steel by backscatter (Z ~24.2).")
    plating_thickness_um: float = param(
        0.0, unit="um", minimum=0.0, maximum=50.0,
        doc="Mean thickness of an edge-retention plating (Ni, Z 28: brighter than the steel) over the surface, "
            "applied before mounting; class 0 (background) in the mask: it is not coating. 0 = none.")
    shrinkage_gap_um: float = param(
        0.0, unit="um", minimum=0.0, maximum=10.0,
        doc="Widest opening of the shrinkage gap between the mounting resin and the specimen (the plating, or the "
            "surface), where the resin pulled away in curing: open along part of the width, closing smoothly; "
            "black like an open pore, class 0 (background) in the mask. 0 = none.")
    resin_filler_per_100um2: float = param(
        0.0, minimum=0.0, maximum=50.0,
        doc="Filler particles in the mounting resin per 100 um2 of resin: brighter specks (silica or glass, Z ~10.8), "
            "class 0 (background) in the mask. 0 = none.")
    resin_filler_radius_um: float = param(
        0.4, unit="um", minimum=0.05, maximum=5.0,
        doc="Mean radius of a filler speck (log-normal, standard deviation 50 % of it).")
    feal3_thickness_um: float = param(
        0.0, unit="um", minimum=0.0, maximum=50.0,
        doc="Mean thickness of an FeAl3 band at the top of the coating, where Al was left at the surface: a little "
            "darker than Fe2Al5 (Z ~18.3), class Fe2Al5 in the mask (annotators and the measurement table have no "
            "FeAl3; it is part of the aluminide layer the Fe2Al5 thickness measures). 0 = none.")
    feal3_coverage: float = param(
        1.0, minimum=0.0, maximum=1.0,
        doc="Share of the width along which the FeAl3 band lies (in one to three patches, thinning at their ends).")
    slurry_particles_per_100um: float = param(
        0.0, minimum=0.0, maximum=10.0,
        doc="Leftover Al particles of the slurry sitting on the surface, partly sintered into it, per 100 um along "
            "it (Poisson): discs where the section cuts the spheres; class 0 (background) in the mask, Al grey "
            "(Z 13, between resin and Fe2Al5). 0 = none.")
    slurry_particle_diameter_um: float = param(
        32.0, unit="um", minimum=5.0, maximum=100.0,
        doc="Mean diameter of the slurry's Al spheres (20 % spread); a section shows a disc of up to that size.")


@dataclass
class PoreSpec:
    """Pores scattered through the Fe2Al5 layer (voids filled with resin or empty)."""

    area_fraction_pct: float = param(
        1.5, unit="%", minimum=0.0, maximum=30.0,
        doc="Target area fraction of scattered pores in the Fe2Al5 layer, excluding the pore line.")
    radius_mean_um: float = param(0.8, unit="um", minimum=0.05, maximum=50.0, doc="Mean pore radius (log-normal).")
    radius_std_um: float = param(
        0.4, unit="um", minimum=0.0, maximum=50.0, doc="Standard deviation of the pore radius.")
    elongation: float = param(
        1.3, minimum=1.0, maximum=10.0, doc="Maximum aspect ratio (long / short axis) of a pore; drawn in [1, max].")
    irregularity: float = param(
        0.0, minimum=0.0, maximum=1.0,
        doc="How far pore outlines (scattered and of the pore line) depart from smooth ellipses: 0 = gently wobbled "
            "ellipses; up to 1, a stronger wobble plus finer bays and lobes (concave, irregular outlines).")
    merged_fraction: float = param(
        0.0, minimum=0.0, maximum=1.0,
        doc="Share of the pores (scattered and of the pore line) that are two or three overlapping pores merged "
            "into one outline (with a waist where they meet).")
    outer_weighting: float = param(
        0.0, minimum=0.0, maximum=1.0,
        doc="How much the scattered pores crowd towards the outer part of the Fe2Al5 layer: their density falls "
            "linearly with depth from (1 + w) x the mean below the surface to (1 - w) x at the bottom; 0 = uniform.")
    kirkendall_per_100um: float = param(
        0.0, minimum=0.0, maximum=100.0,
        doc="Kirkendall voids per 100 um along the bottom of the Fe2Al5 layer, sitting on its interface with FeAl or "
            "the steel, elongated along it (pores in the mask; outlines as pores.irregularity and merged_fraction "
            "shape them); 0 = none.")
    kirkendall_radius_um: float = param(
        0.5, unit="um", minimum=0.05, maximum=10.0,
        doc="Mean equivalent-circle radius of a Kirkendall void (log-normal, standard deviation 40 % of it).")


@dataclass
class PoreLineSpec:
    """A line of pores parallel to the surface that splits Fe2Al5 into a top and a bottom part."""

    present: bool = param(True, doc="Whether the Fe2Al5 layer holds a pore line.")
    depth_um: float = param(
        25.0, unit="um", minimum=0.0, maximum=1000.0, doc="Depth of the band's centre below the local surface.")
    width_um: float = param(4.0, unit="um", minimum=0.1, maximum=200.0, doc="Thickness of the band holding the pores.")
    lateral_coverage: float = param(
        0.85, minimum=0.0, maximum=1.0, doc="Fraction of the image width along which the band holds pores.")
    area_fraction_pct: float = param(
        30.0, unit="%", minimum=0.0, maximum=80.0, doc="Pore area fraction inside the band where it is covered.")
    pore_radius_mean_um: float = param(
        1.2, unit="um", minimum=0.05, maximum=50.0, doc="Mean radius of the pores of the line (log-normal).")
    pore_radius_std_um: float = param(
        0.5, unit="um", minimum=0.0, maximum=50.0, doc="Standard deviation of the radius of the pores of the line.")


@dataclass
class PrecipitateSpec:
    """Bright Cr-rich precipitates (Cr2Al, Cr23C6) in the Fe2Al5 layer."""

    area_fraction_pct: float = param(
        2.0, unit="%", minimum=0.0, maximum=30.0, doc="Target area fraction of precipitates in the Fe2Al5 layer.")
    radius_mean_um: float = param(
        0.5, unit="um", minimum=0.05, maximum=50.0, doc="Mean equivalent-circle radius of a precipitate (log-normal).")
    radius_std_um: float = param(
        0.25, unit="um", minimum=0.0, maximum=50.0, doc="Standard deviation of the precipitate radius.")
    elongation: float = param(
        2.5, minimum=1.0, maximum=20.0, doc="Mean aspect ratio (long / short axis) of a precipitate.")
    orientation_deg: float = param(
        90.0, unit="deg", minimum=-180.0, maximum=180.0,
        doc="Mean angle of the long axis to the surface (90 = pointing into the depth, along the diffusion direction).")
    orientation_spread_deg: float = param(
        25.0, unit="deg", minimum=0.0, maximum=180.0, doc="Standard deviation of the long-axis angle.")
    depth_limit_fraction: float = param(
        1.0, minimum=0.05, maximum=1.0,
        doc="Precipitates lie in the top part of the Fe2Al5 layer of this fraction of its thickness (1 = everywhere).")
    al8cr5_share: float = param(
        0.0, minimum=0.0, maximum=1.0,
        doc="Relative weight of Al8Cr5 in the phase mix (Z ~19.0: about the grey of Fe2Al5); the three weights are "
            "normalised, each precipitate drawing its phase from them.")
    cr2al_share: float = param(
        0.0, minimum=0.0, maximum=1.0, doc="Relative weight of Cr2Al in the phase mix (Z ~21.7: +0.12 contrast).")
    cr23c6_share: float = param(
        1.0, minimum=0.0, maximum=1.0,
        doc="Relative weight of Cr23C6 in the phase mix (Z ~23.0: +0.18 contrast; its grey is grey.precipitate).")
    cluster_fraction: float = param(
        0.0, minimum=0.0, maximum=1.0,
        doc="Share of the precipitate area gathered in clusters (compact groups) and strings (rows parallel to the "
            "surface, as along grain boundaries) instead of scattered.")
    cube_fraction: float = param(
        0.0, minimum=0.0, maximum=1.0, doc="Share of the precipitates that are cube-like (rounded squares).")
    pullout_fraction: float = param(
        0.0, minimum=0.0, maximum=1.0,
        doc="Share of the precipitates pulled out in polishing: each leaves a pit of its shape, a pore in the mask.")
    speck_density_per_um2: float = param(
        0.0, minimum=0.0, maximum=20.0,
        doc="Sub-resolution Cr-rich specks (20-100 nm) per um2 of Fe2Al5: a faint speckle in the image, below a "
            "pixel and the probe, so part of the Fe2Al5 class in the mask (as an annotator would see it).")


@dataclass
class CrackSpec:
    """Cracks through the Fe2Al5 layer, about perpendicular to the surface (the brittle aluminide cracks on cooling,
    its thermal expansion differing from the steel's). Each starts at the coating surface; some run through the whole
    layer and stop at FeAl or the substrate, the others end inside it. They are their own class in the mask."""

    density_per_100um: float = param(
        0.0, minimum=0.0, maximum=20.0,
        doc="Mean number of cracks per 100 um along the surface (Poisson over the frame width); 0 = none.")
    width_um: float = param(
        0.6, unit="um", minimum=0.05, maximum=10.0,
        doc="Typical opening of a crack at the surface; each crack's is drawn log-uniformly in [width/2, 2 x width] "
            "and never narrower than 1.1 px, so every crack stays one connected region in the mask.")
    angle_spread_deg: float = param(
        15.0, unit="deg", minimum=0.0, maximum=30.0,
        doc="Largest angle of a crack to the surface normal; each crack's angle is uniform in [-spread, spread].")
    through_fraction: float = param(
        0.5, minimum=0.0, maximum=1.0,
        doc="Share of the cracks that run through the whole Fe2Al5 layer and stop at FeAl or the substrate; the "
            "others end at 20-90 % of the layer's thickness.")


@dataclass
class GreyLevelSpec:
    """Display grey (0 = black, 1 = white) of each phase before noise; defaults follow backscatter physics."""

    resin: float = param(_grey_from_physics(classes.BACKGROUND), minimum=0.0, maximum=1.0, doc="Mounting resin.")
    fe2al5: float = param(_grey_from_physics(classes.FE2AL5), minimum=0.0, maximum=1.0, doc="Fe2Al5 layer.")
    feal: float = param(_grey_from_physics(classes.FEAL), minimum=0.0, maximum=1.0, doc="FeAl layer.")
    substrate: float = param(_grey_from_physics(classes.SUBSTRATE), minimum=0.0, maximum=1.0, doc="Steel substrate.")
    pore: float = param(0.03, minimum=0.0, maximum=1.0, doc="Open pores (read as dark resin or black).")
    precipitate: float = param(
        _grey_from_physics(classes.PRECIPITATE), minimum=0.0, maximum=1.0, doc="Cr-rich precipitates.")
    crack: float = param(0.05, minimum=0.0, maximum=1.0, doc="Cracks (resin-filled at the surface, empty below).")
    fe2al5_depth_gradient: float = param(
        0.03, minimum=-0.3, maximum=0.3,
        doc="Relative grey change of Fe2Al5 from the surface to the bottom of its band (Al depletion with depth).")
    pore_fill_max: float = param(
        0.0, minimum=0.0, maximum=1.0,
        doc="Largest fill level of a pore: each pore (a connected pore region of the mask) gets its own level u drawn "
            "in [0, pore_fill_max] and the grey pore + u x (resin - pore), from black (empty) up to the resin's grey "
            "(filled with resin or debris); 0 = every pore at the pore grey.")
    pore_rim: float = param(
        0.0, minimum=0.0, maximum=0.5,
        doc="Extra signal (full scale 1) of the solid at a pore's edge (edge effect), falling off as exp(-d / "
            "pore_rim_width_um) with the distance d from the pore; on top of imaging.edge_brightening; 0 = none.")
    pore_rim_width_um: float = param(
        0.3, unit="um", minimum=0.02, maximum=5.0, doc="Decay length of the bright rim around pores.")
    substrate_blend_um: float = param(
        0.0, unit="um", minimum=0.0, maximum=10.0,
        doc="Width over which FeAl's grey passes into the steel's (10 % to 90 % of the step, centred on the boundary "
            "the mask draws, which stays sharp): aluminium diffused on into the steel. Where Fe2Al5 lies on the "
            "steel the step stays sharp; 0 = a sharp step everywhere.")
    steel_lath_contrast: float = param(
        0.0, minimum=0.0, maximum=0.3,
        doc="Largest relative grey change between blocks of martensite laths in the steel (electron channelling: "
            "elongated bands at a few orientations, packet by packet); 0 = none.")
    steel_lath_width_um: float = param(
        0.8, unit="um", minimum=0.05, maximum=20.0,
        doc="Width of a block of parallel martensite laths (its length is ten times that).")
    steel_packet_um: float = param(
        12.0, unit="um", minimum=1.0, maximum=200.0,
        doc="Mean size of a martensite packet (a region whose blocks share one lath direction).")
    steel_particle_density_per_100um2: float = param(
        0.0, minimum=0.0, maximum=50.0,
        doc="Small bright particles in the steel (Nb/V carbonitrides, W/Mo-rich Laves phase) per 100 um2 of steel; "
            "below the probe, so substrate in the mask; 0 = none.")
    steel_particle_radius_um: float = param(
        0.12, unit="um", minimum=0.01, maximum=2.0,
        doc="Mean radius of a steel particle (each drawn within +-50 %).")
    steel_particle_contrast: float = param(
        0.25, minimum=0.0, maximum=1.0,
        doc="Relative brightening of the steel where a particle covers a whole pixel (less for smaller ones, and the "
            "probe blur lowers the peak further).")

    def for_class(self, class_id: int) -> float:
        """Grey level of the phase with mask value ``class_id`` (for precipitates: of Cr23C6, the brightest)."""
        name = {classes.BACKGROUND: "resin"}.get(class_id, classes.CLASS_NAMES[class_id])
        return float(getattr(self, name))

    def precipitate_phase_greys(self) -> tuple[float, ...]:
        """Grey of each phase of :data:`semcoat.classes.PRECIPITATE_PHASES`, 0-1.

        Backscatter contrast against Fe2Al5 follows Reuter's fit: a phase sits between Fe2Al5 (``fe2al5``) and Cr23C6
        (``precipitate``) in proportion to its backscatter coefficient, so Al8Cr5 is about the grey of Fe2Al5, Cr2Al
        at ~70 % of the way and Cr23C6 at ``precipitate``.
        """
        eta = classes.backscatter_coefficient
        base = eta(classes.CLASSES[classes.FE2AL5].mean_atomic_number)
        top = eta(classes.PRECIPITATE_PHASES[-1].mean_atomic_number)
        greys = [self.fe2al5 + (self.precipitate - self.fe2al5) * (eta(ph.mean_atomic_number) - base) / (top - base)
                 for ph in classes.PRECIPITATE_PHASES[:-1]]
        return (*greys, self.precipitate)


@dataclass
class ImagingSpec:
    """The virtual SEM: frame, probe, detector and scan."""

    pixel_size_um: float = param(0.2, unit="um", minimum=0.001, maximum=100.0, doc="Edge length of one pixel.")
    width_px: int = param(1024, unit="px", minimum=16, maximum=8192, doc="Image width (along the surface).")
    height_px: int = param(768, unit="px", minimum=16, maximum=8192, doc="Image height (depth), data bar included.")
    tilt_deg: float = param(
        0.0, unit="deg", minimum=-10.0, maximum=10.0,
        doc="Turn of the whole cross-section in the frame (mounted or scanned askew), about the image centre; "
            "positive turns it clockwise, so the surface descends to the right. The measurements estimate it from the "
            "surface and interface lines and report lengths across the coating.")
    partial_frame: bool = param(
        False,
        doc="Allow a frame that shows only part of the coating (a high magnification): the coating may run off the "
            "bottom edge (the substrate not reached) and, with a negative layers.surface_depth_um, start above the "
            "top edge. Measurements that need an edge the frame does not show are then None.")
    probe_fwhm_um: float = param(
        0.25, unit="um", minimum=0.0, maximum=5.0,
        doc="Full width at half maximum of the narrow core of the resolution (probe plus backscatter spread; "
            "0.3-1.0 um at 15-20 kV on these phases); 0 = ideal.")
    probe_halo_fraction: float = param(
        0.0, minimum=0.0, maximum=0.5,
        doc="Share of the signal spread into a wide halo around the core (electrons scattered far in the specimen).")
    probe_halo_fwhm_um: float = param(
        3.0, unit="um", minimum=0.1, maximum=20.0, doc="Full width at half maximum of the wide halo.")
    dose_electrons_per_px: float = param(
        300.0, unit="e-/px", minimum=1.0, maximum=1e6,
        doc="Electrons per pixel of the final image (with frame averaging, all frames together: N frames of dose/N "
            "each); sets the Poisson shot noise: a phase of grey g (0-1) counts g x dose electrons on average, so its "
            "noise is sqrt(g / dose) (full scale 1) before the scan bandwidth (a [0.2, 0.6, 0.2] filter along the "
            "line that leaves sqrt(0.44) = 0.66 of it) and the contrast gain.")
    detector_noise_std: float = param(
        0.015, minimum=0.0, maximum=0.5,
        doc="Standard deviation (full scale 1) of the white Gaussian detector noise in the final image, added after "
            "the shot noise and before the scan bandwidth (which leaves 0.66 of it) and the contrast gain.")
    frame_count: int = param(
        1, minimum=1, maximum=64,
        doc="Frames averaged into the image. Each frame's lines jitter on their own (sqrt(frame_count) x "
            "scan_line_jitter_px, so their mean jitters by scan_line_jitter_px), which smears edges along the scan; "
            "the dose and the noise parameters describe the final, averaged image (frames aligned: no drift "
            "between them).")
    line_noise_std: float = param(
        0.0, minimum=0.0, maximum=0.2,
        doc="Standard deviation (full scale 1) in the final image of noise correlated along the scan line (beam "
            "current and amplifier drift): each line wanders on its own, independent of the next; added after the "
            "shot noise, before the detector noise. 0 = none.")
    line_noise_length_px: float = param(
        1000.0, unit="px", minimum=1.0, maximum=100000.0,
        doc="Length along the line over which the line noise decorrelates; beyond the image width it is a "
            "brightness offset per line (horizontal streaks), a few px a fine streaky texture.")
    scan_line_jitter_px: float = param(
        0.25, unit="px", minimum=0.0, maximum=10.0,
        doc="Standard deviation of the random horizontal shift of each line of the final image (with frame "
            "averaging: of the mean position of the frames' lines; the mask follows it).")
    drift_px: float = param(
        0.0, unit="px", minimum=-100.0, maximum=100.0,
        doc="Horizontal drift accumulated from the first to the last line.")
    brightness: float = param(0.0, minimum=-0.5, maximum=0.5, doc="Offset added to the signal (full scale 1).")
    contrast: float = param(1.0, minimum=0.1, maximum=5.0, doc="Gain applied to the signal around mid grey.")
    edge_brightening: float = param(
        0.08, minimum=0.0, maximum=1.0, doc="Extra signal at phase edges (topographic edge effect), full scale 1.")
    shading_amplitude: float = param(
        0.03, minimum=0.0, maximum=0.5,
        doc="Largest relative deviation of the slow brightness ramp across the frame (off-axis detector).")
    scratch_density_per_100um: float = param(
        2.0, minimum=0.0, maximum=100.0,
        doc="Polishing scratches per 100 um along the surface (Poisson mean over the rendered width).")
    scratch_contrast: float = param(
        0.04, minimum=0.0, maximum=0.5, doc="Relative darkening of solid phases at the centre of a scratch.")
    edge_rounding_um: float = param(
        0.0, unit="um", minimum=0.0, maximum=10.0,
        doc="Width of the coating's top edge rounded by polishing: the coating brightens by 1 + "
            "edge_rounding_brightness x exp(-d / width) at depth d below its surface, and the signal on both sides "
            "of the edge is mixed with its blur (sigma width / 2) by exp(-|d| / width): a bright, soft rim. 0 = a "
            "sharp flat edge.")
    edge_rounding_brightness: float = param(
        0.25, minimum=0.0, maximum=1.0, doc="Relative brightening of the coating right at its rounded top edge.")
    charging_amplitude: float = param(
        0.0, minimum=0.0, maximum=0.5,
        doc="Charging of the resin: standard deviation (full scale 1) of the strength of a streak that starts where "
            "a scan line crosses a resin edge and fades along the scan (bright or dark, one strength per line); "
            "0 = none.")
    charging_length_um: float = param(
        10.0, unit="um", minimum=0.1, maximum=200.0,
        doc="Distance along the scan over which a charging streak fades to 1/e.")
    charging_line_fraction: float = param(
        0.3, minimum=0.0, maximum=1.0, doc="Share of the scan lines crossing a resin edge that carry a streak.")
    data_bar: bool = param(False, doc="Draw an instrument data bar with a scale bar along the bottom of the image.")
    data_bar_height_px: int = param(
        48, unit="px", minimum=8, maximum=1024, doc="Height of the data bar (its rows are class 0 in the mask).")
    bit_depth: int = param(8, unit="bit", choices=(8, 16), doc="Bits per pixel of the written grey image.")
    jpeg_quality: int = param(
        0, minimum=0, maximum=100,
        doc="Save the image as a JPEG of this quality (1-100) and read it back, as a lab saving micrographs as JPEG "
            "does (block and ringing artefacts; a 16-bit image keeps 8 bits); 0 = no JPEG.")


@dataclass
class CoatingSpec:
    """Every parameter of one coating cross-section image. See the section classes for each parameter."""

    layers: LayerSpec = section(LayerSpec, doc="Layer stack and interface roughness.")
    pores: PoreSpec = section(PoreSpec, doc="Pores scattered through the Fe2Al5 layer.")
    pore_line: PoreLineSpec = section(PoreLineSpec, doc="Band of pores parallel to the surface.")
    precipitates: PrecipitateSpec = section(PrecipitateSpec, doc="Cr-rich precipitates in Fe2Al5.")
    cracks: CrackSpec = section(CrackSpec, doc="Cracks through Fe2Al5, about perpendicular to the surface.")
    grey: GreyLevelSpec = section(GreyLevelSpec, doc="Grey level of each phase before noise.")
    imaging: ImagingSpec = section(ImagingSpec, doc="Virtual SEM frame, probe, detector and scan.")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every parameter."""
        return dataclasses.asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text of every parameter."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any, source: str = "") -> CoatingSpec:
        """Build and validate a spec from a dict; missing fields take their defaults.

        Raises
        ------
        SpecError
            listing every problem: field path, value, what is accepted.
        """
        errors: list[FieldError] = []
        spec = dataclass_from_dict(cls, data, "", errors)
        if not errors:
            errors.extend(spec.consistency_errors())
        if errors:
            raise SpecError(errors, source)
        return spec

    def validate(self) -> None:
        """Raise SpecError if any field (set from Python) is out of range or the fields contradict each other."""
        errors = dataclass_errors(self)
        if not errors:
            errors = self.consistency_errors()
        if errors:
            raise SpecError(errors)

    def tilt_rise_um(self) -> float:
        """How far the tilt lifts (or lowers) the coating at the image's side edges, µm: half the width x tan(tilt)."""
        img = self.imaging
        return 0.5 * img.width_px * img.pixel_size_um * math.tan(math.radians(abs(img.tilt_deg)))

    def coating_bottom_um(self) -> float:
        """Deepest mean depth of the coating (Fe2Al5 + FeAl) below the top edge of the image."""
        lay = self.layers
        feal = lay.feal_thickness_um + lay.feal2_thickness_um + lay.fe3al_thickness_um if lay.feal_present else 0.0
        return lay.surface_depth_um + lay.fe2al5_thickness_um + feal

    def consistency_errors(self) -> list[FieldError]:
        """Problems that involve several fields (each field on its own is in range)."""
        errors: list[FieldError] = []
        lay, line, img = self.layers, self.pore_line, self.imaging
        usable_height_um = (img.height_px - (img.data_bar_height_px if img.data_bar else 0)) * img.pixel_size_um
        rise_um = self.tilt_rise_um()
        reach_um = (
            self.coating_bottom_um() + lay.surface_roughness_amplitude_um + lay.interface_roughness_amplitude_um
            + lay.fe2al5_thickness_variation_um + rise_um
        )
        if reach_um >= usable_height_um and not img.partial_frame:
            errors.append(FieldError(
                "layers", round(reach_um, 3),
                f"the coating reaches {reach_um:.1f} um deep (surface depth + layers + roughness + tilt) but the "
                f"image shows {usable_height_um:.1f} um above the data bar; lower the thicknesses or surface depth, "
                "raise imaging.height_px or imaging.pixel_size_um so the substrate is in the frame, or set "
                "imaging.partial_frame for a frame that shows part of the coating"))
        if lay.surface_depth_um < lay.surface_roughness_amplitude_um + rise_um and not img.partial_frame:
            errors.append(FieldError(
                "layers.surface_depth_um", lay.surface_depth_um,
                f"must be at least the surface roughness amplitude ({lay.surface_roughness_amplitude_um} um) plus "
                f"what the tilt lifts the side edges ({rise_um:.2f} um) so the surface stays inside the image (or set "
                "imaging.partial_frame)"))
        if lay.feal_present and lay.feal_thickness_um <= 0:
            errors.append(FieldError(
                "layers.feal_thickness_um", lay.feal_thickness_um, "must be > 0 when layers.feal_present is true"))
        if line.present:
            top_um = line.depth_um - line.width_um / 2
            bottom_um = line.depth_um + line.width_um / 2
            if top_um < 0 or bottom_um > lay.fe2al5_thickness_um:
                errors.append(FieldError(
                    "pore_line.depth_um", line.depth_um,
                    f"the band [{top_um:.2f}, {bottom_um:.2f}] um below the surface must lie inside the Fe2Al5 layer "
                    f"[0, {lay.fe2al5_thickness_um}] um"))
        pre = self.precipitates
        if pre.area_fraction_pct > 0 and pre.al8cr5_share + pre.cr2al_share + pre.cr23c6_share <= 0:
            errors.append(FieldError(
                "precipitates.cr23c6_share", pre.cr23c6_share,
                "the phase weights al8cr5_share, cr2al_share and cr23c6_share are all 0; give at least one a weight"))
        if img.data_bar and img.data_bar_height_px >= img.height_px // 2:
            errors.append(FieldError(
                "imaging.data_bar_height_px", img.data_bar_height_px,
                f"must be less than half the image height ({img.height_px // 2} px)"))
        errors.extend(self._work_errors())
        return errors

    def expected_inclusions(self) -> dict[str, float]:
        """Expected number of scattered pores, pore-line pores, precipitates and cracks in one image (before clash
        tests).

        Area fraction x the area they fill / the mean area of one (pi E[r^2] = pi (mean^2 + std^2)); the Fe2Al5 band
        is taken as wide as the frame and as thick as the layer (or the visible depth, if less).
        """
        lay, img = self.layers, self.imaging
        width_um = img.width_px * img.pixel_size_um
        # The band inside the frame: geometry places inclusions in the frame only (give or take one inclusion).
        top_um = max(0.0, lay.surface_depth_um)
        band_um = max(0.0, min(lay.surface_depth_um + lay.fe2al5_thickness_um, img.height_px * img.pixel_size_um)
                      - top_um)

        def count(area_um2: float, fraction_pct: float, mean_um: float, std_um: float) -> float:
            return area_um2 * fraction_pct / 100.0 / (math.pi * (mean_um ** 2 + std_um ** 2))

        line = self.pore_line
        line_area_um2 = width_um * line.lateral_coverage * line.width_um if line.present else 0.0
        return {
            "pores": count(width_um * band_um, self.pores.area_fraction_pct, self.pores.radius_mean_um,
                           self.pores.radius_std_um),
            "pore_line": count(line_area_um2, line.area_fraction_pct, line.pore_radius_mean_um,
                               line.pore_radius_std_um),
            "precipitates": count(width_um * band_um * self.precipitates.depth_limit_fraction,
                                  self.precipitates.area_fraction_pct, self.precipitates.radius_mean_um,
                                  self.precipitates.radius_std_um),
            "cracks": self.cracks.density_per_100um * width_um / 100.0,
            "kirkendall_voids": self.pores.kirkendall_per_100um * width_um / 100.0,
            "resin_filler": lay.resin_filler_per_100um2 * width_um * max(0.0, min(
                lay.surface_depth_um, img.height_px * img.pixel_size_um)) / 100.0,
            "slurry_particles": lay.slurry_particles_per_100um * width_um / 100.0,
        }

    def _work_errors(self) -> list[FieldError]:
        """Specs whose every field is in range but that would take minutes and gigabytes per image: refused here,
        with the reason, rather than left to hang a render."""
        errors: list[FieldError] = []
        img = self.imaging
        if img.width_px * img.height_px > MAX_FRAME_PIXELS:
            errors.append(FieldError(
                "imaging", f"{img.width_px}x{img.height_px}",
                f"a frame of {img.width_px * img.height_px} pixels is more than one image may hold "
                f"({MAX_FRAME_PIXELS}, e.g. 4096x3072); lower width_px or height_px"))
        for section_name, expected in self.expected_inclusions().items():
            if expected > MAX_INCLUSIONS_PER_IMAGE:
                path, remedy = _COUNT_REMEDIES.get(
                    section_name, (section_name, f"lower {section_name}.area_fraction_pct or raise the radius"))
                errors.append(FieldError(
                    path, round(expected),
                    f"this would place about {expected:.0f} inclusions in one image; at most "
                    f"{MAX_INCLUSIONS_PER_IMAGE} per kind render in reasonable time and memory: {remedy}"))
        return errors
