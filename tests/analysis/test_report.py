"""The HTML report: figures, parity against truth, self-contained page."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from analysis import io, plots, predict
from analysis.report import gather, write_report
from tests.analysis.conftest import grey_image, line_mask


def test_regression_metrics() -> None:
    mae, r2 = plots.regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert mae == 0.0 and r2 == 1.0
    mae, r2 = plots.regression_metrics([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    assert mae == pytest.approx(2 / 3) and r2 == pytest.approx(0.0)
    assert np.isnan(plots.regression_metrics([1.0], [1.0])[1])


def test_report_on_a_dataset_measured_against_its_truth(tmp_path: Path, dataset_dir: Path) -> None:
    rows = [(s.path.stem, io.measure_file(s.path, 0.5)) for s in io.resolve_masks([dataset_dir])]
    io.write_results_csv(tmp_path / "results.csv", rows)
    page = write_report(tmp_path / "results.csv", tmp_path / "report", truth=dataset_dir)
    text = page.read_text()
    assert "Against ground truth" in text and "4 images matched" in text
    assert (tmp_path / "report" / "figures" / "parity.png").is_file()
    assert (tmp_path / "report" / "figures" / "histograms.png").is_file()
    assert len(re.findall(r'src="data:image/png;base64,', text)) >= 2
    # Measuring the truth masks again reproduces the truth: R² 1 for the thickness.
    assert re.search(r"Fe2Al5 thickness \(µm\)</td><td>4</td><td>0</td><td>1</td>", text)


@pytest.mark.slow
def test_report_on_predictions_with_overlays_and_profiles(tmp_path: Path, onnx_model: Path, dataset_dir: Path) -> None:
    rng = np.random.default_rng(5)
    images = []
    for i in range(3):
        path = tmp_path / f"00000{i}.png"
        cv2.imwrite(str(path), np.round(grey_image(line_mask(i), rng) * 255).astype(np.uint8))
        images.append(path)
    predict.predict_files(onnx_model, images, tmp_path / "pred", pixel_size_um=0.5)
    data = gather(tmp_path / "pred", truth=dataset_dir)
    assert set(data.overlays) == {"000000", "000001", "000002"} and data.pixel_size_um["000000"] == 0.5
    page = write_report(tmp_path / "pred", tmp_path / "report", truth=dataset_dir / "masks", max_images=2)
    text = page.read_text()
    assert "3 images matched" in text
    figures = {p.name for p in (tmp_path / "report" / "figures").iterdir()}
    assert {"parity.png", "histograms.png", "profile_000000.png", "profile_000001.png"} <= figures
    assert "profile_000002.png" not in figures
    assert text.count("<h3>") == 2


def test_report_without_truth_and_missing_results(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="measurements.csv"):
        write_report(tmp_path, tmp_path / "r")
    io.write_results_csv(tmp_path / "r.csv", [("a", None)])
    text = write_report(tmp_path / "r.csv", tmp_path / "r").read_text()
    assert "<h1>Coating measurements</h1>" in text and "Against ground truth" not in text
