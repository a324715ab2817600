"""Tasks Slurm lost track of: handed over, yet squeue, the jobcomp log and sacct all have no record of them.

That happens where the cluster keeps no accounting and the service did not poll while squeue still showed the
finished task (MinJobAge, 5 min by default), or when a job's record is lost. Such a task would stay in its last
state for ever; :class:`LostTasks` gives it a grace period (``SEMCOAT_SLURM_LOST_TASK_S``), after which the backend
reports it failed with :func:`lost_sentence`, and the retry logic resubmits it like any failed task.
"""

from __future__ import annotations

from collections.abc import Callable

TaskKey = tuple[int, int | None]


class LostTasks:
    """When each task was first and last missed by this process's polls (``clock``: monotonic seconds)."""

    def __init__(self, grace_s: float, clock: Callable[[], float]) -> None:
        self.grace_s = grace_s
        self.clock = clock
        self._missed: dict[TaskKey, tuple[float, float]] = {}  # key -> (first, last) poll that missed it

    def seen(self, key: TaskKey) -> None:
        """A source knows the task: it is not lost."""
        self._missed.pop(key, None)

    def missed(self, key: TaskKey) -> float | None:
        """Record a poll that found no record of the task; return for how long it has been missed once that is the
        grace or more (the task is then forgotten here), else None.

        A gap longer than the grace since this process last missed it starts the count again: other workers polled
        meanwhile, and may have seen it.
        """
        now = self.clock()
        first, last = self._missed.get(key, (now, now))
        if now - last > self.grace_s:
            first = now
        if now - first < self.grace_s:
            self._missed[key] = (first, now)
            return None
        self._missed.pop(key, None)
        return now - first


def lost_sentence(key: TaskKey, missed_s: float, grace_s: float, sources: list[str]) -> str:
    """Why a task is taken as failed: which task, which sources forgot it, for how long, and the setting."""
    task = f"array task {key[0]}_{key[1]}" if key[1] is not None else f"job {key[0]}"
    named = sources[0] if len(sources) == 1 else ", ".join(sources[:-1]) + " and " + sources[-1]
    return (f"Slurm lost track of {task}: {named} had no record of it for {missed_s:.0f} s (the limit is "
            f"SEMCOAT_SLURM_LOST_TASK_S, {grace_s:.0f} s), so it is taken as failed")
