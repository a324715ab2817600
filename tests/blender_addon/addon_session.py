"""The add-on in tests as Blender runs it: enabled from this checkout, and its job messages drained on the main
thread as Blender's timer would."""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def enabled_addon() -> Iterator[Any]:
    """bpy with the add-on enabled (as Blender enables an add-on package), disabled again on leaving."""
    import bpy

    addon_utils = importlib.import_module("addon_utils")  # on the path only once bpy is imported

    def fail(exc: Exception) -> None:
        raise exc

    addon_utils.enable("blender_addon", default_set=True, handle_error=fail)
    try:
        yield bpy
    finally:
        addon_utils.disable("blender_addon", default_set=True)


def drain_until(bpy: Any, condition: Callable[[], bool], timeout_s: float, what: str,
                context: Callable[[], str] = lambda: "") -> None:
    """Drain the queue every 0.2 s until ``condition()``; fail naming ``what`` (and ``context()``) after
    ``timeout_s``."""
    from blender_addon import runtime

    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{context()}"
        time.sleep(0.2)
        runtime.drain_messages(bpy.context.window_manager)
