"""Reading masks, images and measurement tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from analysis import files
from analysis.measure import MaskError, measure
from semcoat.measurements import MEASUREMENT_NAMES
from tests.analysis.masks import slab


def test_read_mask_png_and_measure_file(tmp_path: Path) -> None:
    mask = slab(thickness=60, feal=5)
    Image.fromarray(mask).save(tmp_path / "m.png")
    np.testing.assert_array_equal(files.read_mask(tmp_path / "m.png"), mask)
    assert files.measure_file(tmp_path / "m.png", 0.5) == measure(mask, 0.5)


def test_read_mask_errors_name_the_file(tmp_path: Path) -> None:
    rgb = tmp_path / "colour.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(rgb)
    with pytest.raises(MaskError, match="colour.png.*single-channel"):
        files.read_mask(rgb)
    bad_ids = tmp_path / "ids.png"
    Image.fromarray(np.full((8, 8), 9, np.uint8)).save(bad_ids)
    with pytest.raises(MaskError, match="ids.png.*unknown class ids 9"):
        files.read_mask(bad_ids)
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not a png")
    with pytest.raises(MaskError, match="garbage.png.*cannot read"):
        files.read_mask(garbage)
    blank = tmp_path / "blank.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(blank)
    with pytest.raises(MaskError, match="blank.png.*only background"):
        files.measure_file(blank, 1.0)


def test_resolve_masks(tmp_path: Path, dataset_dir: Path) -> None:
    sources = files.resolve_masks([dataset_dir])
    assert [s.path.stem for s in sources] == ["000000", "000001", "000002", "000003"]
    assert {s.pixel_size_um for s in sources} == {0.5}
    plain = tmp_path / "plain"
    plain.mkdir()
    Image.fromarray(slab()).save(plain / "a.png")
    assert [(s.path.name, s.pixel_size_um) for s in files.resolve_masks([plain, plain / "a.png"])] == [
        ("a.png", None),
        ("a.png", None),
    ]
    with pytest.raises(files.MissingInputError, match="nowhere"):
        files.resolve_masks([tmp_path / "nowhere"])


def test_results_csv_round_trip(tmp_path: Path) -> None:
    m = measure(slab(thickness=60, feal=5), 0.5)
    files.write_results_csv(tmp_path / "r.csv", [("a", 0.16999999999999998, m), ("b", None, None)])
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines[0] == ",".join(("image", "pixel_size_um", *MEASUREMENT_NAMES))  # pixel size right after image
    assert lines[1].startswith("a,0.17,") and lines[2] == "b," + "," * len(MEASUREMENT_NAMES)
    table = files.read_results_csv(tmp_path / "r.csv")
    assert table["a"] == pytest.approx({**m.as_dict(), "pixel_size_um": 0.17})
    assert table["b"] == dict.fromkeys((*MEASUREMENT_NAMES, "pixel_size_um"))


def test_results_csv_of_earlier_versions_without_pixel_size_and_bad_cells(tmp_path: Path) -> None:
    (tmp_path / "old.csv").write_text("image,fe2al5_thickness_um\na,30.5\n")
    assert files.read_results_csv(tmp_path / "old.csv")["a"]["pixel_size_um"] is None
    (tmp_path / "bad.csv").write_text("image,pixel_size_um\na,tiny\n")
    with pytest.raises(files.ResultsTableError, match="bad.csv:2: pixel_size_um must be a number; got 'tiny'"):
        files.read_results_csv(tmp_path / "bad.csv")


@pytest.mark.parametrize(("suffix", "dtype"), [(".png", np.uint8), (".png", np.uint16), (".jpg", np.uint8)])
def test_read_grey_image_formats(tmp_path: Path, suffix: str, dtype: type) -> None:
    import cv2

    image = (np.arange(64 * 48).reshape(48, 64) % 200).astype(dtype)
    cv2.imwrite(str(tmp_path / f"i{suffix}"), image)
    out = files.read_grey_image(tmp_path / f"i{suffix}")
    assert out.shape == (48, 64) and out.dtype == dtype
    if suffix == ".png":
        np.testing.assert_array_equal(out, image)


def test_read_colour_image_becomes_grey(tmp_path: Path) -> None:
    rgb = np.zeros((10, 12, 3), np.uint8)
    rgb[..., 1] = 100
    Image.fromarray(rgb).save(tmp_path / "c.png")
    out = files.read_grey_image(tmp_path / "c.png")
    assert out.shape == (10, 12) and int(out[0, 0]) == round(0.587 * 100)


def test_unreadable_image(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_bytes(b"nope")
    with pytest.raises(files.ImageReadError, match="x.jpg"):
        files.read_grey_image(tmp_path / "x.jpg")


def test_to_unit_float() -> None:
    assert files.to_unit_float(np.array([[0, 65535]], np.uint16)).tolist() == [[0.0, 1.0]]
    assert files.to_unit_float(np.array([[0, 255]], np.uint8)).tolist() == [[0.0, 1.0]]


def test_results_csv_is_written_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", fail)
    with pytest.raises(OSError, match="No space"):
        files.write_results_csv(tmp_path / "r.csv", [("a", None, None)])
    assert list(tmp_path.iterdir()) == []  # neither the table nor its temporary file


def test_output_path_checks(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    files.check_output_file(tmp_path / "new" / "deeper" / "r.csv")  # creatable: fine, nothing created
    files.check_output_dir(tmp_path / "new" / "out")
    assert not (tmp_path / "new").exists()
    with pytest.raises(files.OutputPathError, match="is a folder"):
        files.check_output_file(tmp_path)
    with pytest.raises(files.OutputPathError, match=r"f/x/r.csv: cannot create .* is a file"):
        files.check_output_file(tmp_path / "f" / "x" / "r.csv")
    with pytest.raises(files.OutputPathError, match="must be a folder"):
        files.check_output_dir(tmp_path / "f")


@pytest.mark.parametrize(
    "array",
    [
        np.arange(60, dtype=np.uint8).reshape(6, 10),
        (np.arange(60, dtype=np.uint16) * 1000).reshape(6, 10),  # above 255: the high byte matters
        np.arange(180, dtype=np.uint8).reshape(6, 10, 3),
    ],
)
def test_write_png_round_trips_grey_and_rgb(tmp_path: Path, array: np.ndarray) -> None:
    files.write_png(tmp_path / "sub" / "a.png", array)
    with Image.open(tmp_path / "sub" / "a.png") as im:
        np.testing.assert_array_equal(np.asarray(im), array)


def test_png_bytes_refuses_what_it_cannot_store() -> None:
    with pytest.raises(ValueError, match="float32"):
        files.png_bytes(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match=r"\(4, 4, 4\)"):
        files.png_bytes(np.zeros((4, 4, 4), np.uint8))
