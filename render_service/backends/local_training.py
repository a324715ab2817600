"""The ``local`` backend's trainings: the training job as one local process, the same commands a Slurm job runs.

Each training gets a work folder ``<work_dir>/<training id>/``: ``config.yaml``, ``job.sh`` (the bash script of
:func:`render_service.slurm.sbatch.training_local_script`: ``semcoat train fit`` with Lightning starting its own
processes, then ``semcoat train package``), ``run/`` (the fit's checkpoints and logs), ``outputs/`` (the package),
``job.log``, ``job.pid`` and ``job.exit``. The script runs through the local render tasks' exit-code wrapper
(:mod:`render_service.backends.local_task`), so a worker that restarts tells a finished job from a running or a lost
one. Collecting copies ``outputs/`` (and the log as ``train.log``) into ``<trainings_dir>/<id>/``, whole or not at all.
The fit's CSV log (``run/logs/version_N/metrics.csv``) is read in place for the training's progress at every poll
(its header and last bytes only).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from render_service.backends.base import Handle, Observation
from render_service.backends.local import WORKER_SEMCOAT, process_running, read_tail
from render_service.backends.training_base import (
    LOG_FILE,
    MODEL_FILE,
    MetricsRead,
    TrainingLaunch,
    TrainingView,
    devices_per_node,
)
from render_service.slurm.sbatch import TrainingJob, training_local_script
from render_service.slurm.transport import staged_local_path
from render_service.training_metrics import read_window, run_metrics_relative


def _write_atomic(path: Path, text: str) -> None:
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    staging.write_text(text, encoding="utf-8")
    staging.replace(path)


class LocalTrainingBackend:
    """Training jobs as local processes, at most ``max_trainings`` at once (each uses the machine's cores)."""

    name = "local"
    progress_interval_s = 0.0  # the log is on this machine: a stat per poll

    def __init__(self, trainings_dir: Path, work_dir: Path, max_trainings: int = 1,
                 semcoat_command: Sequence[str] = WORKER_SEMCOAT, cpu_count: int | None = None) -> None:
        """``semcoat_command``: the argv that runs ``semcoat`` (default: this worker's own, on its Python);
        ``cpu_count``: the cores a training shares out between its processes (default: this machine's)."""
        self.trainings_dir = Path(trainings_dir)
        self.work_dir = Path(work_dir)
        self.max_in_flight: int | None = max_trainings
        self.semcoat_command = tuple(semcoat_command)
        self.cpu_count = cpu_count or os.cpu_count() or 1
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # -- paths ---------------------------------------------------------------------------------------------------
    def job_dir(self, training_id: str) -> Path:
        """The training's work folder (config, script, run, outputs, log)."""
        return self.work_dir / training_id

    def output_dir(self, training_id: str) -> Path:
        """The training's folder in the service (what the API lists and archives)."""
        return self.trainings_dir / training_id

    def job(self, training: TrainingView) -> TrainingJob:
        """The training's job: one node, its processes sharing this machine's cores unless the user chose."""
        resources = training.resources
        devices = devices_per_node(resources)
        cpus = resources.get("cpus_per_task") or max(1, self.cpu_count // devices)
        folder = self.job_dir(training.id)
        return TrainingJob(job_name=f"semcoat-train-{training.id}", semcoat_command=self.semcoat_command,
                           work_dir=str(folder), config_file="config.yaml", run_dir="run", out_dir="outputs",
                           log_path=str(folder / "job.log"), nodes=1, tasks_per_node=devices,
                           gpus_per_node=int(resources.get("gpus_per_node") or 0), cpus_per_task=cpus)

    # -- TrainingBackend -----------------------------------------------------------------------------------------
    def launch(self, training: TrainingView) -> TrainingLaunch:
        """Start the job script through the exit-code wrapper; a job already running for this training (started,
        then the worker died before recording it) is returned instead of starting a second one."""
        job = self.job(training)
        folder = self.job_dir(training.id)
        folder.mkdir(parents=True, exist_ok=True)
        exit_file, pid_file = folder / "job.exit", folder / "job.pid"
        running = self._read_int(pid_file)
        if running is not None and process_running(running, str(exit_file)):
            return TrainingLaunch(Handle(pid=running))
        _write_atomic(folder / "config.yaml", training.config_yaml)
        _write_atomic(folder / "job.sh", training_local_script(job))
        exit_file.unlink(missing_ok=True)
        with open(folder / "job.log", "wb") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "render_service.backends.local_task", str(exit_file), "--", "bash",
                 str(folder / "job.sh")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._children[child.pid] = child
        _write_atomic(pid_file, f"{child.pid}\n")
        return TrainingLaunch(Handle(pid=child.pid))

    @staticmethod
    def _read_int(path: Path) -> int | None:
        try:
            return int(path.read_text(encoding="ascii").strip())
        except (FileNotFoundError, ValueError):
            return None

    def observe(self, trainings: Sequence[TrainingView]) -> dict[str, Observation]:
        """Each handed-over job: its exit file's code, else running while its wrapper lives, else lost (failed)."""
        self._reap()
        seen: dict[str, Observation] = {}
        for training in trainings:
            if training.pid is None or training.job_state not in ("pending", "running"):
                continue
            folder = self.job_dir(training.id)
            exit_file = folder / "job.exit"
            running = process_running(training.pid, str(exit_file))
            code = self._read_int(exit_file)  # after the liveness check: a job ending in between has its file
            tail = read_tail(folder / "job.log")
            if code is not None:
                seen[training.id] = Observation("done" if code == 0 else "failed", exit_code=code, log_tail=tail)
            elif running:
                seen[training.id] = Observation("running")
            else:
                lost = ("the training process ended without leaving an exit code (killed with its worker, or the "
                        "machine restarted)")
                seen[training.id] = Observation("failed", exit_code=None, log_tail=f"{tail or ''}\n{lost}")
        return seen

    def collect(self, training: TrainingView) -> bool:
        """Copy the package (``outputs/``) and the log into the service's folder once the job has written it."""
        target = self.output_dir(training.id)
        if not (target / MODEL_FILE).is_file():
            source = self.job_dir(training.id) / "outputs"
            if not (source / MODEL_FILE).is_file():
                return False
            if target.exists():  # an earlier copy without its model: not a complete one
                shutil.rmtree(target)
            with staged_local_path(target) as staging:
                shutil.copytree(source, staging, symlinks=False)
        log = self.job_dir(training.id) / "job.log"
        if not (target / LOG_FILE).exists() and log.is_file():
            with staged_local_path(target / LOG_FILE) as staging:
                shutil.copyfile(log, staging)
        return True

    def stop(self, training: TrainingView) -> None:
        """SIGTERM the job's whole process group (the wrapper, bash, the fit and the processes it started)."""
        if training.pid is None:
            return
        if process_running(training.pid, str(self.job_dir(training.id) / "job.exit")):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(training.pid, signal.SIGTERM)

    def read_metrics(self, trainings: Sequence[TrainingView]) -> dict[str, MetricsRead]:
        """Each training's log in its run folder: stat it, read its window where it changed."""
        reads: dict[str, MetricsRead] = {}
        for training in trainings:
            folder = self.job_dir(training.id)
            relative = run_metrics_relative(folder)
            if relative is None:
                continue
            try:
                info = os.stat(folder / relative)
                if (info.st_size, info.st_mtime) == training.last_read:
                    reads[training.id] = MetricsRead(info.st_size, info.st_mtime, None)
                else:
                    window = read_window(folder / relative)
                    reads[training.id] = MetricsRead(window.size, window.mtime, window)
            except OSError:  # not written yet, or replaced between the two looks: the next poll reads it
                continue
        return reads

    def _reap(self) -> None:
        # the processes this worker started: collect their exit status so none lingers as a zombie
        for pid, child in list(self._children.items()):
            if child.poll() is not None:
                del self._children[pid]
