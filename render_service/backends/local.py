"""The ``local`` backend: render tasks as processes on this machine, writing straight into the service's dataset
folder ``<batches_dir>/<batch id>/``.

Each task runs ``semcoat render`` (the one chunk command line, :func:`semcoat.batch.render_chunk_argv`) through
:mod:`render_service.backends.local_task`, which leaves the exit code in ``<work_dir>/<batch id>/tasks/<index>.exit``
and the output in ``<index>.log`` beside it. The work folder is outside the dataset folder, so listings and archives
show the dataset only. A worker that restarts tells a finished task (exit file) from a running one (the wrapper is
alive) from a lost one (neither: a failed attempt, retried).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from render_service.backends.base import BatchView, Handle, HealthReport, Launch, Observation, TaskView
from semcoat.batch import render_chunk_argv

WORKER_SEMCOAT = (sys.executable, "-m", "semcoat_cli")
_LOG_TAIL_BYTES = 4000


def count_complete_samples(dataset_dir: Path) -> int:
    """Complete samples in a dataset folder: meta files ``<6+ digits>.json`` (a sample is complete when its meta
    file exists; temporary names do not count)."""
    meta = dataset_dir / "meta"
    if not meta.is_dir():
        return 0
    return sum(1 for name in os.listdir(meta) if name.endswith(".json") and name[:-5].isdigit())


def read_tail(path: Path, max_bytes: int = _LOG_TAIL_BYTES) -> str | None:
    """The last ``max_bytes`` of a file, decoded (None when it does not exist)."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - max_bytes))
            return handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None


def process_running(pid: int, marker: str) -> bool:
    """True when ``pid`` is alive (not a zombie) and its command line holds ``marker`` (so a reused pid of another
    program does not count)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rsplit(b")", 1)[1].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in (b"Z", b"X") and marker in cmdline


class LocalBackend:
    """Render tasks as local processes, at most ``max_processes`` at once."""

    name = "local"

    def __init__(self, batches_dir: Path, work_dir: Path, max_processes: int, threads_per_process: int = 1,
                 semcoat_command: Sequence[str] = WORKER_SEMCOAT) -> None:
        """``semcoat_command``: the argv that runs ``semcoat`` (default: this worker's own, on its Python)."""
        self.batches_dir = Path(batches_dir)
        self.work_dir = Path(work_dir)
        self.max_in_flight: int | None = max_processes
        self.threads_per_process = threads_per_process
        self.semcoat_command = tuple(semcoat_command)
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # -- paths ---------------------------------------------------------------------------------------------------
    def dataset_dir(self, batch_id: str) -> Path:
        """The batch's dataset folder (what the API lists and archives)."""
        return self.batches_dir / batch_id

    def tasks_dir(self, batch_id: str) -> Path:
        """The batch's bookkeeping: ``<index>.exit`` and ``<index>.log`` of each task."""
        return self.work_dir / batch_id / "tasks"

    def _exit_file(self, batch_id: str, index: int) -> Path:
        return self.tasks_dir(batch_id) / f"{index}.exit"

    def _log_file(self, batch_id: str, index: int) -> Path:
        return self.tasks_dir(batch_id) / f"{index}.log"

    # -- Backend -------------------------------------------------------------------------------------------------
    def launch(self, batch: BatchView, tasks: Sequence[TaskView]) -> Launch:
        """Start one process per task (the orchestration never asks for more than ``max_in_flight``)."""
        spec_file = self.work_dir / batch.id / "batch.json"
        self.tasks_dir(batch.id).mkdir(parents=True, exist_ok=True)
        if not spec_file.exists():
            staging = spec_file.with_name(".batch.json.tmp")
            staging.write_text(batch.spec_json, encoding="utf-8")
            staging.replace(spec_file)
        out = self.dataset_dir(batch.id)
        out.mkdir(parents=True, exist_ok=True)
        handles: dict[int, Handle] = {}
        for task in tasks:
            exit_file = self._exit_file(batch.id, task.index)
            exit_file.unlink(missing_ok=True)  # a retry: the last attempt's code is in the database already
            argv = render_chunk_argv(self.semcoat_command, str(spec_file), str(out), task.start, task.count,
                                     self.threads_per_process)
            with open(self._log_file(batch.id, task.index), "wb") as log:
                child = subprocess.Popen(
                    [sys.executable, "-m", "render_service.backends.local_task", str(exit_file), "--", *argv],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            self._children[child.pid] = child
            handles[task.index] = Handle(pid=child.pid)
        return Launch(handles=handles)

    def observe(self, batches: Sequence[BatchView]) -> dict[str, dict[int, Observation]]:
        """Each handed-over task: its exit file's code, else running while its wrapper lives, else lost (failed)."""
        self._reap()
        seen: dict[str, dict[int, Observation]] = {}
        for batch in batches:
            for task in batch.tasks:
                if task.pid is None or task.state not in ("pending", "running"):
                    continue
                seen.setdefault(batch.id, {})[task.index] = self._observe_task(batch.id, task)
        return seen

    def _observe_task(self, batch_id: str, task: TaskView) -> Observation:
        assert task.pid is not None
        exit_file = self._exit_file(batch_id, task.index)
        running = process_running(task.pid, str(exit_file))
        code = self._read_exit_code(exit_file)  # after the liveness check: a task ending in between has its file
        log_tail = read_tail(self._log_file(batch_id, task.index))
        if code is not None:
            return Observation("done" if code == 0 else "failed", exit_code=code, log_tail=log_tail)
        if running:
            return Observation("running")
        lost = "the render process ended without leaving an exit code (killed with its worker, or the machine " \
               "restarted)"
        return Observation("failed", exit_code=None, log_tail=f"{log_tail or ''}\n{lost}")

    @staticmethod
    def _read_exit_code(path: Path) -> int | None:
        try:
            return int(path.read_text(encoding="ascii").strip())
        except (FileNotFoundError, ValueError):
            return None

    def stop(self, batch: BatchView) -> None:
        """SIGTERM each running task's wrapper, which passes it on: the render stops after the image in hand."""
        for task in batch.tasks:
            if task.pid is not None and process_running(task.pid, str(self._exit_file(batch.id, task.index))):
                try:
                    os.kill(task.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass  # ended in between: nothing to stop

    def collect(self, batch: BatchView) -> int:
        """Nothing to fetch: the processes write into the dataset folder. Counts its complete samples."""
        return count_complete_samples(self.dataset_dir(batch.id))

    def check(self) -> HealthReport:
        """Always reachable: it is this machine."""
        return HealthReport(True, f"local render processes, at most {self.max_in_flight} at once")

    def _reap(self) -> None:
        # the processes this worker started: collect their exit status so none lingers as a zombie
        for pid, child in list(self._children.items()):
            if child.poll() is not None:
                del self._children[pid]
