"""``semcoat version``: what this installation is (package, renderer's generator version, batch-schema fingerprint,
parts that can run), as the render service compares it with the cluster's (:mod:`semcoat.versions`).

The renderer is imported only when the command runs (about a second: numpy, OpenCV), so ``semcoat --help`` stays
light; the optional parts are looked up without importing them.
"""

from __future__ import annotations

import functools
import importlib.util

import typer

from semcoat import __version__
from semcoat.versions import InstalledVersion, batch_schema_fingerprint

# An optional part can run where all of its modules can be found.
PART_MODULES = {"render": ("bpy", "cv2"), "train": ("torch", "lightning")}


def _found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def generator_version() -> str | None:
    """The renderer's generator version (``dataset.json``'s), or None where the render part is not installed."""
    try:
        from blender_addon.render_node.batch_render import GENERATOR_VERSION  # noqa: PLC0415 - numpy, OpenCV
    except ImportError:
        return None
    return GENERATOR_VERSION


@functools.cache
def installed_version() -> InstalledVersion:
    """This installation (computed once per process: it cannot change under a running program)."""
    generator = generator_version()
    parts = tuple(part for part, modules in PART_MODULES.items()
                  if all(_found(m) for m in modules) and (part != "render" or generator is not None))
    return InstalledVersion(__version__, generator, batch_schema_fingerprint(), parts, train_config_version())


def train_config_version() -> str | None:
    """The training-config fingerprint, or None where the config checks cannot load (no PyYAML: neither the train
    nor the service part is installed)."""
    try:
        from training.config_check import train_config_fingerprint  # noqa: PLC0415 - PyYAML
    except ImportError:
        return None
    return train_config_fingerprint()


def version_command(
    as_json: bool = typer.Option(False, "--json", help="One line of JSON (what the render service reads)."),
) -> None:
    """Print this installation's version, renderer generator, batch-schema fingerprint and installed parts."""
    info = installed_version()
    if as_json:
        typer.echo(info.to_json())
        return
    typer.echo(f"semcoat {info.semcoat}\ngenerator: {info.generator or '(no render part)'}\n"
               f"batch schema: {info.batch_schema}\ntraining config: {info.train_config or '(no train part)'}\n"
               f"parts: {', '.join(info.parts) or 'none'}")
