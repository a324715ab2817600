"""Calibration on rendered close-ups of the bottom interface (bpy 5.0.1, Cycles; issue 11 point 7): the surface above
the frame, so no resin and no thickness; greys and blur are recovered as on whole frames, and the batch written draws
cut frames that cover the renders' surface depths.

The renders are those of tests/blender_addon/test_calibrate_recovery.py with the surface moved above the top edge.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.calibrate import calibrate_files
from analysis.calibrate_spec import build_batch
from blender_addon.render_node.batch_render import render_range
from tests.blender_addon.test_calibrate_recovery import (
    BAR,
    BLUR_TOLERANCE,
    DOSE_TOLERANCE,
    GREY_TOLERANCE,
    HEIGHT,
    PIXEL_UM,
    recovery_batch,
    write_fei_tiffs,
)

pytestmark = pytest.mark.blender


def test_calibration_on_close_ups_of_the_interface(tmp_path: Path) -> None:
    from blender_addon.render_node.renderer import Renderer

    batch = recovery_batch(count=3, seed=7)
    usable_um = (HEIGHT - BAR) * PIXEL_UM
    lay = batch.base.layers
    lay.surface_depth_um, lay.fe2al5_thickness_um = -0.4 * usable_um, 0.8 * usable_um  # the band's bottom at 40 %
    batch.base.imaging.partial_frame = True
    batch.base.pore_line.present = False
    batch.validate()
    render_range(batch, tmp_path / "ds", Renderer)
    tiffs = write_fei_tiffs(tmp_path / "ds", tmp_path / "tiff")
    estimates = calibrate_files(tiffs, None)
    assert len(estimates) == batch.count
    for path, est in zip(tiffs, estimates, strict=True):
        truth = json.loads((tmp_path / "ds" / "meta" / f"{path.stem}.json").read_text())["params"]
        assert (est.shows_surface, est.shows_bottom) == (False, True)
        assert "layers.surface_depth_um" not in est.values and "layers.fe2al5_thickness_um" not in est.values
        assert est.details["band_bottom_depth_um"] == pytest.approx(0.4 * usable_um, abs=1.5)  # rough interface
        for phase in ("fe2al5", "substrate"):
            assert est.values[f"grey.{phase}"] == pytest.approx(truth["grey"][phase], abs=GREY_TOLERANCE), phase
        img = truth["imaging"]
        assert est.values["imaging.probe_fwhm_um"] == pytest.approx(img["probe_fwhm_um"], rel=BLUR_TOLERANCE)
        dose = est.values["imaging.dose_electrons_per_px"]
        if "imaging.detector_noise_std" in est.values:
            assert dose == pytest.approx(img["dose_electrons_per_px"], rel=DOSE_TOLERANCE)
        else:
            # Fe2Al5 and steel alone span too few greys to tell detector noise from shot noise: all of it is taken
            # for shot noise, so the dose read is at most the true one (a lower bound).
            assert dose <= img["dose_electrons_per_px"] * (1 + DOSE_TOLERANCE)
    calibrated = build_batch(estimates, "5h_650C", count=10, seed=1).batch
    assert calibrated.base.imaging.partial_frame is True
    surface = calibrated.randomize["layers.surface_depth_um"]
    assert float(surface.low or 0) <= lay.surface_depth_um <= float(surface.high or 0)
    for index in range(calibrated.count):
        calibrated.sample(index)
