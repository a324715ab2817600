"""``semcoat spec calibrate`` through the real command line: a batch spec from micrographs, and every way it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from semcoat.batch import BatchSpec
from semcoat_cli.app import app
from tests.analysis.calibrate_images import formed, imaging, layered_mask

runner = CliRunner()
FEI = "[Scan]\nPixelWidth={pixel_m}\n[Image]\nResolutionX={cols}\nResolutionY={rows}\n"


def _micrograph(seed: int, fwhm_um: float = 0.3, dose: float = 400.0) -> np.ndarray:
    mask = layered_mask(240, 320, 50, 170, pores=8, seed=seed)
    pixels, _ = formed(mask, imaging(probe_fwhm_um=fwhm_um, dose_electrons_per_px=dose, shading_amplitude=0.02),
                       seed=seed)
    return pixels


@pytest.fixture(scope="module")
def pngs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("micrographs")
    paths = []
    for seed, (fwhm, dose) in enumerate([(0.3, 400.0), (0.4, 800.0)]):
        path = folder / f"m{seed}.png"
        cv2.imwrite(str(path), _micrograph(seed, fwhm, dose))
        paths.append(path)
    return paths


def _fei_tiff(path: Path, pixels: np.ndarray, pixel_um: float, bar_rows: int) -> Path:
    text = FEI.format(pixel_m=pixel_um * 1e-6, cols=pixels.shape[1], rows=pixels.shape[0] - bar_rows)
    tifffile.imwrite(path, pixels, extratags=[(34682, "s", 0, text, True)])
    return path


def test_a_batch_spec_is_written_from_micrographs(pngs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "lab.json"
    result = runner.invoke(app, ["spec", "calibrate", *map(str, pngs), "--pixel-size-um", "0.1", "--out", str(out),
                                 "--count", "20", "--name", "lab-a"])
    assert result.exit_code == 0, result.output
    batch = BatchSpec.load(out)
    assert (batch.name, batch.count) == ("lab-a", 20)
    img = batch.base.imaging
    assert (img.width_px, img.height_px, img.pixel_size_um, img.data_bar) == (320, 240, 0.1, False)
    blur = batch.randomize["imaging.probe_fwhm_um"]
    assert blur.low <= 0.3 and blur.high >= 0.4  # type: ignore[operator]
    dose = batch.randomize["imaging.dose_electrons_per_px"]
    assert dose.low <= 400 and dose.high >= 800  # type: ignore[operator]
    # The table: one row per image, then the ranges written.
    assert "m0.png" in result.stdout and "m1.png" in result.stdout
    assert "imaging.dose_electrons_per_px" in result.stdout and "frame: 320x240 px at 0.1 um/px" in result.stdout


def test_pixel_size_and_data_bar_come_from_the_tiffs_metadata(tmp_path: Path) -> None:
    pixels = _micrograph(3)
    bar = np.zeros((24, pixels.shape[1]), np.uint8)
    bar[:2] = 200
    cv2.putText(bar, "15 kV 10 um", (10, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255,), 1)
    tif = _fei_tiff(tmp_path / "fei.tif", np.vstack([pixels, bar]), 0.1, 24)
    out = tmp_path / "b.json"
    result = runner.invoke(app, ["spec", "calibrate", str(tif), "--out", str(out)])
    assert result.exit_code == 0, result.output
    img = BatchSpec.load(out).base.imaging
    assert (img.height_px, img.pixel_size_um, img.data_bar, img.data_bar_height_px) == (264, 0.1, True, 24)
    # A pixel size given against the metadata wins, with a warning naming both.
    result = runner.invoke(app, ["spec", "calibrate", str(tif), "--pixel-size-um", "0.12", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "differs from the file's SEM metadata" in result.stderr
    assert BatchSpec.load(out).base.imaging.pixel_size_um == 0.12


def test_an_image_without_a_pixel_size_is_bad_input_naming_it(pngs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    result = runner.invoke(app, ["spec", "calibrate", str(pngs[0]), "--out", str(out)])
    assert result.exit_code == 2
    assert "m0.png" in result.stderr and "--pixel-size-um" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("content", [b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_an_unreadable_image_is_bad_input_naming_it_and_nothing_is_done(pngs: list[Path], tmp_path: Path,
                                                                         content: bytes) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(content)
    out = tmp_path / "x.json"
    result = runner.invoke(app, ["spec", "calibrate", str(pngs[0]), str(bad), "--pixel-size-um", "0.1",
                                 "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "broken.png" in result.stderr and "Traceback" not in result.output
    assert "m0.png: measured" not in result.stderr  # refused before any work
    assert not out.exists()


def test_the_output_never_replaces_an_input(pngs: list[Path], tmp_path: Path) -> None:
    before = pngs[0].read_bytes()
    result = runner.invoke(app, ["spec", "calibrate", str(pngs[0]), "--pixel-size-um", "0.1", "--out",
                                 str(pngs[0])])
    assert result.exit_code == 2 and "never overwritten" in result.stderr
    assert pngs[0].read_bytes() == before
    result = runner.invoke(app, ["spec", "calibrate", str(pngs[0]), "--pixel-size-um", "0.1", "--out",
                                 str(tmp_path)])
    assert result.exit_code == 2 and "is a folder" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--pixel-size-um", "-1"], "--pixel-size-um"),
    (["--pixel-size-um", "0.1", "--preset", "nope"], "--preset 'nope' is not known"),
    (["--pixel-size-um", "0.1", "--name", "../x"], "--name '../x'"),
])
def test_bad_options_are_refused(pngs: list[Path], tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["spec", "calibrate", str(pngs[0]), *args, "--out", str(tmp_path / "x.json")])
    assert result.exit_code == 2 and message in result.stderr


def test_images_without_a_coating_are_skipped_and_none_usable_fails(pngs: list[Path], tmp_path: Path) -> None:
    noise = tmp_path / "noise.png"
    cv2.imwrite(str(noise), np.random.default_rng(0).integers(0, 256, (200, 300), dtype=np.uint8))
    out = tmp_path / "x.json"
    result = runner.invoke(app, ["spec", "calibrate", str(noise), "--pixel-size-um", "0.1", "--out", str(out)])
    assert result.exit_code == 1
    assert "noise.png" in result.stderr and "no usable image" in result.stderr and not out.exists()
    result = runner.invoke(app, ["spec", "calibrate", str(noise), str(pngs[0]), "--pixel-size-um", "0.1", "--out",
                                 str(out)])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "noise.png: nothing to calibrate on" in result.stderr
    assert json.loads(out.read_text())["base"]["imaging"]["width_px"] == 320
