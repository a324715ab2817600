"""A Slurm cluster in memory for unit tests of the service: sbatch, squeue, scancel, sinfo and the jobcomp log
answered by a ``FakeRunner`` from a table of jobs (arrays, and plain jobs such as a training's) that tests move along
(start, finish, fail tasks), and the cluster's ``semcoat version --json`` (by default the same installation as the
service's; tests set :attr:`FakeSlurm.version` to another, or to an old semcoat's answer)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

from render_service.slurm.fake import FakeRunner
from render_service.slurm.parsers import FINAL_STATES, expand_task_ids
from render_service.slurm.transport import CommandResult
from semcoat.versions import InstalledVersion
from semcoat_cli.versions import installed_version

JOBCOMP_LOG = "/var/log/slurm/jobcomp.log"
CLUSTER_SEMCOAT = "/opt/semcoat/bin/semcoat"
# What a semcoat older than `semcoat version` answers (Typer's usage error).
OLD_SEMCOAT_ANSWER = CommandResult((), 2, "", "Usage: semcoat [OPTIONS] COMMAND [ARGS]...\nTry 'semcoat --help' for "
                                   "help.\n╭─ Error ─╮\n│ No such command 'version'. │\n╰─────────╯\n")


class Clock:
    """Seconds a test moves along by hand (``clock.now += 30``), called as ``time.time`` is."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeJob:
    """One submitted job: its name, script and each task's state and exit code (a plain job, not an array, has the
    one task 0 and shows without a task suffix)."""

    job_id: int
    name: str
    script: str
    states: dict[int, str] = field(default_factory=dict)
    exit_codes: dict[int, str] = field(default_factory=dict)
    array: bool = True

    def row_id(self, task: int) -> str:
        """How squeue names the task."""
        return f"{self.job_id}_{task}" if self.array else str(self.job_id)


class FakeSlurm:
    """Jobs submitted through ``runner`` land in ``jobs``; tests call :meth:`run`, :meth:`finish`, :meth:`fail`."""

    def __init__(self, runner: FakeRunner, first_job_id: int = 100) -> None:
        self.runner = runner
        self.jobs: dict[int, FakeJob] = {}
        self.next_id = first_job_id
        self.squeue_forgets: set[int] = set()  # jobs past MinJobAge: only the jobcomp log knows them
        self.jobcomp_forgets: set[int] = set()  # jobs the jobcomp log never recorded (lost)
        # as Slurm does: scancel of a running task logs its final record at once, while squeue shows it COMPLETING
        # until its processes are gone (:meth:`end_completing`)
        self.completing_on_cancel = False
        self.logged_early: dict[tuple[int, int], tuple[str, str]] = {}
        # the cluster's semcoat: an installation, or a fixed answer (OLD_SEMCOAT_ANSWER)
        self.version: InstalledVersion | CommandResult = installed_version()
        runner.answer("bash", "-c", handler=self._version)
        runner.answer("sbatch", handler=self._sbatch)
        runner.answer("squeue", handler=self._squeue)
        runner.answer("grep", handler=self._grep)
        runner.answer("scancel", handler=self._scancel)
        runner.answer("sacct", exit_code=1, stderr="Slurm accounting storage is disabled")
        runner.answer("sinfo", stdout="debug up\n")

    @property
    def submissions(self) -> list[FakeJob]:
        """Every array submitted, in order."""
        return [self.jobs[i] for i in sorted(self.jobs)]

    def set(self, job_id: int, task: int, state: str, exit_code: str = "0:0") -> None:
        """Move one task to ``state`` (a final state gets ``exit_code`` in the jobcomp log)."""
        self.jobs[job_id].states[task] = state
        self.jobs[job_id].exit_codes[task] = exit_code

    def _version(self, argv: tuple[str, ...], _stdin: str | None) -> CommandResult:
        assert argv[-1].endswith(f"exec {CLUSTER_SEMCOAT} version --json"), argv
        if isinstance(self.version, CommandResult):
            return CommandResult(argv, self.version.exit_code, self.version.stdout, self.version.stderr)
        return CommandResult(argv, 0, self.version.to_json() + "\n", "")

    def _sbatch(self, argv: tuple[str, ...], _stdin: str | None) -> CommandResult:
        script = self.runner.files[argv[-1]].decode()
        name = re.search(r"--job-name=(\S+)", script)
        array = re.search(r"--array=(\S+)", script)
        assert name, script
        job = FakeJob(self.next_id, name.group(1), script, array=array is not None)
        job.states = {t: "PENDING" for t in (expand_task_ids(array.group(1)) if array else [0])}
        self.jobs[job.job_id] = job
        self.next_id += 1
        return CommandResult(argv, 0, f"{job.job_id}\n", "")

    def _squeue(self, argv: tuple[str, ...], _stdin: str | None) -> CommandResult:
        args = list(argv)
        visible = [j for j in self.submissions if j.job_id not in self.squeue_forgets]
        named = next((a.split("=", 1)[1] for a in args if a.startswith("--name=")), None)
        if named is not None:
            return CommandResult(argv, 0, "".join(f"{j.job_id}\n" for j in visible if j.name == named), "")
        wanted = {int(i) for i in args[args.index("-j") + 1].split(",")}
        rows = [f"{j.row_id(t)}|{s}|None\n"
                for j in visible if j.job_id in wanted for t, s in sorted(j.states.items())]
        return CommandResult(argv, 0, "".join(rows), "")

    def jobcomp_lines(self) -> list[str]:
        """The jobcomp log: one line per finished task (cancelled pending tasks leave none, as in Slurm)."""
        lines = []
        for job in self.submissions:
            if job.job_id in self.jobcomp_forgets:
                continue
            for task, squeue_state in sorted(job.states.items()):
                state, exit_code = self.logged_early.get((job.job_id, task),
                                                         (squeue_state, job.exit_codes.get(task, "")))
                if state in FINAL_STATES and not (state == "CANCELLED" and job.exit_codes.get(task) == "never-ran"):
                    if job.array:
                        lines.append(f"JobId={job.job_id * 1000 + task} Name={job.name} JobState={state} "
                                     f"ArrayJobId={job.job_id} ArrayTaskId={task} ExitCode={exit_code} ")
                    else:
                        lines.append(f"JobId={job.job_id} Name={job.name} JobState={state} ExitCode={exit_code} ")
        return lines

    def _grep(self, argv: tuple[str, ...], _stdin: str | None) -> CommandResult:
        assert argv[-1] == JOBCOMP_LOG, argv
        pattern = re.compile(argv[-2])
        hits = [line for line in self.jobcomp_lines() if pattern.search(line)]
        return CommandResult(argv, 0 if hits else 1, "".join(f"{h}\n" for h in hits), "")

    def _scancel(self, argv: tuple[str, ...], _stdin: str | None) -> CommandResult:
        named = next((a.split("=", 1)[1] for a in argv if a.startswith("--name=")), None)
        targets = [j for j in self.submissions if (j.name == named if named else str(j.job_id) in argv[1:])]
        for job in targets:
            for task, state in job.states.items():
                if state in FINAL_STATES or state == "COMPLETING":  # ending already
                    continue
                if self.completing_on_cancel and state == "RUNNING":
                    self.logged_early[(job.job_id, task)] = ("CANCELLED", "0:15")
                    job.states[task] = "COMPLETING"
                    continue
                job.exit_codes[task] = "never-ran" if state == "PENDING" else "0:15"
                job.states[task] = "CANCELLED"
        return CommandResult(argv, 0, "", "")

    def end_completing(self) -> None:
        """The processes of every COMPLETING task are gone: squeue shows the state the jobcomp log already has."""
        for (job_id, task), (state, exit_code) in self.logged_early.items():
            self.set(job_id, task, state, exit_code)
        self.logged_early.clear()

    def render(self, remote_dataset: str, start: int, count: int, phase_maps: bool = True) -> None:
        """What a task leaves on the cluster: dataset.json and each sample's image, mask, phase map (unless
        ``phase_maps`` is False) and meta file."""
        self.runner.add_file(f"{remote_dataset}/dataset.json", json.dumps({"count": 6}))
        for index in range(start, start + count):
            sid = f"{index:06d}"
            self.runner.add_file(f"{remote_dataset}/images/{sid}.png", f"image {index}".encode())
            self.runner.add_file(f"{remote_dataset}/masks/{sid}.png", f"mask {index}".encode())
            if phase_maps:
                self.runner.add_file(f"{remote_dataset}/phases/{sid}.png", f"phases {index}".encode())
            self.runner.add_file(f"{remote_dataset}/meta/{sid}.json", json.dumps({"index": index}))

    def commands(self, name: str) -> list[str]:
        """The command lines run so far whose program is ``name``."""
        return [shlex.join(c) for c in self.runner.commands if c[0] == name]
