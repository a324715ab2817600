"""Dataset contract: writer -> reader round trip, and the checker's findings on broken folders."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from semcoat import classes, pngio
from semcoat.dataset import (
    MEASUREMENT_NAMES,
    DatasetError,
    DatasetInfo,
    DatasetWriter,
    check_dataset,
    read_dataset,
    sample_id,
    write_atomic,
)
from semcoat.measurements import YES_NO_NAMES
from semcoat_cli.app import app

W, H = 24, 16


def _mask_bytes(value_rows: list[int]) -> bytes:
    """A mask whose row r holds class value_rows[r] (H rows)."""
    return b"".join(bytes([v]) * W for v in value_rows)


def _sample(writer: DatasetWriter, index: int, mask: bytes | None = None) -> None:
    mask = mask if mask is not None else _mask_bytes([0] * 4 + [1] * 8 + [3] * 4)
    image = bytes((i * 7) % 256 for i in range(W * H))
    meta = {"id": sample_id(index), "index": index, "params": {"x": index},
            "truth": {name: (False if name in YES_NO_NAMES else 0.0) for name in MEASUREMENT_NAMES}}
    writer.write_sample(sample_id(index), pngio.encode_grey(W, H, 8, image), pngio.encode_grey(W, H, 8, mask), meta)


def _info(count: int = 3) -> DatasetInfo:
    return DatasetInfo(name="t", pixel_size_um=0.5, image_width_px=W, image_height_px=H, count=count, seed=1,
                       spec={"name": "t"}, generator_version="test")


@pytest.fixture()
def full(tmp_path: Path) -> Path:
    writer = DatasetWriter.open(tmp_path / "ds", _info())
    for i in range(3):
        _sample(writer, i)
    return tmp_path / "ds"


def test_png_round_trip_8_and_16_bit() -> None:
    data8 = bytes(range(256)) * 3
    header, pixels = pngio.decode_grey(pngio.encode_grey(32, 24, 8, data8))
    assert (header.width, header.height, header.bit_depth, pixels) == (32, 24, 8, data8)
    data16 = bytes((i * 37) % 256 for i in range(2 * 10 * 5))
    header, pixels = pngio.decode_grey(pngio.encode_grey(10, 5, 16, data16))
    assert (header.bit_depth, pixels) == (16, data16)


def test_png_decodes_filtered_rows_written_by_other_tools(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    arr = (np.cumsum(rng.integers(0, 5, size=(20, 30)), axis=1) % 256).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "x.png", optimize=True)  # Pillow uses adaptive row filters
    header, pixels = pngio.decode_grey((tmp_path / "x.png").read_bytes())
    assert (header.width, header.height) == (30, 20)
    assert pixels == arr.tobytes()


def test_png_errors() -> None:
    with pytest.raises(pngio.PngError, match="bad signature"):
        pngio.decode_grey(b"GIF89a")
    with pytest.raises(pngio.PngError, match="expected 48"):
        pngio.encode_grey(8, 6, 8, b"\x00" * 5)
    good = pngio.encode_grey(8, 6, 8, b"\x00" * 48)
    with pytest.raises(pngio.PngError, match="truncated"):
        pngio.decode_grey(good[:40])


def test_writer_reader_round_trip(full: Path) -> None:
    ds = read_dataset(full, require_complete=True)
    assert ds.ids == ["000000", "000001", "000002"]
    assert ds.info.pixel_size_um == 0.5 and ds.info.classes["4"] == "pore"
    assert ds.meta("000001")["params"] == {"x": 1}
    header, pixels = pngio.decode_grey(ds.mask_path("000002").read_bytes())
    assert (header.width, header.height) == (W, H) and set(pixels) == {0, 1, 3}
    report = check_dataset(full)
    assert report.ok, report.problems
    assert report.complete == 3


def test_no_temporary_files_remain_after_writing(full: Path) -> None:
    assert not [p for p in full.rglob("*") if ".tmp-" in p.name]


def test_checker_finds_missing_mask(full: Path) -> None:
    (full / "masks" / "000001.png").unlink()
    problems = check_dataset(full).problems
    assert any("masks/000001.png: missing" in p for p in problems)


def test_checker_finds_unknown_class_id(tmp_path: Path) -> None:
    writer = DatasetWriter.open(tmp_path / "ds", _info(1))
    _sample(writer, 0, mask=_mask_bytes([0] * 8 + [9] * 8))
    problems = check_dataset(tmp_path / "ds").problems
    assert any("unknown class id(s) [9]" in p for p in problems)


def test_checker_finds_size_mismatch(tmp_path: Path) -> None:
    writer = DatasetWriter.open(tmp_path / "ds", _info(1))
    small = pngio.encode_grey(W, H - 1, 8, bytes(W * (H - 1)))
    meta = {"params": {}, "truth": {n: 0 for n in MEASUREMENT_NAMES}}
    writer.write_sample("000000", small, small, meta)
    problems = check_dataset(tmp_path / "ds").problems
    assert any(f"image is {W}x{H - 1} px, dataset.json says {W}x{H}" in p for p in problems)
    assert any(f"mask is {W}x{H - 1} px" in p for p in problems)


def test_checker_finds_missing_meta_and_interrupted_write(full: Path) -> None:
    (full / "meta" / "000002.json").unlink()
    (full / "images" / f".000001.png.tmp-{os.getpid()}").write_bytes(b"partial")
    problems = check_dataset(full).problems
    assert any("000002: incomplete sample (no meta file" in p for p in problems)
    assert any("leftover temporary file of an interrupted write" in p for p in problems)
    assert read_dataset(full).ids == ["000000", "000001"]
    with pytest.raises(DatasetError, match="1 of 3 samples are missing"):
        read_dataset(full, require_complete=True)


def test_checker_finds_bad_meta_and_never_written_samples(tmp_path: Path) -> None:
    writer = DatasetWriter.open(tmp_path / "ds", _info(6))
    _sample(writer, 0)
    _sample(writer, 4)
    (tmp_path / "ds" / "meta" / "000004.json").write_text(json.dumps({"params": {}, "truth": {}}))
    problems = check_dataset(tmp_path / "ds").problems
    assert any("'truth' lacks fe2al5_thickness_um" in p for p in problems)
    assert any("4 of 6 samples never written: 000001-000003, 000005" in p for p in problems)


def test_interrupted_write_is_discarded_on_resume(full: Path) -> None:
    writer = DatasetWriter.open(full, _info())
    (full / "meta" / "000001.json").unlink()  # killed after the image and mask
    (full / "masks" / f".000001.png.tmp-{os.getpid()}").write_bytes(b"partial")
    assert not writer.is_complete("000001")
    writer.discard("000001")
    assert not (full / "images" / "000001.png").exists()
    assert not list((full / "masks").glob(".*"))
    _sample(writer, 1)
    assert check_dataset(full).ok


def test_writer_refuses_a_folder_of_another_batch(full: Path, tmp_path: Path) -> None:
    other = _info()
    other.seed = 99
    with pytest.raises(DatasetError, match="differs in: seed"):
        DatasetWriter.open(full, other)
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        DatasetWriter.open(stray, _info())
    assert (stray / "notes.txt").read_text() == "mine"


def test_not_a_dataset_folder(tmp_path: Path) -> None:
    report = check_dataset(tmp_path)
    assert not report.ok and "dataset.json is missing" in report.problems[0]
    (tmp_path / "dataset.json").write_text("{")
    assert "not valid JSON" in check_dataset(tmp_path).problems[0]


def test_dataset_check_command(full: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["dataset", "check", str(full)])
    assert ok.exit_code == 0 and "3 of 3 samples complete" in ok.output
    (full / "masks" / "000000.png").unlink()
    bad = runner.invoke(app, ["dataset", "check", str(full)])
    assert bad.exit_code == 1 and "masks/000000.png: missing" in bad.output


def test_a_damaged_complete_sample_is_not_intact_and_discard_removes_it(full: Path) -> None:
    writer = DatasetWriter.open(full, _info())
    assert writer.is_intact("000000")
    (full / "images" / "000001.png").write_bytes(b"garbage")
    (full / "meta" / "000002.json").write_text("{")
    assert writer.is_complete("000001") and not writer.is_intact("000001")
    assert not writer.is_intact("000002")
    assert check_dataset(full).complete == 1
    writer.discard("000001")
    assert not any((full / sub / "000001.png").exists() for sub in ("images", "masks"))
    assert not (full / "meta" / "000001.json").exists()


def test_writers_of_one_batch_starting_together_share_the_folder(tmp_path: Path) -> None:
    # Array tasks start at the same moment: a second writer may find the first one's sub-folders and temporary
    # dataset.json before the rename. Neither is a foreign folder.
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / f".dataset.json.tmp-{os.getpid() + 1}").write_text("{")
    writer = DatasetWriter.open(root, _info(2))
    _sample(writer, 0)
    other = DatasetWriter.open(root, _info(2))
    _sample(other, 1)
    assert read_dataset(root, require_complete=True).ids == ["000000", "000001"]


def _open_and_write(root: str, index: int, start_at: float) -> str:
    """One array task: wait for the common start, join the folder, write one sample (returns '' or the error)."""
    while time.time() < start_at:
        pass
    try:
        _sample(DatasetWriter.open(root, _info(8)), index)
    except Exception as exc:  # reported to the test, which fails on it
        return f"{type(exc).__name__}: {exc}"
    return ""


def test_many_writers_opening_one_folder_at_the_same_moment_all_succeed(tmp_path: Path) -> None:
    # Bounded: 20 trials of 8 writers, ~0.2 s each. Before the fix about one run in three failed here.
    with ProcessPoolExecutor(max_workers=8) as pool:
        for trial in range(20):
            root = str(tmp_path / f"ds{trial}")
            start_at = time.time() + 0.15
            errors = [e for e in pool.map(_open_and_write, [root] * 8, range(8), [start_at] * 8) if e]
            assert errors == []
            report = check_dataset(root)
            assert report.ok and report.complete == 8, report.problems


def test_resume_refuses_another_generator_but_accepts_another_task_size(full: Path) -> None:
    other = _info()
    other.generator_version = "test 2"
    with pytest.raises(DatasetError, match="differs in: generator_version"):
        DatasetWriter.open(full, other)
    rechunked = _info()
    rechunked.spec = {"name": "t", "render": {"images_per_task": 7}}
    DatasetWriter.open(full, rechunked)


def test_a_malformed_class_table_is_a_clear_error(full: Path) -> None:
    info = json.loads((full / "dataset.json").read_text())
    info["classes"] = {"a": "pore"}
    (full / "dataset.json").write_text(json.dumps(info))
    report = check_dataset(full)
    assert not report.ok and "classes must map mask values" in report.problems[0]


def test_temporaries_get_unique_names_and_none_is_left(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    for i in range(3):
        write_atomic(target, f"{i}".encode())
    assert target.read_text() == "2"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def _phases_bytes(value_rows: list[int]) -> bytes:
    return pngio.encode_grey(W, H, 8, _mask_bytes(value_rows))


def test_an_optional_phase_map_is_written_checked_and_discarded_with_its_sample(tmp_path: Path) -> None:
    rows = [0] * 4 + [1] * 8 + [classes.PRECIPITATE] * 4
    writer = DatasetWriter.open(tmp_path / "ds", _info(count=2))
    _sample(writer, 0, _mask_bytes(rows))  # no phase map: a sample is complete without one
    image = pngio.encode_grey(W, H, 8, bytes(W * H))
    meta = json.loads((tmp_path / "ds" / "meta" / "000000.json").read_text())
    phases = _phases_bytes([0] * 12 + [1, 2, 3, 3])
    writer.write_sample("000001", image, pngio.encode_grey(W, H, 8, _mask_bytes(rows)), meta, phases)
    ds = read_dataset(tmp_path / "ds")
    assert ds.phase_map_path("000000") is None
    assert ds.phase_map_path("000001") == tmp_path / "ds" / "phases" / "000001.png"
    assert check_dataset(tmp_path / "ds").ok and writer.is_intact("000001")
    assert DatasetWriter.open(tmp_path / "ds", _info(count=2)).is_intact("000001")  # a resumed writer joins it

    for bad, said in ((_phases_bytes([0] * 11 + [1] * 5), "does not match the mask's precipitates (24 pixels"),
                      (_phases_bytes([0] * 12 + [9] * 4), "unknown phase value(s) [9]"),
                      (pngio.encode_grey(W, 2, 8, bytes(2 * W)), "phase map is 24x2 px, dataset.json says 24x16"),
                      (pngio.encode_grey(W, H, 16, bytes(2 * W * H)), "phase map must be an 8-bit grey PNG, found 16"),
                      (b"garbage", "unreadable phase map")):
        (tmp_path / "ds" / "phases" / "000001.png").write_bytes(bad)
        report = check_dataset(tmp_path / "ds")
        assert [p for p in report.problems if said in p and "phases/000001.png" in p], (said, report.problems)
        assert report.complete == 1 and not writer.is_intact("000001")
    writer.discard("000001")
    assert not (tmp_path / "ds" / "phases" / "000001.png").exists()
    (tmp_path / "ds" / "phases" / "000001.png").write_bytes(phases)  # left by a write killed before its meta
    assert any("phase map of a sample that has no other file" in p for p in check_dataset(tmp_path / "ds").problems)
    writer.write_sample("000001", image, pngio.encode_grey(W, H, 8, _mask_bytes(rows)), meta)  # without one now
    assert not (tmp_path / "ds" / "phases" / "000001.png").exists()  # no stale map beside a new mask
    (tmp_path / "ds" / "phases" / "notes.txt").write_text("x")
    assert any("notes.txt: unexpected file" in p for p in check_dataset(tmp_path / "ds").problems)


def test_a_phases_entry_that_is_no_folder_or_no_file_is_named_and_a_writer_refuses_the_folder(full: Path) -> None:
    (full / "phases").write_text("not a folder")
    assert any("phases: not a folder" in p for p in check_dataset(full).problems)
    with pytest.raises(DatasetError, match=r"/phases exists and is not a folder"):
        DatasetWriter.open(full, _info())
    (full / "phases").unlink()
    (full / "phases" / "000000.png").mkdir(parents=True)
    assert any("phases/000000.png: not a file" in p for p in check_dataset(full).problems)


def test_a_meta_file_nested_too_deeply_is_a_problem_not_a_crash(full: Path) -> None:
    (full / "meta" / "000001.json").write_text("[" * 200_000)
    report = check_dataset(full)
    assert report.complete == 2
    assert any("000001.json: not a usable meta file" in p for p in report.problems), report.problems


def test_a_small_png_claiming_a_huge_frame_is_refused_by_its_header(full: Path) -> None:
    side = 8192  # 64 MiB of zeros compress to about 64 KiB: the check must not decode them to find the size wrong
    bomb = pngio.encode_grey(side, side, 8, bytes(side * side))
    assert len(bomb) < 200_000
    (full / "masks" / "000001.png").write_bytes(bomb)
    problems = check_dataset(full).problems
    assert problems == [f"{full / 'masks' / '000001.png'}: mask is {side}x{side} px, dataset.json says {W}x{H}"]


def test_a_broken_meta_file_is_a_dataset_error_naming_it(full: Path) -> None:
    ds = read_dataset(full)
    assert isinstance(ds.meta(ds.ids[0]), dict)
    path = full / "meta" / f"{ds.ids[0]}.json"
    for text, said in (('{"truth": ', "unreadable"), ("[1, 2]", "a JSON object is expected, not list"),
                       ("\udcff", "unreadable")):
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        with pytest.raises(DatasetError, match=rf"{path}: {said}.*semcoat dataset check"):
            ds.meta(ds.ids[0])
