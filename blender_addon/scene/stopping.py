"""Asking long work to stop: a check that the caller passes in, and the exception that abandons the work.

The scene package knows nothing of signals or of the render node: a caller that may need to stop (the render command
on Ctrl-C or scancel) passes a plain callable, e.g. ``threading.Event().is_set``; the long loops call it every few
tenths of a second and raise :class:`Interrupted` when it answers True. Without a check nothing is ever asked, so the
work and its results are exactly what they are without this module.
"""

from __future__ import annotations

from collections.abc import Callable

StopCheck = Callable[[], bool]
"""() -> True when the work in hand should be abandoned."""


class Interrupted(Exception):
    """The caller asked the work to stop (its stop check answered True); whatever was half made is to be discarded."""


def check(should_stop: StopCheck | None) -> None:
    """Raise :class:`Interrupted` if ``should_stop`` is given and answers True."""
    if should_stop is not None and should_stop():
        raise Interrupted("stopped on request")
