"""The extension can carry the core: a reproducible pure-Python wheel of ``semcoat/`` that the manifest lists, that
pip installs, and that imports on the standard library alone; Blender's own validator accepts the manifest; and the
scene package imports nothing beyond what Blender's Python ships (standard library, numpy, bpy) and the core."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import semcoat
from blender_addon import extension_build
from blender_addon.extension_build import build_core_wheel, core_wheel_name, manifest_wheels

REPO = Path(__file__).resolve().parents[2]
CORE_MODULES = sorted(f"semcoat.{p.stem}" for p in Path(semcoat.__file__).parent.glob("*.py") if p.stem != "__init__")
SCENE_MODULES = sorted(f"blender_addon.scene.{p.stem}" for p in (REPO / "blender_addon" / "scene").glob("*.py")
                       if p.stem != "__init__")


def test_manifest_lists_the_wheel_that_is_built(tmp_path: Path) -> None:
    wheel = build_core_wheel(tmp_path)
    assert wheel.name == core_wheel_name() == f"semcoat_core-{semcoat.__version__}-py3-none-any.whl"
    assert manifest_wheels() == [f"./wheels/{wheel.name}"]


def test_core_wheel_is_reproducible_and_holds_the_core_only(tmp_path: Path) -> None:
    first = build_core_wheel(tmp_path / "a").read_bytes()
    second = build_core_wheel(tmp_path / "b").read_bytes()
    assert first == second
    with zipfile.ZipFile(tmp_path / "a" / core_wheel_name()) as archive:
        names = archive.namelist()
        assert archive.testzip() is None
    packages = {n.split("/")[0] for n in names}
    assert packages == {"semcoat", f"semcoat_core-{semcoat.__version__}.dist-info"}
    assert {n for n in names if n.startswith("semcoat/")} == {f"semcoat/{m.split('.')[1]}.py" for m in CORE_MODULES} \
        | {"semcoat/__init__.py"}
    assert not [n for n in names if n.endswith(".pyc") or "__pycache__" in n]


def test_core_wheel_installs_with_pip_and_imports_on_the_standard_library_alone(tmp_path: Path) -> None:
    wheel = build_core_wheel(tmp_path / "dist")
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
                          "--disable-pip-version-check", "--target", str(target), str(wheel)],
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    # -I -S: no site-packages at all (so not this checkout's semcoat, numpy or anything else), only the standard
    # library and the installed wheel, like Blender's Python with the extension's wheel installed.
    code = (f"import sys, importlib; sys.path.insert(0, {str(target)!r})\n"
            f"mods = [importlib.import_module(m) for m in {CORE_MODULES!r}]\n"
            "import semcoat; print(semcoat.__file__)")
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith(str(target))


@pytest.mark.blender
def test_blenders_validator_accepts_the_manifest(tmp_path: Path) -> None:
    import bpy

    # bpy/__init__.py sits in <blender>/scripts/modules/bpy/; the validator ships in <blender>/scripts/addons_core
    validator = Path(bpy.__file__).parents[2] / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    extension = tmp_path / "semcoat"
    extension.mkdir()
    (extension / "blender_manifest.toml").write_bytes(extension_build.MANIFEST_PATH.read_bytes())
    (extension / "__init__.py").write_bytes((REPO / "blender_addon" / "__init__.py").read_bytes())
    ok = subprocess.run([sys.executable, str(validator), "validate", str(extension)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (extension / "blender_manifest.toml").write_text(
        extension_build.MANIFEST_PATH.read_text().replace('blender_version_min = "4.2.0"', 'blender_version_min = "x"'))
    bad = subprocess.run([sys.executable, str(validator), "validate", str(extension)], capture_output=True, text=True)
    assert bad.returncode != 0  # the validator does refuse a bad manifest, so the pass above means something


@pytest.mark.blender
def test_scene_package_imports_only_what_blenders_python_ships() -> None:
    """At run time, not only in the source: whatever the scene package imports beyond bpy and numpy themselves must
    be the standard library, the core or the scene package."""
    code = f"""
import json, sys
import bpy, numpy
before = {{m.split('.')[0] for m in sys.modules}}
import importlib
for name in {SCENE_MODULES!r}:
    importlib.import_module(name)
new = {{m.split('.')[0] for m in sys.modules}} - before
print(json.dumps(sorted(n for n in new if n not in sys.stdlib_module_names)))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert SCENE_MODULES  # the package has modules to check
    assert set(json.loads(proc.stdout.strip().splitlines()[-1])) <= {"semcoat", "blender_addon"}
