"""The mount above the coating (issue 11 point 6): an edge-retention plating, a shrinkage gap and filler specks in
the resin, all background in the mask, so the coating and its measurements stay as they were."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.measure import measure
from blender_addon.scene.stack import Z_FILLER, Z_PLATING, grey_of_z
from semcoat import classes
from semcoat.spec import CoatingSpec, SpecError
from tests.blender_addon.fakes import raster_sample
from tests.blender_addon.specs import PIXEL_UM, small_batch

MARGIN = 3
MOUNT = {"plating_thickness_um": 2.0, "shrinkage_gap_um": 1.5, "resin_filler_per_100um2": 8.0,
         "resin_filler_radius_um": 0.3}


def _render(layers: dict, index: int = 0, **sections):
    batch = small_batch(count=index + 1, layers={"surface_depth_um": 9.0, **layers}, **sections)
    return raster_sample(batch, index, MARGIN)


def test_the_mount_is_background_and_leaves_the_coating_and_its_measurements_alone() -> None:
    _s, plain, plain_mask, plain_signal = _render({})
    spec, g, mask, signal = _render(MOUNT)
    np.testing.assert_array_equal(mask, plain_mask)  # all of it class 0, above the surface
    np.testing.assert_array_equal(g.pores.polygons_um, plain.pores.polygons_um)  # drawn from streams of its own
    assert measure(mask, PIXEL_UM) == measure(plain_mask, PIXEL_UM)
    coating = mask != classes.BACKGROUND
    np.testing.assert_array_equal(signal[coating], plain_signal[coating])
    resin = ~coating
    assert not np.array_equal(signal[resin], plain_signal[resin])  # but the resin's part of the image changed


def test_plating_lies_on_the_surface_brighter_than_the_steel() -> None:
    spec, g, mask, signal = _render({"plating_thickness_um": 2.0})
    plating = grey_of_z(spec.grey, Z_PLATING)
    assert plating > spec.grey.substrate
    surface = (mask != classes.BACKGROUND).argmax(0)
    cols = np.arange(mask.shape[1])
    for above_px in (1, 5, 8):  # 2 um = 10 px of plating right above the surface
        assert np.mean(signal[surface - above_px, cols] == np.float32(plating)) > 0.95
    assert np.all(signal[surface - 13, cols] != np.float32(plating))  # 2 um +- 15 % at most
    assert g.designed["plating_thickness_um"] == pytest.approx(2.0, rel=0.15)


def test_the_gap_opens_along_part_of_the_width_between_specimen_and_resin() -> None:
    opened = []
    for i in range(4):
        spec, g, mask, signal = _render({"plating_thickness_um": 1.0, "shrinkage_gap_um": 1.5}, index=i)
        width = (g.plating_top_um - g.gap_top_um)[g.in_image]
        assert width.min() >= 0.0 and width.max() <= 1.5 + 1e-9
        opened.append(np.mean(width > 0))
        surface = (mask != classes.BACKGROUND).argmax(0)
        cols = np.arange(mask.shape[1])
        plating = grey_of_z(spec.grey, Z_PLATING)
        # where the gap is wide, the pixels just above the plating (1 um +- 15 %: 6 px at most) are black, not resin
        wide = np.flatnonzero(width > 0.8)
        above = surface[wide] - 7
        assert np.mean(signal[above, cols[wide]] == np.float32(spec.grey.pore)) > 0.9
        assert np.mean(signal[surface - 2, cols] == np.float32(plating)) > 0.95
    assert 0.0 < np.mean(opened) < 0.9 and max(opened) > 0.1


def test_filler_specks_fill_the_resin_only() -> None:
    spec, g, mask, signal = _render({"resin_filler_per_100um2": 20.0, "resin_filler_radius_um": 0.3})
    filler = grey_of_z(spec.grey, Z_FILLER)
    assert spec.grey.resin < filler < spec.grey.fe2al5
    specks = signal == np.float32(filler)
    assert np.all(mask[specks] == classes.BACKGROUND)
    resin_area_um2 = np.count_nonzero(mask == classes.BACKGROUND) * PIXEL_UM**2
    expected = 20.0 * resin_area_um2 / 100.0
    assert 0.7 * expected <= len(g.filler_specks) <= 1.3 * expected
    assert g.designed["filler_speck_count"] == len(g.filler_specks)


def test_mount_parameters_are_off_by_default_and_checked() -> None:
    lay = CoatingSpec().layers
    assert lay.plating_thickness_um == lay.shrinkage_gap_um == lay.resin_filler_per_100um2 == 0.0
    with pytest.raises(SpecError, match="layers.shrinkage_gap_um"):
        CoatingSpec.from_dict({"layers": {"shrinkage_gap_um": -1.0}})
    with pytest.raises(SpecError, match="layers.resin_filler_per_100um2.*inclusions"):
        CoatingSpec.from_dict({"layers": {"resin_filler_per_100um2": 50.0, "surface_depth_um": 500.0},
                               "imaging": {"width_px": 2048, "height_px": 2048, "pixel_size_um": 1.0}})
