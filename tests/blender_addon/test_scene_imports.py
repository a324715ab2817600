"""The scene package, read as source: every import is the standard library, numpy, bpy, the core (``semcoat``) or a
relative import of the package's own modules, so it runs unchanged inside the installed extension
(``bl_ext.<repo>.semcoat``), where an absolute ``blender_addon.`` import would not resolve.

Every import statement counts, also those inside functions or under ``TYPE_CHECKING``. The run-time check of the
same rule is in test_extension_build.py.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SCENE_DIR = Path(__file__).resolve().parents[2] / "blender_addon" / "scene"
ALLOWED_TOP_LEVEL = {"numpy", "bpy", "semcoat"}


def foreign_imports(source: str) -> list[str]:
    """What ``source`` imports beyond the standard library, numpy, bpy, the core and relative modules."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level > 0:  # relative: the package's own modules
                continue
            names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top not in ALLOWED_TOP_LEVEL and top not in sys.stdlib_module_names:
                found.append((node.lineno, name))
    return [f"line {line}: {name}" for line, name in sorted(found)]


SCENE_MODULES = sorted(SCENE_DIR.glob("*.py"))


def test_the_scene_package_has_its_modules() -> None:
    assert {p.stem for p in SCENE_MODULES} >= {"__init__", "geometry", "placement", "neighbours", "builder"}


@pytest.mark.parametrize("module", SCENE_MODULES, ids=lambda p: p.name)
def test_scene_module_imports_only_stdlib_numpy_bpy_the_core_and_its_own_modules(module: Path) -> None:
    assert foreign_imports(module.read_text()) == []


def test_the_check_catches_what_would_break_the_extension() -> None:
    source = """
import numpy as np
import os.path
from . import geometry
from .placement import place
from semcoat.spec import CoatingSpec
import scipy.ndimage
from blender_addon.scene import geometry as g
def lazy():
    from cv2 import imencode
import semcoat_cli.errors
"""
    assert foreign_imports(source) == [
        "line 7: scipy.ndimage", "line 8: blender_addon.scene", "line 10: cv2", "line 11: semcoat_cli.errors"]
