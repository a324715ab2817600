"""Typed errors of the Slurm layer, each one a :class:`~semcoat.errors.SemcoatError` a user or admin can act on.

Which one tells the caller what to do: a :class:`TransportError` means the cluster could not be reached (retry
later, nothing about the batch is known to be wrong); a :class:`SubmissionError` means Slurm refused the job (fix the
job settings); a :class:`JobFailedError` means tasks ran and failed (read their logs, retry them); a
:class:`CommandFailed` is any other command that ran and exited non-zero; a :class:`RemoteFileError` is a file on the
cluster that is missing, unreadable or unwritable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from semcoat.errors import InvalidArgument, SemcoatError

if TYPE_CHECKING:
    from render_service.slurm.parsers import TaskState
    from render_service.slurm.transport import CommandResult


# A message names this many failed tasks, then counts the rest: a thousand-task array must not give a page of text.
_LISTED_TASKS = 20


class TransportError(SemcoatError):
    """The cluster could not be reached or did not answer: connection, authentication, host key, timeout."""


class CommandFailed(SemcoatError):
    """A command ran where Slurm is and exited non-zero; ``result`` holds its argv, exit code and output."""

    def __init__(self, message: str, result: CommandResult) -> None:
        super().__init__(message)
        self.result = result


class SubmissionError(SemcoatError):
    """``sbatch`` ran and refused the job (an invalid partition, account, time limit, memory, ...).

    ``slurm_message`` is what sbatch printed, unchanged.
    """

    def __init__(self, message: str, slurm_message: str) -> None:
        super().__init__(message)
        self.slurm_message = slurm_message


class JobFailedError(SemcoatError):
    """Array tasks ended in a failed final state (FAILED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, ...).

    ``failed`` holds the final state of each failed task; ``log_tails`` the end of each one's log where known.
    """

    def __init__(self, job_id: int, failed: Sequence[TaskState], log_tails: Mapping[int, str] | None = None) -> None:
        self.job_id = job_id
        self.failed = tuple(failed)
        self.log_tails = dict(log_tails or {})
        parts = []
        for task in self.failed[:_LISTED_TASKS]:
            how = task.state if task.exit_code is None else f"{task.state}, exit code {task.exit_code}"
            if task.signal:
                how += f", signal {task.signal}"
            parts.append(f"task {task.task_id} ({how})")
        more = len(self.failed) - len(parts)
        listed = ", ".join(parts) + (f" and {more} more" if more else "")
        message = f"Slurm job {job_id}: {len(self.failed)} task(s) failed: {listed}"
        for task_id, tail in sorted(self.log_tails.items()):
            if tail.strip():
                message += f"\n--- end of the log of task {task_id} ---\n{tail.rstrip()}"
        super().__init__(message)


class RemoteFileError(SemcoatError):
    """A file operation on the cluster (or this machine) was refused: permission, not a folder, too large, ..."""

    def __init__(self, message: str, host: str, path: str) -> None:
        super().__init__(message)
        self.host = host
        self.path = path


class RemoteFileNotFound(RemoteFileError):
    """The file or folder does not exist on ``host``."""


class SlurmOutputError(SemcoatError):
    """Slurm printed something the parsers do not understand (the text is in the message)."""


class InvalidJobSetting(InvalidArgument):
    """A setting of a Slurm job is outside what is accepted; ``argument`` names the setting."""
