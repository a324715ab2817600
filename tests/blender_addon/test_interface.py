"""The bottom interface (issue 11 point 4): FeAl2 / Fe3Al sub-bands (class FeAl, greys of their own), patchy FeAl
after short anneals, Kirkendall voids along the bottom of the Fe2Al5 layer (pores); each off by default."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.measure import measure
from blender_addon.scene.stack import Z_FE3AL, Z_FEAL2, grey_of_z
from semcoat import classes
from semcoat.spec import CoatingSpec, GreyLevelSpec, SpecError
from tests.blender_addon.fakes import raster_sample
from tests.blender_addon.specs import FLAT, PIXEL_UM, small_batch

MARGIN = 3


def _render(index: int = 0, **sections):
    batch = small_batch(count=index + 1, **sections)
    return raster_sample(batch, index, MARGIN)


def test_sub_bands_are_feal_in_the_mask_with_their_own_greys() -> None:
    spec, g, mask, signal = _render(layers={**FLAT, "feal_present": True, "feal_thickness_um": 3.0,
                                            "feal2_thickness_um": 1.0, "fe3al_thickness_um": 1.6})
    greys = np.unique(signal[mask == classes.FEAL])
    expected = sorted((grey_of_z(spec.grey, Z_FEAL2), spec.grey.feal, grey_of_z(spec.grey, Z_FE3AL)))
    np.testing.assert_allclose(greys, expected, atol=1e-6)  # three greys, one class
    m = measure(mask, PIXEL_UM)
    # the zone is FeAl2 + FeAl + Fe3Al: 1.0 + 3.0 + 1.6 um on average (each band varies slowly along the width)
    assert m.feal_present and m.feal_thickness_um == pytest.approx(g.designed["feal_thickness_um"], abs=PIXEL_UM)
    assert g.designed["feal_thickness_um"] == pytest.approx(5.6, abs=0.6)
    assert m.fe2al5_thickness_um == pytest.approx(24.0, abs=PIXEL_UM)  # the Fe2Al5 band is untouched
    order = [grey_of_z(spec.grey, z) for z in (18.9, Z_FEAL2, 21.8, Z_FE3AL, 25.8)]
    assert order == sorted(order) and order[1] < order[2] < order[3]


def test_sub_bands_follow_randomised_greys_in_order() -> None:
    for fe2al5, feal, steel in ((0.6, 0.7, 0.95), (0.7, 0.8, 0.85)):
        grey = GreyLevelSpec(fe2al5=fe2al5, feal=feal, substrate=steel)
        assert fe2al5 < grey_of_z(grey, Z_FEAL2) < feal < grey_of_z(grey, Z_FE3AL) < steel
    assert grey_of_z(GreyLevelSpec(), 28.0) > GreyLevelSpec().substrate  # a Ni plating outshines the steel
    assert grey_of_z(GreyLevelSpec(), 6.0) == pytest.approx(GreyLevelSpec().resin)


@pytest.mark.parametrize(("coverage", "present"), [(0.25, False), (0.8, True)])
def test_patchy_feal_lies_along_part_of_the_width(coverage: float, present: bool) -> None:
    shares = []
    for i in range(3):
        _spec, g, mask, _signal = _render(i, layers={"feal_present": True, "feal_thickness_um": 3.0,
                                                     "feal_coverage": coverage})
        m = measure(mask, PIXEL_UM)
        bottom = ((mask == classes.FEAL) | (mask == classes.SUBSTRATE)).argmax(0)
        has = mask[bottom, np.arange(mask.shape[1])] == classes.FEAL
        shares.append(has.mean())
        assert m.feal_present is g.designed["feal_present"] is present
        if present:
            assert m.feal_thickness_um == pytest.approx(g.designed["feal_thickness_um"], abs=2 * PIXEL_UM)
    # the patches thin to nothing at their ends, so a little less than the coverage shows a pixel of FeAl
    assert coverage - 0.25 < np.mean(shares) <= coverage + 0.05


def test_a_patch_thins_out_towards_its_ends() -> None:
    _spec, g, _mask, _signal = _render(layers={**FLAT, "feal_present": True, "feal_thickness_um": 3.0,
                                               "feal_coverage": 0.5})
    zone = g.feal_bottom_um - g.fe2al5_bottom_um
    inside = zone > 0
    start = np.flatnonzero(np.diff(inside.astype(int)) == 1)[0] + 1  # first column of a patch
    assert zone[start] < 1.0 < zone[start + 40]  # rising over the taper (12 um = 60 columns at 0.2 um)


def test_kirkendall_voids_sit_on_the_bottom_of_the_band_and_move_nothing_else() -> None:
    plain = _render(layers={"feal_present": True})
    spec, g, mask, _signal = _render(layers={"feal_present": True},
                                     pores={"kirkendall_per_100um": 20.0, "kirkendall_radius_um": 0.4})
    np.testing.assert_array_equal(plain[1].pores.polygons_um, g.pores.polygons_um)
    np.testing.assert_array_equal(plain[1].precipitates.polygons_um, g.precipitates.polygons_um)
    voids = g.interface_voids.polygons_um
    expected = 20.0 * (256 + 2 * MARGIN) * PIXEL_UM / 100.0
    assert 0.6 * expected <= len(voids) <= 1.3 * expected
    col = np.clip(np.rint(voids[..., 0] / PIXEL_UM - 0.5).astype(int) + MARGIN, 0, g.x_um.size - 1)
    above = g.fe2al5_bottom_um[col] - voids[..., 1]
    assert np.all(above > 0)  # inside the band
    # each lying along the rough interface: its lowest point within a void's size of it (24 um of band)
    assert np.all(above.min(1) < 2.0) and np.median(above.min(1)) < 1.0
    assert g.designed["kirkendall_void_count"] == len(voids)
    m = measure(mask, PIXEL_UM)
    assert m.pore_fraction_pct > measure(plain[2], PIXEL_UM).pore_fraction_pct
    assert m.fe2al5_thickness_um == pytest.approx(measure(plain[2], PIXEL_UM).fe2al5_thickness_um)


def test_interface_parameters_are_off_by_default_and_checked() -> None:
    spec = CoatingSpec()
    assert spec.layers.feal_coverage == 1.0 and spec.layers.feal2_thickness_um == 0.0
    assert spec.layers.fe3al_thickness_um == 0.0 and spec.pores.kirkendall_per_100um == 0.0
    with pytest.raises(SpecError, match="layers.feal_coverage"):
        CoatingSpec.from_dict({"layers": {"feal_coverage": 1.2}})
    with pytest.raises(SpecError, match="pores.kirkendall_per_100um"):
        CoatingSpec.from_dict({"pores": {"kirkendall_per_100um": 100.0, "kirkendall_radius_um": 0.05},
                               "imaging": {"width_px": 8192, "height_px": 1024, "pixel_size_um": 1.0}})
    # sub-bands deepen the coating: a frame that fits it without them may not with them
    base = small_batch(count=1, layers={"feal_present": True}).sample(0).to_dict()
    base["layers"]["fe3al_thickness_um"] = 10.0
    with pytest.raises(SpecError, match="the coating reaches"):
        CoatingSpec.from_dict(base)
