"""The batch state machine: every reachable combination gives an allowed transition, final states stay final."""

from __future__ import annotations

import itertools

import pytest

from render_service.states import (
    BATCH_STATES,
    FINAL_BATCH_STATES,
    StateError,
    TaskCounts,
    after_failure,
    check_transition,
    count_tasks,
    next_batch_state,
)


def _counts(**kw: int) -> TaskCounts:
    base = {"pending": 0, "running": 0, "done": 0, "failed": 0, "cancelled": 0, "retried": 0}
    base.update(kw)
    return TaskCounts(total=sum(v for k, v in base.items() if k != "retried"), **base)


def test_a_batch_runs_its_course() -> None:
    state = "queued"
    state = next_batch_state(state, _counts(pending=3), all_submitted=False, cancel_requested=False)
    assert state == "queued"
    state = next_batch_state(state, _counts(pending=3), all_submitted=True, cancel_requested=False)
    assert state == "submitted"
    state = next_batch_state(state, _counts(pending=2, running=1), all_submitted=True, cancel_requested=False)
    assert state == "running"
    state = next_batch_state(state, _counts(done=3), all_submitted=True, cancel_requested=False)
    assert state == "succeeded"


def test_a_failed_task_fails_the_batch_only_when_nothing_else_can_still_run() -> None:
    assert next_batch_state("running", _counts(failed=1, running=1), True, False) == "running"
    assert next_batch_state("running", _counts(failed=1, pending=1), True, False) == "running"
    assert next_batch_state("running", _counts(failed=1, done=2), True, False) == "failed"


def test_cancel_waits_for_running_tasks_then_cancels() -> None:
    assert next_batch_state("running", _counts(running=1, done=1), True, True) == "running"
    assert next_batch_state("running", _counts(cancelled=1, done=1), True, True) == "cancelled"
    assert next_batch_state("queued", _counts(pending=2), False, True) == "cancelled"


def test_final_states_never_change_whatever_the_tasks_say() -> None:
    for final, counts in itertools.product(sorted(FINAL_BATCH_STATES), [_counts(running=2), _counts(done=1)]):
        assert next_batch_state(final, counts, True, False) == final


@pytest.mark.parametrize("current", BATCH_STATES)
def test_every_combination_gives_an_allowed_state(current: str) -> None:
    for p, r, d, f, c in itertools.product(range(3), repeat=5):
        for submitted, cancel in itertools.product((False, True), repeat=2):
            counts = _counts(pending=p, running=r, done=d, failed=f, cancelled=c)
            wanted = next_batch_state(current, counts, submitted, cancel)
            assert check_transition(current, wanted) == wanted


def test_forbidden_transitions_and_unknown_states_are_errors() -> None:
    with pytest.raises(StateError, match="cannot go from 'succeeded' to 'running'"):
        check_transition("succeeded", "running")
    with pytest.raises(StateError, match="unknown batch state"):
        next_batch_state("lost", _counts(), True, False)
    with pytest.raises(StateError, match="unknown task state"):
        count_tasks(["done", "exploded"], [1, 1])


def test_retries_then_failure() -> None:
    assert [after_failure(attempts, max_retries=2) for attempts in (1, 2, 3)] == ["pending", "pending", "failed"]
    assert after_failure(1, max_retries=0) == "failed"
    assert count_tasks(["done", "done", "failed"], [1, 3, 3]).retried == 2
