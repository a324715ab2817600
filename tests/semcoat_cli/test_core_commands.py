"""The ``semcoat`` command: help, spec commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from semcoat.batch import BatchSpec
from semcoat.params import SpecError
from semcoat_cli.app import app

runner = CliRunner()


def test_help_lists_the_core_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("spec", "dataset"):
        assert command in result.output


def test_console_script_runs() -> None:
    script = Path(sys.executable).parent / "semcoat"
    for argv in ([str(script)], [sys.executable, "-m", "semcoat_cli"]):
        proc = subprocess.run([*argv, "--version"], capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout.startswith("semcoat "), (argv, proc.stderr)


def test_help_imports_no_heavy_part() -> None:
    """`semcoat --help` must stay fast and work where a part is not installed: no torch, bpy, fastapi, celery, numpy."""
    code = ("import sys\nfrom semcoat_cli.app import app\nfrom typer.testing import CliRunner\n"
            "assert CliRunner().invoke(app, ['--help']).exit_code == 0\n"
            "heavy = {'torch', 'bpy', 'fastapi', 'celery', 'lightning', 'numpy', 'scipy', 'paramiko'}\n"
            "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_preset_prints_a_valid_batch(tmp_path: Path) -> None:
    result = runner.invoke(app, ["spec", "preset", "20h_650C", "--count", "12", "--seed", "4"])
    assert result.exit_code == 0
    batch = BatchSpec.from_dict(json.loads(result.output))
    assert (batch.count, batch.seed) == (12, 4)
    path = tmp_path / "b.json"
    path.write_text(result.output)
    check = runner.invoke(app, ["spec", "check", str(path)])
    assert check.exit_code == 0 and "12 images" in check.output


def test_unknown_preset_is_a_usage_error() -> None:
    result = runner.invoke(app, ["spec", "preset", "nope"])
    assert result.exit_code == 2 and "accepted: 5h_650C, 20h_650C" in result.output


def test_check_reports_every_problem_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"count": -2, "base": {"pores": {"area_fraction_pct": 99}}}))
    result = runner.invoke(app, ["spec", "check", str(path)])
    assert result.exit_code == 1
    assert "count" in result.output and "base.pores.area_fraction_pct" in result.output
    assert "Traceback" not in result.output


def test_check_names_a_json_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"count": 3,\n "seed": }')
    result = runner.invoke(app, ["spec", "check", str(path)])
    assert result.exit_code == 1 and "line 2 column" in result.output


def test_check_finds_contradictions_among_drawn_images(tmp_path: Path) -> None:
    # the pore line may be drawn deeper than the thinnest drawn Fe2Al5 layer
    data = {"count": 50, "base": {"layers": {"fe2al5_thickness_um": 30}, "pore_line": {"depth_um": 20}},
            "randomize": {"pore_line.depth_um": {"kind": "uniform", "low": 10, "high": 40}}}
    path = tmp_path / "b.json"
    path.write_text(json.dumps(data))
    result = runner.invoke(app, ["spec", "check", str(path)])
    assert result.exit_code == 1 and "image" in result.output and "pore_line.depth_um" in result.output


def test_schema_command_prints_json_schema() -> None:
    result = runner.invoke(app, ["spec", "schema"])
    assert result.exit_code == 0
    assert json.loads(result.output)["title"] == "semcoat BatchSpec"


def test_batch_without_base_is_checked_as_a_batch(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"count": 5, "seed": 1,
                                "randomize": {"pores.area_fraction_pct": {"kind": "uniform", "low": 1, "high": 2}}}))
    result = runner.invoke(app, ["spec", "check", str(path)])
    assert result.exit_code == 0 and "batch" in result.output and "5 images" in result.output
    path.write_text("{}")
    assert "ok: batch" in runner.invoke(app, ["spec", "check", str(path)]).output


def test_coating_spec_file_is_checked_as_a_coating_and_a_batch_says_where_it_belongs(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"layers": {"fe2al5_thickness_um": 70}}))
    result = runner.invoke(app, ["spec", "check", str(path)])
    assert result.exit_code == 0 and "coating spec" in result.output
    with pytest.raises(SpecError) as info:
        BatchSpec.from_dict({"layers": {"fe2al5_thickness_um": 70}, "count": 3})
    (error,) = info.value.errors
    assert error.path == "layers" and 'put it under "base"' in error.message
