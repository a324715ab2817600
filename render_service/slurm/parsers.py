"""Pure parsers of what Slurm prints: sbatch job ids, squeue rows, sacct rows, jobcomp/filetxt records.

Fixtures recorded from the real Slurm 22.05 cluster that scripts/stack.sh starts live in tests/render_service/fixtures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from render_service.slurm.errors import SlurmOutputError

__all__ = ["FINAL_STATES", "SQUEUE_FORMAT", "SlurmOutputError", "TaskState", "expand_task_ids", "parse_jobcomp",
           "parse_sbatch_job_id", "parse_squeue"]

# States after which a job or array task never changes again.
FINAL_STATES = frozenset({
    "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE",
})
# squeue format that parse_squeue reads: job id (with array suffix), state, reason.
SQUEUE_FORMAT = "%i|%T|%r"


def parse_sbatch_job_id(stdout: str) -> int:
    """Job id from ``sbatch --parsable`` output (``"123"`` or ``"123;cluster"``)."""
    text = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    match = re.fullmatch(r"(\d+)(;\S+)?", text)
    if not match:
        raise SlurmOutputError(f"sbatch --parsable printed {stdout!r}; expected a job id like '123'")
    return int(match.group(1))


def expand_task_ids(spec: str) -> list[int]:
    """Array task ids of a squeue suffix: ``"3"``, ``"[0-3]"``, ``"[0-3,7,9-10%2]"`` (the ``%`` limit is dropped)."""
    body = spec.strip().removeprefix("[").removesuffix("]").split("%", 1)[0]
    out: list[int] = []
    for part in body.split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?(?::(\d+))?", part)
        if not match:
            raise SlurmOutputError(f"cannot read array task ids {spec!r}")
        start = int(match.group(1))
        stop = int(match.group(2) or start)
        step = int(match.group(3) or 1)
        out.extend(range(start, stop + 1, step))
    return out


@dataclass(frozen=True)
class TaskState:
    """State of one array task (or of a plain job, ``task_id`` None)."""

    job_id: int
    task_id: int | None
    state: str
    reason: str = ""
    exit_code: int | None = None
    signal: int | None = None

    @property
    def is_final(self) -> bool:
        """True when the state can no longer change."""
        return self.state in FINAL_STATES


def _base_state(state: str) -> str:
    # squeue may print "CANCELLED by 1001"; sacct prints "CANCELLED by 0"
    return state.split()[0] if state else state


def parse_squeue(text: str) -> list[TaskState]:
    """Rows of ``squeue -h -t all -o '%i|%T|%r'``; a pending array row ``12_[0-3]`` expands to one row per task."""
    out: list[TaskState] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != 3:
            raise SlurmOutputError(f"squeue line {line!r} is not 'id|state|reason'")
        job, state, reason = parts
        state = _base_state(state)
        job_id, _, tasks = job.partition("_")
        if not job_id.isdigit():
            raise SlurmOutputError(f"squeue line {line!r} does not start with a job id")
        if tasks:
            for task in expand_task_ids(tasks):
                out.append(TaskState(int(job_id), task, state, reason))
        else:
            out.append(TaskState(int(job_id), None, state, reason))
    return out


def _exit_pair(text: str) -> tuple[int, int]:
    code, _, signal = text.partition(":")
    return int(code), int(signal or 0)


def parse_jobcomp(text: str) -> list[TaskState]:
    """Records of the jobcomp/filetxt log (one ``Key=Value ...`` line per finished job or array task).

    Array tasks are keyed by ``ArrayJobId`` / ``ArrayTaskId`` (the task's own JobId differs). Values never contain
    spaces in the keys read here.
    """
    out: list[TaskState] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        try:
            job_id = int(fields["JobId"])
            state = _base_state(fields["JobState"])
            code, signal = _exit_pair(fields.get("ExitCode", "0:0"))
            array_job = int(fields.get("ArrayJobId") or 0)
            task_text = fields.get("ArrayTaskId", "")
        except (KeyError, ValueError) as exc:
            raise SlurmOutputError(f"jobcomp line is missing JobId/JobState or has a bad number: {line!r}") from exc
        if array_job and task_text.isdigit():
            out.append(TaskState(array_job, int(task_text), state, "", code, signal))
        else:
            out.append(TaskState(job_id, None, state, "", code, signal))
    return out


def _sacct_exit_pair(text: str) -> tuple[int | None, int | None]:
    code, _, signal = text.partition(":")
    if not code.isdigit():
        return None, None
    return int(code), int(signal) if signal.isdigit() else 0


def parse_sacct(text: str) -> list[TaskState]:
    """Rows of ``sacct -n -X -P -o JobID,State,ExitCode``: ``12_3|FAILED|3:0``, a pending ``12_[4-5]|PENDING|0:0``
    (one row per task), a plain job ``13|COMPLETED|0:0``; ``CANCELLED by 1001`` reads as CANCELLED."""
    out: list[TaskState] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != 3:
            raise SlurmOutputError(f"sacct line {line!r} is not 'JobID|State|ExitCode'")
        job, state, exit_text = parts
        state = state.split()[0] if state.strip() else state
        job_id, _, tasks = job.partition("_")
        if not job_id.isdigit():
            raise SlurmOutputError(f"sacct line {line!r} does not start with a job id")
        code, signal = _sacct_exit_pair(exit_text)
        final = state not in ("PENDING", "RUNNING", "REQUEUED", "SUSPENDED", "COMPLETING", "CONFIGURING")
        if not final:
            code = signal = None
        ids: list[int | None] = list(expand_task_ids(tasks)) if tasks else [None]
        out.extend(TaskState(int(job_id), task, state, "", code, signal) for task in ids)
    return out
