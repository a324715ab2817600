"""``semcoat measure``, ``predict`` and ``report`` through the real command-line application."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from typer.testing import CliRunner

from analysis.measure import MEASUREMENT_NAMES, measure
from semcoat.cli import app
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
    assert list(rows[0]) == ["image", *MEASUREMENT_NAMES]
    assert [r["image"] for r in rows] == ["000000", "000001", "000002", "000003"]
    meta = json.loads((dataset_dir / "meta" / "000001.json").read_text())
    assert float(rows[1]["fe2al5_thickness_um"]) == meta["truth"]["fe2al5_thickness_um"]


def test_measure_files_to_json_on_stdout(tmp_path: Path) -> None:
    Image.fromarray(slab(thickness=60, feal=5)).save(tmp_path / "a.png")
    result = runner.invoke(app, ["measure", str(tmp_path / "a.png"), "--pixel-size-um", "0.5", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row == {"image": "a", **measure(slab(thickness=60, feal=5), 0.5).as_dict()}
    csv_out = runner.invoke(app, ["measure", str(tmp_path / "a.png"), "--pixel-size-um", "0.5"])
    assert csv_out.stdout.splitlines()[0].startswith("image,fe2al5_thickness_um")


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
    assert result.exit_code == 0 and result.stdout.splitlines()[1] == "blank" + "," * len(MEASUREMENT_NAMES)


def test_predict_then_report(tmp_path: Path, onnx_model: Path, dataset_dir: Path) -> None:
    image = tmp_path / "000000.png"
    cv2.imwrite(str(image), np.round(grey_image(line_mask(0), np.random.default_rng(2)) * 255).astype(np.uint8))
    out = tmp_path / "pred"
    result = runner.invoke(
        app, ["predict", "--model", str(onnx_model), str(image), "--out", str(out), "--pixel-size-um", "0.5"]
    )
    assert result.exit_code == 0, result.output
    assert "000000: 160x240 px at 0.5 µm/px (option)" in result.stderr
    result = runner.invoke(app, ["report", str(out), "--truth", str(dataset_dir), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rep" / "report.html").is_file()


def test_predict_errors(tmp_path: Path, onnx_model: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((32, 32), np.uint8))
    result = runner.invoke(app, ["predict", "--model", str(onnx_model), str(tmp_path / "a.png"), "--out", "o"])
    assert result.exit_code == 1 and "--pixel-size-um" in result.stderr
    result = runner.invoke(
        app,
        ["predict", "--model", str(tmp_path / "m.ckpt"), str(tmp_path / "a.png"), "--out", "o", "--pixel-size-um", "1"],
    )
    assert result.exit_code == 1 and "no such model file" in result.stderr


def test_predict_missing_image(tmp_path: Path, onnx_model: Path) -> None:
    result = runner.invoke(app, ["predict", "--model", str(onnx_model), str(tmp_path / "nope.tif"), "--out", "o"])
    assert result.exit_code == 2 and "nope.tif" in result.output
