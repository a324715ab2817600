"""Ready coatings for the heat treatments of the literature (Al slurry on 9Cr steel, air, 650 degC).

A longer anneal grows a thicker Fe2Al5 layer, a deeper pore line and a FeAl layer at the substrate interface; a thin
slurry layer gives a 20-40 um coating. Each preset also comes as a ready batch (``preset_batch``) whose randomisation
covers the spread seen between images of one sample and between samples, at the preset's scale or another one, and
as a family of batches over scales from 0.05 to 0.35 um per pixel (``preset_family``).
"""

from __future__ import annotations

import copy
import math

from semcoat.batch import BatchSpec, Distribution, RenderSettings
from semcoat.errors import InvalidArgument
from semcoat.spec import CoatingSpec, ImagingSpec, LayerSpec, PoreLineSpec, PoreSpec, PrecipitateSpec


def _preset_5h_650c() -> CoatingSpec:
    return CoatingSpec(
        layers=LayerSpec(surface_depth_um=14.0, fe2al5_thickness_um=55.0, fe2al5_thickness_variation_um=2.0,
                         feal_present=False, feal_thickness_um=2.0),
        pores=PoreSpec(area_fraction_pct=1.5, radius_mean_um=0.6, radius_std_um=0.3),
        pore_line=PoreLineSpec(present=True, depth_um=20.0, width_um=3.0, lateral_coverage=0.85,
                               area_fraction_pct=30.0, pore_radius_mean_um=0.9, pore_radius_std_um=0.35),
        precipitates=PrecipitateSpec(area_fraction_pct=2.5, radius_mean_um=0.4, radius_std_um=0.2),
        imaging=ImagingSpec(pixel_size_um=0.13),
    )


def _preset_20h_650c() -> CoatingSpec:
    return CoatingSpec(
        layers=LayerSpec(surface_depth_um=12.0, fe2al5_thickness_um=85.0, fe2al5_thickness_variation_um=3.0,
                         feal_present=True, feal_thickness_um=4.0, interface_roughness_amplitude_um=2.0),
        pores=PoreSpec(area_fraction_pct=2.0, radius_mean_um=0.8, radius_std_um=0.4),
        pore_line=PoreLineSpec(present=True, depth_um=30.0, width_um=4.0, lateral_coverage=0.9,
                               area_fraction_pct=30.0, pore_radius_mean_um=1.2, pore_radius_std_um=0.5),
        precipitates=PrecipitateSpec(area_fraction_pct=3.0, radius_mean_um=0.55, radius_std_um=0.25),
        imaging=ImagingSpec(pixel_size_um=0.17),
    )


def _preset_thin_slurry() -> CoatingSpec:
    # A thin slurry layer (about a third of the usual Al), 5 h at 650 degC: 20-40 um of Fe2Al5 with a shallow pore
    # line, seen at a higher magnification.
    return CoatingSpec(
        layers=LayerSpec(surface_depth_um=9.0, fe2al5_thickness_um=30.0, fe2al5_thickness_variation_um=1.0,
                         feal_present=False, feal_thickness_um=1.5, surface_roughness_amplitude_um=1.0,
                         surface_roughness_wavelength_um=30.0, interface_roughness_amplitude_um=0.8,
                         interface_roughness_wavelength_um=18.0),
        pores=PoreSpec(area_fraction_pct=1.5, radius_mean_um=0.45, radius_std_um=0.2),
        pore_line=PoreLineSpec(present=True, depth_um=11.0, width_um=2.5, lateral_coverage=0.8,
                               area_fraction_pct=25.0, pore_radius_mean_um=0.7, pore_radius_std_um=0.3),
        precipitates=PrecipitateSpec(area_fraction_pct=2.0, radius_mean_um=0.35, radius_std_um=0.15),
        imaging=ImagingSpec(pixel_size_um=0.085),
    )


PRESETS = {"5h_650C": _preset_5h_650c, "20h_650C": _preset_20h_650c, "thin_slurry": _preset_thin_slurry}
# Scales of a dataset family (um per pixel, about evenly in log): from a close look at the pores to a whole coating
# with the steel below it. The frame (and so the scale) belongs to a dataset, so a family is one batch per scale.
FAMILY_PIXEL_SIZES_UM = (0.05, 0.08, 0.13, 0.2, 0.35)
# Largest tilt of the cross-section the presets draw, degrees.
PRESET_TILT_DEG = 5.0


def preset(name: str) -> CoatingSpec:
    """A fresh copy of the preset coating ``name``; ValueError lists the preset names otherwise."""
    if name not in PRESETS:
        raise InvalidArgument(f"unknown preset {name!r}; accepted: {', '.join(PRESETS)}", argument="name")
    return PRESETS[name]()


def _relative_uniform(value: float, fraction: float) -> Distribution:
    return Distribution("uniform", low=round(value * (1 - fraction), 4), high=round(value * (1 + fraction), 4))


def preset_batch(name: str, count: int = 100, seed: int = 0, pixel_size_um: float | None = None) -> BatchSpec:
    """A ready batch for preset ``name``: ``count`` images around it, seeded by ``seed``.

    ``pixel_size_um`` (um per pixel) frames the batch at another scale than the preset's: the resin band grows to keep
    a tilted surface in the frame, and where the coating may not fit the frame's height, the batch's frames cut it
    (``imaging.partial_frame``), the surface drawn anywhere from inside the frame to as far above it as puts the
    substrate in its lower part: close-ups of the surface, of the middle of the layer and of the bottom interface.
    """
    base = preset(name)
    lay, line = base.layers, base.pore_line
    randomize = {
        "layers.fe2al5_thickness_um": _relative_uniform(lay.fe2al5_thickness_um, 0.12),
        "layers.surface_roughness_amplitude_um": Distribution("uniform", low=0.5, high=3.0),
        "layers.interface_roughness_amplitude_um": Distribution("uniform", low=0.5, high=2.5),
        "layers.feal_thickness_um": _relative_uniform(lay.feal_thickness_um, 0.3),
        "pore_line.present": Distribution("choice", values=[True, True, True, False]),
        "pore_line.depth_um": _relative_uniform(line.depth_um, 0.15),
        "pore_line.lateral_coverage": Distribution("uniform", low=0.7, high=1.0),
        "pores.area_fraction_pct": Distribution("uniform", low=0.5, high=3.5),
        "precipitates.area_fraction_pct": Distribution("uniform", low=1.0, high=4.5),
        "precipitates.orientation_spread_deg": Distribution("uniform", low=10.0, high=60.0),
        "grey.fe2al5": Distribution("normal", mean=base.grey.fe2al5, std=0.03),
        "grey.substrate": Distribution("normal", mean=base.grey.substrate, std=0.03),
        "grey.precipitate": Distribution("normal", mean=base.grey.precipitate, std=0.03),
        # Resolution as a physical width (issue 11: 0.3-1.0 um FWHM at 15-20 kV), a narrow core plus a wide halo.
        "imaging.probe_fwhm_um": Distribution("uniform", low=0.3, high=1.0),
        "imaging.probe_halo_fraction": Distribution("uniform", low=0.05, high=0.3),
        "imaging.probe_halo_fwhm_um": Distribution("uniform", low=2.0, high=6.0),
        # Display: the operator keeps the brightest phase (the steel, with its texture and particles) below white
        # (issue 11 point 8): the steel sits near 0.75 of full scale.
        "imaging.brightness": Distribution("normal", mean=-0.08, std=0.03),
        "imaging.shading_amplitude": Distribution("uniform", low=0.0, high=0.08),
        "imaging.scratch_density_per_100um": Distribution("uniform", low=0.0, high=6.0),
        "imaging.scratch_contrast": Distribution("uniform", low=0.02, high=0.08),
        "grey.fe2al5_depth_gradient": Distribution("uniform", low=-0.01, high=0.06),
        "imaging.contrast": Distribution("normal", mean=0.8, std=0.05),
        # Cracks in some images, none in others (issue: 0-5 per 100 um, 0.2-2 um wide, within 15 deg of the normal).
        "cracks.density_per_100um": Distribution("choice", values=[0.0, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0]),
        "cracks.width_um": Distribution("uniform", low=0.4, high=1.0),
        "cracks.through_fraction": Distribution("uniform", low=0.2, high=0.8),
        # The Cr-rich phase mix (contrast against Fe2Al5 by Reuter's fit: Al8Cr5 ~0, Cr2Al ~+0.12, Cr23C6 ~+0.18),
        # groups, cube-like particles, pull-out pits and sub-resolution specks.
        "precipitates.al8cr5_share": Distribution("uniform", low=0.0, high=1.0),
        "precipitates.cr2al_share": Distribution("uniform", low=0.0, high=1.0),
        "precipitates.cr23c6_share": Distribution("uniform", low=0.05, high=1.0),
        "precipitates.cluster_fraction": Distribution("uniform", low=0.0, high=0.6),
        "precipitates.cube_fraction": Distribution("uniform", low=0.0, high=0.4),
        "precipitates.pullout_fraction": Distribution("uniform", low=0.0, high=0.15),
        "precipitates.speck_density_per_um2": Distribution("uniform", low=0.0, high=3.0),
    }
    randomize.update(_geometry_ranges(name))
    randomize.update(_image_ranges())
    if pixel_size_um is not None:
        _reframe(base, randomize, pixel_size_um)
    batch = BatchSpec(name=f"{name}-batch", count=count, seed=seed, base=copy.deepcopy(base), randomize=randomize,
                      render=RenderSettings(images_per_task=25))
    batch.validate()
    return batch


def preset_family(
    name: str, count: int = 100, seed: int = 0, pixel_sizes_um: tuple[float, ...] = FAMILY_PIXEL_SIZES_UM
) -> list[BatchSpec]:
    """A dataset family of preset ``name``: one batch of ``count`` images per pixel size (``name-<size>um``, seeds
    ``seed``, ``seed + 1``, ...), each framed by :func:`preset_batch` at its scale."""
    family = []
    for k, size in enumerate(pixel_sizes_um):
        batch = preset_batch(name, count=count, seed=seed + k, pixel_size_um=size)
        batch.name = f"{name}-{size:g}um"
        family.append(batch)
    return family


def _geometry_ranges(name: str) -> dict[str, Distribution]:
    """The randomisation of the coating's geometry added by the realism issue (issue 11, points 4-9)."""
    ranges = {
        # Scale and framing: a small tilt of the whole cross-section (the measurements correct for it).
        "imaging.tilt_deg": Distribution("uniform", low=-PRESET_TILT_DEG, high=PRESET_TILT_DEG),
        # Pores: irregular and merged outlines, scattered pores crowding towards the surface.
        "pores.irregularity": Distribution("uniform", low=0.2, high=1.0),
        "pores.merged_fraction": Distribution("uniform", low=0.0, high=0.4),
        "pores.outer_weighting": Distribution("uniform", low=0.0, high=0.8),
        # The bottom interface: thin FeAl2 / Fe3Al sub-bands in some images (with FeAl), Kirkendall voids in most.
        "layers.feal2_thickness_um": Distribution("choice", values=[0.0, 0.0, 0.5]),
        "layers.fe3al_thickness_um": Distribution("choice", values=[0.0, 0.0, 0.5, 1.0]),
        "pores.kirkendall_per_100um": Distribution("choice", values=[0.0, 0.0, 3.0, 6.0, 10.0]),
        "pores.kirkendall_radius_um": Distribution("uniform", low=0.3, high=0.8),
        # The mount: a shrinkage gap in most images, filler specks in the resin, an edge-retention plating in some.
        "layers.shrinkage_gap_um": Distribution("choice", values=[0.0, 0.0, 0.3, 0.6, 1.0, 1.5, 2.0]),
        "layers.plating_thickness_um": Distribution("choice", values=[0.0, 0.0, 0.0, 0.0, 3.0, 5.0, 8.0]),
        "layers.resin_filler_per_100um2": Distribution("uniform", low=0.0, high=4.0),
        "layers.resin_filler_radius_um": Distribution("uniform", low=0.2, high=1.0),
        # Surface-side phases: an FeAl3 band in some images, now and then a leftover Al particle of the slurry.
        "layers.feal3_thickness_um": Distribution("choice", values=[0.0, 0.0, 0.0, 1.0, 2.0, 3.0]),
        "layers.feal3_coverage": Distribution("uniform", low=0.3, high=1.0),
        "layers.slurry_particles_per_100um": Distribution("choice", values=[0.0, 0.0, 0.0, 0.3, 0.6]),
        "layers.slurry_particle_diameter_um": Distribution("uniform", low=20.0, high=40.0),
    }
    if name == "20h_650C":
        ranges["layers.feal_coverage"] = Distribution("choice", values=[1.0, 1.0, 1.0, 0.85, 0.7])
    else:
        # After a short anneal FeAl is absent, or in patches along part of the width.
        ranges["layers.feal_present"] = Distribution("choice", values=[False, False, True])
        ranges["layers.feal_coverage"] = Distribution("uniform", low=0.2, high=0.8)
    if name == "thin_slurry":
        ranges.update({
            "layers.fe2al5_thickness_um": Distribution("uniform", low=20.0, high=40.0),
            "layers.surface_roughness_amplitude_um": Distribution("uniform", low=0.3, high=1.5),
            "layers.interface_roughness_amplitude_um": Distribution("uniform", low=0.3, high=1.2),
        })
    return ranges


def _image_ranges() -> dict[str, Distribution]:
    """The specimen's texture and the scan's noise of issue 11, the same for every preset."""
    return {
        # Noise (point 10): dose 30-2000 e-/px about evenly in log (a choice of log-spaced values), line noise in most
        # images, frame averaging in some, a JPEG-saved image in about two of five.
        "imaging.dose_electrons_per_px": Distribution(
            "choice", values=[30.0, 45.0, 70.0, 100.0, 150.0, 230.0, 350.0, 500.0, 750.0, 1100.0, 1500.0, 2000.0]),
        "imaging.line_noise_std": Distribution("uniform", low=0.0, high=0.025),
        "imaging.line_noise_length_px": Distribution("choice", values=[30.0, 150.0, 1000.0, 5000.0]),
        "imaging.frame_count": Distribution("choice", values=[1, 1, 1, 2, 4, 8]),
        "imaging.jpeg_quality": Distribution("choice", values=[0, 0, 0, 50, 70, 85, 95]),
        # Pores (point 5): interiors from black up to the resin's grey, bright rims in most images.
        "grey.pore_fill_max": Distribution("uniform", low=0.3, high=1.0),
        "grey.pore_rim": Distribution("uniform", low=0.0, high=0.12),
        "grey.pore_rim_width_um": Distribution("uniform", low=0.15, high=0.5),
        # The bottom interface (point 4): FeAl blends into the steel over 1-3 um.
        "grey.substrate_blend_um": Distribution("uniform", low=1.0, high=3.0),
        # The top edge and the mount (point 6): edge rounding of 1-3 um in most images, charging streaks in some.
        "imaging.edge_rounding_um": Distribution("choice", values=[0.0, 1.0, 1.5, 2.0, 2.5, 3.0]),
        "imaging.edge_rounding_brightness": Distribution("uniform", low=0.1, high=0.4),
        "imaging.charging_amplitude": Distribution("choice", values=[0.0, 0.0, 0.0, 0.02, 0.04, 0.07]),
        "imaging.charging_length_um": Distribution("uniform", low=3.0, high=30.0),
        "imaging.charging_line_fraction": Distribution("uniform", low=0.1, high=0.5),
        # The steel (point 8): martensite blocks in every image, bright particles in most.
        "grey.steel_lath_contrast": Distribution("uniform", low=0.015, high=0.06),
        "grey.steel_lath_width_um": Distribution("uniform", low=0.4, high=1.5),
        "grey.steel_packet_um": Distribution("uniform", low=6.0, high=25.0),
        "grey.steel_particle_density_per_100um2": Distribution("uniform", low=0.0, high=4.0),
        "grey.steel_particle_radius_um": Distribution("uniform", low=0.06, high=0.2),
        "grey.steel_particle_contrast": Distribution("uniform", low=0.1, high=0.35),
    }


def _highest(randomize: dict[str, Distribution], path: str, value: float) -> float:
    """The largest value ``path`` takes in the batch (``value`` when it does not vary; a normal: mean + 3 std)."""
    dist = randomize.get(path)
    if dist is None:
        return value
    if dist.kind == "uniform":
        return float(dist.high)  # type: ignore[arg-type]
    if dist.kind == "normal":
        return float(dist.mean) + 3.0 * float(dist.std)  # type: ignore[arg-type]
    return float(max(dist.values))  # type: ignore[arg-type]


def _reframe(base: CoatingSpec, randomize: dict[str, Distribution], pixel_size_um: float) -> None:
    """Frame ``base`` (and its randomisation) at ``pixel_size_um``, see :func:`preset_batch`."""
    lay, img = base.layers, base.imaging
    img.pixel_size_um = pixel_size_um
    height_um = img.height_px * pixel_size_um
    rise_um = 0.5 * img.width_px * pixel_size_um * math.tan(math.radians(PRESET_TILT_DEG))
    resin_um = _highest(randomize, "layers.surface_roughness_amplitude_um", lay.surface_roughness_amplitude_um)
    resin_um += rise_um + 1.0
    thickness_um = _highest(randomize, "layers.fe2al5_thickness_um", lay.fe2al5_thickness_um)
    if lay.feal_present or "layers.feal_present" in randomize:
        thickness_um += sum(_highest(randomize, f"layers.{name}", getattr(lay, name))
                            for name in ("feal_thickness_um", "feal2_thickness_um", "fe3al_thickness_um"))
    below_um = (thickness_um + lay.fe2al5_thickness_variation_um + rise_um
                + _highest(randomize, "layers.interface_roughness_amplitude_um", lay.interface_roughness_amplitude_um))
    lay.surface_depth_um = round(max(lay.surface_depth_um, resin_um), 2)
    if lay.surface_depth_um + below_um < height_um:
        return
    img.partial_frame = True
    mean_um = lay.fe2al5_thickness_um + (lay.feal_thickness_um if lay.feal_present else 0.0)
    # From the surface inside the frame down to the coating's bottom at seven tenths of the frame.
    lowest = min(0.7 * height_um - mean_um, lay.surface_depth_um - 1.0)
    randomize["layers.surface_depth_um"] = Distribution("uniform", low=round(lowest, 2), high=lay.surface_depth_um)
