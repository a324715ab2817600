"""``semcoat addon build --out DIR``: write the Blender extension zip (install it in Blender 4.2+ from
Preferences > Get Extensions > Install from Disk)."""

from __future__ import annotations

from pathlib import Path

import typer

from semcoat_cli.errors import EXIT_FAILED, fail

addon_app = typer.Typer(help="The Blender add-on: build the extension zip.", no_args_is_help=True)


@addon_app.command("build")
def build(
    out: Path = typer.Option(..., "--out", help="Folder to write semcoat-<version>.zip into (created if needed)."),
) -> None:
    """Build the extension zip: the add-on's UI, the scene package and the core as a pure-Python wheel."""
    from blender_addon.extension_build import build_extension

    try:
        path = build_extension(out)
    except OSError as exc:
        raise fail(f"cannot write the extension into {out}: {exc.strerror or exc}", EXIT_FAILED) from exc
    typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Add ``semcoat addon ...`` to the command line."""
    app.add_typer(addon_app, name="addon")
