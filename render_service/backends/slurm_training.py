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
"""

from __future__ import annotations

import logging
import posixpath
import shutil
from collections.abc import Sequence
from pathlib import Path

from render_service.backends.base import Handle, Observation
from render_service.backends.slurm import SlurmBackend
from render_service.backends.slurm_lookup import find_job_by_name
from render_service.backends.training_base import LOG_FILE, MODEL_FILE, TrainingLaunch, TrainingView, devices_per_node
from render_service.slurm import jobs
from render_service.slurm.errors import RemoteFileNotFound
from render_service.slurm.sbatch import TrainingJob, training_sbatch_script

log = logging.getLogger(__name__)


def training_job_name(training_id: str) -> str:
    """The Slurm job name of a training (never ``bash`` or ``interactive``, which Lightning would ignore)."""
    return f"semcoat-train-{training_id}"


class SlurmTrainingBackend:
    """Training jobs on the cluster of ``cluster`` (the batch backend); collected outputs under ``trainings_dir``."""

    name = "slurm"
    max_in_flight: int | None = None

    def __init__(self, cluster: SlurmBackend, trainings_dir: Path) -> None:
        self.cluster = cluster
        self.trainings_dir = Path(trainings_dir)

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
