"""Where a training's Lightning CSV log is, and reading only what its progress needs of it.

A fit logs into ``<run>/logs/version_N/metrics.csv`` (:func:`training.lightning_cli.default_loggers`); the newest
``version_N`` (highest N) is the run's: a training job runs only its fit there (``semcoat train package`` passes
over the folders of other runs: :func:`training.package.fit_log_dir`). The run folder is ``<job folder>/run``
for both backends: in place for a local training (``<data dir>/work/trainings/<id>/run``), on the cluster for a
Slurm one, whose worker keeps its latest copy of the log at ``<data dir>/work/trainings/<id>/live/metrics.csv``.
Once collected, ``<data dir>/trainings/<id>/metrics.csv`` is the whole log.

A log read for progress is a :class:`~render_service.training_progress.MetricsWindow`: the header line (the first
:data:`HEAD_BYTES` at most) and the last :data:`TAIL_BYTES`, so a log of any length costs the same to follow.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from render_service.files import FileRefused, open_file
from render_service.training_progress import MetricsWindow, header_of

METRICS_CSV = "metrics.csv"  # (training_base.METRICS_FILE is the package's metrics.json)
LIVE_DIR = "live"
HEAD_BYTES = 64 * 1024
TAIL_BYTES = 256 * 1024
_VERSION = re.compile(r"version_(\d+)")


def training_work_dir(data_dir: Path) -> Path:
    """Where the worker keeps each training's job folder: ``<data dir>/work/trainings``."""
    return Path(data_dir) / "work" / "trainings"


def newest_version(names: Iterable[str]) -> str | None:
    """The newest ``version_N`` folder name among ``names`` (highest N), or None."""
    found = [(int(m.group(1)), name) for name in names if (m := _VERSION.fullmatch(name))]
    return max(found)[1] if found else None


def run_metrics_relative(job_dir: Path) -> str | None:
    """``run/logs/version_N/metrics.csv`` of the newest version under a local job folder (None: no log folder)."""
    try:
        names = os.listdir(job_dir / "run" / "logs")
    except OSError:
        return None
    version = newest_version(names)
    return None if version is None else f"run/logs/{version}/{METRICS_CSV}"


def live_metrics(job_dir: Path) -> tuple[Path, str] | None:
    """(folder, relative path) of a running training's log as the service sees it: the worker's copy of a Slurm
    training's, else the local run's own; None before the fit has logged anything."""
    if (job_dir / LIVE_DIR / METRICS_CSV).is_file():
        return job_dir, f"{LIVE_DIR}/{METRICS_CSV}"
    relative = run_metrics_relative(job_dir)
    return (job_dir, relative) if relative is not None and (job_dir / relative).is_file() else None


def read_window(path: Path, head_bytes: int = HEAD_BYTES, tail_bytes: int = TAIL_BYTES) -> MetricsWindow:
    """The header line and the last ``tail_bytes`` of a log on this machine (the whole file when it is small).
    Raises OSError when it cannot be read."""
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        return window_of(handle, info.st_size, info.st_mtime, head_bytes, tail_bytes)


def window_of(handle: IO[bytes], size: int, mtime: float, head_bytes: int = HEAD_BYTES,
              tail_bytes: int = TAIL_BYTES) -> MetricsWindow:
    """The window of an open log of ``size`` bytes: at most ``head_bytes + tail_bytes + 1`` bytes are read."""
    if size <= head_bytes + tail_bytes:
        text = handle.read(size).decode("utf-8", errors="replace")
        header = header_of(text)
        body = text[text.find("\n") + 1:] if header is not None else ""
        return MetricsWindow(header, body, True, size, mtime)
    head = handle.read(head_bytes).decode("utf-8", errors="replace")
    handle.seek(size - tail_bytes - 1)
    tail = handle.read(tail_bytes + 1)
    # the byte before the window tells whether the window starts a line
    return MetricsWindow(header_of(head), tail[1:].decode("utf-8", errors="replace"), tail[:1] == b"\n", size,
                         mtime)


def open_complete_lines(root: Path, relative: str) -> tuple[IO[bytes], int] | None:
    """A log opened through :func:`render_service.files.open_file` (no symlink followed) and the length of its
    complete lines (up to its last newline: a line still being written is left out); None when it is missing or
    holds no complete line. The caller reads that many bytes and closes the file."""
    try:
        handle, size = open_file(root, relative)
    except FileRefused:
        return None
    start = max(0, size - TAIL_BYTES)
    handle.seek(start)
    end = handle.read(size - start).rfind(b"\n")
    while end < 0 and start > 0:  # a last line longer than the tail read: look further back
        start = max(0, start - TAIL_BYTES)
        handle.seek(start)
        end = handle.read(TAIL_BYTES).rfind(b"\n")
    if end < 0:
        handle.close()
        return None
    handle.seek(0)
    return handle, start + end + 1
