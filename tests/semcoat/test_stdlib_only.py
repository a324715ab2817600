"""The shared core is copied into the Blender add-on, whose Python has no project dependencies: stdlib only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import semcoat

CORE = Path(semcoat.__file__).parent
# Command-line front ends use Typer and are not copied into the add-on.
COMMAND_LINE_MODULES: set[str] = set()


def _imported_top_level_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_modules_import_only_the_standard_library_and_semcoat() -> None:
    offenders = {}
    for path in sorted(CORE.glob("*.py")):
        if path.name in COMMAND_LINE_MODULES:
            continue
        foreign = {n for n in _imported_top_level_names(path) if n != "semcoat" and n not in sys.stdlib_module_names}
        if foreign:
            offenders[path.name] = sorted(foreign)
    assert offenders == {}
    assert len(list(CORE.glob("*.py"))) > len(COMMAND_LINE_MODULES)
