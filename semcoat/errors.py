"""One base for errors a user can act on.

Every error that says what was wrong with an input (a value, a file, a folder, a remote cluster) derives from
:class:`SemcoatError`. Adapters (the command line, the service's HTTP handlers and Celery tasks) catch this base and
show its message; anything else escaping them is a bug and shows as one.

Library messages never name command-line flags: an error about one argument of a function says which argument in
``argument`` (its Python name), and each adapter names it the way its users know it (``--start``, a JSON field).
"""

from __future__ import annotations


class SemcoatError(Exception):
    """An error the user can act on: the message says what was wrong, with the value, and what is accepted.

    ``argument`` names the function argument the error is about (Python name, e.g. ``"pixel_size_um"``), or is None.
    """

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument


class InvalidArgument(SemcoatError):
    """An argument of a call is outside what is accepted (a range, an option combination)."""
