"""semcoat's Blender add-on: design a coating in the sidebar, preview it, render it on the cluster, follow the jobs.

This package is also home to the scene package (``blender_addon.scene``) and the render node
(``blender_addon.render_node``); importing those registers nothing. Blender calls :func:`register` when the
extension is enabled; the UI modules are imported then, relatively (inside an installed extension the package is
``bl_ext.<repo>.semcoat``), and registered in order: preferences, properties, operators, panels, then the running
parts (poller, downloads, timer). :func:`unregister` undoes it in reverse and stops every thread and the timer.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# Registered in this order, unregistered in reverse.
UI_MODULES = ("preferences", "properties", "operators", "panels", "runtime")


def _modules() -> list[ModuleType]:
    return [importlib.import_module(f".{name}", __package__) for name in UI_MODULES]


def register() -> None:
    """Register the add-on's classes and start following the open file's batches when files are loaded."""
    for module in _modules():
        module.register()


def unregister() -> None:
    """Stop the poller, downloads and timer, and unregister every class."""
    for module in reversed(_modules()):
        module.unregister()
