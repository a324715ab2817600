"""Reports that compare several models on the same images: scores, labels, the page, the command."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from analysis import files, predict
from analysis.report import write_report
from analysis.report_data import check_labels, default_label, gather, gather_models, truth_pictures
from analysis.report_scores import (
    aligned_truth,
    better_model,
    image_dice,
    measurement_scores,
    segmentation_scores,
    who_is_better,
)
from semcoat.classes import FE2AL5, PORE, SUBSTRATE
from semcoat.errors import InvalidArgument
from semcoat_cli.app import app
from tests.analysis.conftest import line_mask


@pytest.fixture
def two_models(tmp_path: Path, dataset_dir: Path, onnx_model: Path) -> tuple[Path, Path]:
    """Predictions on the dataset's 4 images by the nearest-grey model (exact on these images) and the classical
    baseline."""
    images = sorted((dataset_dir / "images").glob("*.png"))
    predict.predict_files(onnx_model, images, tmp_path / "pred_grey", pixel_size_um=0.5)
    predict.predict_files("classical", images, tmp_path / "pred_classical", pixel_size_um=0.5)
    return tmp_path / "pred_grey", tmp_path / "pred_classical"


def test_dice_of_one_class_and_the_part_of_the_truth_a_cropped_prediction_covers() -> None:
    truth = np.zeros((10, 10), np.uint8)
    truth[2:6, 2:6] = PORE  # 16 px
    predicted = np.zeros_like(truth)
    predicted[2:6, 2:4] = PORE  # 8 px, all inside
    assert image_dice(predicted, truth, PORE) == pytest.approx(2 * 8 / (8 + 16))
    assert image_dice(predicted, truth, FE2AL5) is None  # not in the truth: not scored
    assert image_dice(truth, truth, PORE) == 1.0
    # A data bar cropped off the bottom by prediction: the top rows of the truth are compared.
    assert aligned_truth(predicted[:7], truth).shape == (7, 10)
    assert aligned_truth(np.zeros((11, 10), np.uint8), truth) is None
    assert aligned_truth(np.zeros((10, 9), np.uint8), truth) is None


def test_segmentation_scores_average_per_image_and_name_what_they_skip(tmp_path: Path) -> None:
    a, b = line_mask(0), line_mask(1)
    worse = a.copy()
    worse[worse == PORE] = FE2AL5  # every pore missed: pore Dice 0 on this image
    for name, mask in (("t_a", a), ("t_b", b), ("p_a", worse), ("p_b", b), ("p_small", b[:, :100])):
        files.write_png(tmp_path / f"{name}.png", mask)
    truth = {"a": tmp_path / "t_a.png", "b": tmp_path / "t_b.png", "c": tmp_path / "t_b.png"}
    predicted = {"a": tmp_path / "p_a.png", "b": tmp_path / "p_b.png", "c": tmp_path / "p_small.png",
                 "d": tmp_path / "p_b.png"}
    scores = segmentation_scores(predicted, truth, ["a", "b", "c", "d", "e"])
    assert scores.dice[PORE].mean == pytest.approx(0.5) and scores.dice[PORE].n_images == 2
    assert scores.dice[SUBSTRATE].mean == 1.0
    assert scores.skipped == {"c": "predicted and true masks differ in size", "d": "no true mask",
                              "e": "no predicted mask"}


def test_measurement_scores_and_who_is_better() -> None:
    truth = {k: {"fe2al5_thickness_um": t, "feal_present": f} for k, t, f in
             (("a", 10.0, True), ("b", 20.0, False), ("c", 30.0, True))}
    close = {k: {"fe2al5_thickness_um": v["fe2al5_thickness_um"] + 1, "feal_present": v["feal_present"]}
             for k, v in truth.items()}
    far = {k: {"fe2al5_thickness_um": v["fe2al5_thickness_um"] + 5, "feal_present": True} for k, v in truth.items()}
    far["c"]["fe2al5_thickness_um"] = None  # failed image: left out
    s_close, s_far = measurement_scores(close, truth), measurement_scores(far, truth)
    assert s_close["fe2al5_thickness_um"].mae == pytest.approx(1.0) and s_close["fe2al5_thickness_um"].n == 3
    assert s_far["fe2al5_thickness_um"].n == 2 and math.isnan(s_far["fe2al5_thickness_um"].r2)  # 2 pairs: no R²
    assert s_far["feal_present"].accuracy == pytest.approx(2 / 3) and s_far["feal_present"].false == 1
    wins = who_is_better({"close": s_close, "far": s_far}, {"close": {}, "far": {}})
    assert wins == {"close": {"measurements": ["fe2al5_thickness_um", "feal_present"], "classes": []},
                    "far": {"measurements": [], "classes": []}}
    assert better_model({"x": 1.0, "y": 1.01}, lower_is_better=True, tie=0.02, relative=True) is None  # a tie
    assert better_model({"x": 0.95, "y": 0.90}, lower_is_better=False, tie=0.002, relative=False) == "x"
    assert better_model({"x": 1.0, "y": math.nan}, lower_is_better=True, tie=0.02, relative=True) is None


def test_labels_default_to_the_recorded_model_and_are_made_unique(two_models: tuple[Path, Path],
                                                                   dataset_dir: Path, tmp_path: Path) -> None:
    grey, classical = two_models
    assert default_label(gather(grey)) == "nearest_grey.onnx" and default_label(gather(classical)) == "classical"
    again = tmp_path / "again" / "pred_classical"
    predict.predict_files("classical", sorted((dataset_dir / "images").glob("*.png")), again, pixel_size_um=0.5)
    labels = [m.label for m in gather_models([grey, classical, again])]
    assert labels[0] == "nearest_grey.onnx" and len(set(labels)) == 3 and all("classical" in x for x in labels[1:])
    assert [m.label for m in gather_models([grey, classical], labels=["A", "B"])] == ["A", "B"]
    for bad in (["A"], ["A", "A"], ["A", " "]):
        with pytest.raises(InvalidArgument) as info:
            check_labels(bad, 2)
        assert info.value.argument == "labels"


def test_report_compares_models_side_by_side_against_the_truth(two_models: tuple[Path, Path], dataset_dir: Path,
                                                                tmp_path: Path) -> None:
    grey, classical = two_models
    files.write_png(tmp_path / "resin" / "000000.png", np.full((160, 240), 13, np.uint8))  # nothing to measure
    predict.predict_files("classical", [tmp_path / "resin" / "000000.png"], tmp_path / "pred_bad", pixel_size_um=0.5)
    page = write_report([grey, classical, tmp_path / "pred_bad"], tmp_path / "rep", truth=dataset_dir,
                        labels=["grey model", "baseline", "broken"], title="Three models", max_images=3)
    text = page.read_text()
    assert "<h1>Three models</h1>" in text and "4 images, 3 models: grey model, baseline, broken" in text
    # which model is better at what, from the scores: the grey model is exact on these images
    verdict = re.search(r'<ul class="verdict">(.*?)</ul>', text)
    assert verdict and "<strong>grey model</strong> measures" in verdict.group(1)
    assert "broken: 1 image of 1 failed (000000)" in verdict.group(1) and "— failed:" in text
    # each model a column of the summary tables; the exact model's MAE 0 and Dice 1 highlighted as the best
    assert "<th>grey model: MAE</th>" in text and "<th>baseline: MAE</th>" in text and "<th>broken: MAE</th>" in text
    assert re.search(r'<td>Fe2Al5 thickness \(µm\)</td><td>4</td><td><span class="best">0</span></td>', text)
    assert '<td>Fe2Al5</td><td><span class="best">1.000 (4)</span></td>' in text
    classical_dice = segmentation_scores(gather(classical).masks, truth_pictures(dataset_dir).masks,
                                         [f"00000{i}" for i in range(4)]).dice[FE2AL5].mean
    assert f"<td>{classical_dice:.3f} (4)</td>" in text
    # per image: truth and every model's overlay side by side, one profile figure, a table of all
    assert text.count("<h3>0000") == 3 and text.count("<figcaption>ground truth</figcaption>") == 3
    for label in ("grey model", "baseline"):
        assert text.count(f"<figcaption>{label}</figcaption>") == 3
    assert "<th>true</th><th>grey model</th><th>grey model − true</th><th>baseline</th><th>baseline − true</th>" in text
    figures = {p.name for p in (tmp_path / "rep" / "figures").iterdir()}
    assert {"parity.png", "histograms.png", "profiles_000000.png"} <= figures and "profiles_000003.png" not in figures
    # all results: the truth and each model per image
    for source in ("ground truth", "grey model", "baseline"):
        assert text.count(f"<td>000001</td><td>{source}</td>") == 1


def test_report_command_takes_several_results_and_their_labels(two_models: tuple[Path, Path], tmp_path: Path) -> None:
    grey, classical = map(str, two_models)
    runner = CliRunner()
    args = ["report", grey, classical, "--out", str(tmp_path / "rep")]
    result = runner.invoke(app, [*args, "--label", "learned", "--label", "classical baseline", "--max-images", "1"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "rep" / "report.html").read_text()  # no truth: each model's values side by side
    assert "<th>learned: mean ± std (n)</th><th>classical baseline: mean ± std (n)</th>" in text
    assert "Measurements against ground truth" not in text and text.count("<h3>") == 1
    result = runner.invoke(app, [*args, "--label", "only one"])
    assert result.exit_code == 2 and "--label: give one label per result: 1 label(s) for 2 result(s)" in result.stderr
    result = runner.invoke(app, ["report", grey, "--out", str(tmp_path / "r1"), "--label", "x"])
    assert result.exit_code == 2 and "two or more RESULTS" in result.stderr
    result = runner.invoke(app, ["report", grey, str(tmp_path / "nothing"), "--out", str(tmp_path / "r2")])
    assert result.exit_code == 2 and "nothing: no such results file or folder" in result.stderr
    assert not (tmp_path / "r2").exists()
