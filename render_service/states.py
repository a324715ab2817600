"""The batch state machine, pure: a batch's state follows from its render tasks' states and the user's cancel.

Batch states: ``queued`` (accepted, nothing sent to a backend yet) → ``submitted`` (the backend has every task) →
``running`` (at least one task started or finished) → ``succeeded`` | ``failed`` | ``cancelled``. The last three are
final: nothing moves a batch out of them.

Task states: ``pending`` (not running: new, or waiting to be resubmitted after a failure), ``running``, ``done``,
``failed`` (for good: its retries are spent), ``cancelled``.

A failed attempt with retries left goes back to ``pending`` (:func:`after_failure`) and is resubmitted; a batch fails
once a task has failed for good and no other task is still pending or running, so every image that can be rendered
is rendered first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

BATCH_STATES = ("queued", "submitted", "running", "succeeded", "failed", "cancelled")
FINAL_BATCH_STATES = frozenset({"succeeded", "failed", "cancelled"})
TASK_STATES = ("pending", "running", "done", "failed", "cancelled")
FINAL_TASK_STATES = frozenset({"done", "failed", "cancelled"})

# Which batch state may follow which (a batch may also stay where it is).
TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"submitted", "running", "succeeded", "failed", "cancelled"}),
    "submitted": frozenset({"running", "succeeded", "failed", "cancelled"}),
    "running": frozenset({"succeeded", "failed", "cancelled"}),
    "succeeded": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}


class StateError(RuntimeError):
    """A transition the state machine forbids was asked for: a bug in the caller, never a user's mistake."""


@dataclass(frozen=True)
class TaskCounts:
    """How many tasks are in each state, and how many were resubmitted at least once."""

    total: int
    pending: int
    running: int
    done: int
    failed: int
    cancelled: int
    retried: int


def count_tasks(states: Iterable[str], attempts: Iterable[int]) -> TaskCounts:
    """Tally task states (``attempts`` > 1 means the task was retried)."""
    tally = Counter(states)
    unknown = set(tally) - set(TASK_STATES)
    if unknown:
        raise StateError(f"unknown task state(s) {sorted(unknown)}; known: {', '.join(TASK_STATES)}")
    return TaskCounts(total=sum(tally.values()), pending=tally["pending"], running=tally["running"],
                      done=tally["done"], failed=tally["failed"], cancelled=tally["cancelled"],
                      retried=sum(1 for a in attempts if a > 1))


def next_batch_state(current: str, tasks: TaskCounts, all_submitted: bool, cancel_requested: bool) -> str:
    """The batch state that follows from ``current`` given its tasks now.

    ``all_submitted``: every pending task is in the backend's hands (so ``queued`` can become ``submitted``).
    ``cancel_requested``: the user asked to cancel; the batch is ``cancelled`` once no task is running.
    """
    if current not in TRANSITIONS:
        raise StateError(f"unknown batch state {current!r}; known: {', '.join(BATCH_STATES)}")
    if current in FINAL_BATCH_STATES:
        return current
    active = tasks.pending + tasks.running
    if cancel_requested:
        wanted = "cancelled" if tasks.running == 0 else current
    elif tasks.total and tasks.done == tasks.total:
        wanted = "succeeded"
    elif tasks.failed and active == 0:
        wanted = "failed"
    elif tasks.running or tasks.done or tasks.failed:
        wanted = "running"
    elif current == "queued" and all_submitted:
        wanted = "submitted"
    else:
        wanted = current
    return check_transition(current, wanted)


def check_transition(current: str, wanted: str) -> str:
    """Return ``wanted`` when the machine allows ``current`` → ``wanted`` (or it is no change); raise StateError."""
    if wanted != current and wanted not in TRANSITIONS.get(current, frozenset()):
        raise StateError(f"a batch cannot go from {current!r} to {wanted!r}")
    return wanted


def after_failure(attempts: int, max_retries: int) -> str:
    """The task state after a failed attempt: ``pending`` (resubmit) while retries are left, else ``failed``.

    ``attempts`` counts submissions so far (1 after the first); a task gets at most ``1 + max_retries`` attempts.
    """
    return "pending" if attempts <= max_retries else "failed"


def next_training_state(current: str, job_state: str, attempts: int, handed_over: bool, cancel_requested: bool) -> str:
    """The training state that follows from ``current`` given its one job now: a training moves as a batch of one
    render task does (the same states and transitions).

    ``job_state`` is a task state; ``handed_over``: the job is in the backend's hands (a Slurm job id or a process).
    Once the user cancelled, a job handed over and still pending may yet start, so the training waits for it to
    leave the queue before it is ``cancelled``.
    """
    if cancel_requested and handed_over and job_state == "pending":
        job_state = "running"
    tasks = count_tasks([job_state], [attempts])
    return next_batch_state(current, tasks, all_submitted=handed_over, cancel_requested=cancel_requested)
