"""Dataset folders lose nothing and mislabel nothing: damaged images are found (so a resume renders them again), a
folder whose dataset.json is gone is not adopted by another batch, and absurd or hostile dataset.json values are
clear errors, never a spin or an 'ok'."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from semcoat.dataset import DATASET_FILE, DatasetError, DatasetInfo, DatasetWriter, check_dataset, read_info, sample_id
from tests.semcoat.test_dataset import _info, _sample


@pytest.fixture()
def ds(tmp_path: Path) -> Path:
    writer = DatasetWriter.open(tmp_path / "ds", _info())
    for i in range(3):
        _sample(writer, i)
    assert check_dataset(tmp_path / "ds").ok
    return tmp_path / "ds"


@pytest.mark.parametrize("damage", ["flip a pixel byte", "truncate"])
def test_a_damaged_image_is_found_and_not_intact(ds: Path, damage: str) -> None:
    image = ds / "images" / "000001.png"
    data = bytearray(image.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 20]
    else:
        data[60] ^= 0x01  # inside the IDAT chunk: the header stays valid
    image.write_bytes(bytes(data))
    report = check_dataset(ds)
    assert not report.ok and report.complete == 2
    assert any("000001.png" in p and "unreadable image" in p for p in report.problems), report.problems
    writer = DatasetWriter.open(ds, _info())
    assert not writer.is_intact(sample_id(1)) and writer.is_intact(sample_id(0))


def test_a_folder_whose_dataset_json_was_deleted_is_not_adopted_by_another_batch(ds: Path) -> None:
    (ds / DATASET_FILE).unlink()
    other = DatasetInfo(**{**_info().__dict__, "seed": 99})
    with pytest.raises(DatasetError, match="holds samples but no dataset.json"):
        DatasetWriter.open(ds, other)
    assert (ds / "images" / "000000.png").is_file()  # nothing was removed or overwritten
    assert not (ds / DATASET_FILE).exists()


def test_empty_sub_folders_without_dataset_json_are_still_joined(tmp_path: Path) -> None:
    """Array tasks starting together may see each other's empty sub-folders: that is not a foreign dataset."""
    root = tmp_path / "ds"
    for sub in ("images", "masks", "meta"):
        (root / sub).mkdir(parents=True)
    DatasetWriter.open(root, _info())
    assert read_info(root).count == 3


@pytest.mark.parametrize(("key", "value", "message"), [
    ("pixel_size_um", float("nan"), "positive finite"),
    ("pixel_size_um", float("inf"), "positive finite"),
    ("pixel_size_um", -0.2, "positive finite"),
    ("count", 10**12, "count must be an integer in"),
    ("count", 10**4000, "an integer of"),
    ("image_width_px", 20_000, "image_width_px must be an integer in"),
])
def test_absurd_dataset_json_values_are_clear_errors_and_fast(ds: Path, key: str, value: object,
                                                              message: str) -> None:
    info = json.loads((ds / DATASET_FILE).read_text())
    info[key] = value
    (ds / DATASET_FILE).write_text(json.dumps(info))
    with pytest.raises(DatasetError, match=message):
        read_info(ds)
    started = time.monotonic()
    report = check_dataset(ds)
    assert time.monotonic() - started < 5
    assert not report.ok and message.split()[0] in report.problems[0]


def test_deeply_nested_dataset_json_is_a_clear_error(ds: Path) -> None:
    (ds / DATASET_FILE).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DatasetError, match="not a usable dataset.json"):
        read_info(ds)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("fe2al5_thickness_um", "60", "must be a finite number of µm"),
    ("pore_fraction_pct", float("nan"), "must be a finite number of %"),
    ("feal_present", 1, "must be true or false"),
    ("precipitate_fraction_pct", None, "must not be null"),
])
def test_truth_values_of_the_wrong_kind_are_problems(ds: Path, name: str, value: object, message: str) -> None:
    meta_path = ds / "meta" / "000002.json"
    meta = json.loads(meta_path.read_text())
    meta["truth"][name] = value
    meta_path.write_text(json.dumps(meta))
    report = check_dataset(ds)
    assert report.complete == 2
    assert any("000002.json" in p and f"truth.{name}: {message}" in p for p in report.problems), report.problems


def test_an_optional_measurement_may_be_null(ds: Path) -> None:
    meta_path = ds / "meta" / "000002.json"
    meta = json.loads(meta_path.read_text())
    meta["truth"]["pore_line_depth_um"] = None
    meta_path.write_text(json.dumps(meta))
    assert check_dataset(ds).ok
