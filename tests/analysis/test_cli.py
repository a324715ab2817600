"""``semcoat measure``, ``predict`` and ``report`` through the real command-line application."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from analysis.measure import measure
from semcoat.classes import SUBSTRATE
from semcoat.measurements import MEASUREMENT_NAMES
from semcoat_cli.app import app
from tests.analysis.conftest import grey_image, line_mask
from tests.analysis.masks import slab

runner = CliRunner()


def test_commands_are_registered() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("measure", "predict", "report"):
        assert command in result.output


def test_measure_dataset_folder_to_csv(tmp_path: Path, dataset_dir: Path) -> None:
    result = runner.invoke(app, ["measure", str(dataset_dir), "--out", str(tmp_path / "r.csv")])
    assert result.exit_code == 0, result.output
    with (tmp_path / "r.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["image", "pixel_size_um", *MEASUREMENT_NAMES]
    assert [r["image"] for r in rows] == ["000000", "000001", "000002", "000003"]
    assert {r["pixel_size_um"] for r in rows} == {"0.5"}  # the dataset's
    meta = json.loads((dataset_dir / "meta" / "000001.json").read_text())
    assert float(rows[1]["fe2al5_thickness_um"]) == meta["truth"]["fe2al5_thickness_um"]


def test_measure_files_to_json_on_stdout(tmp_path: Path) -> None:
    Image.fromarray(slab(thickness=60, feal=5)).save(tmp_path / "a.png")
    result = runner.invoke(app, ["measure", str(tmp_path / "a.png"), "--pixel-size-um", "0.5", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row == {"image": "a", "pixel_size_um": 0.5, **measure(slab(thickness=60, feal=5), 0.5).as_dict()}
    csv_out = runner.invoke(app, ["measure", str(tmp_path / "a.png"), "--pixel-size-um", "0.5"])
    assert csv_out.stdout.splitlines()[0].startswith("image,pixel_size_um,fe2al5_thickness_um")
    assert csv_out.stdout.splitlines()[1].startswith("a,0.5,")


def test_measure_errors_name_the_file(tmp_path: Path) -> None:
    Image.fromarray(np.full((8, 8), 9, np.uint8)).save(tmp_path / "bad.png")
    result = runner.invoke(app, ["measure", str(tmp_path / "bad.png"), "--pixel-size-um", "1"])
    assert result.exit_code == 1 and "bad.png" in result.stderr and "unknown class ids 9" in result.stderr
    result = runner.invoke(app, ["measure", str(tmp_path / "bad.png")])
    assert result.exit_code == 2 and "--pixel-size-um" in result.stderr
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "blank.png")
    result = runner.invoke(app, ["measure", str(tmp_path / "blank.png"), "--pixel-size-um", "1"])
    assert result.exit_code == 1 and "--keep-going" in result.stderr
    result = runner.invoke(app, ["measure", str(tmp_path / "blank.png"), "--pixel-size-um", "1", "--keep-going"])
    assert result.exit_code == 0 and result.stdout.splitlines()[1] == "blank,1" + "," * len(MEASUREMENT_NAMES)


def test_predict_then_report(tmp_path: Path, onnx_model: Path, dataset_dir: Path) -> None:
    image = tmp_path / "000000.png"
    cv2.imwrite(str(image), np.round(grey_image(line_mask(0), np.random.default_rng(2)) * 255).astype(np.uint8))
    out = tmp_path / "pred"
    result = runner.invoke(
        app, ["predict", "--model", str(onnx_model), str(image), "--out", str(out), "--pixel-size-um", "0.5"]
    )
    assert result.exit_code == 0, result.output
    assert "000000: 240x160 px at 0.5 µm/px (option)" in result.stderr  # width x height, as everywhere else
    assert "1 image -> " in result.stderr
    result = runner.invoke(app, ["report", str(out), "--truth", str(dataset_dir), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rep" / "report.html").is_file()


def test_predict_relabels_layer_islands_unless_asked_to_keep_them(tmp_path: Path, onnx_model: Path) -> None:
    # The nearest-grey model reads a stretch of steel grey inside the Fe2Al5 as steel: an island of the substrate.
    mask = line_mask(1)
    image_mask = mask.copy()
    image_mask[40:60, 100:140] = SUBSTRATE  # steel's grey
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.round(grey_image(image_mask, np.random.default_rng(3)) * 255).astype(np.uint8))
    masks = {}
    for flag in ("--relabel-islands", "--keep-islands"):
        out = tmp_path / flag.strip("-")
        result = runner.invoke(
            app, ["predict", "--model", str(onnx_model), str(image), "--out", str(out), "--pixel-size-um", "0.5", flag]
        )
        assert result.exit_code == 0, result.output
        masks[flag] = np.asarray(Image.open(out / "masks" / "a.png"))
        # 800 px of 38400 (2.1 %): enough to say so, on the terminal and in the record
        warned = "(2.1% of the frame) as steel or coating cut off from its layer"
        assert (warned in result.stderr) == (flag == "--relabel-islands"), result.stderr
        (record,) = json.loads((out / "predictions.json").read_text())
        assert any(warned in w for w in record["warnings"]) == (flag == "--relabel-islands")
    kept, relabelled = masks["--keep-islands"], masks["--relabel-islands"]
    assert (kept[40:60, 100:140] == SUBSTRATE).all()
    assert not (relabelled[:100] == SUBSTRATE).any()  # no steel left above the substrate (row 101)
    outside = np.ones(mask.shape, bool)
    outside[40:60, 100:140] = False
    np.testing.assert_array_equal(relabelled[outside], kept[outside])
    assert np.mean(kept[outside] == mask[outside]) > 0.999


def test_predict_errors(tmp_path: Path, onnx_model: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((32, 32), np.uint8))
    out = str(tmp_path / "o")
    result = runner.invoke(app, ["predict", "--model", str(onnx_model), str(tmp_path / "a.png"), "--out", out])
    assert result.exit_code == 1 and "--pixel-size-um" in result.stderr
    result = runner.invoke(
        app,
        ["predict", "--model", str(tmp_path / "m.ckpt"), str(tmp_path / "a.png"), "--out", out, "--pixel-size-um", "1"],
    )
    assert result.exit_code == 1 and "no such model file" in result.stderr


def test_predict_missing_image(tmp_path: Path, onnx_model: Path) -> None:
    out = str(tmp_path / "o")
    result = runner.invoke(app, ["predict", "--model", str(onnx_model), str(tmp_path / "nope.tif"), "--out", out])
    assert result.exit_code == 2 and "nope.tif" in result.output


def _clean_error(result: Any, code: int) -> str:
    """The command failed with ``code`` and an ``error:`` line, not a traceback; its stderr."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output and result.stderr.startswith("error: ")
    return str(result.stderr)


def test_bad_pixel_sizes_are_refused_up_front(tmp_path: Path, dataset_dir: Path) -> None:
    image = tmp_path / "plain0.png"
    cv2.imwrite(str(image), np.round(grey_image(line_mask(0), np.random.default_rng(2)) * 255).astype(np.uint8))
    for value in ("0", "-0.5", "nan", "inf"):
        stderr = _clean_error(runner.invoke(app, ["measure", str(dataset_dir), "--pixel-size-um", value]), 2)
        assert "--pixel-size-um: the pixel size must be a positive finite number" in stderr
        assert f"got {float(value)}" in stderr
        out = tmp_path / f"p_{value}"
        result = runner.invoke(
            app, ["predict", "--model", "classical", str(image), "--out", str(out), "--pixel-size-um", value]
        )
        assert "--pixel-size-um: the pixel size must be a positive finite number" in _clean_error(result, 2)
        assert not out.exists()  # nothing written before the options were checked
    result = runner.invoke(app, ["predict", "--help"])
    assert "x>=0.0" not in result.output  # the pixel size option no longer claims 0 is accepted


def test_predict_bad_tiling_options_fail_before_any_output(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((32, 32), np.uint8))
    out = tmp_path / "o"
    args = ["predict", "--model", "classical", str(image), "--out", str(out), "--pixel-size-um", "1"]
    stderr = _clean_error(runner.invoke(app, [*args, "--tile-px", "64", "--overlap-px", "64"]), 2)
    assert "--overlap-px: the tile overlap must be" in stderr and "got 64" in stderr
    assert not out.exists()


def test_unwritable_outputs_give_clean_errors(tmp_path: Path, dataset_dir: Path) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for target, reason in ((tmp_path, "is a folder"), (a_file / "m.csv", "is a file, not a folder")):
        stderr = _clean_error(runner.invoke(app, ["measure", str(dataset_dir), "--out", str(target)]), 2)
        assert str(target) in stderr and reason in stderr
    if Path("/proc/self").is_dir():  # a location nobody can create files in, even root
        stderr = _clean_error(runner.invoke(app, ["measure", str(dataset_dir), "--out", "/proc/x/m.csv"]), 1)
        assert "/proc/x/m.csv: cannot write the output" in stderr
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((32, 32), np.uint8))
    result = runner.invoke(
        app, ["predict", "--model", "classical", str(image), "--out", str(a_file), "--pixel-size-um", "1"]
    )
    assert str(a_file) in _clean_error(result, 2) and "must be a folder" in result.stderr
    csv_path = tmp_path / "r.csv"
    assert runner.invoke(app, ["measure", str(dataset_dir), "--out", str(csv_path)]).exit_code == 0
    result = runner.invoke(app, ["report", str(csv_path), "--out", str(a_file)])
    assert str(a_file) in _clean_error(result, 2)
    result = runner.invoke(app, ["report", str(csv_path), "--out", str(a_file / "rep")])
    assert str(a_file / "rep") in _clean_error(result, 2)


def test_predict_keeps_going_over_failed_images_and_names_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    paths = []
    for name in ("plain0", "plain1", "blank", "plain2"):
        paths.append(tmp_path / f"{name}.png")
        image = np.full((160, 240), 128, np.uint8) if name == "blank" else grey_image(line_mask(int(name[-1])), rng)
        cv2.imwrite(str(paths[-1]), np.round(image * 255).astype(np.uint8) if image.dtype != np.uint8 else image)
    out = tmp_path / "pred"
    (out / "masks").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(out / "masks" / "blank.png")  # stale, from an earlier run
    result = runner.invoke(
        app, ["predict", "--model", "classical", *map(str, paths), "--out", str(out), "--pixel-size-um", "0.5"]
    )
    assert result.exit_code == 1, result.output
    assert f"blank: FAILED: {paths[2]}: the image is uniform" in result.stderr
    assert "3 images -> " in result.stderr
    assert f"error: 1 of 4 images failed: {paths[2]}" in result.stderr and "Traceback" not in result.output
    with (out / "measurements.csv").open() as f:
        rows = {r["image"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["plain0", "plain1", "blank", "plain2"]
    assert rows["blank"]["fe2al5_thickness_um"] == "" and rows["plain2"]["fe2al5_thickness_um"] != ""
    saved = {r["image"]: r for r in json.loads((out / "predictions.json").read_text())}
    assert saved["blank"]["failed"] is True and "uniform" in saved["blank"]["error"]
    assert saved["plain2"]["failed"] is False and saved["plain2"]["columns"] == 240
    assert not (out / "masks" / "blank.png").exists() and (out / "masks" / "plain2.png").is_file()
    result = runner.invoke(app, ["report", str(out), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output


def test_predict_image_without_pixel_size_fails_alone(tmp_path: Path) -> None:
    from tests.analysis.test_predict import fei_tiff_with_databar

    rng = np.random.default_rng(4)
    paths = [fei_tiff_with_databar(tmp_path / f"fei{i}.tif", line_mask(i), rng) for i in range(2)]
    paths.append(tmp_path / "plain.png")
    cv2.imwrite(str(paths[-1]), np.round(grey_image(line_mask(2), rng) * 255).astype(np.uint8))
    out = tmp_path / "predA"
    result = runner.invoke(app, ["predict", "--model", "classical", *map(str, paths), "--out", str(out)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"plain: FAILED: {paths[-1]}: no pixel size" in result.stderr and "(give --pixel-size-um)" in result.stderr
    assert f"error: 1 of 3 images failed: {paths[-1]}" in result.stderr
    with (out / "measurements.csv").open() as f:
        rows = {r["image"]: r for r in csv.DictReader(f)}
    assert rows["plain"]["fe2al5_thickness_um"] == "" and rows["fei0"]["fe2al5_thickness_um"] != ""
    assert rows["fei0"]["pixel_size_um"] == "0.0496094"
    saved = {r["image"]: r for r in json.loads((out / "predictions.json").read_text())}
    assert saved["plain"]["failed"] is True and saved["fei1"]["pixel_size_from"] == "thermo-fei"
    assert (out / "masks" / "fei1.png").is_file() and not (out / "masks" / "plain.png").exists()
    # Options are still checked before any work.
    result = runner.invoke(app, ["predict", "--model", "classical", str(paths[0]), "--out", str(tmp_path / "o2"),
                                 "--tile-px", "64", "--overlap-px", "64"])  # fmt: skip
    assert result.exit_code == 2 and not (tmp_path / "o2").exists()


def test_predict_warns_when_the_pixel_size_option_differs_from_the_metadata(tmp_path: Path) -> None:
    from tests.analysis.test_predict import fei_tiff_with_databar

    tiff = fei_tiff_with_databar(tmp_path / "fei.tif", line_mask(0), np.random.default_rng(4))
    out = tmp_path / "pred"
    args = ["predict", "--model", "classical", str(tiff), "--out", str(out), "--pixel-size-um", "0.2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    expected = f"warning: {tiff}: the pixel size given, 0.2 µm/px, differs from the file's SEM metadata, 0.0496094"
    assert expected in result.stderr
    saved = json.loads((out / "predictions.json").read_text())[0]
    assert (saved["pixel_size_um"], saved["pixel_size_from"], saved["metadata_pixel_size_um"]) == (
        0.2, "option", 0.0496094,
    )  # fmt: skip


def test_predict_counts_a_mask_with_nothing_to_measure_as_failed(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    good, resin = tmp_path / "good.png", tmp_path / "resin.png"
    cv2.imwrite(str(good), np.round(grey_image(line_mask(0), rng) * 255).astype(np.uint8))
    resin_image = np.full((160, 240), 20, np.uint8)
    resin_image[::2] = 40  # not uniform, so it is segmented; but all of it is dark resin touching the top
    cv2.imwrite(str(resin), resin_image)
    out = tmp_path / "pred"
    args = ["predict", "--model", "classical", str(good), str(resin), "--out", str(out), "--pixel-size-um", "0.5"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert f"error: 1 of 2 images failed: {resin}" in result.stderr
    saved = {r["image"]: r for r in json.loads((out / "predictions.json").read_text())}
    assert saved["resin"]["failed"] is True and saved["resin"]["error"]
    assert saved["resin"]["error"] in result.stderr and saved["good"]["failed"] is False


def test_predict_help_says_what_no_crop_databar_disables() -> None:
    import typer

    command = typer.main.get_command(app).commands["predict"]  # type: ignore[attr-defined]
    (option,) = [p for p in command.params if p.name == "crop_databar"]
    assert "ResolutionY" in option.help and "disables both" in option.help
    (option,) = [p for p in command.params if p.name == "pixel_size_um"]
    assert "Overrides" in option.help and "1 %" in option.help


def test_measure_refuses_two_masks_that_would_share_a_row_and_the_reader_a_repeated_image(tmp_path: Path) -> None:
    from analysis import files

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        files.write_png(tmp_path / folder / "000000.png", slab(height=60, width=40, surface=10, thickness=30))
    result = CliRunner().invoke(app, ["measure", str(tmp_path / "a"), str(tmp_path / "b"), "--pixel-size-um", "1"])
    assert result.exit_code == 2 and "would both be row '000000'" in result.output
    table = tmp_path / "t.csv"
    table.write_text("image,pixel_size_um\nx,1\nx,1\n")
    with pytest.raises(files.ResultsTableError, match="image 'x' appears twice"):
        files.read_results_csv(table)


def test_predict_flip_average_reads_an_image_and_its_mirror_alike(tmp_path: Path) -> None:
    import torch

    class LeftLooking(torch.nn.Module):
        """Class 0 where a pixel is bright, class 1 where its left neighbour is: not mirror-symmetric."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            left = torch.nn.functional.pad(x, (1, 0))[..., :-1]
            return torch.cat([4 * x, 4 * left, torch.zeros_like(x) + 2], dim=1)

    model = tmp_path / "left.pt"
    torch.jit.save(torch.jit.script(LeftLooking()), str(model))
    pixels = np.random.default_rng(8).integers(0, 256, (48, 64), dtype=np.uint8)
    images = {"a": pixels, "mirror": np.ascontiguousarray(pixels[:, ::-1])}
    for name, image in images.items():
        cv2.imwrite(str(tmp_path / f"{name}.png"), image)
    masks: dict[str, np.ndarray] = {}
    for flag in ("--no-flip-average", "--flip-average"):
        out = tmp_path / flag.strip("-")
        paths = [str(tmp_path / f"{name}.png") for name in images]
        result = runner.invoke(
            app, ["predict", "--model", str(model), *paths, "--out", str(out), "--pixel-size-um", "0.5", flag]
        )
        assert result.exit_code == 1 and "2 of 2 images failed" in result.stderr, result.output  # no coating in noise
        for name in images:
            masks[f"{name}{flag}"] = np.asarray(Image.open(out / "masks" / f"{name}.png"))
    np.testing.assert_array_equal(masks["mirror--flip-average"], masks["a--flip-average"][:, ::-1])
    assert not np.array_equal(masks["mirror--no-flip-average"], masks["a--no-flip-average"][:, ::-1])
