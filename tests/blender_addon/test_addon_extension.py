"""The extension zip: `semcoat addon build` writes it, Blender's validator accepts it, it installs into a fresh Blender
user folder through the extensions API and enables; disabling it leaves no class, timer or thread; and every module
in it imports only the standard library, numpy, bpy and the zip's own modules (the core wheel included)."""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from blender_addon.extension_build import build_extension, core_wheel_name, extension_zip_name
from semcoat_cli.app import app

REPO = Path(__file__).resolve().parents[2]
ALLOWED_FOREIGN = {"numpy", "bpy"}


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("addon")
    result = CliRunner().invoke(app, ["addon", "build", "--out", str(out)])
    assert result.exit_code == 0, result.output
    path = Path(result.output.strip())
    assert path == out / extension_zip_name()
    return path


def test_build_is_reproducible_and_holds_ui_scene_and_wheel(extension_zip: Path, tmp_path: Path) -> None:
    assert build_extension(tmp_path).read_bytes() == extension_zip.read_bytes()
    with zipfile.ZipFile(extension_zip) as archive:
        names = set(archive.namelist())
    for module in ("__init__", "preferences", "properties", "operators", "panels", "client", "polling"):
        assert f"{module}.py" in names
    assert {"blender_manifest.toml", f"wheels/{core_wheel_name()}", "scene/builder.py", "scene/geometry.py"} <= names
    assert not [n for n in names if n.startswith("render_node/") or n in ("commands.py", "extension_build.py")
                or "__pycache__" in n]


def _imports(source: str) -> set[str]:
    """Top-level names of the absolute imports of a module (relative ones stay inside the package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_every_module_in_the_zip_imports_only_what_blenders_python_has(extension_zip: Path) -> None:
    own_top = {"semcoat"}  # the core, from the zip's own wheel
    checked = 0
    problems = []
    with zipfile.ZipFile(extension_zip) as archive:
        sources = {n: archive.read(n).decode() for n in archive.namelist() if n.endswith(".py")}
        with zipfile.ZipFile(io.BytesIO(archive.read(f"wheels/{core_wheel_name()}"))) as wheel:
            sources.update({f"wheel:{n}": wheel.read(n).decode() for n in wheel.namelist() if n.endswith(".py")})
    for name, source in sources.items():
        foreign = _imports(source) - set(sys.stdlib_module_names) - ALLOWED_FOREIGN - own_top
        if foreign:
            problems.append(f"{name}: {sorted(foreign)}")
        checked += 1
    assert checked >= 20 and not problems, problems
    # the check has teeth
    assert _imports("import scipy.ndimage\nfrom cv2 import dilate\nfrom . import x") == {"scipy", "cv2"}


@pytest.mark.blender
def test_blenders_validator_accepts_the_zip(extension_zip: Path) -> None:
    import bpy

    validator = Path(bpy.__file__).parents[2] / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    ok = subprocess.run([sys.executable, str(validator), "validate", str(extension_zip)], capture_output=True,
                        text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr


INSTALL_SCRIPT = r"""
import json, sys, threading
import bpy, addon_utils
zip_path = sys.argv[1]
out = {"extensions": bpy.utils.user_resource('EXTENSIONS')}
out["install"] = sorted(bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                                  enable_on_install=True))
module = "bl_ext.user_default.semcoat"
out["enabled"] = module in bpy.context.preferences.addons
addon = sys.modules[module]
runtime = sys.modules[module + ".runtime"]
import glob, os
out["wheel_installed"] = glob.glob(os.path.join(out["extensions"], ".local", "lib", "python*", "site-packages",
                                                "semcoat", "spec.py"))
out["ops"] = sorted(n for n in dir(bpy.ops.semcoat) if not n.startswith("_"))
out["panels_before"] = sorted(n for n in dir(bpy.types) if n.startswith("SEMCOAT_"))
# work the add-on: a preset, a preview, the poller and its timer
bpy.ops.semcoat.apply_preset(preset="5h_650C")
out["thickness"] = bpy.context.scene.semcoat.layers.fe2al5_thickness_um
prefs = bpy.context.preferences.addons[module].preferences
prefs.service_url = "http://127.0.0.1:9"
ref = bpy.context.scene.semcoat.batch.batches.add(); ref.batch_id = "0123456789abcdef"
runtime.follow(bpy.context)
timer = runtime._timer
out["threads_running"] = sorted(t.name for t in threading.enumerate() if t.name.startswith("semcoat"))
out["timer_registered"] = bpy.app.timers.is_registered(timer)
addon_utils.disable(module, default_set=True)
out["disabled"] = module not in bpy.context.preferences.addons
out["classes_after"] = sorted(n for n in dir(bpy.types) if n.startswith("SEMCOAT_"))
out["scene_property_after"] = hasattr(bpy.types.Scene, "semcoat")
out["wm_property_after"] = hasattr(bpy.types.WindowManager, "semcoat")
out["timer_after"] = bpy.app.timers.is_registered(timer)
out["threads_after"] = sorted(t.name for t in threading.enumerate() if t.name.startswith("semcoat"))
out["handler_after"] = [h.__name__ for h in bpy.app.handlers.load_post if h.__module__.startswith(module)]
print("RESULT " + json.dumps(out))
"""


@pytest.mark.blender
@pytest.mark.slow
def test_zip_installs_enables_and_disables_cleanly(extension_zip: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"}
    proc = subprocess.run([sys.executable, "-c", INSTALL_SCRIPT, str(extension_zip)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(li for li in proc.stdout.splitlines() if li.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    assert out["extensions"].startswith(str(home))
    assert out["install"] == ["FINISHED"] and out["enabled"]
    assert out["ops"] == sorted(["generate_preview", "render_preview", "render_on_cluster", "refresh_jobs",
                                 "cancel_job", "download_results", "open_folder", "export_spec", "import_spec",
                                 "apply_preset", "test_connection"])
    assert {"SEMCOAT_PT_design", "SEMCOAT_PT_imaging", "SEMCOAT_PT_batch", "SEMCOAT_PT_jobs"} <= set(
        out["panels_before"])
    assert out["thickness"] == 55.0
    # the core came from the zip's wheel, installed into the extension's own site folder
    assert out["wheel_installed"], "the core wheel was not installed"
    assert out["threads_running"] == ["semcoat-poller"] and out["timer_registered"]
    assert out["disabled"]
    assert out["classes_after"] == [] and not out["scene_property_after"] and not out["wm_property_after"]
    assert not out["timer_after"] and out["threads_after"] == [] and out["handler_after"] == []
