"""`semcoat train package`: the best checkpoint of a real fit, its ONNX export (loaded and run by analysis.model), the
metrics summary taken from the CSV log; summaries by hand; a folder without a fit is a clear error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from semcoat_cli.app import app
from training.package import PackageError, fit_log_dir, package_run, summarise_metrics

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
        fit_log_dir(tmp_path)
    (tmp_path / "logs" / "version_0").mkdir(parents=True)
    with pytest.raises(PackageError, match="saved no checkpoint"):
        package_run(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    result = runner.invoke(app, ["train", "package", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "no fit log folder" in result.output


def test_the_newest_fit_is_found_past_the_folders_of_test_and_predict_runs(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    for name, files in {"version_0": {"checkpoints/best.ckpt": "x"},  # a fit
                        "version_1": {"metrics.csv": "epoch,step,train/loss\n0,9,0.5\n"},  # a fit, no checkpoint yet
                        "version_2": {"metrics.csv": "epoch,step,test/loss,test/dice_mean\n0,0,0.4,0.8\n"},  # test
                        "version_10": {"hparams.yaml": "{}"}}.items():  # predict (logs nothing); 10 > 2 by number
        for relative, text in files.items():
            (logs / name / relative).parent.mkdir(parents=True, exist_ok=True)
            (logs / name / relative).write_text(text)
    assert fit_log_dir(tmp_path) == (logs / "version_1", [logs / "version_10", logs / "version_2"])
    with pytest.raises(PackageError, match="saved no checkpoint in .*version_1"):  # the newest fit speaks for itself
        package_run(tmp_path, tmp_path / "out")
    (logs / "version_1" / "metrics.csv").write_text("epoch,step,val/loss\n")  # not a fit either, after all
    assert fit_log_dir(tmp_path) == (logs / "version_0", [logs / "version_10", logs / "version_2", logs / "version_1"])
    (logs / "version_0" / "checkpoints" / "best.ckpt").unlink()  # no fit anywhere: the newest folder
    assert fit_log_dir(tmp_path) == (logs / "version_10", [])


@pytest.mark.slow
def test_a_fit_is_packaged_with_its_best_checkpoint_an_onnx_model_that_predicts_and_its_metrics(
        trained_checkpoint: Path, tiny_datasets: list[Path], tmp_path: Path) -> None:
    import cv2

    from analysis.model import load_model
    from semcoat.dataset import read_dataset

    # ROOT/logs/version_N/checkpoints/best-....ckpt, copied: a test run then logs into the same root
    root = tmp_path / "root"
    shutil.copytree(trained_checkpoint.parents[3], root)
    newest = max(int(p.name.split("_")[1]) for p in (root / "logs").glob("version_*"))
    (root / "logs" / f"version_{newest + 1}").mkdir()
    (root / "logs" / f"version_{newest + 1}" / "metrics.csv").write_text("epoch,step,test/dice_mean\n0,0,0.5\n")
    result = runner.invoke(app, ["train", "package", str(root), "--out", str(tmp_path / "package"),
                                 "--sample-px", "64"])
    assert result.exit_code == 0, result.output
    assert f"version_{newest + 1} in {root / 'logs'}: newer, but no fit's log" in result.stderr
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

    # packaging again replaces its own earlier package whole: every file is this run's
    for name in ("confusion_val.csv", "hparams.yaml", "metrics.json"):
        (out / name).write_text("stale")
    again = runner.invoke(app, ["train", "package", str(root), "--out", str(out), "--sample-px", "64"])
    assert again.exit_code == 0, again.output
    for name in ("confusion_val.csv", "hparams.yaml"):
        assert not (out / name).exists() or (out / name).read_text() != "stale"
    assert json.loads((out / "metrics.json").read_text()) == summary


def test_out_is_only_ever_a_new_or_empty_folder_or_an_earlier_package(trained_checkpoint: Path,
                                                                      tiny_datasets: list[Path],
                                                                      tmp_path: Path) -> None:
    """Replacing --out deletes it: a dataset, the fit's root, its parent or any folder of the user's is refused (it
    was deleted whole), before anything is exported."""
    root = tmp_path / "runs" / "unet"
    shutil.copytree(trained_checkpoint.parents[3], root)
    dataset = tmp_path / "mydata"
    shutil.copytree(tiny_datasets[0], dataset)
    (dataset / "NOTES.txt").write_text("mine")
    a_file = tmp_path / "afile.txt"
    a_file.write_text("x")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    cases = ((dataset, "is a folder of other files (NOTES.txt, dataset.json, images, masks, meta...), not an "
                       "earlier package"),
             (root, "is the fit's root or holds it"), (root.parent, "is the fit's root or holds it"),
             (a_file, "exists and is not a folder"))
    for out, said in cases:
        result = runner.invoke(app, ["train", "package", str(root), "--out", str(out), "--sample-px", "64"])
        assert result.exit_code == 2 and f"error: --out: {out} {said}" in result.output, result.output
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing deleted or written
    empty = tmp_path / "empty"
    empty.mkdir()
    assert runner.invoke(app, ["train", "package", str(root), "--out", str(empty), "--sample-px", "64"]).exit_code == 0
    assert (empty / "model.onnx").is_file()
