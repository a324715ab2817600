"""Hostile-but-fair input to ``measure``, ``predict`` and ``report`` (issue 8): nothing lost, no traceback, bad input
refused with a one-line error naming the file.

Every file is small and generated here; images that claim to be huge are written as headers only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from semcoat.measurements import MEASUREMENT_NAMES
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


# -- SEM metadata that is not a scale, data bars that would crop the image away ----------------------------------------


def _fei_images(folder: Path, pixel_widths: dict[str, str]) -> list[Path]:
    """Thermo/FEI TIFFs of a measurable coating, one per name, with the given ``[Scan] PixelWidth`` text (metres)."""
    import numpy as np

    from tests.analysis.conftest import line_mask
    from tests.analysis.test_predict import fei_tiff_with_databar

    paths = []
    for i, (name, width) in enumerate(pixel_widths.items()):
        path = fei_tiff_with_databar(folder / f"{name}.tif", line_mask(i), np.random.default_rng(i))
        if width != "4.9609375e-08":
            _replace_in_file(path, b"PixelWidth=4.9609375e-08", f"PixelWidth={width}".encode())
        paths.append(path)
    return paths


def _replace_in_file(path: Path, old: bytes, new: bytes) -> None:
    """Edit a TIFF's tag text in place (the tag's declared length stays; the text is padded with spaces)."""
    data = path.read_bytes()
    assert old in data and len(new) <= len(old)
    path.write_bytes(data.replace(old, new.ljust(len(old), b" ")))


BAD_PIXEL_WIDTHS = {"km": "1000", "inf": "inf", "nan": "nan", "zero": "0", "negative": "-5e-08", "tiny": "1e-20"}


def test_one_image_with_a_pixel_size_that_is_no_scale_fails_alone(tmp_path: Path, onnx_model: Path) -> None:
    import json

    from analysis import files

    images = _fei_images(tmp_path, {"good": "4.9609375e-08", **BAD_PIXEL_WIDTHS})
    out = tmp_path / "out"
    result = runner.invoke(app, ["predict", "--model", str(onnx_model), *map(str, images), "--out", str(out)])
    line = _error(result, 1)
    assert "6 of 7 images failed" in line
    table = files.read_results_csv(out / "measurements.csv")
    assert table["good"]["fe2al5_thickness_um"] is not None
    records = {r["image"]: r for r in json.loads((out / "predictions.json").read_text())}
    assert not records["good"]["failed"]
    for name in BAD_PIXEL_WIDTHS:
        assert records[name]["failed"] and table[name]["fe2al5_thickness_um"] is None
        error = records[name]["error"]
        assert error.startswith(f"{tmp_path / name}.tif: the thermo-fei metadata gives a pixel size of")
        assert "accepted: 1e-05 to 100 µm per pixel" in error
        assert f"{name}: FAILED: {tmp_path / name}.tif: " in result.stderr
    # A pixel size given on the command line wins: the bad metadata is a warning, the image is measured.
    result = runner.invoke(
        app, ["predict", "--model", str(onnx_model), str(images[1]), "--out", str(out), "--pixel-size-um", "0.05"]
    )
    assert result.exit_code == 0, result.output
    assert "warning: " in result.stderr and "is not a scale" in result.stderr and "0.05 µm/px is used" in result.stderr


def test_a_scan_height_that_would_crop_the_image_away_fails_that_image(tmp_path: Path, onnx_model: Path) -> None:
    import json

    images = _fei_images(tmp_path, {"good": "4.9609375e-08", "five_rows": "4.9609375e-08"})
    _replace_in_file(images[1], b"ResolutionY=160", b"ResolutionY=5")
    out = tmp_path / "out"
    result = runner.invoke(app, ["predict", "--model", str(onnx_model), *map(str, images), "--out", str(out)])
    assert "1 of 2 images failed" in _error(result, 1)
    records = {r["image"]: r for r in json.loads((out / "predictions.json").read_text())}
    assert records["good"]["databar_top_row"] == 160 and not records["good"]["failed"]
    assert records["five_rows"]["failed"] and records["five_rows"]["error"] == (
        f"{images[1]}: the metadata's scan height (ResolutionY = 5) would crop the image to 5 of its 200 rows; a data "
        "bar never takes half an image, so the metadata is wrong (analyse the image without cropping the data bar to "
        "keep every row)"
    )
    result = runner.invoke(app, ["predict", "--model", str(onnx_model), str(images[1]), "--out", str(out),
                                 "--no-crop-databar"])  # fmt: skip
    assert result.exit_code in (0, 1) and "ResolutionY" not in result.stderr


# -- Images over any real micrograph: refused from their header -------------------------------------------------------


def _png_header_only(path: Path, width: int, height: int, color_type: int = 0) -> Path:
    """A valid-looking PNG that declares ``width x height`` but holds a few bytes of pixel data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def _tiff_header_only(path: Path, width: int, height: int, samples: int = 1, bits: int = 8) -> Path:
    """A little-endian baseline TIFF that declares ``width x height`` (uncompressed, one strip) and holds no pixels."""
    import struct

    entries = [
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, bits), (259, 3, 1, 1),
        (262, 3, 1, 2 if samples == 3 else 1), (273, 4, 1, 8), (277, 3, 1, samples), (278, 4, 1, height),
        (279, 4, 1, min(width * height * samples * bits // 8, 2**32 - 1)),
    ]  # fmt: skip
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHI", tag, kind, count) + struct.pack(
            "<I" if kind == 4 else "<HH", value, *([0] * (kind == 3))
        )
    path.write_bytes(b"II*\x00" + struct.pack("<I", 16) + b"\0" * 8 + ifd + b"\0\0\0\0")
    return path


@pytest.mark.parametrize(
    ("name", "width", "height"),
    [("over_ours.png", 9000, 8000), ("pillow_warns.png", 10000, 10000), ("pillow_bomb.png", 20000, 20000),
     ("huge.tif", 20000, 20000), ("wide.tif", 100000, 1000), ("huge.tiff", 60000, 60000)],
)  # fmt: skip
def test_images_over_the_maximum_are_refused_from_their_header(
    tmp_path: Path, name: str, width: int, height: int
) -> None:
    import tracemalloc

    from analysis import files
    from analysis.measure import MaskError
    from analysis.sem_tiff import read_sem_metadata

    path = tmp_path / name
    (_tiff_header_only if path.suffix.startswith(".tif") else _png_header_only)(path, width, height)
    tracemalloc.start()
    try:
        with pytest.raises(files.ImageReadError) as image_error:
            files.read_grey_image(path)
        with pytest.raises(MaskError) as mask_error:
            files.read_mask(path)
        if path.suffix.startswith(".tif"):
            assert read_sem_metadata(path).pixel_size_um is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20  # nothing near the declared size was allocated
    for exc in (image_error.value, mask_error.value):
        assert str(exc).startswith(f"{path}: ") and "8192 x 8192" in str(exc) and "\n" not in str(exc)


def test_a_declared_giant_fails_alone_in_predict_and_stops_measure_cleanly(tmp_path: Path, dataset_dir: Path) -> None:
    images = sorted((dataset_dir / "images").glob("*.png"))[:2]
    giant = _png_header_only(tmp_path / "giant.png", 20000, 20000)
    out = tmp_path / "out"
    result = runner.invoke(app, ["predict", "--model", "classical", *map(str, images), str(giant), "--out", str(out),
                                 "--pixel-size-um", "0.5"])  # fmt: skip
    assert (
        "1 of 3 images failed: " in _error(result, 1) and f"giant: FAILED: {giant}: the file declares" in result.stderr
    )
    line = _error(runner.invoke(app, ["measure", str(giant), "--pixel-size-um", "0.5"]), 1)
    assert line.startswith(f"error: {giant}: ") and "8192 x 8192" in line


def test_empty_and_colour_tiffs_are_clear_errors(tmp_path: Path) -> None:
    from analysis import files

    for path, expected in (
        (_tiff_header_only(tmp_path / "zero.tif", 0, 10), "cannot read|empty"),
        (_tiff_header_only(tmp_path / "rgb16.tif", 8000, 8000, samples=3, bits=16), "MiB decoded"),
    ):
        with pytest.raises(files.ImageReadError, match=expected) as info:
            files.read_grey_image(path)
        assert str(info.value).startswith(f"{path}: ")


# -- Any bytes at every reader: an image, or a clear error naming the file --------------------------------------------


def _seed_files() -> list[tuple[str, bytes]]:
    """Small valid files of every kind the readers take: (suffix, bytes)."""
    import io

    import cv2
    import numpy as np
    import tifffile

    from analysis.files import png_bytes
    from tests.analysis.test_sem_tiff import FEI_TEXT

    rng = np.random.default_rng(0)
    grey = rng.integers(0, 6, (12, 10), dtype=np.uint8)
    seeds = [(".png", png_bytes(grey)), (".png", png_bytes(grey.astype(np.uint16) * 999))]
    seeds.append((".png", png_bytes(np.stack([grey * 40] * 3, axis=2))))
    seeds.append((".jpg", cv2.imencode(".jpg", grey * 40)[1].tobytes()))
    for kwargs in (
        {},
        {"compression": "zlib"},
        {"extratags": [(34682, "s", 0, FEI_TEXT, True)]},
        {"extratags": [(34118, "s", 0, "0\r\nAP_IMAGE_PIXEL_SIZE\r\nImage Pixel Size = 12.5 nm\r\n", True)]},
    ):
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, grey, **kwargs)  # type: ignore[arg-type]
        seeds.append((".tif", buffer.getvalue()))
    return seeds


SEEDS = _seed_files()


@st.composite
def hostile_files(draw: st.DrawFn) -> tuple[str, bytes]:
    """Arbitrary bytes, or a valid file with bytes changed, cut short or appended (which reaches the decoders)."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.sampled_from([".png", ".jpg", ".tif"])), draw(st.binary(max_size=400))
    suffix, data = draw(st.sampled_from(SEEDS))
    buffer = bytearray(data)
    for _ in range(draw(st.integers(0, 6))):
        position = draw(st.integers(0, len(buffer) - 1))
        buffer[position] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(buffer)))
    if draw(st.booleans()):
        buffer = buffer[:cut]
    return suffix, bytes(buffer) + draw(st.binary(max_size=20))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hostile_files())
def test_any_bytes_at_every_image_and_mask_reader_give_an_image_or_a_clear_error(
    tmp_path: Path, case: tuple[str, bytes]
) -> None:
    import numpy as np

    from analysis import files, predict, sem_tiff
    from semcoat.errors import SemcoatError

    suffix, data = case
    path = tmp_path / f"f{suffix}"
    path.write_bytes(data)
    readers = [files.read_grey_image, files.read_mask, lambda p: predict.load_input(p, 0.1)]
    if suffix == ".tif":
        readers.append(sem_tiff.read_sem_metadata)
    for reader in readers:
        try:
            result = reader(path)
        except SemcoatError as exc:
            message = str(exc)
            assert message.startswith(f"{path}: ") and "\n" not in message and len(message) < 1000, message
            continue
        if isinstance(result, np.ndarray):
            assert result.ndim == 2 and result.size > 0
        elif isinstance(result, predict.ImageInput):
            assert result.image.ndim == 2 and result.image.size > 0
        else:
            assert isinstance(result, sem_tiff.SemMetadata)


# -- Hand-edited predictions.json, measurements.csv and truth in `semcoat report` -------------------------------------


@pytest.fixture
def pred_dir(tmp_path: Path, dataset_dir: Path) -> Path:
    """A `semcoat predict` folder of the dataset's first two images (classical baseline)."""
    pred = tmp_path / "pred"
    images = sorted((dataset_dir / "images").glob("*.png"))[:2]
    args = ["predict", "--model", "classical", *map(str, images), "--out", str(pred), "--pixel-size-um", "0.5"]
    assert runner.invoke(app, args).exit_code == 0
    return pred


def _record_edit(field: str, value: object) -> str:
    import json

    return json.dumps([{"image": "000000", "source": "x.png", "model": "classical", field: value}])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("not json {", "not a predictions file"),
        ("[" * 100000 + "]" * 100000, "nested too deeply"),
        ('{"image": "a"}', "a JSON list of records is expected, not dict"),
        ("[1]", "record 0: a record must be a JSON object, not int"),
        ('[{"source": "a"}]', "record 0: a record lacks its 'image'"),
        (_record_edit("pixel_size_um", "0.5"), 'pixel_size_um must be a positive finite number of µm per pixel, or '
                                               'null; got "0.5"'),
        ('[{"image": "000000", "pixel_size_um": NaN}]', "NaN is not a JSON number"),
        ('[{"image": "000000", "pixel_size_um": 1e999}]', "pixel_size_um must be a positive finite number"),
        (_record_edit("pixel_size_um", 1e9), "image '000000': pixel_size_um: the pixel size must be"),
        (_record_edit("rows", "many"), "rows must be a whole number"),
        (_record_edit("failed", "yes"), "failed must be true or false"),
        (_record_edit("warnings", "x"), "warnings must be a list of strings"),
        (_record_edit("image", 5), "image must be a string; got 5"),
        (_record_edit("error", {"a": 1}), "error must be a string or null"),
        ('[{"image": "000000"}, {"image": "000000"}]', "record 1 (image \"000000\"): image '000000' appears twice"),
        (b"\xff\xfe[]", "not a predictions file"),
    ],
)  # fmt: skip
def test_a_damaged_predictions_json_is_a_one_line_error_naming_the_file_and_field(
    tmp_path: Path, pred_dir: Path, text: str | bytes, expected: str
) -> None:
    path = pred_dir / "predictions.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    line = _error(runner.invoke(app, ["report", str(pred_dir), "--out", str(tmp_path / "rep")]), 2)
    assert line.startswith(f"error: {path}: ") and expected in line and len(line) < 1000
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("000000,0.5,abc", "fe2al5_thickness_um must be a number; got 'abc'"),
        ("000000,0.5,inf", "fe2al5_thickness_um must be a finite number; got inf"),
        ("000000,0.5,nan", "fe2al5_thickness_um must be a finite number; got nan"),
        ("000000,1e308,5", "pixel_size_um: the pixel size must be"),
        ("000000,0.5,5,1,1,1,maybe", "feal_present must be true or false"),
        (",0.5,5", "the image cell is empty"),
        ("000000,0.5,\0", "fe2al5_thickness_um must be a number; got '\\x00'"),
        ("000000,0.5," + "9" * 200000, "field larger than field limit"),
    ],
)
def test_a_damaged_measurements_csv_is_a_one_line_error_naming_the_file_and_field(
    tmp_path: Path, pred_dir: Path, row: str, expected: str
) -> None:
    path = pred_dir / "measurements.csv"
    header = path.read_text().splitlines()[0]
    path.write_text(f"{header}\n{row}\n")
    line = _error(runner.invoke(app, ["report", str(pred_dir), "--out", str(tmp_path / "rep")]), 2)
    assert line.startswith(f"error: {path}") and expected in line and len(line) < 1000


def test_a_measurements_csv_that_is_not_text_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(b"image,pixel_size_um\n\xff\xfe\xfa,1\n")
    line = _error(runner.invoke(app, ["report", str(path), "--out", str(tmp_path / "rep")]), 2)
    assert line.startswith(f"error: {path}: not a measurements table: not UTF-8")


@pytest.mark.parametrize(
    ("truth", "expected"),
    [
        ({"fe2al5_thickness_um": "35"}, 'truth.fe2al5_thickness_um must be a finite number of µm; got "35"'),
        ({"pore_fraction_pct": [1]}, "truth.pore_fraction_pct must be a finite number of %; got [1]"),
        ({"feal_present": "true"}, 'truth.feal_present must be true or false; got "true"'),
        ({"fe2al5_thickness_um": True}, "truth.fe2al5_thickness_um must be a finite number"),
        ("thick", "truth must be an object of measurements, not str"),
    ],
)
def test_truth_values_of_the_wrong_type_name_the_meta_file_and_field(
    tmp_path: Path, pred_dir: Path, dataset_dir: Path, truth: object, expected: str
) -> None:
    import json

    meta_path = dataset_dir / "meta" / "000001.json"
    meta = json.loads(meta_path.read_text())
    meta["truth"] = truth if not isinstance(truth, dict) else meta["truth"] | truth
    meta_path.write_text(json.dumps(meta))
    result = runner.invoke(app, ["report", str(pred_dir), "--truth", str(dataset_dir), "--out", str(tmp_path / "rep")])
    line = _error(result, 2)
    assert line == f"error: {meta_path}: {expected}" or (line.startswith(f"error: {meta_path}: ") and expected in line)


def test_a_meta_file_that_is_not_json_or_holds_nan_is_named(tmp_path: Path, pred_dir: Path, dataset_dir: Path) -> None:
    meta_path = dataset_dir / "meta" / "000000.json"
    for text, expected in (("{", "is not JSON"), ('{"truth": {"pore_fraction_pct": NaN}}', "NaN is not a JSON number"),
                           ("[" * 50000 + "]" * 50000, "nested too deeply")):  # fmt: skip
        meta_path.write_text(text)
        result = runner.invoke(
            app, ["report", str(pred_dir), "--truth", str(dataset_dir), "--out", str(tmp_path / "r")]
        )
        line = _error(result, 2)
        assert line.startswith(f"error: {meta_path}: ") and expected in line


def test_a_pixel_size_that_overflows_the_measurements_is_refused_naming_its_source(
    tmp_path: Path, dataset_dir: Path
) -> None:
    import json

    from analysis.measure import measure
    from tests.analysis.masks import slab

    # 1.7e308 µm per pixel x 60 rows is inf: refused before measuring, whoever gives it.
    with pytest.raises(Exception, match="the pixel size must be a positive finite number of µm per pixel from 1e-05"):
        measure(slab(thickness=60), 1.7e308)
    line = _error(runner.invoke(app, ["measure", str(dataset_dir), "--pixel-size-um", "1.7e308"]), 2)
    assert "--pixel-size-um: the pixel size must be" in line
    info = json.loads((dataset_dir / "dataset.json").read_text())
    (dataset_dir / "dataset.json").write_text(json.dumps(info | {"pixel_size_um": 1.7e308}))
    line = _error(runner.invoke(app, ["measure", str(dataset_dir)]), 1)
    assert line.startswith(f"error: {dataset_dir / 'dataset.json'}: pixel_size_um: the pixel size must be")
    result = runner.invoke(app, ["measure", str(dataset_dir), "--pixel-size-um", "0.5"])
    assert result.exit_code == 0 and "inf" not in result.stdout


# -- An image with no coating is a failed image, not a number ---------------------------------------------------------


def test_images_without_a_coating_fail_saying_nothing_was_found(tmp_path: Path, dataset_dir: Path) -> None:
    import json

    import cv2
    import numpy as np
    from scipy import ndimage as ndi

    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:300, 0:400]
    hostile = {
        "noise": rng.random((300, 400)),
        "grey_noise": np.clip(rng.normal(0.5, 0.1, (300, 400)), 0, 1),
        "smooth_noise": ndi.gaussian_filter(rng.random((300, 400)), 8) * 4 - 1.5,
        "checker": ((rows // 40 + cols // 40) % 2) * 0.8 + 0.1,
    }
    paths = []
    for name, image in hostile.items():
        paths.append(tmp_path / f"{name}.png")
        cv2.imwrite(str(paths[-1]), np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    good = sorted((dataset_dir / "images").glob("*.png"))[:1]
    out = tmp_path / "out"
    args = ["predict", "--model", "classical", *map(str, good + paths), "--out", str(out), "--pixel-size-um", "0.5"]
    assert "4 of 5 images failed" in _error(runner.invoke(app, args), 1)
    records = {r["image"]: r for r in json.loads((out / "predictions.json").read_text())}
    assert not records[good[0].stem]["failed"]
    for name in hostile:
        assert records[name]["failed"], name
        assert records[name]["error"].startswith(f"{tmp_path / name}.png: no coating found: the predicted classes are")
        assert (out / "masks" / f"{name}.png").is_file()  # kept, to see why
    measured = (out / "measurements.csv").read_text().splitlines()
    assert [line for line in measured if line.startswith("noise,")] == ["noise,0.5" + "," * len(MEASUREMENT_NAMES)]


def test_check_layered_accepts_layered_masks_and_says_what_it_found() -> None:
    import numpy as np

    from analysis.measure import NoCoatingError, check_layered
    from tests.analysis.conftest import line_mask

    for seed in range(4):
        check_layered(line_mask(seed))
    scrambled = np.random.default_rng(0).permutation(line_mask(0).ravel()).reshape(160, 240)
    with pytest.raises(NoCoatingError, match=r"^s.png: no coating found: .* \(at least 60% needed\)"):
        check_layered(scrambled, "s.png")
