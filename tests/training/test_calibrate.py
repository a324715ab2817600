"""Per-class logit offsets chosen against the ground truth's measurements (``semcoat train calibrate``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from semcoat.dataset import DatasetError
from semcoat.errors import InvalidArgument
from semcoat_cli.app import app
from training import config_check as cc
from training.calibrate import calibrate, choose_offset, write_calibrated
from training.export import load_module
from training.module import SegmentationModule

runner = CliRunner()


def test_the_smallest_offset_within_the_tolerance_of_the_best_is_chosen() -> None:
    assert choose_offset({0.0: 1.0, -0.5: 0.5, -1.0: 0.495, 0.5: 2.0}) == -0.5  # 0.5 is within 2 % of 0.495
    assert choose_offset({0.0: 1.0, -0.5: 0.5, -1.0: 0.4, 0.5: 2.0}) == -1.0
    assert choose_offset({0.0: 0.3, -0.25: 0.3, 0.25: 0.3}) == 0.0  # a flat grid moves nothing
    assert choose_offset({-0.5: 0.2, 0.5: 0.2, 0.0: 0.9}) == -0.5  # equal sizes: the lower one, every time


def test_class_offsets_are_added_to_the_prediction_logits_and_checked() -> None:
    plain = SegmentationModule(model_options={"channels": [8, 16, 32], "num_res_units": 1})
    shifted = SegmentationModule(model_options={"channels": [8, 16, 32], "num_res_units": 1},
                                 class_offsets={"feal": -0.75, "pore": 0.5})
    difference = shifted.logit_offsets() - plain.logit_offsets()
    expected = torch.zeros_like(difference)
    expected[plain.class_names.index("feal")], expected[plain.class_names.index("pore")] = -0.75, 0.5
    assert torch.equal(difference, expected)
    with pytest.raises(InvalidArgument, match=r"class_offsets names class 'steel', which the model lacks; its classes"):
        SegmentationModule(class_offsets={"steel": 1.0})
    for bad in (float("nan"), True):
        with pytest.raises(InvalidArgument, match=r"class_offsets\['feal'\] must be a finite number"):
            SegmentationModule(class_offsets={"feal": bad})
    problems = {p.dotted: p.msg for p in cc.check_config({"model": {"class_offsets": {"feal": "-1"}}}, 1)}
    assert "like {feal: -0.75}" in problems["model.class_offsets"]
    problems = {p.dotted: p.msg for p in cc.check_config({"model": {"class_offsets": {"steel": 1}}}, 1)}
    assert "unknown class name(s) ['steel']; the class table's names: background," in problems["model.class_offsets"]
    assert cc.check_config({"model": {"class_offsets": {"feal": -0.75}}}, 1) == []


def test_calibrate_writes_a_checkpoint_whose_own_predictions_carry_the_offsets(
        trained_checkpoint: Path, tiny_datasets: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "calibrated.ckpt"
    result = runner.invoke(app, ["train", "calibrate", str(trained_checkpoint), "--data", str(tiny_datasets[0]),
                                 "--out", str(out), "--classes", "feal,pore", "--offsets", "-1.5,1.5"])
    assert result.exit_code == 0, result.output
    found = {line.split(":")[0]: line for line in result.output.splitlines() if "logit offset" in line}
    assert set(found) == {"feal", "pore"} and "over 6 images" in found["feal"]
    offsets = load_module(out).hp.class_offsets
    assert set(offsets) == {"feal", "pore"} and set(offsets.values()) <= {-1.5, 0.0, 1.5}
    original, calibrated = load_module(trained_checkpoint), load_module(out)
    for name, offset in offsets.items():
        cid = original.class_names.index(name)
        assert float(calibrated.logit_offsets()[cid] - original.logit_offsets()[cid]) == pytest.approx(offset)
    weights = original.net.state_dict()
    assert all(torch.equal(value, weights[key]) for key, value in calibrated.net.state_dict().items())

    # the error searched at an offset is the calibrated checkpoint's own error (one tile per image: exactly)
    feal = calibrate(trained_checkpoint, [tiny_datasets[0]], ["feal"], [-1.5, 1.5])[0]
    assert feal.mae_before == feal.mae_by_offset[0.0] and feal.mae_after == feal.mae_by_offset[feal.offset]
    assert feal.mae_after <= min(feal.mae_by_offset.values()) * 1.02 + 1e-12
    for offset in (-1.5, 1.5):
        shifted = write_calibrated(trained_checkpoint, tmp_path / f"feal{offset}.ckpt",
                                   [replace(feal, offset=offset)])
        assert calibrate(shifted, [tiny_datasets[0]], ["feal"], [0.0])[0].mae_before == pytest.approx(
            feal.mae_by_offset[offset], abs=1e-9)


def test_calibrate_refuses_bad_requests_before_predicting(trained_checkpoint: Path, tiny_datasets: list[Path],
                                                          tmp_path: Path) -> None:
    data = ["--data", str(tiny_datasets[0])]
    (tmp_path / "a_file").write_text("x")
    cases = (
        (["--out", str(trained_checkpoint)], "exists already; give a new file"),
        (["--out", str(tmp_path / "a_file" / "x.ckpt")], "cannot write there"),
        (["--out", str(tmp_path / "d.ckpt"), "--offsets", ""], "give 1 to 41 offsets to try (got 0)"),
        (["--out", str(tmp_path / "x.onnx")], "name must end in .ckpt"),
        (["--out", str(tmp_path / "a.ckpt"), "--classes", "crack"], "--classes: cannot calibrate ['crack']; accepted"),
        (["--out", str(tmp_path / "b.ckpt"), "--offsets", "-1,x"], "--offsets must be comma-separated numbers"),
        (["--out", str(tmp_path / "c.ckpt"), "--offsets", "-1,inf"], "offsets must be finite logits"),
    )
    for extra, said in cases:
        result = runner.invoke(app, ["train", "calibrate", str(trained_checkpoint), *data, *extra])
        assert result.exit_code == 2 and said in result.output, (extra, result.output)
        assert "Traceback" not in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["a_file"]


def test_truth_is_checked_first_unknown_truth_is_left_out_and_repeats_count_once(
        trained_checkpoint: Path, tiny_datasets: list[Path], tmp_path: Path) -> None:
    import json
    import shutil

    folder = tmp_path / "ds"
    shutil.copytree(tiny_datasets[0], folder)
    metas = sorted((folder / "meta").iterdir())
    meta = json.loads(metas[0].read_text())
    meta["truth"]["feal_thickness_um"] = float("nan")
    metas[0].write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match=r"sample 000000's truth is unusable: feal_thickness_um"):
        calibrate(trained_checkpoint, [folder], ["feal"], [-1.0])
    for path in metas:  # an unknown FeAl thickness (the frame does not show its end) counts for no image
        meta = json.loads(path.read_text())
        meta["truth"]["feal_thickness_um"] = None
        path.write_text(json.dumps(meta))
    with pytest.raises(InvalidArgument, match=r"no image's truth knows feal_thickness_um"):
        calibrate(trained_checkpoint, [folder], ["feal"], [-1.0])
    meta = json.loads(metas[1].read_text())
    meta["truth"]["feal_thickness_um"] = 0.0
    metas[1].write_text(json.dumps(meta))
    once = calibrate(trained_checkpoint, [folder], ["feal"], [-1.0])
    twice = calibrate(trained_checkpoint, [folder, folder], ["feal", "feal"], [-1.0])
    assert len(twice) == 1 and twice[0] == once[0] and once[0].images == 1


def test_with_flip_average_the_errors_are_those_of_predict_flip_average(
        trained_checkpoint: Path, tiny_datasets: list[Path], tmp_path: Path) -> None:
    """Calibrated offsets belong to the way masks are made: with --flip-average, the error calibrate searches from is
    the error of `semcoat predict --flip-average`'s own measurements (images whose masks fail the check count 0)."""
    from analysis.files import read_results_csv
    from analysis.predict import predict_files
    from semcoat.dataset import read_dataset
    from semcoat.predictions import RESULTS_CSV

    folder = tiny_datasets[0]
    ds = read_dataset(folder)
    errors = {}
    for flip in (False, True):
        out = tmp_path / f"flip{flip}"
        predict_files(trained_checkpoint, [ds.image_path(i) for i in ds.ids], out,
                      pixel_size_um=ds.info.pixel_size_um, flip_average=flip)  # fmt: skip
        table = read_results_csv(out / RESULTS_CSV)
        errors[flip] = [abs((table[i]["pore_fraction_pct"] or 0.0) - ds.meta(i)["truth"]["pore_fraction_pct"])
                        for i in ds.ids]  # fmt: skip
    found = {flip: calibrate(trained_checkpoint, [folder], ["pore"], [1.0], flip_average=flip)[0]
             for flip in (False, True)}  # fmt: skip
    for flip in (False, True):
        assert found[flip].mae_before == pytest.approx(sum(errors[flip]) / len(errors[flip]), abs=1e-4)  # CSV rounding
    assert found[True].mae_by_offset != found[False].mae_by_offset  # the option reaches the prediction
    out = tmp_path / "mirrored.ckpt"
    result = runner.invoke(app, ["train", "calibrate", str(trained_checkpoint), "--data", str(folder), "--out",
                                 str(out), "--classes", "pore", "--offsets", "1", "--flip-average"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"pore_fraction_pct mean absolute error {found[True].mae_before:.3g}" in result.output
    assert "(mirror-averaged)" in result.output and out.is_file()
