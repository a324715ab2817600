"""Specimen and detector artefacts: brightness fields only, within their stated bounds, never a class change."""

from __future__ import annotations

import numpy as np

from blender_addon.render_node.artefacts import fe2al5_depth_factor, scratch_factor, shading_field
from semcoat import classes


def _layered_mask(height: int = 120, width: int = 200) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[20:100] = classes.FE2AL5
    mask[100:] = classes.SUBSTRATE
    mask[50:54, 30:40] = classes.PORE
    return mask


def test_depth_gradient_runs_from_top_to_bottom_of_the_band_only_in_fe2al5() -> None:
    mask = _layered_mask()
    factor = fe2al5_depth_factor(mask, 0.06)
    assert factor[20, 0] < 1.0 < factor[99, 0]
    np.testing.assert_allclose([factor[20, 0], factor[99, 0]], [0.97, 1.03], atol=1e-3)
    assert np.all(factor[mask != classes.FE2AL5] == 1.0)
    assert np.all(np.diff(factor[20:100, 100]) > 0)  # monotonic with depth
    assert np.all(fe2al5_depth_factor(mask, 0.0) == 1.0)


def test_scratches_darken_solid_phases_within_the_contrast_and_spare_pores() -> None:
    mask = _layered_mask()
    factor = scratch_factor(mask, pixel_size_um=0.5, density_per_100um=20.0, contrast=0.08,
                            rng=np.random.default_rng(3))
    assert factor.min() >= 1.0 - 0.08 - 1e-6 and factor.max() <= 1.0
    assert factor[mask == classes.SUBSTRATE].min() < 0.96  # at least one groove shows
    assert np.all(factor[mask == classes.PORE] == 1.0)
    assert np.mean(factor < 0.999) < 0.5  # grooves are thin lines, not a veil
    none = scratch_factor(mask, 0.5, 0.0, 0.08, np.random.default_rng(3))
    assert np.all(none == 1.0)


def test_scratches_are_deterministic_per_generator_state() -> None:
    mask = _layered_mask()
    a = scratch_factor(mask, 0.5, 10.0, 0.05, np.random.default_rng(7))
    b = scratch_factor(mask, 0.5, 10.0, 0.05, np.random.default_rng(7))
    c = scratch_factor(mask, 0.5, 10.0, 0.05, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_shading_is_smooth_and_within_its_amplitude() -> None:
    field = shading_field((96, 128), 0.05, np.random.default_rng(1))
    deviation = np.abs(field - 1.0)
    assert deviation.max() <= 0.05 + 1e-6 and deviation.max() > 0.04
    assert np.abs(np.diff(field, axis=1)).max() < 0.01  # no step anywhere
    assert np.all(shading_field((8, 8), 0.0, np.random.default_rng(1)) == 1.0)
