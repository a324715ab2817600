"""Following the add-on's jobs in tests: drain its message queue on the main thread, as Blender's timer would."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


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
