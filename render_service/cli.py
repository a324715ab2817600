"""The service's commands: ``serve``, ``worker``, ``token ...`` (the admin's) and ``submit``, ``status``, ``fetch``,
``cancel`` (the REST client's). Each lives in its own module under ``render_service/commands`` with a
``register(app)``; their heavy imports (FastAPI, Celery, httpx) happen inside the commands, so ``semcoat --help``
stays light."""

from __future__ import annotations

import importlib
import importlib.util

import typer

COMMAND_MODULES = (
    "render_service.commands.admin",
    "render_service.commands.worker",
    "render_service.commands.client",
)


def register(app: typer.Typer) -> None:
    """Add the service's commands to the ``semcoat`` app."""
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is not None:  # each lands with its part of the service
            importlib.import_module(name).register(app)
