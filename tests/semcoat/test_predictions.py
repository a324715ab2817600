"""The prediction-folder contract: records survive a write and a read, earlier and broken files are handled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semcoat.errors import SemcoatError
from semcoat.predictions import (
    PICTURE_DIRS,
    PREDICTIONS_JSON,
    PredictionRecord,
    PredictionsError,
    picture_path,
    read_predictions,
    write_predictions,
)


def _record(image: str, **changes: object) -> PredictionRecord:
    values: dict[str, object] = {
        "image": image, "source": f"/data/{image}.tif", "model": "classical", "pixel_size_um": 0.17,
        "pixel_size_from": "thermo-fei", "metadata_pixel_size_um": 0.17, "databar_top_row": 768, "rows": 768,
        "columns": 1024, "error": None,
    }  # fmt: skip
    values.update(changes)
    return PredictionRecord.from_dict(values)


def test_records_round_trip_in_order(tmp_path: Path) -> None:
    records = [_record("b"), _record("a", failed=True, error="no pixel size", warnings=["w"], rows=None)]
    path = write_predictions(tmp_path, records)
    assert path == tmp_path / PREDICTIONS_JSON
    read = read_predictions(tmp_path)
    assert list(read) == ["b", "a"] and list(read.values()) == records
    # The file is the records' fields, in field order, as JSON objects.
    assert json.loads(path.read_text()) == [r.to_dict() for r in records]
    assert list(json.loads(path.read_text())[0]) == list(records[0].to_dict())


def test_records_of_earlier_versions_read_with_defaults_and_unknown_keys_are_ignored(tmp_path: Path) -> None:
    (tmp_path / PREDICTIONS_JSON).write_text(json.dumps([{"image": "x", "source": "x.png", "later_key": 1}]))
    (record,) = read_predictions(tmp_path).values()
    assert record.image == "x" and record.model is None and record.pixel_size_um is None
    assert record.failed is False and record.warnings == []
    assert record.relabel_islands is None and record.flip_average is None  # not recorded then: unknown, not False


@pytest.mark.parametrize("name", ["relabel_islands", "flip_average"])
def test_a_prediction_option_that_is_no_flag_is_refused_naming_it(tmp_path: Path, name: str) -> None:
    (tmp_path / PREDICTIONS_JSON).write_text(json.dumps([{"image": "x", name: "yes"}]))
    with pytest.raises(PredictionsError, match=rf"{name} must be true, false or null; got \"yes\""):
        read_predictions(tmp_path)


def test_a_folder_without_records_is_a_bare_table(tmp_path: Path) -> None:
    assert read_predictions(tmp_path) == {}


@pytest.mark.parametrize("text", ["{not json", '{"image": "x"}', '[{"source": "no image"}]', "[3]"])
def test_broken_files_are_errors_naming_the_file(tmp_path: Path, text: str) -> None:
    (tmp_path / PREDICTIONS_JSON).write_text(text)
    with pytest.raises(PredictionsError, match=PREDICTIONS_JSON) as info:
        read_predictions(tmp_path)
    assert isinstance(info.value, SemcoatError)


def test_picture_paths_are_per_folder_and_stem(tmp_path: Path) -> None:
    paths = {picture_path(tmp_path, d, "s1") for d in PICTURE_DIRS}
    assert len(paths) == len(PICTURE_DIRS) and all(p.name == "s1.png" and p.parent.parent == tmp_path for p in paths)
