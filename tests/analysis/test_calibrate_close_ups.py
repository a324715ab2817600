"""Calibration on close-ups whose frames cut the coating (issue 11 point 7): they are used for what they show (greys,
noise, blur at the edge they have), what they do not show is unknown rather than absent, and the batch written draws
cut frames that cover them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from analysis.calibrate import ImageEstimates, _geometry, estimate_image
from analysis.calibrate_spec import build_batch
from analysis.predict import ImageInput
from semcoat.batch import BatchSpec
from semcoat.presets import preset_batch
from semcoat_cli.app import app
from tests.analysis.calibrate_images import GREYS, formed, imaging, layered_mask
from tests.analysis.masks import slab

PIXEL_UM = 0.1
# 240 rows: the surface 60 px above the top edge and the band's bottom at row 170 (the interface in the frame), or
# the band from edge to edge.
CLOSE_UPS = {"interface": (-60, 170), "band": (-60, 400)}


def _formed(kind: str, seed: int = 1, fwhm_um: float = 0.3, dose: float = 400.0) -> np.ndarray:
    surface, interface = CLOSE_UPS[kind]
    mask = layered_mask(240, 320, surface, interface, pores=8, seed=seed)
    pixels, _ = formed(mask, imaging(probe_fwhm_um=fwhm_um, dose_electrons_per_px=dose, shading_amplitude=0.02),
                       seed=seed)
    return pixels


def _estimate(kind: str, **kwargs: float) -> ImageEstimates:
    pixels = _formed(kind, **kwargs)  # type: ignore[arg-type]
    return estimate_image(ImageInput(Path(f"{kind}.png"), pixels, PIXEL_UM, "option", None), pixels.shape[0])


def test_a_close_up_of_the_interface_gives_greys_noise_and_blur_and_no_surface_or_thickness() -> None:
    est = _estimate("interface")
    assert (est.shows_surface, est.shows_bottom, est.cuts_coating) == (False, True, True)
    assert est.values["grey.fe2al5"] == pytest.approx(GREYS.fe2al5, abs=0.02)
    assert est.values["grey.substrate"] == pytest.approx(GREYS.substrate, abs=0.02)
    assert est.values["imaging.probe_fwhm_um"] == pytest.approx(0.3, rel=0.2)  # from the interface alone
    assert est.values["imaging.dose_electrons_per_px"] == pytest.approx(400.0, rel=0.25)
    for unknown in ("layers.surface_depth_um", "layers.fe2al5_thickness_um", "grey.resin"):
        assert unknown not in est.values, unknown
    assert est.values["layers.feal_present"] == 0.0  # the bottom is in the frame: FeAl is seen to be absent
    assert est.details["band_bottom_depth_um"] == pytest.approx(170 * PIXEL_UM, abs=0.5)
    assert any("the frame cuts the coating (the surface lies above the top edge): its surface depth, Fe2Al5 "
               "thickness unknown" in w for w in est.warnings)


def test_a_close_up_of_the_band_alone_gives_its_grey_and_dose_and_says_the_rest_is_unknown() -> None:
    est = _estimate("band")
    assert (est.shows_surface, est.shows_bottom) == (False, False)
    assert est.values["grey.fe2al5"] == pytest.approx(GREYS.fe2al5, abs=0.02)
    assert est.values["imaging.dose_electrons_per_px"] == pytest.approx(400.0, rel=0.25)
    assert "layers.feal_present" not in est.values and "imaging.probe_fwhm_um" not in est.values
    assert any("surface depth, Fe2Al5 thickness, FeAl unknown" in w for w in est.warnings)


def test_feal_of_a_frame_without_the_bands_bottom_is_unknown_not_absent() -> None:
    est = ImageEstimates("s.png", 240, 160, 0.1, "option", 0, 8)
    _geometry(est, slab(height=160, width=240, surface=20, thickness=400), 0.1)  # resin over a band running off
    assert (est.shows_surface, est.shows_bottom) == (True, False)
    assert est.values["layers.surface_depth_um"] == pytest.approx(2.0)
    assert "layers.feal_present" not in est.values and "layers.fe2al5_thickness_um" not in est.values
    whole = ImageEstimates("w.png", 240, 160, 0.1, "option", 0, 8)
    _geometry(whole, slab(height=160, width=240, surface=20, thickness=100), 0.1)
    assert whole.values["layers.feal_present"] == 0.0 and not whole.cuts_coating


def _values(**changes: float) -> dict[str, float]:
    base = {"grey.resin": 0.1, "grey.fe2al5": 0.6, "grey.substrate": 0.88, "imaging.probe_fwhm_um": 0.5,
            "imaging.dose_electrons_per_px": 300.0, "imaging.shading_amplitude": 0.02}
    return {**base, **changes}


def _whole(name: str, surface_um: float = 15.0, thickness_um: float = 60.0) -> ImageEstimates:
    values = _values(**{"layers.surface_depth_um": surface_um, "layers.fe2al5_thickness_um": thickness_um,
                        "layers.feal_present": 1.0, "layers.feal_thickness_um": 3.0})
    return ImageEstimates(name, 1024, 768, 0.13, "thermo-fei", 48, 8, values=values)


def _interface(name: str, bottom_um: float) -> ImageEstimates:
    values = _values(**{"layers.feal_present": 0.0})
    values.pop("grey.resin")
    return ImageEstimates(name, 1024, 768, 0.13, "thermo-fei", 48, 8, values=values,
                          details={"band_bottom_depth_um": bottom_um}, shows_surface=False)


def _surface(name: str, surface_um: float) -> ImageEstimates:
    return ImageEstimates(name, 1024, 768, 0.13, "thermo-fei", 48, 8,
                          values=_values(**{"layers.surface_depth_um": surface_um}), shows_bottom=False)


def test_close_ups_make_the_batch_draw_cut_frames_that_reach_their_edges() -> None:
    estimates = [_whole("w1.tif"), _whole("w2.tif", 12.0, 64.0), _interface("i.tif", 40.0), _surface("s.tif", 8.0)]
    result = build_batch(estimates, "20h_650C", count=30)
    batch = result.batch
    assert batch.base.imaging.partial_frame is True
    surface = batch.randomize["layers.surface_depth_um"]
    thickest = float(batch.randomize["layers.fe2al5_thickness_um"].high or 0)
    assert thickest >= 64.0 and float(batch.randomize["layers.fe2al5_thickness_um"].low or 99) <= 60.0
    # The interface close-up's band ends 40 um down: its surface lies up to (thickest - 40) um above the frame.
    assert float(surface.low or 0) <= 40.0 - thickest and float(surface.high or 0) >= 15.0
    # FeAl: seen in the two whole frames, seen absent in the interface close-up, unknown in the surface close-up.
    assert sorted(batch.randomize["layers.feal_present"].values or []) == [False, True, True]
    assert any("imaging.partial_frame: true: 2 of the 4 images" in n for n in result.notes)
    for index in range(batch.count):
        batch.sample(index)  # every draw is a valid spec


def test_close_ups_alone_keep_the_presets_thickness_and_the_surface_above_the_frame() -> None:
    result = build_batch([_interface("a.tif", 30.0), _interface("b.tif", 50.0)], "5h_650C", count=10)
    batch = result.batch
    assert batch.base.imaging.partial_frame is True
    thickness = batch.randomize["layers.fe2al5_thickness_um"]
    assert thickness == preset_batch("5h_650C").randomize["layers.fe2al5_thickness_um"]
    assert any("no image shows the whole band" in n for n in result.notes)
    # No image shows the surface: it stays above the frame, as far as the thickest band ending 30 um down needs.
    surface = batch.randomize["layers.surface_depth_um"]
    assert surface.high == 0.0 and float(surface.low) <= 30.0 - float(thickness.high)  # type: ignore[arg-type]
    whole = build_batch([_whole("w.tif", 15.0, 50.0)], "5h_650C", count=10).batch
    assert whole.base.imaging.partial_frame is False  # whole frames: no cut frames drawn


def test_spec_calibrate_writes_a_batch_from_close_ups(tmp_path: Path) -> None:
    paths = []
    for seed, kind in enumerate(("interface", "band", "interface")):
        paths.append(tmp_path / f"{kind}{seed}.png")
        cv2.imwrite(str(paths[-1]), _formed(kind, seed=seed))
    out = tmp_path / "lab.json"
    result = CliRunner().invoke(app, ["spec", "calibrate", *map(str, paths), "--pixel-size-um", str(PIXEL_UM),
                                      "--out", str(out), "--count", "10"])
    assert result.exit_code == 0, result.output
    assert "the frame cuts the coating" in result.stderr
    batch = BatchSpec.load(out)
    assert batch.base.imaging.partial_frame is True
    assert float(batch.randomize["grey.fe2al5"].low or 0) <= GREYS.fe2al5 <= float(batch.randomize["grey.fe2al5"].high
                                                                                    or 0)
    for index in range(batch.count):
        batch.sample(index)
