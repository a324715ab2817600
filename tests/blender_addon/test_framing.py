"""Scale and framing (issue 11 point 7): a tilted cross-section measured across it, frames that cut the coating
measured without made-up numbers, the thin-slurry preset and dataset families over scales."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.frame_columns import frame_columns, tilt_rad
from analysis.measure import measure
from blender_addon.scene.framing import Framing
from blender_addon.scene.geometry import build_geometry
from semcoat import classes
from semcoat.measurements import value_problems
from semcoat.presets import FAMILY_PIXEL_SIZES_UM, PRESETS, preset, preset_batch, preset_family
from semcoat.spec import CoatingSpec, SpecError
from tests.blender_addon.fakes import RasterRenderer
from tests.blender_addon.specs import FLAT, PIXEL_UM, small_batch

MARGIN = 3


def _render(spec: CoatingSpec, seed: int = 0):
    g = build_geometry(spec, np.random.default_rng(seed), MARGIN)
    r = RasterRenderer()
    r.build(spec, g)
    return g, r.render().mask[:, MARGIN:-MARGIN]


@pytest.mark.parametrize("tilt_deg", [-5.0, -1.5, 2.5, 5.0])
def test_a_tilted_cross_section_is_measured_as_designed(tilt_deg: float) -> None:
    batch = small_batch(count=3, imaging={"tilt_deg": tilt_deg}, pores={"area_fraction_pct": 0.5},
                        layers={"feal_present": True, "feal_thickness_um": 3.0}, cracks={"density_per_100um": 6.0})
    for i in range(3):
        spec = batch.sample(i)
        g, mask = _render(spec, batch.image_seed(i))
        m, d = measure(mask, PIXEL_UM), g.designed
        # 1 um of roughness over a 51 um wide frame tips the fitted lines by up to a degree; 1 - cos of that is 2e-4
        assert np.degrees(tilt_rad(frame_columns(mask))) == pytest.approx(tilt_deg, abs=1.5)
        # across the coating, within a pixel of what was drawn and of the spec (the vertical extent is 1/cos longer)
        assert m.fe2al5_thickness_um == pytest.approx(d["fe2al5_thickness_um"], abs=PIXEL_UM)
        assert d["fe2al5_thickness_um"] == pytest.approx(24.0, abs=PIXEL_UM)
        assert m.feal_thickness_um == pytest.approx(d["feal_thickness_um"], abs=PIXEL_UM)
        assert m.pore_line_present and m.pore_line_depth_um == pytest.approx(10.0, abs=3 * PIXEL_UM)
        assert m.crack_density_per_mm == pytest.approx(d["crack_density_per_mm"], abs=1000.0 / (256 * PIXEL_UM))


def test_the_surface_of_a_tilted_frame_descends_by_the_tilt_and_cracks_follow_its_normal() -> None:
    spec = small_batch(count=1, layers=FLAT, imaging={"tilt_deg": 4.0},
                       cracks={"density_per_100um": 12.0, "angle_spread_deg": 0.0, "through_fraction": 1.0}).sample(0)
    g, mask = _render(spec, 5)
    inside = g.surface_um[g.in_image]
    slope = np.polyfit(g.x_um[g.in_image], inside, 1)[0]
    assert slope == pytest.approx(np.tan(np.radians(4.0)), rel=1e-6)  # a level surface, turned
    surface = (mask != classes.BACKGROUND).argmax(0)
    bottom = ((mask == classes.FEAL) | (mask == classes.SUBSTRATE)).argmax(0)
    rows, cols = np.nonzero(mask == classes.CRACK)
    assert rows.size and np.all(rows >= surface[cols]) and np.all(rows < bottom[cols])  # never outside the band
    for crack in g.cracks.polygons_um:
        n = crack.shape[0] // 2
        centre = (crack[:n] + crack[::-1][:n]) / 2  # down the middle
        lean = np.polyfit(centre[:, 1], centre[:, 0], 1)[0]
        assert lean == pytest.approx(-np.tan(np.radians(4.0)), abs=0.15)  # along the turned normal, plus waviness


def test_turning_keeps_every_inclusion_and_its_area() -> None:
    level = small_batch(count=1).sample(0)
    frame = Framing.of(level, MARGIN)
    tilted = small_batch(count=1, imaging={"tilt_deg": -3.0}).sample(0)
    turned_frame = Framing.of(tilted, MARGIN)
    assert frame.extra_columns == 0 and turned_frame.extra_columns > 0
    g = build_geometry(level, np.random.default_rng(1), MARGIN)
    turned = turned_frame.inclusions_to_image(g.pores)
    x, y = turned.polygons_um[..., 0], -turned.polygons_um[..., 1]
    areas = 0.5 * (x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(1)
    np.testing.assert_allclose(areas, g.pores.areas_um2, rtol=1e-9)


def test_a_frame_that_misses_the_substrate_reports_fractions_and_no_thickness() -> None:
    spec = small_batch(count=1, layers={"fe2al5_thickness_um": 60.0, "feal_present": True},
                       imaging={"partial_frame": True, "tilt_deg": 2.0}).sample(0)
    with pytest.raises(SpecError, match="imaging.partial_frame"):
        CoatingSpec.from_dict({**spec.to_dict(), "imaging": {**spec.to_dict()["imaging"], "partial_frame": False}})
    g, mask = _render(spec, 3)
    assert not np.any((mask == classes.FEAL) | (mask == classes.SUBSTRATE))
    m = measure(mask, PIXEL_UM)
    assert m.fe2al5_thickness_um is None and g.designed["fe2al5_thickness_um"] is None
    assert m.feal_present is None and m.feal_thickness_um is None
    assert m.pore_line_present is True and m.pore_line_depth_um == pytest.approx(10.0, abs=3 * PIXEL_UM)
    assert m.pore_fraction_pct > 0 and g.designed["pore_fraction_pct"] > 0  # counts: see test_render_realism
    assert not value_problems(m.as_dict())


def test_a_frame_starting_inside_the_coating_shows_the_bottom_interface() -> None:
    spec = small_batch(count=1, layers={"surface_depth_um": -20.0, "fe2al5_thickness_um": 40.0, "feal_present": True,
                                        "feal_thickness_um": 3.0},
                       pore_line={"present": False}, imaging={"partial_frame": True}).sample(0)
    with pytest.raises(SpecError, match="layers.surface_depth_um"):
        CoatingSpec.from_dict({**spec.to_dict(), "imaging": {**spec.to_dict()["imaging"], "partial_frame": False}})
    g, mask = _render(spec, 4)
    assert np.all(mask[0] != classes.BACKGROUND)  # coating from the top edge
    m = measure(mask, PIXEL_UM)
    assert m.fe2al5_thickness_um is None and m.pore_line_present is None
    assert m.feal_present is True and m.feal_thickness_um == pytest.approx(g.designed["feal_thickness_um"], abs=0.2)
    assert m.precipitate_fraction_pct > 0 and g.designed["precipitate_fraction_pct"] > 0


def test_a_partial_frame_places_inclusions_only_near_what_it_shows() -> None:
    deep = small_batch(count=1, layers={"fe2al5_thickness_um": 900.0}, pore_line={"present": False},
                       imaging={"partial_frame": True}).sample(0)
    g = build_geometry(deep, np.random.default_rng(2), MARGIN)
    depth = g.pores.polygons_um[..., 1].mean(1)
    assert len(g.pores) > 0 and depth.max() < 192 * PIXEL_UM + 10.0  # nothing placed a millimetre down
    assert deep.expected_inclusions()["pores"] < 1000


def test_the_tilt_counts_in_the_frame_checks() -> None:
    base = small_batch(count=1, layers={"surface_depth_um": 5.0}).sample(0).to_dict()  # 1 um of roughness
    base["imaging"]["tilt_deg"] = 10.0  # lifts the side edges by 128 px x 0.2 um x tan(10) = 4.5 um
    with pytest.raises(SpecError, match="what the tilt lifts the side edges"):
        CoatingSpec.from_dict(base)
    base["imaging"]["tilt_deg"] = 5.0
    CoatingSpec.from_dict(base)
    base["imaging"]["tilt_deg"] = 11.0
    with pytest.raises(SpecError, match="imaging.tilt_deg"):
        CoatingSpec.from_dict(base)


def test_the_thin_slurry_preset_is_a_20_to_40_um_coating_that_fits_its_frame() -> None:
    assert "thin_slurry" in PRESETS
    spec = preset("thin_slurry")
    assert 20.0 <= spec.layers.fe2al5_thickness_um <= 40.0
    batch = preset_batch("thin_slurry", count=40, seed=1)
    thickness = [batch.sample(i).layers.fe2al5_thickness_um for i in range(40)]
    assert 20.0 <= min(thickness) < 25.0 and 35.0 < max(thickness) <= 40.0
    g, mask = _render(batch.sample(0), batch.image_seed(0))
    assert measure(mask, spec.imaging.pixel_size_um).fe2al5_thickness_um == pytest.approx(
        g.designed["fe2al5_thickness_um"], abs=spec.imaging.pixel_size_um)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_family_covers_the_scales_with_one_frame_per_batch(name: str) -> None:
    family = preset_family(name, count=30, seed=2)
    assert [b.base.imaging.pixel_size_um for b in family] == list(FAMILY_PIXEL_SIZES_UM)
    assert min(FAMILY_PIXEL_SIZES_UM) == 0.05 and max(FAMILY_PIXEL_SIZES_UM) == 0.35
    assert len({b.name for b in family}) == len(family)
    for batch in family:
        specs = [batch.sample(i) for i in range(batch.count)]  # every drawn image is a valid spec
        tilts = [s.imaging.tilt_deg for s in specs]
        assert max(abs(t) for t in tilts) <= 5.0 and min(tilts) < -1.0 < 1.0 < max(tilts)
    close = family[0]  # 0.05 um per pixel: 38 um of height, less than any of these coatings with its resin
    assert close.base.imaging.partial_frame
    spec = close.sample(0)
    g, mask = _render(spec, close.image_seed(0))
    m = measure(mask, spec.imaging.pixel_size_um)
    assert not value_problems(m.as_dict())
