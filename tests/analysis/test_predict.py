"""Prediction end to end with a tiny ONNX model: TIFF with Thermo/FEI metadata and a data bar, PNG, JPEG."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from analysis import files, predict
from analysis.measure import measure
from analysis.model import ModelLoadError, ModelRunError, load_model
from tests.analysis.conftest import export_nearest_grey_model, grey_image, line_mask
from tests.analysis.test_databar import add_databar
from tests.analysis.test_sem_tiff import FEI_TEXT

PIXEL_SIZE_UM = 0.049609375  # FEI_TEXT's PixelWidth


def fei_tiff_with_databar(path: Path, mask: np.ndarray, rng: np.random.Generator) -> Path:
    """16-bit TIFF of ``mask``'s greys, a data bar under it and Thermo/FEI metadata saying where the scan ends."""
    image = np.round(grey_image(mask, rng) * 65535).astype(np.uint16)
    bar_rows = 40
    full = np.zeros((image.shape[0] + bar_rows, image.shape[1]), np.uint16)
    full[: image.shape[0]] = image
    full = add_databar(full, image.shape[0], background=0, text=65535)
    text = FEI_TEXT.replace("ResolutionX=1024", f"ResolutionX={image.shape[1]}").replace(
        "ResolutionY=884", f"ResolutionY={image.shape[0]}"
    )
    tifffile.imwrite(path, full, extratags=[(34682, "s", 0, text, True)])
    return path


def test_predict_end_to_end_with_onnx(tmp_path: Path, onnx_model: Path) -> None:
    rng = np.random.default_rng(0)
    masks = {"fei": line_mask(0), "plain": line_mask(1)}
    tiff = fei_tiff_with_databar(tmp_path / "fei.tif", masks["fei"], rng)
    png = tmp_path / "plain.png"
    cv2.imwrite(str(png), np.round(grey_image(masks["plain"], rng) * 255).astype(np.uint8))
    out = tmp_path / "out"

    records = predict.predict_files(onnx_model, [tiff], out, tile_px=96, overlap_px=16)
    assert records[0].pixel_size_um == pytest.approx(PIXEL_SIZE_UM)
    assert records[0].pixel_size_from == "thermo-fei" and records[0].databar_top_row == 160
    records = predict.predict_files(onnx_model, [tiff, png], out, pixel_size_um=0.1, tile_px=96, overlap_px=16)
    assert [r.pixel_size_from for r in records] == ["option", "option"]
    assert records[0].databar_top_row == 160 and records[1].databar_top_row is None

    for name, mask in masks.items():
        predicted = files.read_mask(out / "masks" / f"{name}.png")
        assert np.mean(predicted == mask) > 0.999
        assert (out / "overlays" / f"{name}.png").is_file() and (out / "images" / f"{name}.png").is_file()
    table = files.read_results_csv(out / "measurements.csv")
    assert list(table) == ["fei", "plain"]
    truth = measure(masks["fei"], 0.1).as_dict()
    assert table["fei"]["fe2al5_thickness_um"] == pytest.approx(truth["fe2al5_thickness_um"], rel=0.01)
    assert table["fei"]["pore_line_present"] is True and table["plain"]["pore_line_present"] is False
    saved = json.loads((out / "predictions.json").read_text())
    assert saved[0]["source"] == str(tiff) and saved[0]["error"] is None
    # the options the masks were made with are recorded with them, on every record
    assert [(r["relabel_islands"], r["flip_average"]) for r in saved] == [(True, False), (True, False)]
    predict.predict_files(onnx_model, [tiff, tmp_path / "missing.png"], out, pixel_size_um=0.1, tile_px=96,
                          overlap_px=16, relabel_islands=False, flip_average=True)  # fmt: skip
    saved = json.loads((out / "predictions.json").read_text())
    assert saved[1]["failed"] is True
    assert [(r["relabel_islands"], r["flip_average"]) for r in saved] == [(False, True), (False, True)]


def test_jpeg_input(tmp_path: Path, onnx_model: Path) -> None:
    mask = line_mask(2)
    jpg = tmp_path / "j.jpg"
    cv2.imwrite(str(jpg), np.round(grey_image(mask, np.random.default_rng(1)) * 255).astype(np.uint8))
    predict.predict_files(onnx_model, [jpg], tmp_path / "out", pixel_size_um=0.5)
    predicted = files.read_mask(tmp_path / "out" / "masks" / "j.png")
    assert np.mean(predicted == mask) > 0.98


def test_missing_pixel_size_fails_that_image_only(tmp_path: Path, onnx_model: Path) -> None:
    rng = np.random.default_rng(0)
    tiff = fei_tiff_with_databar(tmp_path / "fei.tif", line_mask(0), rng)
    png = tmp_path / "plain.png"
    cv2.imwrite(str(png), np.round(grey_image(line_mask(1), rng) * 255).astype(np.uint8))
    out = tmp_path / "out"
    (out / "masks").mkdir(parents=True)
    cv2.imwrite(str(out / "masks" / "plain.png"), np.zeros((4, 4), np.uint8))  # stale, from an earlier run
    fei, plain = predict.predict_files(onnx_model, [tiff, png], out, tile_px=96, overlap_px=16)
    assert not fei.failed and fei.pixel_size_from == "thermo-fei" and (out / "masks" / "fei.png").is_file()
    assert plain.failed and plain.pixel_size_um is None and plain.rows is None
    assert plain.error is not None and str(png) in plain.error and "no pixel size" in plain.error
    assert "--" not in plain.error  # predictions.json is no command's: the command names its option
    assert not (out / "masks" / "plain.png").exists()
    table = files.read_results_csv(out / "measurements.csv")
    assert list(table) == ["fei", "plain"] and table["plain"] == dict.fromkeys(table["plain"])
    assert table["fei"]["pixel_size_um"] == pytest.approx(PIXEL_SIZE_UM, rel=1e-6)
    saved = {r["image"]: r for r in json.loads((out / "predictions.json").read_text())}
    assert saved["plain"]["failed"] is True and saved["fei"]["failed"] is False


def test_pixel_size_option_differing_from_the_metadata_warns_and_records_both(tmp_path: Path, onnx_model: Path) -> None:
    tiff = fei_tiff_with_databar(tmp_path / "fei.tif", line_mask(0), np.random.default_rng(0))
    out = tmp_path / "out"
    (record,) = predict.predict_files(onnx_model, [tiff], out, pixel_size_um=0.2, tile_px=96, overlap_px=16)
    assert record.pixel_size_um == 0.2 and record.pixel_size_from == "option"
    assert record.metadata_pixel_size_um == 0.0496094 and record.model == str(onnx_model)
    (warning,) = record.warnings
    assert str(tiff) in warning and "given, 0.2 µm/px" in warning and "0.0496094 µm/px" in warning
    saved = json.loads((out / "predictions.json").read_text())[0]
    assert saved["pixel_size_um"] == 0.2 and saved["pixel_size_from"] == "option"
    assert saved["metadata_pixel_size_um"] == 0.0496094 and saved["warnings"] == [warning]
    assert files.read_results_csv(out / "measurements.csv")["fei"]["pixel_size_um"] == 0.2
    # Within 1 % of the metadata: no warning, the option still wins.
    (record,) = predict.predict_files(onnx_model, [tiff], out, pixel_size_um=0.05, tile_px=96, overlap_px=16)
    assert record.warnings == [] and record.pixel_size_um == 0.05
    # No option: the metadata's, recorded once as such.
    (record,) = predict.predict_files(onnx_model, [tiff], out, tile_px=96, overlap_px=16)
    assert record.warnings == [] and record.pixel_size_um == record.metadata_pixel_size_um == 0.0496094
    assert predict.pixel_size_warning("x.tif", 0.2, None) is None


def test_pixel_sizes_in_predictions_json_have_6_significant_digits(tmp_path: Path) -> None:
    image = np.round(grey_image(line_mask(0), np.random.default_rng(0)) * 255).astype(np.uint8)
    text = FEI_TEXT.replace("PixelWidth=4.9609375e-08", "PixelWidth=1.7e-07").replace("ResolutionY=884", "")
    tifffile.imwrite(tmp_path / "a.tif", image, extratags=[(34682, "s", 0, text, True)])
    assert 1.7e-07 * 1e6 != 0.17  # 0.16999999999999998
    (record,) = predict.predict_files("classical", [tmp_path / "a.tif"], tmp_path / "out")
    assert record.pixel_size_um == 0.17
    assert '"pixel_size_um": 0.17,' in (tmp_path / "out" / "predictions.json").read_text()
    assert (tmp_path / "out" / "measurements.csv").read_text().splitlines()[1].startswith("a,0.17,")


def test_image_without_coating_keeps_mask_and_fails(tmp_path: Path, onnx_model: Path) -> None:
    cv2.imwrite(str(tmp_path / "resin.png"), np.full((40, 40), 13, np.uint8))
    (record,) = predict.predict_files(onnx_model, [tmp_path / "resin.png"], tmp_path / "out", pixel_size_um=1.0)
    assert record.failed and record.error is not None and "only background" in record.error
    assert str(tmp_path / "resin.png") in record.error
    assert (tmp_path / "out" / "masks" / "resin.png").is_file()  # kept, to see why
    assert files.read_results_csv(tmp_path / "out" / "measurements.csv")["resin"]["fe2al5_thickness_um"] is None
    saved = json.loads((tmp_path / "out" / "predictions.json").read_text())[0]
    assert saved["failed"] is True and "only background" in saved["error"]


def test_overlay_colours_classes_and_keeps_background() -> None:
    image = np.full((2, 2), 128, np.uint8)
    mask = np.array([[0, 1], [3, 4]], np.uint8)
    rgb = predict.overlay(image, mask, alpha=1.0)
    assert rgb[0, 0].tolist() == [128, 128, 128]
    assert rgb[1, 1].tolist() == [230, 40, 40]


def test_model_loading_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such model"):
        load_model(tmp_path / "missing.onnx")
    (tmp_path / "m.ckpt").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="Lightning checkpoints.*ONNX"):
        load_model(tmp_path / "m.ckpt")
    (tmp_path / "m.h5").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="accepted: .onnx"):
        load_model(tmp_path / "m.h5")
    (tmp_path / "broken.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelLoadError, match="broken.onnx"):
        load_model(tmp_path / "broken.onnx")


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torchscript_model(tmp_path: Path) -> None:
    import torch

    class Constant(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = torch.zeros(x.shape[0], 6, x.shape[2], x.shape[3])
            out[:, 1] = 1.0
            return out

    torch.jit.save(torch.jit.script(Constant()), str(tmp_path / "m.pt"))
    model = load_model(tmp_path / "m.pt")
    mask = predict.predict_mask(model, np.zeros((40, 50), np.uint8), tile_px=32, overlap_px=8)
    assert mask.shape == (40, 50) and np.all(mask == 1)


@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_model_with_a_fixed_batch_size_runs_tiles_in_chunks(tmp_path: Path, batch: int) -> None:
    # Exported without a dynamic batch axis: onnxruntime refuses any other N ("index: 0 Got: 4 Expected: 1").
    axes = {"image": {2: "h", 3: "w"}, "logits": {2: "h", 3: "w"}}
    path = export_nearest_grey_model(tmp_path / f"b{batch}.onnx", dynamic_axes=axes, example_batch=batch)
    model = load_model(path)
    assert getattr(model, "batch_size", None) == batch and getattr(model, "input_size", None) is None
    mask = line_mask(0)
    image = np.round(grey_image(mask, np.random.default_rng(3)) * 255).astype(np.uint8)
    predicted = predict.predict_mask(model, image, tile_px=64, overlap_px=16)  # 4 x 6 tiles: 24, not a multiple
    assert np.mean(predicted == mask) > 0.999


def test_onnx_model_with_a_fixed_input_size_gets_tiles_of_that_size(tmp_path: Path) -> None:
    path = export_nearest_grey_model(tmp_path / "fixed.onnx", dynamic_axes=None)  # (1, 1, 64, 64)
    model = load_model(path)
    assert getattr(model, "input_size", None) == (64, 64)
    mask = line_mask(1)
    image = np.round(grey_image(mask, np.random.default_rng(4)) * 255).astype(np.uint8)
    assert np.mean(predict.predict_mask(model, image, tile_px=512, overlap_px=64) == mask) > 0.999
    small = image[:40, :50]  # smaller than the model's input: padded up to it
    assert np.mean(predict.predict_mask(model, small, tile_px=512) == mask[:40, :50]) > 0.999
    with pytest.raises(ModelRunError, match=r"fixed.onnx: the model failed on an input of shape \(1, 1, 32, 32\).*"):
        model(np.zeros((1, 1, 32, 32), np.float32))


class _FlakyModel:
    """A model that fails with ``first_error`` on its first call and returns background logits afterwards."""

    n_classes = 6

    def __init__(self, first_error: Exception) -> None:
        self.first_error: Exception | None = first_error

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self.first_error is not None:
            error, self.first_error = self.first_error, None
            raise error
        return np.zeros((batch.shape[0], self.n_classes, *batch.shape[2:]), np.float32)


def test_a_model_failure_fails_that_image_alone_but_a_bug_stops_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [tmp_path / "a.png", tmp_path / "b.png"]
    for path in paths:
        cv2.imwrite(str(path), np.full((40, 40), 90, np.uint8))
    monkeypatch.setattr(predict, "load_model", lambda _: _FlakyModel(ModelRunError("out of device memory")))
    seen: list[tuple[str, object]] = []
    a, b = predict.predict_files("m.onnx", paths, tmp_path / "out", pixel_size_um=1.0,
                                 on_image=lambda r, e: seen.append((r.image, e)))  # fmt: skip
    assert a.failed and a.rows is None and a.error == f"{paths[0]}: out of device memory"
    assert b.rows == 40 and (tmp_path / "out" / "masks" / "b.png").is_file()  # segmented (nothing to measure)
    assert isinstance(seen[0][1], ModelRunError) and [name for name, _ in seen] == ["a", "b"]
    monkeypatch.setattr(predict, "load_model", lambda _: _FlakyModel(ValueError("a bug in our code")))
    with pytest.raises(ValueError, match="a bug in our code"):
        predict.predict_files("m.onnx", paths, tmp_path / "out2", pixel_size_um=1.0)


class _LeftLookingModel:
    """Three classes whose logits read a pixel and its left neighbour: a model that is not mirror-symmetric."""

    n_classes = 3

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = batch[:, 0]
        left = np.zeros_like(x)
        left[..., 1:] = x[..., :-1]
        return np.stack([4 * x, 4 * left, 2 * (x + left) - 1], axis=1).astype(np.float32)


def test_flip_average_makes_a_one_sided_model_mirror_symmetric() -> None:
    image = np.random.default_rng(5).random((48, 80)).astype(np.float32)
    mirrored = np.ascontiguousarray(image[:, ::-1])
    model = _LeftLookingModel()
    plain = predict.class_probabilities(model, image, tile_px=64, overlap_px=16)
    plain_of_mirror = predict.class_probabilities(model, mirrored, tile_px=64, overlap_px=16)
    assert not np.allclose(plain_of_mirror, plain[:, :, ::-1], atol=1e-3)  # the model alone reads a mirror otherwise
    averaged = predict.class_probabilities(model, image, tile_px=64, overlap_px=16, flip_average=True)
    averaged_of_mirror = predict.class_probabilities(model, mirrored, tile_px=64, overlap_px=16, flip_average=True)
    np.testing.assert_allclose(averaged_of_mirror, averaged[:, :, ::-1], atol=1e-6)
    np.testing.assert_allclose(averaged, (plain + plain_of_mirror[:, :, ::-1]) / 2, atol=1e-6)
    assert averaged.dtype == np.float32 and averaged.shape == plain.shape
    np.testing.assert_allclose(averaged.sum(axis=0), 1.0, atol=1e-5)


def test_flip_average_leaves_a_pixelwise_model_and_the_classical_baseline_as_they_are(
    tmp_path: Path, onnx_model: Path
) -> None:
    mask = line_mask(2)
    image = grey_image(mask, np.random.default_rng(4))
    model = load_model(onnx_model)  # nearest grey: each pixel alone, so mirroring changes nothing
    np.testing.assert_array_equal(
        predict.predict_mask(model, image, tile_px=96, overlap_px=16, flip_average=True),
        predict.predict_mask(model, image, tile_px=96, overlap_px=16),
    )
    classical = load_model("classical")
    np.testing.assert_array_equal(
        predict.predict_mask(classical, image, flip_average=True), predict.predict_mask(classical, image)
    )
