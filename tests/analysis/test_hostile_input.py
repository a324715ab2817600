"""Hostile-but-fair input to ``measure``, ``predict`` and ``report`` (issue 8): nothing lost, no traceback, bad input
refused with a one-line error naming the file.

Every file is small and generated here; images that claim to be huge are written as headers only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from semcoat_cli.app import app

runner = CliRunner()


def _digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def _error(result: Result, code: int) -> str:
    """The one-line error of a command that failed cleanly with ``code`` (never a traceback)."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


# -- Outputs are never written over inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["dataset", "images", "inside", "parent_of_images_link"])
def test_predict_refuses_an_output_folder_over_its_input_images(tmp_path: Path, dataset_dir: Path, where: str) -> None:
    images = sorted((dataset_dir / "images").glob("*.png"))
    out = {
        "dataset": dataset_dir,  # would replace images/<id>.png and masks/<id>.png
        "images": dataset_dir / "images",
        "inside": dataset_dir / "predictions",
        "parent_of_images_link": tmp_path / "link",
    }[where]
    if where == "parent_of_images_link":
        (tmp_path / "link").symlink_to(dataset_dir, target_is_directory=True)
    before = _digest(dataset_dir)
    args = ["predict", "--model", "classical", *map(str, images), "--out", str(out), "--pixel-size-um", "0.5"]
    line = _error(runner.invoke(app, args), 2)
    assert str(out) in line and str(dataset_dir.resolve()) in line
    assert _digest(dataset_dir) == before


def test_predict_refuses_an_output_folder_holding_an_input_given_through_a_symlink(tmp_path: Path) -> None:
    import cv2
    import numpy as np

    sem = tmp_path / "sem"
    (sem / "images").mkdir(parents=True)
    cv2.imwrite(str(sem / "images" / "a.png"), np.zeros((40, 40), np.uint8))
    (tmp_path / "a.png").symlink_to(sem / "images" / "a.png")
    args = ["predict", "--model", "classical", str(tmp_path / "a.png"), "--out", str(sem), "--pixel-size-um", "1"]
    line = _error(runner.invoke(app, args), 2)
    assert str(sem) in line and "a.png" in line
    assert not (sem / "masks").exists()


def test_predict_beside_its_inputs_in_a_plain_folder_is_accepted(tmp_path: Path) -> None:
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((40, 40), np.uint8))  # uniform: fails alone, exit 1
    args = ["predict", "--model", "classical", str(tmp_path / "a.png"), "--out", str(tmp_path / "pred")]
    result = runner.invoke(app, [*args, "--pixel-size-um", "1"])
    assert result.exit_code == 1 and (tmp_path / "pred" / "predictions.json").is_file()


def test_measure_refuses_an_output_file_that_is_an_input_mask(tmp_path: Path, dataset_dir: Path) -> None:
    masks = sorted((dataset_dir / "masks").glob("*.png"))
    before = _digest(dataset_dir)
    # What `semcoat measure --pixel-size-um 0.5 --out ds/masks/*.png` expands to: the first mask is the output.
    result = runner.invoke(app, ["measure", "--pixel-size-um", "0.5", "--out", *map(str, masks)])
    line = _error(result, 2)
    assert str(masks[0]) in line and f"lies inside the dataset folder {dataset_dir}" in line
    plain = tmp_path / "plain"
    plain.mkdir()
    for mask in masks:
        (plain / mask.name).write_bytes(mask.read_bytes())
    result = runner.invoke(app, ["measure", str(plain / "000001.png"), "--pixel-size-um", "0.5", "--out",
                                 str(plain / "000001.png")])  # fmt: skip
    line = _error(result, 2)
    assert f"{plain / '000001.png'}: the output file is the input" in line
    line = _error(
        runner.invoke(app, ["measure", str(plain), "--pixel-size-um", "0.5", "--out", str(plain / "r.csv")]), 2
    )
    assert f"lies inside the input folder {plain}" in line
    for target in (dataset_dir / "dataset.json", dataset_dir / "results.csv"):
        line = _error(runner.invoke(app, ["measure", str(dataset_dir), "--out", str(target)]), 2)
        assert str(target) in line and str(dataset_dir) in line
    link = tmp_path / "link.csv"
    link.symlink_to(masks[0])
    line = _error(runner.invoke(app, ["measure", str(masks[0]), "--pixel-size-um", "0.5", "--out", str(link)]), 2)
    assert str(link) in line and str(masks[0]) in line
    assert _digest(dataset_dir) == before


def test_report_refuses_an_output_folder_over_its_inputs(tmp_path: Path, dataset_dir: Path) -> None:
    pred = tmp_path / "pred"
    images = sorted((dataset_dir / "images").glob("*.png"))
    args = ["predict", "--model", "classical", *map(str, images), "--out", str(pred), "--pixel-size-um", "0.5"]
    runner.invoke(app, args)
    before_pred, before_ds = _digest(pred), _digest(dataset_dir)
    for results, out in (
        (pred, pred),
        (pred, pred / "report"),
        (pred / "measurements.csv", pred),
        (pred, dataset_dir),
        (pred, dataset_dir / "report"),
    ):
        line = _error(runner.invoke(app, ["report", str(results), "--truth", str(dataset_dir), "--out", str(out)]), 2)
        assert str(out) in line
    assert _digest(pred) == before_pred and _digest(dataset_dir) == before_ds
    result = runner.invoke(app, ["report", str(pred), "--truth", str(dataset_dir), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
