"""`semcoat train package`: the best checkpoint of a real fit, its ONNX export (loaded and run by analysis.model), the
metrics summary taken from the CSV log; summaries by hand; a folder without a fit is a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from semcoat_cli.app import app
from training.package import PackageError, latest_version_dir, package_run, summarise_metrics

runner = CliRunner()

CSV = """epoch,step,train/loss,val/dice_mean,val/dice_pore
0,9,0.9,,
0,9,,0.50,0.20
1,19,0.7,,
1,19,,0.75,0.40
2,29,,0.75,0.10
3,39,,0.60,0.30
"""


def test_the_summary_takes_the_first_best_row_and_the_last_epoch_and_step() -> None:
    summary = summarise_metrics(CSV, "val/dice_mean")
    assert summary["best"] == {"value": 0.75, "epoch": 1, "step": 19}
    assert summary["val"] == {"val/dice_mean": 0.75, "val/dice_pore": 0.40}
    assert summary["last"] == {"epoch": 3, "step": 39}
    low = summarise_metrics("epoch,step,val/loss\n0,1,0.9\n1,2,0.4\n2,3,0.4\n", "val/loss", mode="min")
    assert low["best"] == {"value": 0.4, "epoch": 1, "step": 2}
    never = summarise_metrics("epoch,step,train/loss\n0,1,0.9\n", "val/dice_mean")
    assert never["best"] is None and never["val"] == {} and never["last"] == {"epoch": 0, "step": 1}


def test_a_folder_without_a_fit_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="no fit log folder"):
        latest_version_dir(tmp_path)
    (tmp_path / "logs" / "version_0").mkdir(parents=True)
    with pytest.raises(PackageError, match="saved no checkpoint"):
        package_run(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    result = runner.invoke(app, ["train", "package", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "no fit log folder" in result.output


@pytest.mark.slow
def test_a_fit_is_packaged_with_its_best_checkpoint_an_onnx_model_that_predicts_and_its_metrics(
        trained_checkpoint: Path, tiny_datasets: list[Path], tmp_path: Path) -> None:
    import cv2

    from analysis.model import load_model
    from semcoat.dataset import read_dataset

    root = trained_checkpoint.parents[3]  # ROOT/logs/version_N/checkpoints/best-....ckpt
    result = runner.invoke(app, ["train", "package", str(root), "--out", str(tmp_path / "package"),
                                 "--sample-px", "64"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "package"
    assert (out / "checkpoints" / trained_checkpoint.name).read_bytes() == trained_checkpoint.read_bytes()
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["monitor"] == "val/dice_mean" and summary["checkpoint"] == f"checkpoints/{trained_checkpoint.name}"
    logged = summarise_metrics((out / "metrics.csv").read_text(), "val/dice_mean")
    assert summary["best"] == logged["best"] and summary["best"]["value"] > 0
    assert f"dice{summary['best']['value']:.4f}" in trained_checkpoint.name
    assert (out / "config.yaml").is_file() and not list(tmp_path.glob(".package.partial-*"))

    model = load_model(out / "model.onnx")
    dataset = read_dataset(tiny_datasets[0])
    image = cv2.imread(str(dataset.image_path(dataset.ids[0])), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
    logits = model(image[None, None, :96, :128])
    assert logits.shape[:2] == (1, len(dataset.info.classes)) and np.isfinite(logits).all()
