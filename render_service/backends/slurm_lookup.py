"""Questions the Slurm backend asks beyond ``render_service.slurm.jobs``: is there accounting (``sacct``), what
does ``sacct`` say of some jobs, and has a job of a given name been submitted already.

One or two commands each, through a ``CommandRunner``; the parsers are in :mod:`render_service.slurm.parsers`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from render_service.slurm.parsers import TaskState, parse_jobcomp, parse_sacct
from render_service.slurm.transport import CommandRunner

# The jobs a sacct search by name looks back over: a submission is looked for minutes after it was made.
SACCT_LOOKBACK = "now-7days"
SACCT_FORMAT = "JobID,State,ExitCode"


def detect_accounting(runner: CommandRunner) -> bool:
    """True when the cluster keeps accounting (``sacct`` answers); without slurmdbd it says it is disabled."""
    result = runner.run(["sacct", "-n", "-X", "-P", "-j", "1", "-o", "JobID"])
    return result.exit_code == 0 and "disabled" not in (result.stderr + result.stdout).lower()


def poll_sacct(runner: CommandRunner, job_ids: Iterable[int]) -> dict[tuple[int, int | None], TaskState]:
    """Every task of the given jobs as accounting knows it (one ``sacct`` call)."""
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    result = runner.run(["sacct", "-n", "-X", "-P", "-j", ",".join(map(str, ids)), "-o", SACCT_FORMAT]).check()
    return {(s.job_id, s.task_id): s for s in parse_sacct(result.stdout) if s.job_id in set(ids)}


_NAME_FIELD = re.compile(r"(?:^| )Name=(\S*)")


def poll_jobcomp(runner: CommandRunner, jobcomp_log: str,
                 name_prefixes: dict[int, str]) -> dict[tuple[int, int | None], TaskState]:
    """Final states of the given jobs from the jobcomp/filetxt log (one ``grep`` on the cluster).

    ``name_prefixes`` maps each job id to the start of its job name: a record of the same id under another name (a
    job of an earlier Slurm installation whose ids started again) is ignored.
    """
    if not name_prefixes:
        return {}
    alternatives = "|".join(map(str, sorted(name_prefixes)))
    result = runner.run(["grep", "-E", f"(^| )(JobId|ArrayJobId)=({alternatives})( |$)", jobcomp_log])
    if result.exit_code == 1:  # no line: none of these jobs has finished yet
        return {}
    kept = []
    for line in result.check().stdout.splitlines():
        name = _NAME_FIELD.search(line)
        records = parse_jobcomp(line)
        if name and records and name.group(1).startswith(name_prefixes.get(records[0].job_id, "\0")):
            kept.append(records[0])
    return {(r.job_id, r.task_id): r for r in kept}


def find_job_by_name(runner: CommandRunner, name: str, jobcomp_log: str | None, accounting: bool) -> int | None:
    """The (array) job id of a job named ``name``, if one was submitted: ``squeue`` first (pending, running and
    recently finished jobs), then the jobcomp log or ``sacct`` (finished longer ago). None when there is none.

    ``name`` is a Slurm name (letters, digits, ``._-``), so it is safe inside the grep pattern.
    """
    found = runner.run(["squeue", "-h", "-t", "all", f"--name={name}", "-o", "%F"])
    ids = {int(word) for word in found.stdout.split() if word.isdigit()} if found.exit_code == 0 else set()
    if not ids and jobcomp_log is not None:
        pattern = "(^| )Name=" + name.replace(".", r"\.") + "( |$)"  # grep -E: only the dot needs escaping
        grep = runner.run(["grep", "-E", pattern, jobcomp_log])
        if grep.exit_code == 0:
            ids = {record.job_id for record in parse_jobcomp(grep.stdout)}
    if not ids and accounting:
        result = runner.run(["sacct", "-n", "-X", "-P", f"--name={name}", "-S", SACCT_LOOKBACK, "-o", "JobID"])
        if result.exit_code == 0:
            ids = {int(line.split("_")[0]) for line in result.stdout.split() if line.split("_")[0].isdigit()}
    return min(ids) if ids else None
