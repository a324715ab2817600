"""The sbatch script of one render batch: a Slurm job array whose task ``i`` renders chunk ``i`` of the batch.

Pure: :class:`RenderArrayJob` holds the settings (validated when it is made) and :func:`sbatch_script` gives the
script text, checked against golden files in tests/render_service/fixtures. No value reaches the script unchecked:
names, partition, account and time limit must match a strict pattern, and every path and command word is quoted
with :func:`shlex.quote` (sbatch reads shell quoting in ``#SBATCH`` lines too).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from render_service.slurm.errors import InvalidJobSetting
from semcoat.batch import render_chunk_argv

# Slurm names (job, partition, account): letters, digits and . _ - only, so they are never shell or sbatch syntax.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_NAME_HELP = "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
# The time formats sbatch --time takes: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
_TIME_LIMIT = re.compile(r"\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2}")
_TIME_HELP = "minutes ('30'), 'M:S', 'H:M:S' ('1:00:00'), 'D-H', 'D-H:M' or 'D-H:M:S' ('1-00:00:00'), above zero"
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
        for line in self.setup_lines:
            if not isinstance(line, str) or "\n" in line or "\r" in line or "\0" in line:
                raise InvalidJobSetting(f"setup line {line!r} is not accepted: give one shell line per entry",
                                        argument="setup_lines")
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
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidJobSetting(f"{field} {value!r} is not accepted: use {_NAME_HELP}", argument=field)


def check_positive(field: str, value: object) -> None:
    """Raise InvalidJobSetting unless ``value`` is a whole number of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidJobSetting(f"{field} {value!r} is not accepted: give a whole number of at least 1", argument=field)


def check_time_limit(value: object) -> None:
    """Raise InvalidJobSetting unless ``value`` is a time limit sbatch takes (above zero)."""
    if not isinstance(value, str) or not _TIME_LIMIT.fullmatch(value) or not any(c in "123456789" for c in value):
        raise InvalidJobSetting(f"time_limit {value!r} is not accepted: use {_TIME_HELP}", argument="time_limit")


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
    lines = ["#!/bin/bash", *(f"#SBATCH {d}" for d in directives)]
    if job.setup_lines:
        # before `set -u`: environment-module scripts often read unset variables
        lines += ["set -eo pipefail", "# set-up lines from the service's settings", *job.setup_lines, "set -u"]
    else:
        lines.append("set -euo pipefail")
    lines += [
        "task_id=${SLURM_ARRAY_TASK_ID:?this script runs as a task of a Slurm job array}",
        f"images_per_task={job.images_per_task}",
        f"batch_count={job.batch_count}",
        "start=$(( task_id * images_per_task ))",
        "count=$(( batch_count - start < images_per_task ? batch_count - start : images_per_task ))",
        _render_line(job),
    ]
    return "\n".join(lines) + "\n"
