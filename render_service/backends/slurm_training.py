"""The ``slurm`` backend's trainings: each training is one Slurm job (not an array) of ``nodes`` x devices tasks.

On the cluster, one folder per training, ``<cluster_home>/semcoat-trainings/<training id>/``: ``config.yaml`` (the
config the job runs, by SFTP), ``job.sh`` (:func:`render_service.slurm.sbatch.training_sbatch_script`: ``srun semcoat
train fit`` on every task, then ``semcoat train package``), ``logs/train-<job id>.out``, ``run/`` (the fit's
checkpoints and logs) and ``outputs/`` (the package). The job is named ``semcoat-train-<training id>``: before
submitting, the backend looks for a job of that name, so a worker killed between ``sbatch`` and recording the job id
never submits twice.

It talks to the cluster through the batch backend (:class:`~render_service.backends.slurm.SlurmBackend`): the same
SSH connection, reconnection backoff, job lookups and state parsing. Once the job has completed, ``outputs/`` is
fetched whole into ``<trainings_dir>/<id>/`` and the job's log beside it as ``train.log``.

While trainings run, their progress is read from the fit's CSV log (``run/logs/version_N/metrics.csv``) without
flooding the login node: each training's log is looked at no more than every ``progress_interval_s`` seconds, all
trainings due in one ``find`` (sizes and modification times), and only a log that changed is read: copied whole into
``<work_dir>/<id>/live/metrics.csv`` (what the dashboard draws and ``GET .../metrics`` serves) while it is under
:data:`LIVE_MAX_BYTES`, else only its header and last bytes.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

from render_service.backends.base import Handle, Observation
from render_service.backends.slurm import SlurmBackend
from render_service.backends.slurm_lookup import find_job_by_name
from render_service.backends.training_base import (
    LOG_FILE,
    MODEL_FILE,
    MetricsRead,
    TrainingLaunch,
    TrainingView,
    devices_per_node,
)
from render_service.slurm import jobs
from render_service.slurm.errors import CommandFailed, RemoteFileError, RemoteFileNotFound
from render_service.slurm.sbatch import TrainingJob, training_sbatch_script
from render_service.training_metrics import (
    HEAD_BYTES,
    LIVE_DIR,
    METRICS_CSV,
    TAIL_BYTES,
    newest_version,
    read_window,
    training_work_dir,
)
from render_service.training_progress import MetricsWindow, header_of

log = logging.getLogger(__name__)

# A log up to this size is copied whole for the live curves; a longer one is followed by its header and tail only.
LIVE_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_PROGRESS_INTERVAL_S = 30.0


def training_job_name(training_id: str) -> str:
    """The Slurm job name of a training (never ``bash`` or ``interactive``, which Lightning would ignore)."""
    return f"semcoat-train-{training_id}"


class SlurmTrainingBackend:
    """Training jobs on the cluster of ``cluster`` (the batch backend); collected outputs under ``trainings_dir``."""

    name = "slurm"
    max_in_flight: int | None = None

    def __init__(self, cluster: SlurmBackend, trainings_dir: Path, work_dir: Path | None = None,
                 progress_interval_s: float = DEFAULT_PROGRESS_INTERVAL_S) -> None:
        """``work_dir``: where the live copies of the logs go (default ``<trainings_dir>/../work/trainings``);
        ``progress_interval_s``: the least time between two looks at one training's log."""
        self.cluster = cluster
        self.trainings_dir = Path(trainings_dir)
        self.work_dir = Path(work_dir) if work_dir is not None else training_work_dir(self.trainings_dir.parent)
        self.progress_interval_s = progress_interval_s

    # -- paths and the job ---------------------------------------------------------------------------------------
    def remote_dir(self, training_id: str) -> str:
        """The training's folder on the cluster."""
        return posixpath.join(self.cluster.config.cluster_home, "semcoat-trainings", training_id)

    def log_path(self, training_id: str, job_id: int) -> str:
        """The job's log (sbatch's ``--output`` pattern filled in)."""
        return posixpath.join(self.remote_dir(training_id), "logs", f"train-{job_id}.out")

    def job(self, training: TrainingView) -> TrainingJob:
        """The training's job: the user's resources where given, else the admin's Slurm defaults (partition,
        account, CPUs per task). The admin's time limit is a render task's, far shorter than a training's: without
        the user's, the job gets the partition's own."""
        resources, config, remote = training.resources, self.cluster.config, self.remote_dir(training.id)
        return TrainingJob(
            job_name=training_job_name(training.id), semcoat_command=config.cluster_semcoat, work_dir=remote,
            config_file="config.yaml", run_dir="run", out_dir="outputs",
            log_path=posixpath.join(remote, "logs", "train-%j.out"), nodes=int(resources.get("nodes") or 1),
            tasks_per_node=devices_per_node(resources), gpus_per_node=int(resources.get("gpus_per_node") or 0),
            cpus_per_task=resources.get("cpus_per_task") or config.cpus_per_task,
            mem_per_node_mb=resources.get("mem_per_node_mb"),
            partition=resources.get("partition") or config.partition,
            account=resources.get("account") or config.account,
            time_limit=resources.get("time_limit"), setup_lines=config.setup_lines)

    # -- TrainingBackend -----------------------------------------------------------------------------------------
    def launch(self, training: TrainingView) -> TrainingLaunch:
        """Write the config and the script, then ``sbatch`` it, unless a job of the training's name exists."""
        job = self.job(training)  # checked before anything reaches the cluster
        self.cluster.ensure_compatible(("train",))
        remote = self.remote_dir(training.id)
        script_path = posixpath.join(remote, "job.sh")
        cluster = self.cluster

        def submit() -> int:
            existing = find_job_by_name(cluster.runner, job.job_name, cluster.config.jobcomp_log,
                                        cluster.has_accounting())
            if existing is not None:
                log.info("training %s: found job %s (%s) already submitted; not submitting again", training.id,
                         existing, job.job_name)
                return existing
            cluster.runner.make_dirs(posixpath.join(remote, "logs"))
            cluster.runner.put_text(posixpath.join(remote, "config.yaml"), training.config_yaml)
            cluster.runner.put_text(script_path, training_sbatch_script(job))
            return jobs.submit_array(cluster.runner, script_path)  # sbatch --parsable: any script, array or not

        job_id = cluster.call(submit)
        return TrainingLaunch(Handle(job_id=job_id), remote_dir=remote)

    def observe(self, trainings: Sequence[TrainingView]) -> dict[str, Observation]:
        """Every handed-over training's job: one squeue for all, the jobcomp log or sacct for exit codes, and the
        log tail of a job that failed."""
        owners = {t.job_id: t for t in trainings if t.job_id is not None and t.job_state in ("pending", "running")}
        if not owners:
            return {}
        found = self.cluster.job_states({job_id: training_job_name(t.id) for job_id, t in owners.items()})
        return {t.id: self.cluster.observation((job_id, None), found.get((job_id, None)),
                                               self.log_path(t.id, job_id))
                for job_id, t in owners.items()}

    def collect(self, training: TrainingView) -> bool:
        """Fetch ``outputs/`` whole (once its model is there) and the job's log; True once both are here."""
        local = self.trainings_dir / training.id
        remote = training.remote_dir or self.remote_dir(training.id)
        runner = self.cluster.runner

        def fetch() -> bool:
            if not (local / MODEL_FILE).is_file():
                if not runner.exists(posixpath.join(remote, "outputs", MODEL_FILE)):
                    return False
                if local.exists():  # an earlier copy without its model: not a complete one
                    shutil.rmtree(local)
                runner.fetch(posixpath.join(remote, "outputs"), local)
            if training.job_id is not None and not (local / LOG_FILE).exists():
                try:
                    runner.fetch(self.log_path(training.id, training.job_id), local / LOG_FILE)
                except RemoteFileNotFound:
                    log.warning("training %s: no job log to collect at %s", training.id,
                                self.log_path(training.id, training.job_id))
            return True

        return self.cluster.call(fetch)

    def stop(self, training: TrainingView) -> None:
        """scancel the training's job, and a job of its name (submitted, not yet recorded)."""
        def cancel() -> None:
            if training.job_id is not None:
                jobs.cancel(self.cluster.runner, [training.job_id])
            self.cluster.runner.run(["scancel", f"--name={training_job_name(training.id)}"]).check()

        self.cluster.call(cancel)

    def read_metrics(self, trainings: Sequence[TrainingView]) -> dict[str, MetricsRead]:
        """One ``find`` for the logs of every training given (size, mtime, newest version), then a read of each log
        that changed since the training's last read."""
        logs_dirs = {posixpath.join(t.remote_dir or self.remote_dir(t.id), "run", "logs"): t
                     for t in trainings if t.job_id is not None}
        if not logs_dirs:
            return {}
        runner = self.cluster.runner

        def look() -> dict[str, MetricsRead]:
            # exit 1 is find's answer when a training has no log folder yet; the others are still listed
            listed = runner.run(["find", *logs_dirs, "-mindepth", "2", "-maxdepth", "2", "-type", "f", "-name",
                                 METRICS_CSV, "-printf", "%s %T@ %p\\n"])
            if listed.exit_code not in (0, 1):
                log.warning("cannot list the trainings' logs on %s: %s", runner.host,
                            listed.stderr.strip()[-300:] or f"find exited {listed.exit_code}")
                return {}
            reads: dict[str, MetricsRead] = {}
            for training, (size, mtime, path) in newest_logs(listed.stdout, logs_dirs).items():
                if (size, mtime) == training.last_read:
                    reads[training.id] = MetricsRead(size, mtime, None)
                    continue
                try:
                    reads[training.id] = MetricsRead(size, mtime, self._read_log(training.id, path, size, mtime))
                except (RemoteFileError, CommandFailed, OSError) as exc:  # gone or refused since the find
                    log.warning("training %s: cannot read its log %s: %s", training.id, path, exc)
            return reads

        return self.cluster.call(look)

    def live_path(self, training_id: str) -> Path:
        """The worker's latest copy of a training's log."""
        return self.work_dir / training_id / LIVE_DIR / METRICS_CSV

    def _read_log(self, training_id: str, path: str, size: int, mtime: float) -> MetricsWindow:
        runner = self.cluster.runner
        if size <= LIVE_MAX_BYTES:
            live = self.live_path(training_id)
            live.parent.mkdir(parents=True, exist_ok=True)
            part = live.with_name(f".{METRICS_CSV}.{uuid.uuid4().hex[:8]}.part")
            try:
                runner.fetch(path, part)
                os.replace(part, live)
            finally:
                part.unlink(missing_ok=True)
            return read_window(live)
        head = runner.run(["head", "-c", str(HEAD_BYTES), path]).check().stdout
        tail = runner.read_text(path, max_bytes=TAIL_BYTES, tail=True)
        return MetricsWindow(header_of(head), tail, False, size, mtime)


def newest_logs(find_output: str, logs_dirs: dict[str, TrainingView]) -> dict[TrainingView, tuple[int, float, str]]:
    """Per training, (size, mtime, path) of the log of its newest ``version_N``, from the lines ``SIZE MTIME PATH``
    that ``find -printf '%s %T@ %p\\n'`` printed; paths outside the trainings' log folders are ignored."""
    seen: dict[str, dict[str, tuple[int, float, str]]] = {}
    for line in find_output.splitlines():
        parts = line.split(" ", 2)
        if len(parts) != 3:
            continue
        size_text, mtime_text, path = parts
        version_dir = posixpath.dirname(path)
        logs = posixpath.dirname(version_dir)
        if logs not in logs_dirs or posixpath.basename(path) != METRICS_CSV:
            continue
        try:
            size, mtime = int(size_text), float(mtime_text)
        except ValueError:
            continue
        seen.setdefault(logs, {})[posixpath.basename(version_dir)] = (size, mtime, path)
    found = {}
    for logs, versions in seen.items():
        newest = newest_version(versions)
        if newest is not None:
            found[logs_dirs[logs]] = versions[newest]
    return found
