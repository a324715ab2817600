"""The single command-line entry ``semcoat``.

The core's own commands live in :mod:`semcoat_cli.core`; each part adds its subcommands through a ``register(app)``
function in its own ``cli`` module; this module only assembles them, so ``semcoat --help`` lists exactly the commands
that exist. Part modules import their heavy dependencies (torch, bpy, fastapi) inside the command functions, which
keeps ``--help`` fast (a test checks it).
"""

from __future__ import annotations

import importlib
import importlib.util

import typer

from semcoat import __version__

# Parts that contribute commands, in the order their commands are listed.
PART_CLI_MODULES = (
    "semcoat_cli.core",
    "blender_addon.render_node.cli",
    "blender_addon.commands",
    "render_service.cli",
    "training.cli",
    "analysis.cli",
)

app = typer.Typer(
    name="semcoat",
    help="Synthetic SEM cross-sections of slurry aluminide coatings: specs, rendering, training, measurement.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"semcoat {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."),
) -> None:
    """semcoat command line."""


def _register_parts() -> None:
    for module_name in PART_CLI_MODULES:
        # A part that has not landed yet has no cli module; a part that has one but fails to import is a real error.
        if importlib.util.find_spec(module_name) is None:
            continue
        importlib.import_module(module_name).register(app)


_register_parts()


def main() -> None:
    """Console-script entry point."""
    app()
