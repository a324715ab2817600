"""Following batches without freezing Blender: a poller thread and download threads post small messages to a queue.

No bpy here. The threads only talk HTTP (through :mod:`.client`) and put frozen dataclasses on a
``queue.SimpleQueue``; on Blender's main thread a timer calls :func:`drain`, which hands each message to a function
that updates the WindowManager. Tests call :func:`drain` directly (timers never fire in bpy's module mode).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from semcoat.dataset import check_dataset

from .client import BatchStatus, NotFound, ServiceClient, ServiceError, download_batch

DEFAULT_INTERVAL_S = 2.0
MAX_INTERVAL_S = 30.0


@dataclass(frozen=True)
class BatchUpdate:
    """The latest status of a followed batch."""

    batch: BatchStatus


@dataclass(frozen=True)
class BatchMissing:
    """The service no longer knows a followed batch (or it belongs to another token): it is no longer polled."""

    batch_id: str
    message: str


@dataclass(frozen=True)
class ConnectionState:
    """Whether the last poll reached the service; ``message`` says why not (empty when it did)."""

    ok: bool
    message: str = ""


@dataclass(frozen=True)
class DownloadProgress:
    """Bytes of a batch's archive received so far."""

    batch_id: str
    bytes_done: int


@dataclass(frozen=True)
class DownloadFinished:
    """A batch's dataset is in ``folder``; ``problems`` are what the dataset checker found (empty: it passed)."""

    batch_id: str
    folder: str
    problems: tuple[str, ...]


@dataclass(frozen=True)
class DownloadFailed:
    """A download did not complete; nothing of it was left in the download folder."""

    batch_id: str
    message: str


Message = BatchUpdate | BatchMissing | ConnectionState | DownloadProgress | DownloadFinished | DownloadFailed


def drain(messages: queue.SimpleQueue[Message], handle: Callable[[Message], None], limit: int = 1000) -> int:
    """Hand up to ``limit`` waiting messages to ``handle``, in order, without blocking; returns how many."""
    handled = 0
    while handled < limit:
        try:
            message = messages.get_nowait()
        except queue.Empty:
            break
        handle(message)
        handled += 1
    return handled


class Poller:
    """A daemon thread that polls the followed batches every ``interval_s`` (backing off while the service is down).

    Batches that have ended are polled once more and then dropped; :meth:`follow` sets the batches to follow,
    :meth:`wake` polls at once, :meth:`stop` ends the thread.
    """

    def __init__(self, client: ServiceClient, messages: queue.SimpleQueue[Message],
                 interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.client = client
        self.messages = messages
        self.interval_s = interval_s
        self._ids: list[str] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected: bool | None = None

    def follow(self, batch_ids: Iterable[str]) -> None:
        """Follow exactly these batches (order kept, duplicates dropped)."""
        with self._lock:
            self._ids = list(dict.fromkeys(batch_ids))

    def following(self) -> list[str]:
        """The batches followed now."""
        with self._lock:
            return list(self._ids)

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="semcoat-poller", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Poll now instead of at the next interval."""
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and wait for it (a request in flight finishes within the client's timeout)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def is_alive(self) -> bool:
        """True while the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def poll_once(self) -> bool:
        """Poll every followed batch once, posting a message for each; False when the service could not be reached."""
        for batch_id in self.following():
            if self._stop.is_set():
                return True
            try:
                status = self.client.batch(batch_id)
            except NotFound as exc:
                self._drop(batch_id)
                self.messages.put(BatchMissing(batch_id, str(exc)))
                continue
            except ServiceError as exc:
                self._set_connected(False, str(exc))
                return False
            self._set_connected(True)
            self.messages.put(BatchUpdate(status))
            if status.final:
                self._drop(batch_id)
        return True

    def _drop(self, batch_id: str) -> None:
        with self._lock:
            self._ids = [i for i in self._ids if i != batch_id]

    def _set_connected(self, ok: bool, message: str = "") -> None:
        if ok != self._connected or not ok:
            self.messages.put(ConnectionState(ok, message))
        self._connected = ok

    def _run(self) -> None:
        delay = self.interval_s
        while not self._stop.is_set():
            ok = self.poll_once()
            delay = self.interval_s if ok else min(MAX_INTERVAL_S, delay * 2)
            self._wake.wait(delay)
            self._wake.clear()


class Download:
    """Downloads one batch's dataset in a thread and checks it with the dataset checker; posts progress and the end."""

    def __init__(self, client: ServiceClient, batch_id: str, folder: Path,
                 messages: queue.SimpleQueue[Message]) -> None:
        self.client = client
        self.batch_id = batch_id
        self.folder = Path(folder)
        self.messages = messages
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"semcoat-download-{batch_id}", daemon=True)

    def start(self) -> None:
        """Start downloading."""
        self.thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop after the chunk in hand (nothing is left in the download folder) and wait for the thread."""
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout_s)

    def _progress(self, done: int) -> bool:
        self.messages.put(DownloadProgress(self.batch_id, done))
        return not self._stop.is_set()

    def _run(self) -> None:
        try:
            folder = download_batch(self.client, self.batch_id, self.folder, self._progress)
            report = check_dataset(folder)
        except (ServiceError, OSError) as exc:
            self.messages.put(DownloadFailed(self.batch_id, str(exc)))
            return
        self.messages.put(DownloadFinished(self.batch_id, str(folder), tuple(report.problems)))
