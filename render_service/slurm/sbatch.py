"""The sbatch scripts of the service: a render batch is a Slurm job array whose task ``i`` renders chunk ``i`` of the
batch; a training is one job of ``nodes`` x ``tasks_per_node`` tasks started by ``srun`` (DDP), then packaged.

Pure: :class:`RenderArrayJob` and :class:`TrainingJob` hold the settings (validated when they are made) and
:func:`sbatch_script` / :func:`training_sbatch_script` give the script text, checked against golden files in
tests/render_service/fixtures (:func:`training_local_script` is the same training as a plain bash script, for the
local backend). No value reaches a script unchecked: names, partition, account and time limit must match a strict
pattern, and every path and command word is quoted with :func:`shlex.quote` (sbatch reads shell quoting in
``#SBATCH`` lines too).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from render_service.slurm.errors import InvalidJobSetting
from semcoat.batch import render_chunk_argv
from training.slurm import SLURM_NAME_HELP, TIME_LIMIT_HELP, fit_argv, is_slurm_name, is_time_limit, package_argv

# Slurm names (job, partition, account): letters, digits and . _ - only, so they are never shell or sbatch syntax.
# Shell text that render_chunk_argv puts where the chunk's numbers go; NUL cannot occur in any real argument.
_START, _COUNT = "\0start\0", "\0count\0"


@dataclass(frozen=True)
class RenderArrayJob:
    """Settings of the Slurm job array that renders one batch, ``images_per_task`` images per array task.

    Paths are the cluster's. ``semcoat_command`` is the cluster's ``semcoat`` (a path, or the argv that runs it).
    ``log_path`` is sbatch's ``--output`` pattern (``%A`` array job id, ``%a`` task id). ``task_ids`` limits the
    array to some tasks (a retry of failed ones); None means every task of the batch. ``setup_lines`` are the
    admin's shell lines run before rendering (``module load ...``), written as given: they come from the service's
    settings, never from a user. Optional settings left None are left out of the script (the cluster's defaults).
    """

    job_name: str
    semcoat_command: str | tuple[str, ...]
    batch_file: str
    out_dir: str
    batch_count: int
    images_per_task: int
    log_path: str
    work_dir: str | None = None
    partition: str | None = None
    account: str | None = None
    time_limit: str | None = None
    cpus_per_task: int | None = None
    mem_per_task_mb: int | None = None
    max_parallel_tasks: int | None = None
    task_ids: tuple[int, ...] | None = None
    setup_lines: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_name("job_name", self.job_name)
        for field in ("partition", "account"):
            value = getattr(self, field)
            if value is not None:
                check_name(field, value)
        for field in ("batch_count", "images_per_task"):
            check_positive(field, getattr(self, field))
        for field in ("cpus_per_task", "mem_per_task_mb", "max_parallel_tasks"):
            if getattr(self, field) is not None:
                check_positive(field, getattr(self, field))
        if self.time_limit is not None:
            check_time_limit(self.time_limit)
        command = (self.semcoat_command,) if isinstance(self.semcoat_command, str) else self.semcoat_command
        if not command:
            raise InvalidJobSetting("semcoat_command is empty: give the path of the cluster's semcoat",
                                    argument="semcoat_command")
        for field, values in (("semcoat_command", command), ("batch_file", (self.batch_file,)),
                              ("out_dir", (self.out_dir,)), ("log_path", (self.log_path,)),
                              ("work_dir", (self.work_dir,) if self.work_dir is not None else ())):
            for value in values:
                _check_text(field, value)
        _check_setup_lines(self.setup_lines)
        if self.task_ids is not None:
            self._check_task_ids(self.task_ids)

    @property
    def task_count(self) -> int:
        """Number of chunks (array tasks) the whole batch is split into."""
        return -(-self.batch_count // self.images_per_task)

    def _check_task_ids(self, task_ids: tuple[int, ...]) -> None:
        if not task_ids:
            raise InvalidJobSetting("task_ids is empty: give the array task ids to run, or None for all",
                                    argument="task_ids")
        for task_id in task_ids:
            if isinstance(task_id, bool) or not isinstance(task_id, int) or not 0 <= task_id < self.task_count:
                raise InvalidJobSetting(
                    f"task id {task_id!r} is not accepted: this batch has tasks 0 to {self.task_count - 1} "
                    f"({self.batch_count} images, {self.images_per_task} per task)", argument="task_ids")


def check_name(field: str, value: object) -> None:
    """Raise InvalidJobSetting unless ``value`` is a Slurm name (job, partition, account) that is never shell syntax."""
    if not is_slurm_name(value):
        raise InvalidJobSetting(f"{field} {value!r} is not accepted: use {SLURM_NAME_HELP}", argument=field)


def check_positive(field: str, value: object) -> None:
    """Raise InvalidJobSetting unless ``value`` is a whole number of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidJobSetting(f"{field} {value!r} is not accepted: give a whole number of at least 1", argument=field)


def check_time_limit(value: object) -> None:
    """Raise InvalidJobSetting unless ``value`` is a time limit sbatch takes (above zero)."""
    if not is_time_limit(value):
        raise InvalidJobSetting(f"time_limit {value!r} is not accepted: use {TIME_LIMIT_HELP}", argument="time_limit")


def _check_setup_lines(lines: tuple[str, ...]) -> None:
    for line in lines:
        if not isinstance(line, str) or "\n" in line or "\r" in line or "\0" in line:
            raise InvalidJobSetting(f"setup line {line!r} is not accepted: give one shell line per entry",
                                    argument="setup_lines")


def _check_text(field: str, value: object) -> None:
    # a line break would end an #SBATCH line early; NUL cannot be in a path or argument at all
    if not isinstance(value, str) or not value or any(c in value for c in "\n\r\0"):
        raise InvalidJobSetting(f"{field} {value!r} is not accepted: give a non-empty path on one line",
                                argument=field)


def array_spec(task_ids: list[int] | tuple[int, ...], max_parallel_tasks: int | None = None) -> str:
    """sbatch's ``--array`` value: sorted ids with runs as ranges (``0-2,5,7-8``), plus ``%N`` when limited."""
    ids = sorted(set(task_ids))
    parts: list[str] = []
    run_start = previous = ids[0]
    for task_id in [*ids[1:], None]:
        if task_id is not None and task_id == previous + 1:
            previous = task_id
            continue
        parts.append(str(run_start) if run_start == previous else f"{run_start}-{previous}")
        if task_id is not None:
            run_start = previous = task_id
    limit = f"%{max_parallel_tasks}" if max_parallel_tasks is not None else ""
    return ",".join(parts) + limit


def _shell_start(setup_lines: tuple[str, ...]) -> list[str]:
    """Strict mode, with the admin's set-up lines before ``set -u`` (environment-module scripts often read unset
    variables)."""
    if setup_lines:
        return ["set -eo pipefail", "# set-up lines from the service's settings", *setup_lines, "set -u"]
    return ["set -euo pipefail"]


def _render_line(job: RenderArrayJob) -> str:
    # threads = the CPUs Slurm gives the task; Slurm's default is one, and 0 (all cores) would oversubscribe a node
    threads = job.cpus_per_task or 1
    argv = render_chunk_argv(job.semcoat_command, job.batch_file, job.out_dir, _START, _COUNT, threads)
    words = {_START: '"$start"', _COUNT: '"$count"'}
    return "exec " + " ".join(words.get(word) or shlex.quote(word) for word in argv)


def sbatch_script(job: RenderArrayJob) -> str:
    """The sbatch script text of ``job``: one array task renders ``start = task_id * images_per_task`` and
    ``count = min(images_per_task, batch_count - start)`` images."""
    task_ids = job.task_ids if job.task_ids is not None else tuple(range(job.task_count))
    directives = [
        f"--job-name={job.job_name}",
        f"--array={array_spec(task_ids, job.max_parallel_tasks)}",
        f"--output={shlex.quote(job.log_path)}",
    ]
    if job.work_dir is not None:
        directives.append(f"--chdir={shlex.quote(job.work_dir)}")
    optional = (("partition", job.partition), ("account", job.account), ("time", job.time_limit),
                ("cpus-per-task", job.cpus_per_task),
                ("mem", f"{job.mem_per_task_mb}M" if job.mem_per_task_mb is not None else None))
    directives += [f"--{option}={value}" for option, value in optional if value is not None]
    lines = ["#!/bin/bash", *(f"#SBATCH {d}" for d in directives), *_shell_start(job.setup_lines)]
    lines += [
        "task_id=${SLURM_ARRAY_TASK_ID:?this script runs as a task of a Slurm job array}",
        f"images_per_task={job.images_per_task}",
        f"batch_count={job.batch_count}",
        "start=$(( task_id * images_per_task ))",
        "count=$(( batch_count - start < images_per_task ? batch_count - start : images_per_task ))",
        _render_line(job),
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class TrainingJob:
    """Settings of the Slurm job that trains one model: ``nodes`` x ``tasks_per_node`` processes (one per GPU, or
    CPU processes when ``gpus_per_node`` is 0) running ``semcoat train fit`` under ``srun``, which Lightning's
    SLURMEnvironment reads; then one ``semcoat train package`` of the run into ``out_dir``.

    Paths are the cluster's; ``config_file``, ``run_dir`` and ``out_dir`` may be relative to ``work_dir`` (the job's
    folder). ``log_path`` is sbatch's ``--output`` (``%j``: the job id). ``mem_per_node_mb`` is sbatch's ``--mem``.
    ``setup_lines`` come from the service's settings, never from a user. Optional settings left None are left out
    of the script (the cluster's defaults).
    """

    job_name: str
    semcoat_command: str | tuple[str, ...]
    work_dir: str
    config_file: str
    run_dir: str
    out_dir: str
    log_path: str
    nodes: int = 1
    tasks_per_node: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int | None = None
    mem_per_node_mb: int | None = None
    partition: str | None = None
    account: str | None = None
    time_limit: str | None = None
    setup_lines: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_name("job_name", self.job_name)
        if self.job_name in ("bash", "interactive"):  # Lightning ignores the Slurm environment of such jobs
            raise InvalidJobSetting(f"job_name {self.job_name!r} is not accepted: Lightning ignores the Slurm "
                                    "environment of a job so named", argument="job_name")
        for field in ("partition", "account"):
            value = getattr(self, field)
            if value is not None:
                check_name(field, value)
        for field in ("nodes", "tasks_per_node"):
            check_positive(field, getattr(self, field))
        for field in ("cpus_per_task", "mem_per_node_mb"):
            if getattr(self, field) is not None:
                check_positive(field, getattr(self, field))
        if isinstance(self.gpus_per_node, bool) or not isinstance(self.gpus_per_node, int) or self.gpus_per_node < 0:
            raise InvalidJobSetting(f"gpus_per_node {self.gpus_per_node!r} is not accepted: give a whole number of "
                                    "at least 0", argument="gpus_per_node")
        if self.gpus_per_node and self.tasks_per_node != self.gpus_per_node:
            raise InvalidJobSetting(f"gpus_per_node {self.gpus_per_node} differs from tasks_per_node "
                                    f"{self.tasks_per_node}: a DDP job runs one task per GPU", argument="gpus_per_node")
        if self.time_limit is not None:
            check_time_limit(self.time_limit)
        command = (self.semcoat_command,) if isinstance(self.semcoat_command, str) else self.semcoat_command
        if not command:
            raise InvalidJobSetting("semcoat_command is empty: give the path of the cluster's semcoat",
                                    argument="semcoat_command")
        for field, values in (("semcoat_command", command), ("work_dir", (self.work_dir,)),
                              ("config_file", (self.config_file,)), ("run_dir", (self.run_dir,)),
                              ("out_dir", (self.out_dir,)), ("log_path", (self.log_path,))):
            for value in values:
                _check_text(field, value)
        _check_setup_lines(self.setup_lines)

    @property
    def threads(self) -> int:
        """Threads of each process (OMP_NUM_THREADS): its CPUs, one when Slurm's default applies."""
        return self.cpus_per_task or 1

    def fit_argv(self) -> list[str]:
        """``semcoat train fit`` as each task runs it (one per device)."""
        return fit_argv(self.semcoat_command, self.config_file, self.nodes, self.tasks_per_node,
                        self.gpus_per_node > 0, self.run_dir)

    def package_argv(self) -> list[str]:
        """``semcoat train package`` of the run, once, after the fit."""
        return package_argv(self.semcoat_command, self.run_dir, self.out_dir)


def training_sbatch_script(job: TrainingJob) -> str:
    """The sbatch script of a training: one job (not an array), ``srun`` starts one fit per task, each rank
    reading its place from Slurm; a rank that fails ends the others (``--kill-on-bad-exit``), so a DDP job never
    hangs on a dead peer. The package step runs once, on the first node, after every rank has ended."""
    directives = [
        f"--job-name={job.job_name}",
        f"--nodes={job.nodes}",
        f"--ntasks-per-node={job.tasks_per_node}",
        f"--output={shlex.quote(job.log_path)}",
        f"--chdir={shlex.quote(job.work_dir)}",
    ]
    optional = (("gres", f"gpu:{job.gpus_per_node}" if job.gpus_per_node else None), ("partition", job.partition),
                ("account", job.account), ("time", job.time_limit), ("cpus-per-task", job.cpus_per_task),
                ("mem", f"{job.mem_per_node_mb}M" if job.mem_per_node_mb is not None else None))
    directives += [f"--{option}={value}" for option, value in optional if value is not None]
    lines = ["#!/bin/bash", *(f"#SBATCH {d}" for d in directives), *_shell_start(job.setup_lines),
             f"export OMP_NUM_THREADS={job.threads}"]
    if job.cpus_per_task is not None:
        # srun of Slurm 23.11 and later no longer takes --cpus-per-task from the allocation
        lines.append(f"export SRUN_CPUS_PER_TASK={job.cpus_per_task}")
    lines += [shlex.join(["srun", "--kill-on-bad-exit=1", *job.fit_argv()]), shlex.join(job.package_argv())]
    return "\n".join(lines) + "\n"


def training_local_script(job: TrainingJob) -> str:
    """The same training as a bash script for this machine (the local backend): the fit starts its ``devices``
    processes itself (Lightning's own launcher), then the package step; no Slurm, no set-up lines."""
    lines = ["#!/bin/bash", "set -euo pipefail", f"cd {shlex.quote(job.work_dir)}",
             f"export OMP_NUM_THREADS={job.threads}", shlex.join(job.fit_argv()), shlex.join(job.package_argv())]
    return "\n".join(lines) + "\n"
