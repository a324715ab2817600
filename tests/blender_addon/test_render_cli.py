"""``semcoat render`` without Blender (a fake renderer in place of the bpy one): bad input exits 2 with the flag the
error is about, a failed image or a renderer that cannot start exits 1, and nothing is left half-written."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from blender_addon.render_node.batch_render import SampleFailed, plan
from blender_addon.render_node.frame import RenderError
from semcoat.dataset import check_dataset
from semcoat.errors import InvalidArgument, SemcoatError
from semcoat_cli.app import app
from semcoat_cli.errors import EXIT_FAILED, EXIT_USAGE
from tests.blender_addon.fakes import RasterRenderer
from tests.blender_addon.specs import small_batch

runner = CliRunner()


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "batch.json"
    path.write_text(small_batch(count=3).to_json())
    return path


def _use_renderer(monkeypatch: pytest.MonkeyPatch, factory: Callable[..., object]) -> None:
    """The command imports ``Renderer`` from the renderer module when it starts rendering: hand it a fake."""
    fake = types.ModuleType("blender_addon.render_node.renderer")
    fake.Renderer = factory  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "blender_addon.render_node.renderer", fake)


def test_the_render_errors_are_errors_a_user_can_act_on() -> None:
    assert issubclass(RenderError, SemcoatError) and issubclass(SampleFailed, SemcoatError)
    with pytest.raises(InvalidArgument) as caught:
        plan(small_batch(count=3), 3, None)
    assert caught.value.argument == "start" and "--" not in str(caught.value)
    with pytest.raises(InvalidArgument) as caught:
        plan(small_batch(count=3), 1, 3)
    assert caught.value.argument == "count" and "--" not in str(caught.value)


def test_a_start_outside_the_batch_exits_2_naming_the_flag(spec_file: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["render", str(spec_file), "--out", str(tmp_path / "ds"), "--start", "5"])
    assert result.exit_code == EXIT_USAGE
    assert "error: --start: the first image 5 is outside the batch of 3 images; accepted: 0 to 2" in result.output
    assert not (tmp_path / "ds").exists()


def test_a_count_past_the_end_exits_2_naming_the_flag(spec_file: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["render", str(spec_file), "--out", str(tmp_path / "ds"), "--start", "2",
                                 "--count", "5"])
    assert result.exit_code == EXIT_USAGE
    assert "error: --count: images 2..6 are not inside the batch of 3 images" in result.output
    assert "accepted: 1 to 1 images" in result.output
    assert not (tmp_path / "ds").exists()


def test_a_missing_spec_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["render", str(tmp_path / "nope.json"), "--out", str(tmp_path / "ds")])
    assert result.exit_code == EXIT_USAGE
    assert "no such spec file" in result.output
    assert not (tmp_path / "ds").exists()


def test_a_failed_image_exits_1_and_says_how_to_resume(
    spec_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_renderer(monkeypatch, lambda threads, engine: RasterRenderer(fail_on_call=2))
    result = runner.invoke(app, ["render", str(spec_file), "--out", str(tmp_path / "ds"), "--quiet"])
    assert result.exit_code == EXIT_FAILED
    assert "image 1 (000001) failed: RenderError: fake render failure" in result.output
    assert "rerun the same command to resume" in result.output
    assert check_dataset(tmp_path / "ds").complete == 1


def test_a_renderer_that_cannot_start_exits_1_saying_what_to_install(
    spec_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_blender(threads: int, engine: str) -> RasterRenderer:
        raise ImportError("No module named 'bpy'")

    _use_renderer(monkeypatch, no_blender)
    result = runner.invoke(app, ["render", str(spec_file), "--out", str(tmp_path / "ds")])
    assert result.exit_code == EXIT_FAILED
    assert "the renderer cannot start: No module named 'bpy'" in result.output and "semcoat[render]" in result.output


def test_a_fake_render_of_the_whole_batch_exits_0(
    spec_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def raster(threads: int, engine: str) -> RasterRenderer:
        asked.append(engine)
        return RasterRenderer()

    _use_renderer(monkeypatch, raster)
    result = runner.invoke(app, ["render", str(spec_file), "--out", str(tmp_path / "ds"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "rendered 3, skipped 0" in result.output and result.output.rstrip().endswith("drawn by raster")
    assert check_dataset(tmp_path / "ds").ok
    result = runner.invoke(app, ["render", str(spec_file), "--out", str(tmp_path / "ds2"), "--engine", "cycles"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("render engine: OpenCV's rasteriser")
    assert asked == ["auto", "cycles"]  # the batch's render.engine, then the flag
