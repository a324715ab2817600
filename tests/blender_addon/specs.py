"""Small batch specs for the renderer tests (256 x 192 px, so a render takes a few tens of milliseconds)."""

from __future__ import annotations

from typing import Any

from semcoat.batch import BatchSpec

WIDTH_PX, HEIGHT_PX, PIXEL_UM = 256, 192, 0.2


def small_base(**sections: dict[str, Any]) -> dict[str, Any]:
    """A coating that fits 256 x 192 px at 0.2 um: 6 um of resin, 24 um of Fe2Al5, a pore line 10 um deep."""
    base: dict[str, Any] = {
        "layers": {"surface_depth_um": 6.0, "fe2al5_thickness_um": 24.0, "fe2al5_thickness_variation_um": 0.5,
                   "surface_roughness_amplitude_um": 1.0, "surface_roughness_wavelength_um": 20.0,
                   "interface_roughness_amplitude_um": 0.8, "interface_roughness_wavelength_um": 12.0},
        "pores": {"area_fraction_pct": 2.0, "radius_mean_um": 0.5, "radius_std_um": 0.2},
        "pore_line": {"present": True, "depth_um": 10.0, "width_um": 2.0, "lateral_coverage": 0.9,
                      "pore_radius_mean_um": 0.6, "pore_radius_std_um": 0.2},
        "precipitates": {"area_fraction_pct": 3.0, "radius_mean_um": 0.4, "radius_std_um": 0.15},
        "imaging": {"pixel_size_um": PIXEL_UM, "width_px": WIDTH_PX, "height_px": HEIGHT_PX},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return base


def small_batch(count: int = 4, seed: int = 7, randomize: dict[str, Any] | None = None, **sections: Any) -> BatchSpec:
    """A validated batch of ``count`` small images."""
    return BatchSpec.from_dict({"name": "test-small", "count": count, "seed": seed, "base": small_base(**sections),
                                "randomize": randomize or {}, "render": {"images_per_task": 2}})


FLAT = {"fe2al5_thickness_variation_um": 0.0, "surface_roughness_amplitude_um": 0.0,
        "interface_roughness_amplitude_um": 0.0}
NO_NOISE = {"probe_fwhm_um": 0.0, "probe_halo_fraction": 0.0, "dose_electrons_per_px": 1e6, "detector_noise_std": 0.0,
            "scan_line_jitter_px": 0.0, "drift_px": 0.0, "edge_brightening": 0.0}


def heavy_batch(count: int = 2, seed: int = 11, width_px: int = 512, height_px: int = 384) -> BatchSpec:
    """Images that take seconds each, near the spec's work bounds: scattered pores, pore-line pores and precipitates
    each at about 90 % of ``MAX_INCLUSIONS_PER_IMAGE``, elongated and spread in size, in a small frame (placement
    dominates; the render is short)."""
    from semcoat.spec import MAX_INCLUSIONS_PER_IMAGE, CoatingSpec

    pixel_um = 0.1
    height_um = height_px * pixel_um
    thick = 0.75 * height_um
    base: dict[str, Any] = {
        "layers": {"surface_depth_um": 0.08 * height_um, "fe2al5_thickness_um": thick,
                   "fe2al5_thickness_variation_um": 0.02 * height_um,
                   "surface_roughness_amplitude_um": 0.02 * height_um,
                   "interface_roughness_amplitude_um": 0.02 * height_um},
        "pores": {"area_fraction_pct": 30.0, "elongation": 10.0},
        "pore_line": {"present": True, "depth_um": 0.5 * thick, "width_um": 0.3 * thick, "lateral_coverage": 1.0,
                      "area_fraction_pct": 80.0},
        "precipitates": {"area_fraction_pct": 30.0, "elongation": 20.0, "orientation_spread_deg": 180.0},
        "imaging": {"pixel_size_um": pixel_um, "width_px": width_px, "height_px": height_px},
    }
    radius_fields = {"pores": ("radius_mean_um", "radius_std_um"),
                     "pore_line": ("pore_radius_mean_um", "pore_radius_std_um"),
                     "precipitates": ("radius_mean_um", "radius_std_um")}
    probe_um = 10.0
    for section, (mean, std) in radius_fields.items():
        base[section].update({mean: probe_um, std: 0.5 * probe_um})
    expected = CoatingSpec.from_dict(base).expected_inclusions()
    for section, (mean, std) in radius_fields.items():
        r = probe_um * (expected[section] / (0.9 * MAX_INCLUSIONS_PER_IMAGE)) ** 0.5
        base[section].update({mean: r, std: 0.5 * r})
    return BatchSpec.from_dict({"name": "test-heavy", "count": count, "seed": seed, "base": base})
