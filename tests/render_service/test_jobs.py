"""submit_array, cancel, poll and the failure errors, against a FakeRunner answering with recorded Slurm output."""

from __future__ import annotations

from pathlib import Path

import pytest

from render_service.slurm.errors import (
    CommandFailed,
    JobFailedError,
    RemoteFileNotFound,
    SlurmOutputError,
    SubmissionError,
    TransportError,
)
from render_service.slurm.fake import FakeRunner
from render_service.slurm.jobs import cancel, failed_tasks, poll, raise_for_failed, submit_array
from render_service.slurm.parsers import TaskState
from semcoat.errors import SemcoatError

FIXTURES = Path(__file__).parent / "fixtures"
JOBCOMP_LOG = "/var/log/slurm/jobcomp.log"
INVALID_PARTITION = ("sbatch: error: invalid partition specified: nosuch\n"
                     "sbatch: error: Batch job submission failed: Invalid partition name specified\n")


def test_submit_array_returns_the_job_id() -> None:
    fake = FakeRunner()
    fake.answer("sbatch", stdout="4711\n")
    assert submit_array(fake, "/w/b 1/job.sh") == 4711
    assert fake.commands == [("sbatch", "--parsable", "/w/b 1/job.sh")]


def test_refused_submission_quotes_slurm_and_says_what_to_do() -> None:
    fake = FakeRunner(host="login.hpc")
    fake.answer("sbatch", stderr=INVALID_PARTITION, exit_code=1)
    with pytest.raises(SubmissionError) as info:
        submit_array(fake, "/w/job.sh")
    error = info.value
    assert isinstance(error, SemcoatError) and not isinstance(error, TransportError)
    assert "Invalid partition name specified" in str(error) and "login.hpc" in str(error)
    assert "sinfo" in str(error)  # what to do next
    assert error.slurm_message == INVALID_PARTITION.strip()
    assert isinstance(error.__cause__, CommandFailed) and error.__cause__.result.exit_code == 1


def test_unreachable_controller_is_a_transport_error_not_a_refusal() -> None:
    fake = FakeRunner()
    refusal = "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)"
    fake.answer("sbatch", exit_code=1, stderr=refusal)
    with pytest.raises(TransportError, match="submit it again later"):
        submit_array(fake, "/w/job.sh")


def test_sbatch_answer_that_is_not_a_job_id_is_an_output_error() -> None:
    fake = FakeRunner()
    fake.answer("sbatch", stdout="Submitted batch job 12\n")
    with pytest.raises(SlurmOutputError, match="expected a job id"):
        submit_array(fake, "/w/job.sh")


def test_cancel_sends_one_scancel_for_all_jobs() -> None:
    fake = FakeRunner()
    fake.answer("scancel")
    cancel(fake, [12, 3, 12])
    cancel(fake, [])
    assert fake.commands == [("scancel", "3", "12")]


def test_cancel_refused_is_command_failed() -> None:
    fake = FakeRunner()
    fake.answer("scancel", exit_code=1, stderr="scancel: error: Kill job error on job id 3: Access/permission denied")
    with pytest.raises(CommandFailed, match="permission denied"):
        cancel(fake, [3])


def test_poll_reads_squeue_for_all_jobs_in_one_call() -> None:
    fake = FakeRunner()
    fake.answer("squeue", stdout=(FIXTURES / "squeue_pending_array.txt").read_text() + "2_0|RUNNING|None\n")
    states = poll(fake, [2, 1])
    assert fake.commands == [("squeue", "-h", "-t", "all", "-j", "1,2", "-o", "%i|%T|%r")]
    assert sorted(states) == [(1, 0), (1, 1), (1, 2), (1, 3), (2, 0)]
    assert states[(2, 0)].state == "RUNNING" and states[(1, 3)].state == "PENDING"


def test_poll_overlays_jobcomp_records_which_carry_exit_codes() -> None:
    fake = FakeRunner()
    fake.answer("squeue", stdout=(FIXTURES / "squeue_finished_array.txt").read_text())
    fake.answer("grep", stdout=(FIXTURES / "jobcomp_array_one_failed.log").read_text())
    states = poll(fake, [1], jobcomp_log=JOBCOMP_LOG)
    assert fake.commands[1] == ("grep", "-E", "(^| )(JobId|ArrayJobId)=(1)( |$)", JOBCOMP_LOG)
    assert {k: (s.state, s.exit_code) for k, s in states.items()} == {
        (1, 0): ("COMPLETED", 0), (1, 1): ("COMPLETED", 0), (1, 2): ("FAILED", 3), (1, 3): ("COMPLETED", 0)}


def test_poll_of_jobs_squeue_forgot_and_jobcomp_never_saw_is_empty() -> None:
    fake = FakeRunner()
    fake.answer("squeue", exit_code=1, stderr="slurm_load_jobs error: Invalid job id specified\n")
    fake.answer("grep", exit_code=1)
    assert poll(fake, [99], jobcomp_log=JOBCOMP_LOG) == {}
    assert poll(fake, []) == {}
    assert len(fake.commands) == 2  # polling no job runs nothing


def test_poll_with_a_missing_jobcomp_log_names_it() -> None:
    fake = FakeRunner(host="login.hpc")
    fake.answer("squeue", stdout="")
    fake.answer("grep", exit_code=2, stderr=f"grep: {JOBCOMP_LOG}: No such file or directory\n")
    with pytest.raises(RemoteFileNotFound, match="JobCompLoc") as info:
        poll(fake, [5], jobcomp_log=JOBCOMP_LOG)
    assert (info.value.host, info.value.path) == ("login.hpc", JOBCOMP_LOG)


def test_poll_squeue_failure_other_than_unknown_job_is_command_failed() -> None:
    fake = FakeRunner()
    fake.answer("squeue", exit_code=1, stderr="squeue: error: Unable to contact slurm controller\n")
    with pytest.raises(CommandFailed, match="Unable to contact"):
        poll(fake, [5])


def test_job_failed_error_names_tasks_exit_codes_and_log_tails() -> None:
    states = {
        (7, 0): TaskState(7, 0, "COMPLETED", exit_code=0, signal=0),
        (7, 1): TaskState(7, 1, "FAILED", exit_code=3, signal=0),
        (7, 2): TaskState(7, 2, "TIMEOUT"),
        (7, 3): TaskState(7, 3, "RUNNING"),
        (8, 0): TaskState(8, 0, "FAILED", exit_code=0, signal=9),
    }
    assert [(s.job_id, s.task_id) for s in failed_tasks(states.values())] == [(7, 1), (7, 2), (8, 0)]
    with pytest.raises(JobFailedError) as info:
        raise_for_failed(7, states.values(), log_tails={1: "Traceback ...\nRenderError: no GPU\n"})
    message = str(info.value)
    assert message.startswith("Slurm job 7: 2 task(s) failed: task 1 (FAILED, exit code 3), task 2 (TIMEOUT)")
    assert "end of the log of task 1 ---\nTraceback ...\nRenderError: no GPU" in message
    assert [t.task_id for t in info.value.failed] == [1, 2]
    raise_for_failed(9, states.values())  # no failed task of job 9: nothing raised
    with pytest.raises(JobFailedError, match=r"task 0 \(FAILED, exit code 0, signal 9\)"):
        raise_for_failed(8, states.values())


def test_job_failed_error_lists_at_most_twenty_tasks() -> None:
    failed = [TaskState(3, i, "OUT_OF_MEMORY") for i in range(25)]
    message = str(JobFailedError(3, failed))
    assert message.startswith("Slurm job 3: 25 task(s) failed: task 0 (OUT_OF_MEMORY), ")
    assert message.endswith("task 19 (OUT_OF_MEMORY) and 5 more")
