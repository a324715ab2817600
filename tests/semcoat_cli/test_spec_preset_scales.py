"""``semcoat spec preset`` at another scale (``--pixel-size-um``) and as a dataset family over scales (``--family
--out DIR``, one batch file per scale for ``semcoat render`` / ``submit``), and every way it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from semcoat.batch import BatchSpec
from semcoat.presets import FAMILY_PIXEL_SIZES_UM, PRESETS, preset_batch, preset_family
from semcoat_cli.app import app
from semcoat_cli.core import PRESET_PIXEL_SIZE_UM

runner = CliRunner()


def _error(args: list[str]) -> str:
    result = runner.invoke(app, ["spec", "preset", *args])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.output


def test_help_names_every_preset_and_the_scale_options() -> None:
    text = " ".join(runner.invoke(app, ["spec", "preset", "--help"]).output.replace("│", " ").split())  # unboxed
    assert "thin_slurry" in text and all(name in text for name in PRESETS)
    assert "--pixel-size-um" in text and "--family" in text and "--out" in text
    assert "0.05, 0.08, 0.13, 0.2, 0.35 µm/px" in text


def test_a_batch_at_another_scale_keeps_the_frame_and_cuts_the_coating_where_it_does_not_fit() -> None:
    result = runner.invoke(app, ["spec", "preset", "thin_slurry", "--pixel-size-um", "0.05", "--count", "8"])
    assert result.exit_code == 0, result.output
    batch = BatchSpec.from_dict(json.loads(result.output))
    assert batch.to_dict() == preset_batch("thin_slurry", count=8, pixel_size_um=0.05).to_dict()
    img, native = batch.base.imaging, preset_batch("thin_slurry").base.imaging
    assert (img.pixel_size_um, img.width_px, img.height_px) == (0.05, native.width_px, native.height_px)
    assert img.partial_frame and float(batch.randomize["layers.surface_depth_um"].low or 0) < 0
    coarse = BatchSpec.from_dict(json.loads(runner.invoke(app, ["spec", "preset", "thin_slurry", "--pixel-size-um",
                                                                "0.35"]).output))
    assert not coarse.base.imaging.partial_frame  # the whole coating fits: no cut frames


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_draw_is_valid_at_both_ends_of_the_accepted_scales(name: str) -> None:
    for pixel_size_um in PRESET_PIXEL_SIZE_UM:
        batch = preset_batch(name, count=150, seed=2, pixel_size_um=pixel_size_um)
        for index in range(batch.count):
            batch.sample(index)


@pytest.mark.parametrize("value", ["abc", "nan", "inf", "-1", "0", "0.009", "1.5", "1e400"])
def test_a_scale_that_is_not_a_number_or_out_of_range_is_refused(value: str) -> None:
    output = _error(["20h_650C", "--pixel-size-um", value])
    if value == "abc":
        assert "--pixel-size-um" in output and "number" in output  # the parser's own message
    else:
        assert "a preset is framed from 0.01 to 1 µm per pixel" in output


def test_family_and_out_go_together_and_exclude_a_single_scale(tmp_path: Path) -> None:
    assert "--family writes its batch files to a folder: give --out DIR" in _error(["5h_650C", "--family"])
    assert "redirect it" in _error(["5h_650C", "--out", str(tmp_path / "f")])
    assert "give one of them" in _error(["5h_650C", "--family", "--pixel-size-um", "0.1", "--out", str(tmp_path)])
    assert not (tmp_path / "f").exists()


def test_a_family_is_one_batch_file_per_scale_ready_to_render(tmp_path: Path) -> None:
    out = tmp_path / "family"
    args = ["spec", "preset", "20h_650C", "--family", "--out", str(out), "--count", "6", "--seed", "3"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    paths = [Path(line) for line in result.stdout.splitlines()]
    assert [p.name for p in paths] == [f"20h_650C-{size:g}um.json" for size in FAMILY_PIXEL_SIZES_UM]
    expected = preset_family("20h_650C", count=6, seed=3)
    for path, batch in zip(paths, expected, strict=True):
        assert BatchSpec.load(path).to_dict() == batch.to_dict()
        check = runner.invoke(app, ["spec", "check", str(path)])
        assert check.exit_code == 0 and "6 images" in check.output
    assert "frames that cut the coating" in result.stderr and "semcoat render" in result.stderr
    # The same command again writes the same files; a different family over them is refused, nothing written.
    assert runner.invoke(app, args).exit_code == 0
    before = {p: p.read_bytes() for p in paths}
    output = _error(["20h_650C", "--family", "--out", str(out), "--count", "7"])
    assert "exists and differs from the batch of that name" in output and "nothing written" in output
    assert {p: p.read_bytes() for p in paths} == before


def test_a_family_folder_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert "not a folder" in _error(["5h_650C", "--family", "--out", str(tmp_path / "file")])
    assert (tmp_path / "file").read_text() == "x"
