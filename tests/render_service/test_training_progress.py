"""A training's progress from its Lightning CSV log, on its own: real logs (a 3-minute demo fit, and the 2-rank DDP
job of the Slurm integration test) read whole and as windows; blank cells, NaN and infinities; a last line still
being written; rows of another width while Lightning rewrites the file under a longer header; a huge log of which
only the header and the tail are read; the run's limits from its config; how far it is; the throttle."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import IO, Any

import pytest

from render_service.training_metrics import HEAD_BYTES, TAIL_BYTES, read_window, window_of
from render_service.training_progress import (
    MAX_CLASSES,
    MAX_NAME_CHARS,
    Limits,
    MetricsWindow,
    config_limits,
    due,
    file_rows,
    fold,
    fold_window,
    leading_limit,
    max_time_seconds,
    new_record,
    seen_source,
    with_source,
)

FIXTURES = Path(__file__).parent / "fixtures"
DEMO_LOG = FIXTURES / "lightning_metrics.csv"  # semcoat demo's fit: max_time 3 min, log every 10 steps
DDP_LOG = FIXTURES / "lightning_metrics_ddp.csv"  # 2 ranks, max_epochs 2, log every step
REPO = Path(__file__).resolve().parents[2]


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _last_validation(text: str) -> dict[str, str]:
    return [r for r in _rows(text) if r["val/dice_mean"]][-1]


def whole(text: str, record: dict[str, Any] | None = None) -> dict[str, Any]:
    names, rows = file_rows(io.StringIO(text, newline=""))
    return fold(record, names, rows)


def window(text: str, at_line_start: bool = True) -> MetricsWindow:
    header, _, body = text.partition("\n")
    return MetricsWindow(header, body, at_line_start, len(text), 1.0)


def test_a_real_log_gives_the_latest_step_loss_and_validation_and_the_best() -> None:
    text = DEMO_LOG.read_text()
    record = whole(text, new_record(Limits(max_epochs=200, max_time_s=180.0)))
    last_val = _last_validation(text)
    train_rows = [r for r in _rows(text) if r["train/loss"]]
    assert record["step"] == max(int(r["step"]) for r in _rows(text)) == 73
    assert record["epoch"] == 2 and record["train_loss"] == float(train_rows[-1]["train/loss"])
    assert record["val_dice_mean"] == float(last_val["val/dice_mean"]) and record["val_step"] == 73
    assert record["val_dice"] == {k[len("val/dice_"):]: float(v) for k, v in last_val.items()
                                  if k.startswith("val/dice_") and k != "val/dice_mean"}
    assert set(record["val_dice"]) == {"background", "crack", "fe2al5", "feal", "pore", "precipitate", "substrate"}
    means = [(float(r["val/dice_mean"]), int(r["step"])) for r in _rows(text) if r["val/dice_mean"]]
    assert (record["best_val_dice_mean"], record["best_step"]) == max(means)
    assert record["max_time_s"] == 180.0 and record["warning"] is None
    assert fold_window(None, window(text)) == whole(text)  # a small log's window is all of it


def test_the_ddp_log_of_two_epochs_is_done_once_its_last_epoch_is_validated() -> None:
    record = whole(DDP_LOG.read_text(), new_record(Limits(max_epochs=2)))
    assert (record["step"], record["epoch"], record["val_epoch"]) == (3, 1, 1)
    assert leading_limit(record, elapsed_s=40.0) == ("max_epochs", 1.0)
    assert record["best_epoch"] == 0  # 0.152 at epoch 0 beat 0.134 at epoch 1: best is not latest
    assert record["best_val_dice_mean"] > record["val_dice_mean"]


def test_a_last_line_still_being_written_is_left_for_the_next_read() -> None:
    text = DEMO_LOG.read_text()
    cut = len(text) - 200  # inside the last validation row
    partial = fold_window(None, window(text[:cut]))
    assert partial["step"] == 73 and partial["val_step"] == 63  # the last complete validation
    complete = fold_window(partial, window(text))
    assert complete["val_step"] == 73 and complete["val_dice_mean"] == float(_last_validation(text)["val/dice_mean"])


def test_blank_cells_nan_and_infinities() -> None:
    header = "epoch,step,train/loss,val/dice_mean,val/dice_pore\n"
    text = header + ("0,9,1.5,,\n"
                     "0,9,,nan,0.5\n"       # a NaN mean is no validation
                     ",12,,,\n"
                     "0,19,inf,0.40,nan\n"  # a class without a number is left out of that validation
                     "0,,,,\n")
    record = whole(text)
    assert record["step"] == 19 and record["train_loss"] is None
    assert "inf" in str(record["warning"]) and "diverged" in str(record["warning"])
    assert (record["val_dice_mean"], record["val_dice"], record["best_val_dice_mean"]) == (0.40, {}, 0.40)
    later = fold_window(record, window(header + "1,29,0.9,,\n"))
    assert later["train_loss"] == 0.9 and later["warning"] is None and later["val_dice_mean"] == 0.40
    json.dumps(later, allow_nan=False)  # what the database stores: no NaN anywhere


def test_rows_of_another_width_than_the_header_are_skipped() -> None:
    # Lightning rewrites the whole file when a metric first appears (the first validation): a reader may hold the
    # old header and the new rows, or the reverse
    text = DEMO_LOG.read_text()
    old_header = "epoch,lr-AdamW,step,train/loss"
    before = whole("epoch,lr-AdamW,step,train/loss\n0,,9,3.0\n")
    assert fold_window(before, MetricsWindow(old_header, text.partition("\n")[2], True, 0, 0.0)) == before
    assert fold_window(before, MetricsWindow(None, text, True, 0, 0.0)) == before  # header not complete yet


def test_a_window_that_starts_inside_a_line_drops_it() -> None:
    text = "epoch,step,train/loss\n0,9,1.5\n0,19,1.25\n"
    cut_inside = MetricsWindow("epoch,step,train/loss", "9,1.5\n0,19,1.25\n", False, 0, 0.0)
    assert fold_window(None, cut_inside)["step"] == 19
    only_partial = MetricsWindow("epoch,step,train/loss", "9,1.5\n", False, 0, 0.0)
    assert "step" not in fold_window(None, only_partial)
    assert fold_window(None, window(text))["train_loss"] == 1.25


class CountingReader(io.RawIOBase):
    """A file whose reads are counted (how much of a huge log was read)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle, self.read_bytes = handle, 0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.read_bytes += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.handle.seek(offset, whence)


def test_a_huge_log_is_followed_from_its_header_and_tail_only(tmp_path: Path) -> None:
    header = DEMO_LOG.read_text().partition("\n")[0]
    width = header.count(",") + 1
    at = {name: i for i, name in enumerate(header.split(","))}

    def row(step: int, **values: float) -> str:
        cells = [""] * width
        cells[at["epoch"]], cells[at["step"]] = str(step // 1000), str(step)
        for name, value in values.items():
            cells[at[name.replace("__", "/")]] = repr(value)
        return ",".join(cells) + "\n"

    path = tmp_path / "metrics.csv"
    with open(path, "w") as out:
        out.write(header + "\n")
        for step in range(120_000):  # ~8 MB: a log of every step of a long run
            out.write(row(step, train__loss=1.0 / (step + 1)))
            if step % 1000 == 999:
                out.write(row(step, val__dice_mean=0.5 + step / 1e6, val__dice_pore=0.25))
    size = path.stat().st_size
    assert size > 10 * (HEAD_BYTES + TAIL_BYTES)
    with open(path, "rb") as raw:
        counted = CountingReader(raw)
        got = window_of(counted, size, path.stat().st_mtime)  # type: ignore[arg-type]
    assert counted.read_bytes <= HEAD_BYTES + TAIL_BYTES + 1
    assert got == read_window(path)
    previous = {"best_val_dice_mean": 0.99, "best_step": 4, "best_epoch": 0}  # seen by an earlier read
    record = fold_window(previous, got)
    assert record["step"] == 119_999 and record["train_loss"] == 1.0 / 120_000
    assert record["val_step"] == 119_999 and record["val_dice_mean"] == 0.5 + 119_999 / 1e6
    assert record["val_dice"] == {"pore": 0.25}
    assert (record["best_val_dice_mean"], record["best_step"]) == (0.99, 4)  # the window's best is lower
    assert fold_window({"best_val_dice_mean": 0.1}, got)["best_step"] == 119_999


def test_the_record_stays_small_whatever_the_log_names() -> None:
    names = [f"val/dice_{'c' * 200}", *(f"val/dice_{'c' * (MAX_NAME_CHARS - 3)}{i:03d}" for i in range(100))]
    text = "step,val/dice_mean," + ",".join(names) + "\n" + "5,0.5," + ",".join(["0.5"] * len(names)) + "\n"
    record = whole(text)
    assert len(record["val_dice"]) == MAX_CLASSES
    assert all(len(name) <= MAX_NAME_CHARS for name in record["val_dice"])
    assert len(json.dumps(record)) < 4000


def test_limits_come_from_the_config_with_lightnings_defaults() -> None:
    unet = (REPO / "training" / "configs" / "unet.yaml").read_text()
    assert config_limits(unet) == Limits(max_epochs=200)
    assert config_limits("trainer: {max_steps: 2000, max_time: '00:01:30:00'}\n") == Limits(2000, None, 5400.0)
    assert config_limits("trainer: {max_steps: 50, max_epochs: 3}\n") == Limits(50, 3, None)
    assert config_limits("model: {model: unet}\n") == Limits(max_epochs=1000)  # Lightning's default
    assert config_limits("trainer: {max_epochs: -1, max_steps: -1}\n") == Limits()
    assert config_limits("trainer: {max_time: {hours: 2, minutes: 30}}\n").max_time_s == 9000.0
    assert config_limits(": not yaml [") == Limits() and config_limits("- a list\n") == Limits(max_epochs=1000)
    assert max_time_seconds("1:02:03:04") == 93784.0 and max_time_seconds("90 minutes") is None
    assert max_time_seconds({"hours": True}) is None and max_time_seconds({"fortnights": 1}) is None


def test_how_far_is_the_leading_limit() -> None:
    record = {"max_steps": 1000, "max_epochs": 50, "max_time_s": 3600.0, "step": 99, "epoch": 4, "val_epoch": 3}
    assert leading_limit(record, elapsed_s=60.0) == ("max_steps", 0.1)  # 100 steps of 1000; 4 epochs of 50
    assert leading_limit(record, elapsed_s=1800.0) == ("max_time", 0.5)
    assert leading_limit({**record, "val_epoch": 4, "max_steps": None}, None) == ("max_epochs", 0.1)
    assert leading_limit({"max_time_s": 60.0}, elapsed_s=600.0) == ("max_time", 1.0)  # capped
    assert leading_limit({"max_steps": 10}, elapsed_s=5.0) == (None, None)  # nothing logged yet


def test_the_log_is_looked_at_once_per_interval_and_remembers_what_it_read() -> None:
    record: dict[str, Any] = new_record(Limits(max_steps=10))
    assert due(record, 1000.0, 30.0)
    looked = with_source(record, 1000.0)
    assert not due(looked, 1029.0, 30.0) and due(looked, 1030.0, 30.0) and due(looked, 999.0, 30.0)
    assert seen_source(looked) is None
    read = with_source(looked, 1040.0, size=1876, mtime=1733.5)
    assert seen_source(read) == (1876, 1733.5) and read["source"]["updated_at"] == 1040.0
    assert seen_source(with_source(read, 1100.0)) == (1876, 1733.5)  # a look without a read keeps it


@pytest.mark.parametrize("text", ["", "\n", "epoch,step\n", "not,a\ncsv,,,\n", "\x00\x00\n\x00"])
def test_logs_with_nothing_in_them_change_nothing(text: str) -> None:
    assert whole(text, {"step": 3}) == {"step": 3}
    assert fold_window({"step": 3}, window(text)) == {"step": 3}
