"""Surface-side phases (issue 11 point 9): an FeAl3 band at the top of the coating (class Fe2Al5, a little darker)
and leftover Al particles of the slurry sitting on the surface (background); masks and truth stay as without them."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.measure import measure
from blender_addon.scene.stack import Z_AL, Z_FEAL3, grey_of_z
from semcoat import classes
from semcoat.spec import CoatingSpec, SpecError
from tests.blender_addon.fakes import raster_sample
from tests.blender_addon.specs import PIXEL_UM, small_batch

MARGIN = 3


def _render(layers: dict, index: int = 0):
    batch = small_batch(count=index + 1, layers={"surface_depth_um": 9.0, **layers})
    return raster_sample(batch, index, MARGIN)


def test_feal3_is_a_slightly_darker_band_of_the_fe2al5_class() -> None:
    _s, _g, plain_mask, _ = _render({})
    spec, g, mask, signal = _render({"feal3_thickness_um": 2.0})
    np.testing.assert_array_equal(mask, plain_mask)
    assert measure(mask, PIXEL_UM) == measure(plain_mask, PIXEL_UM)
    feal3 = grey_of_z(spec.grey, Z_FEAL3)
    assert spec.grey.fe2al5 - 0.06 < feal3 < spec.grey.fe2al5 - 0.01
    surface = (mask != classes.BACKGROUND).argmax(0)
    cols = np.arange(mask.shape[1])
    # 2 um +- 30 % = 7-13 px below the surface
    for below_px in (1, 5):
        band = signal[surface + below_px, cols]
        solid = mask[surface + below_px, cols] == classes.FE2AL5
        assert np.mean(band[solid] == np.float32(feal3)) > 0.95
    assert g.designed["feal3_thickness_um"] == pytest.approx(2.0, rel=0.35)


def test_feal3_may_cover_part_of_the_width() -> None:
    spec, g, _mask, _signal = _render({"feal3_thickness_um": 2.0, "feal3_coverage": 0.4})
    thickness = (g.feal3_bottom_um - g.surface_um)[g.in_image]
    assert 0.2 < np.mean(thickness > 0) < 0.6
    assert np.all(g.feal3_bottom_um < g.fe2al5_bottom_um)


def test_slurry_particles_sit_on_the_surface_as_background() -> None:
    counts, touching = [], []
    for i in range(6):
        _s, _g, plain_mask, _ = _render({}, i)
        spec, g, mask, signal = _render({"slurry_particles_per_100um": 4.0, "slurry_particle_diameter_um": 12.0}, i)
        np.testing.assert_array_equal(mask, plain_mask)
        counts.append(len(g.slurry_particles))
        al = signal == np.float32(grey_of_z(spec.grey, Z_AL))
        assert np.all(mask[al] == classes.BACKGROUND)
        if len(g.slurry_particles):
            surface = (mask != classes.BACKGROUND).argmax(0)
            cols = np.flatnonzero(al.any(0))
            touching.append(np.mean(al[surface[cols] - 1, cols]))  # resting on the coating, not floating
    assert spec.grey.resin < grey_of_z(spec.grey, Z_AL) < spec.grey.fe2al5
    expected = 4.0 * (256 + 2 * MARGIN) * PIXEL_UM / 100.0
    assert 0.5 * expected < np.mean(counts) < 1.5 * expected
    assert touching and np.mean(touching) > 0.5


def test_a_section_shows_discs_up_to_the_spheres_diameter() -> None:
    _s, g, _m, _sg = _render({"slurry_particles_per_100um": 10.0, "slurry_particle_diameter_um": 10.0})
    polys = g.slurry_particles.polygons_um
    width = np.ptp(polys[..., 0], axis=1)
    assert len(polys) > 5 and width.max() < 10.0 * (1 + 4 * 0.2) * 1.03 and width.min() > 0.0


def test_surface_phase_parameters_are_off_by_default_and_checked() -> None:
    lay = CoatingSpec().layers
    assert lay.feal3_thickness_um == 0.0 and lay.slurry_particles_per_100um == 0.0 and lay.feal3_coverage == 1.0
    with pytest.raises(SpecError, match="layers.slurry_particle_diameter_um"):
        CoatingSpec.from_dict({"layers": {"slurry_particle_diameter_um": 1.0}})
