"""The admin's commands: ``semcoat serve`` (the API; with no configuration the whole embedded default) and
``semcoat token create|list|revoke`` (bearer tokens, run on the server, straight on the database)."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

import typer

from semcoat_cli.errors import EXIT_BY_SIGNAL, EXIT_FAILED, fail, user_errors

if TYPE_CHECKING:
    from render_service.db.session import Database

token_app = typer.Typer(help="Bearer tokens of the service's users (run on the server).", no_args_is_help=True)


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback unless you say otherwise)."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
) -> None:
    """Run the render service. With no SEMCOAT_REDIS_URL: the API, its own Redis, one local worker and a token
    for the first user (the embedded default). With it: the API only (workers run as `semcoat worker`)."""
    import faulthandler

    from render_service.embedded import EmbeddedError, StopRequested
    from render_service.embedded import serve as run
    from render_service.settings import load_settings

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 PID` prints every thread's stack
    try:
        with user_errors():
            settings = load_settings()
        run(settings, host, port, echo=lambda line: typer.echo(f"semcoat serve: {line}", err=True))
    except StopRequested as stopped:
        typer.echo("semcoat serve: stopped; every process it started has ended", err=True)
        raise typer.Exit(EXIT_BY_SIGNAL.get(signal.Signals(stopped.signum), EXIT_FAILED)) from None
    except EmbeddedError as exc:
        raise fail(str(exc), EXIT_FAILED) from exc


def _database() -> Database:
    """The service's database (migrated), from the settings."""
    from render_service.db.session import Database
    from render_service.settings import load_settings

    with user_errors():
        return Database(load_settings().database)


@token_app.command("create")
def token_create(
    owner: str = typer.Argument(..., help="The user the token is for (letters, digits, . _ @ -)."),
) -> None:
    """Make a token for OWNER and print it once (only its SHA-256 is kept)."""
    from render_service.tokens import create_token

    database = _database()
    with user_errors(flags={"owner": "OWNER"}), database.session() as session:
        row, token = create_token(session, owner)
    typer.echo(token)
    typer.echo(f"token {row.id} for {owner}: shown once, keep it (revoke: semcoat token revoke {row.id})", err=True)


@token_app.command("list")
def token_list() -> None:
    """Every token: id, user, created, revoked (tokens themselves are never shown: they are not stored)."""
    from render_service.tokens import list_tokens

    database = _database()
    with database.session() as session:
        rows = list_tokens(session)
        typer.echo(f"{'ID':>4}  {'USER':<24} {'CREATED':<20} REVOKED")
        for row in rows:
            revoked = row.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if row.revoked_at else "-"
            typer.echo(f"{row.id:>4}  {row.owner:<24} {row.created_at.strftime('%Y-%m-%d %H:%M:%S'):<20} {revoked}")


@token_app.command("revoke")
def token_revoke(
    token_id: int = typer.Argument(None, help="The token's id (from `semcoat token list`).", show_default=False),
    owner: str = typer.Option(None, "--owner", help="Revoke every token of this user instead."),
) -> None:
    """Revoke a token (by id) or every token of a user; requests with it get 401 from then on."""
    from render_service.tokens import revoke_tokens

    if (token_id is None) == (owner is None):
        raise fail("give a token id or --owner USER (one of them)")
    database = _database()
    with user_errors(flags={"token_id": "TOKEN_ID"}), database.session() as session:
        count = revoke_tokens(session, token_id=token_id, owner=owner)
    if count == 0:
        raise fail(f"no active token {'with id ' + str(token_id) if token_id is not None else 'of ' + str(owner)}",
                   EXIT_FAILED)
    typer.echo(f"revoked {count} token(s)")


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``token`` to the ``semcoat`` app."""
    app.command("serve")(serve)
    app.add_typer(token_app, name="token")
