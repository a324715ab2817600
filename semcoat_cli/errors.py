"""How every command reports errors and which exit code it ends with: one convention for all of them.

Exit codes:

- ``EXIT_OK`` (0): done.
- ``EXIT_FAILED`` (1): the command ran and what it did or checked failed: a render or a prediction of an image failed,
  a check found problems.
- ``EXIT_USAGE`` (2): bad input (an option, a spec, a file, a folder): nothing was done.
- ``EXIT_BY_SIGNAL``: stopped by SIGINT (130) or SIGTERM (143), as a shell reports a process ended by that signal.

Commands catch :class:`semcoat.errors.SemcoatError` (errors a user can act on) through :func:`user_errors`; anything
else is a bug and shows as one.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator, Mapping

import typer

from semcoat.errors import SemcoatError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BY_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}

# An error message quotes what it was given; a hostile input (a 50 MB field name) must not make it unbounded.
MAX_MESSAGE_CHARS = 4000


def option_name(argument: str, flags: Mapping[str, str] | None = None) -> str:
    """The command-line flag of a function argument: ``flags[argument]`` or ``--`` + the name with dashes."""
    if flags and argument in flags:
        return flags[argument]
    return "--" + argument.replace("_", "-")


def message_of(exc: SemcoatError, flags: Mapping[str, str] | None = None) -> str:
    """The error's message, prefixed with the flag it is about (library messages never name flags)."""
    text = str(exc)
    if exc.argument:
        text = f"{option_name(exc.argument, flags)}: {text}"
    return text


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``error: message`` on stderr (capped in length) and return the Exit to raise."""
    if len(message) > MAX_MESSAGE_CHARS:
        message = f"{message[:MAX_MESSAGE_CHARS]}... ({len(message) - MAX_MESSAGE_CHARS} more characters)"
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextlib.contextmanager
def user_errors(code: int = EXIT_USAGE, flags: Mapping[str, str] | None = None) -> Iterator[None]:
    """Turn a :class:`SemcoatError` raised inside the block into ``error: ...`` and exit ``code``.

    ``flags`` maps argument names to flags where they differ from ``--argument-name``.
    """
    try:
        yield
    except SemcoatError as exc:
        raise fail(message_of(exc, flags), code) from exc
