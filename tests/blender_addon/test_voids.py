"""Pores in the image (issue 11 point 5, the grey part): interiors from black up to the resin's grey, one level per
pore, and bright rims on the solid around them."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from blender_addon.render_node.specimen import SpecimenStreams, specimen_signal
from blender_addon.render_node.voids import pore_fill_offset, pore_rim
from semcoat import classes
from semcoat.spec import CoatingSpec, GreyLevelSpec


def _porous(rows: int = 200, cols: int = 300) -> np.ndarray:
    mask = np.full((rows, cols), classes.FE2AL5, np.uint8)
    mask[:20] = classes.BACKGROUND
    mask[150:] = classes.SUBSTRATE
    rng = np.random.default_rng(0)
    for _ in range(25):
        cv2.circle(mask, (int(rng.integers(10, cols - 10)), int(rng.integers(40, 130))), int(rng.integers(2, 6)),
                   (classes.PORE,), -1)
    # Two touching pores are one pore: one region, one level.
    cv2.circle(mask, (150, 140), 4, (classes.PORE,), -1)
    cv2.circle(mask, (157, 140), 4, (classes.PORE,), -1)
    return mask


def test_each_pore_gets_one_level_between_empty_and_the_largest_fill() -> None:
    mask = _porous()
    pore, resin, fill_max = 0.03, 0.09, 0.8
    top, offset = pore_fill_offset(mask, pore, resin, fill_max, np.random.default_rng(1))
    full = np.zeros(mask.shape, np.float32)
    full[top:top + offset.shape[0]] = offset
    assert np.all(full[mask != classes.PORE] == 0.0)
    count, labels = cv2.connectedComponents((mask == classes.PORE).astype(np.uint8), connectivity=8)
    levels = []
    for k in range(1, count):
        values = np.unique(full[labels == k])
        assert values.size == 1  # one level per pore, merged pores included
        levels.append(values[0])
    levels_arr = np.array(levels)
    assert levels_arr.min() >= 0.0 and levels_arr.max() <= fill_max * (resin - pore) + 1e-7
    assert levels_arr.std() > 0.1 * fill_max * (resin - pore)  # pores differ
    rng = np.random.default_rng(2)
    assert pore_fill_offset(mask, pore, resin, 0.0, rng) is None
    assert rng.bit_generator.state == np.random.default_rng(2).bit_generator.state  # nothing drawn when off
    assert pore_fill_offset(np.full((50, 50), classes.FE2AL5, np.uint8), pore, resin, 0.5, rng) is None


def test_the_rim_is_on_the_solid_at_the_pore_edge_and_decays_over_its_width() -> None:
    mask = np.full((100, 200), classes.FE2AL5, np.uint8)
    mask[:10] = classes.BACKGROUND
    mask[40:60, 80:120] = classes.PORE
    top, profile = pore_rim(mask, 0.1, 0.3)  # 3 px
    full = np.zeros(mask.shape, np.float32)
    full[top:top + profile.shape[0]] = profile
    assert np.all(full[mask == classes.PORE] == 0.0) and np.all(full[mask == classes.BACKGROUND] == 0.0)
    row = full[50]
    assert row[120] == pytest.approx(1.0)  # the solid pixel touching the pore
    assert row[123] == pytest.approx(np.exp(-1.0), rel=0.05)  # one width further
    assert row[126] == pytest.approx(np.exp(-2.0), rel=0.05)
    assert full[50, 180] < 1e-4  # far away: nothing
    assert pore_rim(np.full((50, 50), classes.FE2AL5, np.uint8), 0.1, 0.3) is None


def test_specimen_pores_fill_and_rims_change_pores_and_their_surroundings_only() -> None:
    mask = _porous()
    greys = CoatingSpec().grey
    signal = np.array([greys.for_class(c) for c in range(7)], np.float32)[mask]

    def streams() -> SpecimenStreams:
        return SpecimenStreams(*(np.random.default_rng(k) for k in range(6)))

    plain = CoatingSpec()
    filled = dataclasses.replace(plain, grey=dataclasses.replace(plain.grey, pore_fill_max=1.0))
    rimmed = dataclasses.replace(plain, grey=dataclasses.replace(plain.grey, pore_rim=0.1))
    off = specimen_signal(signal, mask, plain, streams())
    fill = specimen_signal(signal, mask, filled, streams())
    rim = specimen_signal(signal, mask, rimmed, streams())
    pores = mask == classes.PORE
    assert np.array_equal(off[~pores], fill[~pores])  # the fill draws from its own stream
    assert np.all(fill[pores] >= greys.pore - 1e-6) and np.all(fill[pores] <= greys.resin + 1e-6)
    assert fill[pores].std() > 0.005
    near = cv2.dilate(pores.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~pores
    assert np.all(rim[near] > off[near])
    assert np.array_equal(rim[pores], off[pores])
    assert GreyLevelSpec().pore_fill_max == 0.0 and GreyLevelSpec().pore_rim == 0.0  # neutral in a bare spec
