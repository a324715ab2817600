"""The HTML report: figures, parity against truth, self-contained page."""

from __future__ import annotations

import math
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from analysis import files, plots, predict
from analysis.report import write_report
from analysis.report_data import gather
from semcoat.errors import InvalidArgument
from tests.analysis.conftest import grey_image, line_mask


def test_regression_metrics() -> None:
    mae, r2 = plots.regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert mae == 0.0 and r2 == 1.0
    mae, r2 = plots.regression_metrics([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    assert mae == pytest.approx(2 / 3) and r2 == pytest.approx(0.0)
    assert np.isnan(plots.regression_metrics([1.0], [1.0])[1])


def test_report_on_a_dataset_measured_against_its_truth(tmp_path: Path, dataset_dir: Path) -> None:
    rows = [(s.path.stem, 0.5, files.measure_file(s.path, 0.5)) for s in files.resolve_masks([dataset_dir])]
    files.write_results_csv(tmp_path / "results.csv", rows)
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
    with pytest.raises(files.MissingInputError, match="measurements.csv"):
        write_report(tmp_path, tmp_path / "r")
    files.write_results_csv(tmp_path / "r.csv", [("a", None, None)])
    text = write_report(tmp_path / "r.csv", tmp_path / "r").read_text()
    assert "<h1>Coating measurements</h1>" in text and "Against ground truth" not in text


def test_r2_is_undefined_when_the_truth_barely_varies() -> None:
    # Truth differing only in the 4th significant digit: R² would be about -1e3 and mean nothing.
    truth, predicted = [3.000, 3.001, 3.000, 3.002], [3.2, 2.9, 3.1, 3.05]
    mae, r2 = plots.regression_metrics(predicted, truth)
    assert mae == pytest.approx(0.11225) and np.isnan(r2)
    assert np.isnan(plots.regression_metrics([0.0, 0.1, 0.0], [0.0, 0.0, 0.0])[1])  # constant zero truth
    assert np.isnan(plots.regression_metrics([1.0, 2.0], [1.0, 2.0])[1])  # fewer than 3 points
    assert plots.regression_metrics([1.0, 2.0, 3.5], [1.0, 2.0, 3.0])[1] == pytest.approx(1 - 0.25 / 2)
    assert plots.parity_title(0.0875, math.nan, 4) == "MAE 0.0875   n=4"
    assert plots.parity_title(0.1, 0.91234, 4) == "MAE 0.1   R² 0.912   n=4"


def test_report_shows_a_dash_for_r2_of_a_constant_truth(tmp_path: Path, dataset_dir: Path) -> None:
    rows = [(s.path.stem, 0.5, files.measure_file(s.path, 0.5)) for s in files.resolve_masks([dataset_dir])]
    files.write_results_csv(tmp_path / "results.csv", rows)
    table = files.read_results_csv(tmp_path / "results.csv")
    with (tmp_path / "truth.csv").open("w") as f:  # the same thickness in every image, a little off the results
        f.write("image,fe2al5_thickness_um\n" + "".join(f"{k},{30 + 1e-5 * i}\n" for i, k in enumerate(table)))
    text = write_report(tmp_path / "results.csv", tmp_path / "rep", truth=tmp_path / "truth.csv").read_text()
    assert re.search(r"Fe2Al5 thickness \(µm\)</td><td>4</td><td>[0-9.e+]+</td><td>–</td>", text)


def _masks_folder(folder: Path, names: list[str]) -> Path:
    folder.mkdir()
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / f"{name}.png"), line_mask(i))
    return folder


def test_report_warns_when_names_differ(tmp_path: Path, dataset_dir: Path) -> None:
    rows = [(f"img{i}", 0.5, files.measure_file(s.path, 0.5)) for i, s in enumerate(files.resolve_masks([dataset_dir]))]
    files.write_results_csv(tmp_path / "r.csv", rows)
    warnings: list[str] = []
    page = write_report(tmp_path / "r.csv", tmp_path / "rep", truth=dataset_dir, on_warning=warnings.append)
    (warning,) = warnings
    assert warning.startswith(f"0 of 4 results matched a truth in {dataset_dir}") and "names differ" in warning
    assert "4 results have no truth of the same name" in warning
    assert "results: img0, img1, img2, img3" in warning and "truth: 000000, 000001" in warning
    assert "names differ" in page.read_text()


def test_report_truth_masks_without_pixel_size(tmp_path: Path) -> None:
    truth = _masks_folder(tmp_path / "labelled", ["a", "b", "c"])
    rows = [(name, 0.5, files.measure_file(truth / f"{name}.png", 0.5)) for name in ("a", "b", "c")]
    files.write_results_csv(tmp_path / "m_only.csv", rows)
    warnings: list[str] = []
    write_report(tmp_path / "m_only.csv", tmp_path / "rep", truth=truth, on_warning=warnings.append)
    (warning,) = warnings
    assert warning.startswith("0 of 3 results matched") and "3 labelled masks have" in warning
    assert "no pixel size" in warning
    assert "--pixel-size-um" in warning and "names differ" not in warning
    # Given the scale, they match and measure as the results did.
    warnings.clear()
    page = write_report(
        tmp_path / "m_only.csv", tmp_path / "rep", truth=truth, truth_pixel_size_um=0.5, on_warning=warnings.append
    )
    assert warnings == [] and "3 images matched" in page.read_text()
    with pytest.raises(InvalidArgument, match="applies to a truth folder of masks.*CSV") as info:
        write_report(tmp_path / "m_only.csv", tmp_path / "rep", truth=tmp_path / "m_only.csv", truth_pixel_size_um=1)
    assert info.value.argument == "truth_pixel_size_um"


def test_report_cli_prints_the_match_warning_and_takes_pixel_size(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from semcoat_cli.app import app

    truth = _masks_folder(tmp_path / "labelled", ["a", "b", "c"])
    files.write_results_csv(tmp_path / "m.csv", [(n, 0.5, files.measure_file(truth / f"{n}.png", 0.5)) for n in "abc"])
    runner = CliRunner()
    args = ["report", str(tmp_path / "m.csv"), "--truth", str(truth), "--out", str(tmp_path / "rep")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "warning: 0 of 3 results matched" in result.stderr
    result = runner.invoke(app, [*args, "--pixel-size-um", "0.5"])
    assert result.exit_code == 0 and "warning" not in result.stderr
    result = runner.invoke(app, [*args, "--pixel-size-um", "nan"])
    assert result.exit_code == 2 and result.stderr.startswith("error: --pixel-size-um: the pixel size must be")
    result = runner.invoke(app, ["report", str(tmp_path / "m.csv"), "--out", str(tmp_path / "r2"), "--pixel-size-um",
                                 "0.5"])  # fmt: skip
    assert result.exit_code == 1 and "--pixel-size-um: a truth pixel size applies to" in result.stderr


def test_parity_plot_of_a_single_point_has_a_sensible_range_and_plain_ticks() -> None:
    assert plots.parity_limits([28.9, 28.9]) == pytest.approx((28.9 * 0.95, 28.9 * 1.05))
    assert plots.parity_limits([0.0, 0.0]) == (-1.0, 1.0)
    assert plots.parity_limits([0.0, 10.0]) == pytest.approx((-0.5, 10.5))  # 5 % of the span each side
    fig = plots.parity_axes_figure({"fe2al5_thickness_um": ([28.9004], [28.9])})
    fig.canvas.draw()
    ax = fig.axes[0]
    low, high = ax.get_xlim()
    assert low < 28.0 and high > 29.8 and ax.get_ylim() == (low, high)
    for axis in (ax.xaxis, ax.yaxis):
        assert axis.get_offset_text().get_text() == ""  # no "+2.89e1" above the axis
        labels = [t.get_text() for t in axis.get_ticklabels() if t.get_text()]
        assert labels and all(26 < float(t.replace("−", "-")) < 32 for t in labels)


def test_report_pages_show_truth_next_to_predictions_a_legend_labels_and_provenance(
    tmp_path: Path, dataset_dir: Path
) -> None:
    from analysis.report_data import ReportData
    from analysis.report_html import provenance
    from semcoat.classes import CLASSES
    from semcoat.predictions import PredictionRecord

    images = sorted((dataset_dir / "images").glob("*.png"))
    predict.predict_files("classical", images, tmp_path / "pred", pixel_size_um=0.5)
    text = write_report(tmp_path / "pred", tmp_path / "rep", truth=dataset_dir).read_text()
    # (a) truth and error next to the prediction, per image
    assert text.count("<th>predicted</th><th>true</th><th>error (predicted − true)</th>") == len(images)
    assert re.search(r"<td>Fe2Al5 thickness \(µm\)</td><td>[0-9.]+</td><td>[0-9.]+</td><td>[+-][0-9.e+-]+</td>", text)
    assert re.search(r"<td>FeAl present</td><td>(yes|no)</td><td>(yes|no)</td><td>(agrees|differs)</td>", text)
    # (b) one colour key, before the first overlay
    assert text.count('class="legend"') == 1 and text.index('class="legend"') < text.index('alt="overlay')
    for c in CLASSES[1:]:
        assert c.label in text and "rgb({}, {}, {})".format(*c.color_rgb) in text
    # (c) human labels everywhere on the page, booleans as yes/no
    for name in ("fe2al5_thickness_um", "pore_fraction_pct", "feal_present", "pore_line_present"):
        assert name not in text
    assert "<th>Pores (%)</th>" in text and "<th>Pore line present</th>" in text
    assert "<td>true</td>" not in text and "<td>false</td>" not in text and "<td>yes</td>" in text
    # (d) where the results came from
    assert "Predicted by model classical. Pixel sizes: 0.5 µm/px from --pixel-size-um (4 images)." in text
    # A bare table: its own pixel sizes, and no model to name.
    rows = [(s.path.stem, 0.5, files.measure_file(s.path, 0.5)) for s in files.resolve_masks([dataset_dir])]
    files.write_results_csv(tmp_path / "results.csv", rows)
    text = write_report(tmp_path / "results.csv", tmp_path / "rep2").read_text()
    assert "Pixel sizes, from the table: 0.5 µm/px (4 images). No record of the model" in text
    assert "<th>measurement</th><th>value</th>" in text  # no truth: the value alone
    overridden = [
        {"image": "a", "model": "m.onnx", "pixel_size_um": 0.2, "pixel_size_from": "option",
         "metadata_pixel_size_um": 0.17},
        {"image": "b", "model": "m.onnx", "pixel_size_um": 0.17, "pixel_size_from": "thermo-fei", "failed": True},
    ]  # fmt: skip
    records = {r["image"]: PredictionRecord.from_dict(r) for r in overridden}  # as an earlier version wrote them
    data = ReportData(tmp_path / "x.csv", {}, predictions=records)
    assert provenance(data) == (
        "Predicted by model m.onnx. Pixel sizes: 0.2 µm/px from --pixel-size-um (the file's metadata: 0.17 µm/px) "
        "(1 image); 0.17 µm/px from Thermo/FEI metadata (1 image). 1 image failed (marked below)."
    )


def test_report_marks_failed_images(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "resin.png"), np.full((40, 40), 13, np.uint8))
    predict.predict_files("classical", [tmp_path / "resin.png"], tmp_path / "pred", pixel_size_um=1.0)
    text = write_report(tmp_path / "pred", tmp_path / "rep").read_text()
    assert '<p class="warning">Failed: ' in text and "1 image failed" in text


def test_all_results_show_the_pixel_size_of_an_earlier_table_from_predictions_json(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.round(grey_image(line_mask(0), np.random.default_rng(1)) * 255))
    predict.predict_files("classical", [tmp_path / "a.png"], tmp_path / "pred", pixel_size_um=0.25)
    csv_path = tmp_path / "pred" / "measurements.csv"
    lines = csv_path.read_text().splitlines()  # as written before the pixel_size_um column: drop it
    csv_path.write_text("\n".join(",".join(x for i, x in enumerate(r.split(",")) if i != 1) for r in lines) + "\n")
    assert files.read_results_csv(csv_path)["a"]["pixel_size_um"] is None
    text = write_report(tmp_path / "pred", tmp_path / "rep").read_text()
    assert "<tr><td>a</td><td>0.25</td>" in text
