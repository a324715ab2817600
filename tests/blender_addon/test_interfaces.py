"""FeAl blending into the steel (issue 11 point 4, the grey part): a continuous grey across the boundary the mask
draws sharply, only where FeAl lies on the steel."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.render_node.interfaces import substrate_blend_offset
from semcoat import classes

FEAL_GREY, STEEL_GREY = 0.78, 0.92


def _stack(width: int = 60, boundary: int = 60) -> tuple[np.ndarray, np.ndarray]:
    mask = np.full((120, width), classes.FE2AL5, np.uint8)
    mask[30:boundary] = classes.FEAL
    mask[boundary:] = classes.SUBSTRATE
    greys = np.zeros(256, np.float32)
    greys[[classes.FE2AL5, classes.FEAL, classes.SUBSTRATE, classes.PORE]] = [0.68, FEAL_GREY, STEEL_GREY, 0.03]
    return greys[mask], mask


def _blended(signal: np.ndarray, mask: np.ndarray, width_px: float) -> np.ndarray:
    change = substrate_blend_offset(signal, mask, width_px)
    assert change is not None
    top, offset = change
    out = signal.copy()
    out[top:top + offset.shape[0]] += offset
    return out


def test_the_grey_rises_continuously_over_the_width_centred_on_the_boundary() -> None:
    signal, mask = _stack()
    out = _blended(signal, mask, 10.0)
    column = out[:, 20]
    assert np.all(np.diff(column[30:]) >= -1e-7)  # rising from FeAl into the steel
    step = STEEL_GREY - FEAL_GREY
    low, high = np.interp([0.1, 0.9], (column[30:] - FEAL_GREY) / step, np.arange(30, 120) + 0.5)
    assert high - low == pytest.approx(10.0, abs=1.0)  # 10 % to 90 % over the width
    assert (low + high) / 2 == pytest.approx(60.0, abs=0.6)  # centred on the mask's boundary
    assert column[59] - column[58] < 0.25 * step  # no step left at the boundary
    assert np.array_equal(out[:30], signal[:30]) and np.allclose(out[100:], STEEL_GREY, atol=1e-4)


def test_no_blend_where_fe2al5_lies_on_the_steel_or_without_width() -> None:
    signal, mask = _stack()
    mask[30:60] = classes.FE2AL5
    signal[30:60] = 0.68
    assert substrate_blend_offset(signal, mask, 10.0) is None
    assert substrate_blend_offset(*_stack(), 0.0) is None
    no_steel = np.full((50, 50), classes.FEAL, np.uint8)
    assert substrate_blend_offset(no_steel.astype(np.float32), no_steel, 10.0) is None


def test_voids_on_the_interface_keep_their_grey_and_the_steel_below_still_blends() -> None:
    signal, mask = _stack()
    mask[55:60, 10:20] = classes.PORE  # a Kirkendall void on the boundary
    signal[55:60, 10:20] = 0.03
    mask[40:44, 40:44] = classes.PRECIPITATE
    signal[40:44, 40:44] = 0.85
    out = _blended(signal, mask, 8.0)
    assert np.array_equal(out[55:60, 10:20], signal[55:60, 10:20])
    assert np.array_equal(out[40:44, 40:44], signal[40:44, 40:44])
    assert np.allclose(out[60:, 15], out[60:, 30])  # under the void, as beside it
    # Columns where part of the band is Fe2Al5 blend only where FeAl lies on the steel.
    mask[30:60, 50:] = classes.FE2AL5
    signal[30:60, 50:] = 0.68
    out = _blended(signal, mask, 8.0)
    assert np.array_equal(out[:, 50:], signal[:, 50:])
    assert out[60, 30] < STEEL_GREY - 0.01
