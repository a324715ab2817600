"""``semcoat demo`` refuses folders it would mix up, before writing anything (the full demo runs in the README's
command 1 and in tests/blender_addon)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from semcoat_cli.app import app

runner = CliRunner()


def test_demo_refuses_a_folder_of_another_demo(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "batch.json").write_text('{"name": "other"}\n')
    result = runner.invoke(app, ["demo", "--out", str(out), "--count", "2"])
    assert result.exit_code == 2 and "another batch" in result.output
    assert (out / "batch.json").read_text() == '{"name": "other"}\n'


def test_demo_refuses_a_foreign_non_empty_folder_and_an_unwritable_one(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--count", "2"])
    assert result.exit_code == 2 and "not empty" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    result = runner.invoke(app, ["demo", "--out", "/proc/semcoat-demo", "--count", "2"])
    assert result.exit_code == 2 and "cannot write the demo folder" in result.output


def test_demo_rejects_an_unknown_preset(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "d"), "--preset", "1h_900C"])
    assert result.exit_code == 2 and "accepted: 5h_650C, 20h_650C" in result.output
    assert not (tmp_path / "d").exists()


@pytest.mark.blender
@pytest.mark.slow
def test_the_whole_demo_runs_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    cmd = [str(Path(sys.executable).parent / "semcoat"), "demo", "--out", str(out), "--count", "2"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "rendered 2, skipped 0 already complete" in first.stdout
    report = (out / "report" / "report.html").read_text()
    assert "2 images matched" in report and "<img" in report
    assert len((out / "predicted" / "measurements.csv").read_text().splitlines()) == 3
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "rendered 0, skipped 2 already complete" in again.stdout
