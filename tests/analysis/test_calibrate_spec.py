"""From per-image estimates to the batch spec: ranges, frame, neutral display, derived greys, geometry in the frame."""

from __future__ import annotations

import pytest

from analysis.calibrate import ImageEstimates
from analysis.calibrate_spec import (
    CalibrationError,
    build_batch,
    measured_range,
    measured_ranges,
)
from semcoat.batch import BatchSpec
from semcoat.params import leaf_paths
from semcoat.spec import CoatingSpec


def _estimates(values: dict[str, float] | None = None, name: str = "a.tif") -> ImageEstimates:
    base = {"grey.resin": 0.1, "grey.fe2al5": 0.6, "grey.substrate": 0.88, "imaging.probe_fwhm_um": 0.5,
            "imaging.dose_electrons_per_px": 300.0, "imaging.detector_noise_std": 0.01,
            "imaging.shading_amplitude": 0.02, "layers.surface_depth_um": 15.0, "layers.fe2al5_thickness_um": 60.0,
            "layers.feal_present": 0.0}
    base.update(values or {})
    return ImageEstimates(name, 1024, 768, 0.13, "thermo-fei", 48, 8, values=base)


def test_a_range_is_the_measured_span_widened_within_the_accepted_range() -> None:
    r = measured_range("grey.fe2al5", [0.50, 0.60])
    assert (r.low, r.high) == pytest.approx((0.49, 0.61))  # a tenth of the span on each side
    one = measured_range("grey.fe2al5", [0.6])
    assert (one.low, one.high) == pytest.approx((0.59, 0.61))  # the floor: the estimate's own error
    assert measured_range("imaging.shading_amplitude", [0.0, 0.01]).low == 0.0  # never below the minimum
    dose = measured_range("imaging.dose_electrons_per_px", [50.0, 1500.0])
    assert dose.low == pytest.approx(50.0 / 30 ** 0.1, rel=1e-4) and dose.high == pytest.approx(1500 * 30 ** 0.1,
                                                                                                    rel=1e-4)
    assert measured_range("grey.substrate", [0.99]).high == 1.0
    assert dose.median == pytest.approx(775.0)


def test_the_batch_covers_what_was_measured_with_the_images_frame() -> None:
    estimates = [_estimates({"grey.fe2al5": 0.58, "imaging.dose_electrons_per_px": 200.0}, "a.tif"),
                 _estimates({"grey.fe2al5": 0.63, "imaging.dose_electrons_per_px": 450.0}, "b.tif")]
    result = build_batch(estimates, "20h_650C", count=40, seed=3, name="lab-1")
    batch = result.batch
    img = batch.base.imaging
    assert (img.width_px, img.height_px, img.pixel_size_um, img.bit_depth) == (1024, 768, 0.13, 8)
    assert img.data_bar and img.data_bar_height_px == 48
    assert (img.contrast, img.brightness) == (1.0, 0.0)
    assert "imaging.contrast" not in batch.randomize and "imaging.brightness" not in batch.randomize
    for est in estimates:
        for path, value in est.values.items():
            dist = batch.randomize.get(path)
            if dist is not None and dist.kind == "uniform":
                assert dist.low <= value <= dist.high, path  # type: ignore[operator]
    assert batch.base.grey.fe2al5 == pytest.approx(0.605)  # the median
    assert not batch.base.layers.feal_present and "layers.feal_present" not in batch.randomize
    # Phases the images did not show follow measured ones: precipitates brighter than Fe2Al5, pores darker than resin.
    pre = batch.randomize["grey.precipitate"]
    assert float(pre.low or 0) > 0.58 and any("grey.precipitate: not measured" in n for n in result.notes)
    assert float(batch.randomize["grey.pore"].high or 1) < 0.1
    # The file round-trips and every image draws a valid spec.
    again = BatchSpec.from_dict(batch.to_dict())
    assert (again.name, again.count, again.seed) == ("lab-1", 40, 3)
    for index in range(again.count):
        again.sample(index)


def test_a_coating_that_nearly_fills_the_frame_shrinks_the_presets_guesses_first() -> None:
    # 768 rows - 48 of bar = 720 rows x 0.13 = 93.6 um: 15 + 70 um measured leaves little for the roughness.
    estimates = [_estimates({"layers.fe2al5_thickness_um": 70.0})]
    result = build_batch(estimates, "20h_650C", count=5)
    thickness = result.batch.randomize["layers.fe2al5_thickness_um"]
    assert float(thickness.high or 0) >= 70.0  # the measured thickness stays covered
    assert any("the preset's scaled by" in n for n in result.notes)
    too_thick = [_estimates({"layers.fe2al5_thickness_um": 150.0})]
    with pytest.raises(CalibrationError, match="cannot fit the frame"):
        build_batch(too_thick, "20h_650C", count=5)


def test_images_of_several_frames_give_the_most_common_one_and_say_so() -> None:
    a, b, c = _estimates(name="a.tif"), _estimates(name="b.tif"), _estimates(name="c.tif")
    c.width_px, c.pixel_size_um = 2048, 0.065
    result = build_batch([a, b, c], "5h_650C", count=5)
    assert result.batch.base.imaging.width_px == 1024
    assert any("c.tif (2048x768 px, 0.065 um/px" in n for n in result.notes)


def test_feal_in_some_images_is_drawn_in_that_share() -> None:
    estimates = [_estimates({"layers.feal_present": 1.0, "layers.feal_thickness_um": 3.0}), _estimates(),
                 _estimates()]
    batch = build_batch(estimates, "20h_650C", count=5).batch
    assert sorted(batch.randomize["layers.feal_present"].values or []) == [False, False, True]
    assert float(batch.randomize["layers.feal_thickness_um"].low or 0) <= 3.0


def test_scan_parameters_of_the_render_node_are_set_explicitly() -> None:
    leaves = leaf_paths(CoatingSpec)
    result = build_batch([_estimates(name="x.jpg")], "20h_650C", count=5)
    for path in ("imaging.frame_count", "imaging.line_noise_std", "imaging.jpeg_quality"):
        if path in leaves:
            assert path not in result.batch.randomize
            assert any(n.startswith(path) for n in result.notes)
    if "imaging.line_noise_std" in leaves:  # measured: a range, as offsets per scan line
        lined = build_batch([_estimates({"imaging.line_noise_std": 0.012})], "20h_650C", count=5).batch
        assert float(lined.randomize["imaging.line_noise_std"].low or 1) <= 0.012
        assert "imaging.line_noise_length_px" not in lined.randomize
        assert lined.base.to_dict()["imaging"]["line_noise_length_px"] == 4 * 1024
    if "imaging.jpeg_quality" in leaves:
        assert result.batch.base.to_dict()["imaging"]["jpeg_quality"] > 0


def test_no_estimate_no_batch() -> None:
    with pytest.raises(CalibrationError, match="no usable image"):
        build_batch([], "20h_650C", count=5)
    assert measured_ranges([_estimates()])["grey.resin"].values == (0.1,)
    assert "layers.feal_present" not in measured_ranges([_estimates()])  # a flag, not a range


def test_scratches_seen_in_no_image_keep_the_presets_range() -> None:
    unseen = build_batch([_estimates({"imaging.scratch_density_per_100um": 0.0})], "20h_650C", count=5)
    preset = build_batch([_estimates()], "20h_650C", count=5).batch.randomize["imaging.scratch_density_per_100um"]
    assert unseen.batch.randomize["imaging.scratch_density_per_100um"] == preset
    assert any("no scratch stood out" in n for n in unseen.notes)
    seen = build_batch([_estimates({"imaging.scratch_density_per_100um": 2.5})], "20h_650C", count=5).batch
    assert seen.randomize["imaging.scratch_density_per_100um"].high == pytest.approx(3.5)
