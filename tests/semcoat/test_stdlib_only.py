"""The shared core is bundled into the Blender add-on, whose Python has no project dependencies: every module under
``semcoat/`` imports the standard library and the core only — a rule of the folder, with no exceptions."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import semcoat

CORE = Path(semcoat.__file__).parent


def _imported_top_level_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_modules_import_only_the_standard_library_and_semcoat() -> None:
    modules = sorted(CORE.rglob("*.py"))
    offenders = {}
    for path in modules:
        foreign = {n for n in _imported_top_level_names(path) if n != "semcoat" and n not in sys.stdlib_module_names}
        if foreign:
            offenders[str(path.relative_to(CORE))] = sorted(foreign)
    assert offenders == {}
    assert len(modules) >= 10  # the core's modules were found


def test_the_check_catches_a_foreign_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import json\nfrom typer import Typer\ndef f():\n    import numpy\n")
    assert _imported_top_level_names(module) - set(sys.stdlib_module_names) == {"typer", "numpy"}
