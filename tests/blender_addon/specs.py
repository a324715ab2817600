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
NO_NOISE = {"probe_blur_fwhm_px": 0.0, "dose_electrons_per_px": 1e6, "detector_noise_std": 0.0,
            "scan_line_jitter_px": 0.0, "drift_px": 0.0, "edge_brightening": 0.0}
