"""Parsers of Slurm output, against outputs recorded from the real cluster (fixtures/)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from render_service.slurm.parsers import (
    SlurmOutputError,
    expand_task_ids,
    parse_jobcomp,
    parse_sbatch_job_id,
    parse_squeue,
)
from semcoat.errors import SemcoatError

FIXTURES = Path(__file__).parent / "fixtures"


def test_sbatch_job_id_plain_and_with_cluster() -> None:
    assert parse_sbatch_job_id("1234\n") == 1234
    assert parse_sbatch_job_id("77;hpc\n") == 77


@pytest.mark.parametrize("text", ["", "Submitted batch job 12", "sbatch: error: Batch job submission failed"])
def test_sbatch_garbage_is_an_error_quoting_the_text(text: str) -> None:
    with pytest.raises(SlurmOutputError, match="expected a job id"):
        parse_sbatch_job_id(text)


@pytest.mark.parametrize(("spec", "ids"), [
    ("3", [3]), ("[0-3]", [0, 1, 2, 3]), ("[0-3,7,9-10%2]", [0, 1, 2, 3, 7, 9, 10]), ("[0-6:3]", [0, 3, 6]),
])
def test_expand_task_ids(spec: str, ids: list[int]) -> None:
    assert expand_task_ids(spec) == ids


def test_expand_task_ids_rejects_garbage() -> None:
    with pytest.raises(SlurmOutputError):
        expand_task_ids("[a-b]")


def test_squeue_pending_array_expands_per_task() -> None:
    rows = parse_squeue((FIXTURES / "squeue_pending_array.txt").read_text())
    assert [(r.job_id, r.task_id, r.state) for r in rows] == [(1, i, "PENDING") for i in range(4)]
    assert not any(r.is_final for r in rows)


def test_squeue_finished_array_has_final_states() -> None:
    rows = {r.task_id: r for r in parse_squeue((FIXTURES / "squeue_finished_array.txt").read_text())}
    assert rows[2].state == "FAILED" and rows[2].reason == "NonZeroExitCode"
    assert all(r.is_final for r in rows.values())


def test_squeue_cancelled_pending_array() -> None:
    rows = parse_squeue((FIXTURES / "squeue_cancelled_pending_array.txt").read_text())
    assert {r.state for r in rows} == {"CANCELLED"} and len(rows) == 4


def test_squeue_state_with_suffix_is_reduced() -> None:
    (row,) = parse_squeue("9|CANCELLED by 1001|None\n")
    assert row.state == "CANCELLED" and row.task_id is None


def test_jobcomp_records_are_keyed_by_array_job_and_task() -> None:
    records = parse_jobcomp((FIXTURES / "jobcomp_array_one_failed.log").read_text())
    by_task = {(r.job_id, r.task_id): r for r in records}
    assert set(by_task) == {(1, 0), (1, 1), (1, 2), (1, 3)}
    assert (by_task[(1, 2)].state, by_task[(1, 2)].exit_code) == ("FAILED", 3)
    assert (by_task[(1, 0)].state, by_task[(1, 0)].exit_code, by_task[(1, 0)].signal) == ("COMPLETED", 0, 0)


def test_jobcomp_plain_job_and_signal() -> None:
    (rec,) = parse_jobcomp("JobId=42 JobState=FAILED ExitCode=0:9 ArrayJobId= ArrayTaskId=\n")
    assert (rec.job_id, rec.task_id, rec.state, rec.exit_code, rec.signal) == (42, None, "FAILED", 0, 9)


def test_jobcomp_line_without_state_is_an_error() -> None:
    with pytest.raises(SlurmOutputError, match="JobState"):
        parse_jobcomp("JobId=1 ExitCode=0:0\n")


def test_slurm_output_error_is_a_semcoat_error_not_a_value_error() -> None:
    with pytest.raises(SemcoatError):
        parse_squeue("no pipes here\n")
    with pytest.raises(SlurmOutputError, match=re.escape("'abc|RUNNING|None'")):
        parse_squeue("abc|RUNNING|None\n")
    assert not issubclass(SlurmOutputError, ValueError)
