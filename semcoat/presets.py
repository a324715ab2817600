"""Ready coatings for the two heat treatments of the literature (Al slurry on 9Cr steel, air, 650 degC).

A longer anneal grows a thicker Fe2Al5 layer, a deeper pore line and a FeAl layer at the substrate interface.
Each preset also comes as a ready batch (``preset_batch``) whose randomisation covers the spread seen between
images of one sample and between samples.
"""

from __future__ import annotations

import copy

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
        layers=LayerSpec(surface_depth_um=14.0, fe2al5_thickness_um=85.0, fe2al5_thickness_variation_um=3.0,
                         feal_present=True, feal_thickness_um=4.0, interface_roughness_amplitude_um=2.0),
        pores=PoreSpec(area_fraction_pct=2.0, radius_mean_um=0.8, radius_std_um=0.4),
        pore_line=PoreLineSpec(present=True, depth_um=30.0, width_um=4.0, lateral_coverage=0.9,
                               area_fraction_pct=30.0, pore_radius_mean_um=1.2, pore_radius_std_um=0.5),
        precipitates=PrecipitateSpec(area_fraction_pct=3.0, radius_mean_um=0.55, radius_std_um=0.25),
        imaging=ImagingSpec(pixel_size_um=0.17),
    )


PRESETS = {"5h_650C": _preset_5h_650c, "20h_650C": _preset_20h_650c}


def preset(name: str) -> CoatingSpec:
    """A fresh copy of the preset coating ``name``; ValueError lists the preset names otherwise."""
    if name not in PRESETS:
        raise InvalidArgument(f"unknown preset {name!r}; accepted: {', '.join(PRESETS)}", argument="name")
    return PRESETS[name]()


def _relative_uniform(value: float, fraction: float) -> Distribution:
    return Distribution("uniform", low=round(value * (1 - fraction), 4), high=round(value * (1 + fraction), 4))


def preset_batch(name: str, count: int = 100, seed: int = 0) -> BatchSpec:
    """A ready batch for preset ``name``: ``count`` images around it, seeded by ``seed``."""
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
        # Noise (issue 11 point 10): dose 30-2000 e-/px about evenly in log (a choice of log-spaced values), line
        # noise in most images, frame averaging in some, a JPEG-saved image in about two of five.
        "imaging.dose_electrons_per_px": Distribution(
            "choice", values=[30.0, 45.0, 70.0, 100.0, 150.0, 230.0, 350.0, 500.0, 750.0, 1100.0, 1500.0, 2000.0]),
        "imaging.line_noise_std": Distribution("uniform", low=0.0, high=0.025),
        "imaging.line_noise_length_px": Distribution("choice", values=[30.0, 150.0, 1000.0, 5000.0]),
        "imaging.frame_count": Distribution("choice", values=[1, 1, 1, 2, 4, 8]),
        "imaging.jpeg_quality": Distribution("choice", values=[0, 0, 0, 50, 70, 85, 95]),
        "imaging.brightness": Distribution("normal", mean=0.0, std=0.04),
        "imaging.shading_amplitude": Distribution("uniform", low=0.0, high=0.08),
        "imaging.scratch_density_per_100um": Distribution("uniform", low=0.0, high=6.0),
        "imaging.scratch_contrast": Distribution("uniform", low=0.02, high=0.08),
        "grey.fe2al5_depth_gradient": Distribution("uniform", low=-0.01, high=0.06),
        "imaging.contrast": Distribution("normal", mean=1.0, std=0.08),
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
    batch = BatchSpec(name=f"{name}-batch", count=count, seed=seed, base=copy.deepcopy(base), randomize=randomize,
                      render=RenderSettings(images_per_task=25))
    batch.validate()
    return batch
