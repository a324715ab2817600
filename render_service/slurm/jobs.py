"""Submit, cancel and poll Slurm job arrays through a ``CommandRunner``: the calls the render service makes.

Each function is one or two commands and a parser; the runner decides where they run (SSH, this machine, a fake).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from render_service.slurm.errors import (
    CommandFailed,
    JobFailedError,
    RemoteFileNotFound,
    SubmissionError,
    TransportError,
)
from render_service.slurm.parsers import SQUEUE_FORMAT, TaskState, parse_jobcomp, parse_sbatch_job_id, parse_squeue
from render_service.slurm.transport import CommandRunner

# What sbatch prints when the controller, not the job, is the problem: the submission may succeed later unchanged.
_CONTROLLER_UNREACHABLE = ("Unable to contact slurm controller", "Socket timed out on send/recv operation",
                           "Slurm temporarily unable to accept job")
# squeue's answer for a single id it no longer knows (finished longer than MinJobAge ago): no rows, not an error.
_UNKNOWN_JOB = "Invalid job id specified"

TaskKey = tuple[int, int | None]


def submit_array(runner: CommandRunner, script_path: str) -> int:
    """Submit the sbatch script at ``script_path`` (on the runner's machine) and return the job id.

    Raises SubmissionError quoting Slurm when sbatch refuses the job, TransportError when the controller cannot be
    reached (submit again later), SlurmOutputError when sbatch's answer is not a job id.
    """
    result = runner.run(["sbatch", "--parsable", script_path])
    try:
        result.check()
    except CommandFailed as exc:
        message = (result.stderr.strip() or result.stdout.strip() or f"exit code {result.exit_code}")
        if any(text in message for text in _CONTROLLER_UNREACHABLE):
            raise TransportError(f"the Slurm controller on {runner.host} did not take the job: {message}; "
                                 "the job is fine, submit it again later") from exc
        raise SubmissionError(
            f"Slurm on {runner.host} refused the job {script_path}: {message}. Check the settings Slurm names "
            "(partition, account, time limit, CPUs, memory) against what the cluster offers (`sinfo -s`, "
            "`sacctmgr show associations user=$USER`), then submit again.", slurm_message=message) from exc
    return parse_sbatch_job_id(result.stdout)


def cancel(runner: CommandRunner, job_ids: Iterable[int]) -> None:
    """Cancel jobs (every task of an array); ids that are finished or unknown are ignored, as scancel does."""
    ids = sorted(set(job_ids))
    if ids:
        runner.run(["scancel", *map(str, ids)]).check()


def poll(runner: CommandRunner, job_ids: Iterable[int], jobcomp_log: str | None = None) -> dict[TaskKey, TaskState]:
    """State of every task of the given jobs, keyed by ``(job_id, task_id)`` (task_id None for a plain job).

    One ``squeue -t all`` call covers all jobs (it shows finished ones for MinJobAge, ~5 min); where a jobcomp/filetxt
    log is given (clusters without accounting), its records of these jobs replace squeue's rows: they are final and
    carry exit codes. A task that neither knows is absent (e.g. a cancelled pending task after MinJobAge): the caller
    keeps track of those.
    """
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    wanted = set(ids)
    result = runner.run(["squeue", "-h", "-t", "all", "-j", ",".join(map(str, ids)), "-o", SQUEUE_FORMAT])
    rows = [] if result.exit_code != 0 and _UNKNOWN_JOB in result.stderr else parse_squeue(result.check().stdout)
    states = {(row.job_id, row.task_id): row for row in rows if row.job_id in wanted}
    if jobcomp_log is not None:
        for record in parse_jobcomp(_jobcomp_lines(runner, jobcomp_log, ids)):
            if record.job_id in wanted:
                states[(record.job_id, record.task_id)] = record
    return states


def _jobcomp_lines(runner: CommandRunner, jobcomp_log: str, ids: list[int]) -> str:
    # grep on the cluster: the log grows without bound, only these jobs' lines travel
    alternatives = "|".join(map(str, ids))
    pattern = f"(^| )(JobId|ArrayJobId)=({alternatives})( |$)"
    result = runner.run(["grep", "-E", pattern, jobcomp_log])
    if result.exit_code == 1:  # grep found no line: none of these jobs has finished yet
        return ""
    if result.exit_code == 2 and "No such file" in result.stderr:
        raise RemoteFileNotFound(f"the jobcomp log {jobcomp_log} does not exist on {runner.host}; set it to the "
                                 "cluster's JobCompLoc (`scontrol show config | grep JobCompLoc`)",
                                 runner.host, jobcomp_log)
    return result.check().stdout


def failed_tasks(states: Iterable[TaskState]) -> list[TaskState]:
    """Tasks that ended in a final state other than COMPLETED (CANCELLED too), sorted by job and task id."""
    return sorted((s for s in states if s.is_final and s.state != "COMPLETED"),
                  key=lambda s: (s.job_id, -1 if s.task_id is None else s.task_id))


def raise_for_failed(job_id: int, states: Iterable[TaskState], log_tails: Mapping[int, str] | None = None) -> None:
    """Raise JobFailedError naming the failed tasks of ``job_id`` (state, exit code, log tail), if any.

    ``states`` are the tasks' states, e.g. ``poll(...).values()``; ``log_tails`` the end of each failed task's log.
    """
    failed = [s for s in failed_tasks(states) if s.job_id == job_id]
    if failed:
        raise JobFailedError(job_id, failed, log_tails)
