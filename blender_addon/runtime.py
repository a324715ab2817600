"""The add-on's running parts on Blender's main thread: the poller and downloads, the timer that drains their queue
into ``WindowManager.semcoat``, and the handler that resumes following a file's batches when it is opened.

Only this module touches bpy on behalf of the threads, and only from the main thread (the timer, the handler,
operators). Unregistering stops every thread and the timer.
"""

from __future__ import annotations

import queue
from pathlib import Path
from typing import Any

import bpy

from .client import BatchStatus, ServiceClient
from .polling import (
    BatchMissing,
    BatchUpdate,
    ConnectionState,
    Download,
    DownloadFailed,
    DownloadFinished,
    DownloadProgress,
    Message,
    Poller,
    drain,
)
from .preferences import client_from

TIMER_INTERVAL_S = 1.0
_messages: queue.SimpleQueue[Message] = queue.SimpleQueue()
_poller: Poller | None = None
_downloads: dict[str, Download] = {}


def messages() -> queue.SimpleQueue[Message]:
    """The queue the threads post to."""
    return _messages


def poller() -> Poller | None:
    """The running poller, if any."""
    return _poller


# --- WindowManager state -------------------------------------------------------------------------------------------
def job_entry(wm: Any, batch_id: str, create: bool = True) -> Any:
    """The WindowManager's entry for ``batch_id`` (made when missing and ``create``), or None."""
    for job in wm.semcoat.jobs:
        if job.batch_id == batch_id:
            return job
    if not create:
        return None
    job = wm.semcoat.jobs.add()
    job.batch_id = batch_id
    return job


def show_status(wm: Any, status: BatchStatus) -> Any:
    """Copy a batch status into its WindowManager entry."""
    job = job_entry(wm, status.id)
    job.name, job.state, job.backend = status.name, status.state, status.backend
    job.count, job.images_done, job.progress = status.count, status.images_done, status.progress
    job.error = status.error or ""
    return job


def apply(message: Message, wm: Any) -> None:
    """Apply one poller or download message to the WindowManager (main thread only)."""
    session = wm.semcoat
    if isinstance(message, BatchUpdate):
        show_status(wm, message.batch)
    elif isinstance(message, ConnectionState):
        session.connection_ok, session.connection_message = message.ok, message.message
    elif isinstance(message, BatchMissing):
        job = job_entry(wm, message.batch_id)
        job.state, job.error = "unknown", message.message
    elif isinstance(message, DownloadProgress):
        job_entry(wm, message.batch_id).download = f"downloading: {message.bytes_done / 1e6:.1f} MB"
    elif isinstance(message, DownloadFinished):
        job = job_entry(wm, message.batch_id)
        job.folder = message.folder
        job.download = ("downloaded; the dataset check passed" if not message.problems else
                        f"downloaded; the dataset check found {len(message.problems)} problem(s): "
                        f"{message.problems[0]}")
        _downloads.pop(message.batch_id, None)
    elif isinstance(message, DownloadFailed):
        job_entry(wm, message.batch_id).download = f"download failed: {message.message}"
        _downloads.pop(message.batch_id, None)
    _redraw()


def drain_messages(wm: Any = None) -> int:
    """Apply every waiting message to ``wm`` (default: the current WindowManager); returns how many."""
    wm = wm if wm is not None else bpy.context.window_manager
    return drain(_messages, lambda m: apply(m, wm))


def _redraw() -> None:
    """Redraw the 3D views' sidebars so the Jobs section shows the news (nothing to do without a UI)."""
    wm = bpy.context.window_manager
    for window in getattr(wm, "windows", ()):
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


def _timer() -> float:
    """Drain the queue on the main thread; runs every second while the add-on is enabled."""
    drain_messages()
    return TIMER_INTERVAL_S


# --- following batches ---------------------------------------------------------------------------------------------
def scene_batch_ids(scene: Any) -> list[str]:
    """The batches sent from this file (kept on the Scene)."""
    return [ref.batch_id for ref in scene.semcoat.batch.batches if ref.batch_id]


def remember_batch(scene: Any, status: BatchStatus) -> None:
    """Keep ``status``'s id on the Scene (saved with the file)."""
    if status.id not in scene_batch_ids(scene):
        ref = scene.semcoat.batch.batches.add()
        ref.batch_id, ref.name = status.id, status.name


def follow(context: Any, wake: bool = True) -> Poller:
    """Follow every batch kept on the scene that has not ended: make the WindowManager entries, start the poller (with
    the preferences' URL and token) and the timer."""
    global _poller
    client = client_from(context)
    wm = context.window_manager
    for ref in context.scene.semcoat.batch.batches:
        job = job_entry(wm, ref.batch_id)
        job.name = job.name or ref.name
    ids = [i for i in scene_batch_ids(context.scene)
           if (job := job_entry(wm, i, create=False)) is None or job.state not in ("succeeded", "failed", "cancelled")]
    if _poller is None:
        _poller = Poller(client, _messages)
    elif (_poller.client.url, _poller.client.token) != (client.url, client.token):
        _poller.client = client  # the preferences changed: one assignment, read by the thread at its next poll
    _poller.follow(ids)
    _poller.start()
    if wake:
        _poller.wake()
    ensure_timer()
    return _poller


def ensure_timer() -> None:
    """Register the draining timer (once)."""
    if not bpy.app.timers.is_registered(_timer):
        bpy.app.timers.register(_timer, first_interval=TIMER_INTERVAL_S, persistent=True)


def start_download(client: ServiceClient, batch_id: str, folder: Path) -> Download:
    """Download a batch in a thread; its progress and end arrive through the queue."""
    running = _downloads.get(batch_id)
    if running is not None and running.thread.is_alive():
        return running
    download = Download(client, batch_id, folder, _messages)
    _downloads[batch_id] = download
    download.start()
    ensure_timer()
    return download


def downloads() -> dict[str, Download]:
    """The downloads running (or finished but not yet drained)."""
    return dict(_downloads)


@bpy.app.handlers.persistent
def _on_load(_file: Any, _context: Any = None) -> None:
    """A file was opened: follow the batches it was following (if any, and if the add-on is set up)."""
    context = bpy.context
    if context.scene is None or not scene_batch_ids(context.scene):
        return
    try:
        follow(context)
    except Exception as exc:  # noqa: BLE001 - a handler must never break opening a file; the panel shows why
        context.window_manager.semcoat.connection_message = str(exc)


def register() -> None:
    """Resume following batches whenever a file is opened."""
    bpy.app.handlers.load_post.append(_on_load)


def unregister() -> None:
    """Stop the poller, every download and the timer; forget the handler."""
    global _poller
    if _on_load in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_on_load)
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
    if _poller is not None:
        _poller.stop()
        _poller = None
    for download in list(_downloads.values()):
        download.stop()
    _downloads.clear()
    drain(_messages, lambda _m: None)
