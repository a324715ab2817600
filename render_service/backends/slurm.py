"""The ``slurm`` backend: each batch is a job array on a cluster reached through a ``CommandRunner`` (SSH).

On the cluster, one folder per batch, ``<cluster_home>/semcoat-batches/<batch id>/``: ``batch.json`` (the spec, by
SFTP), ``sbatch-<round>.sh`` (the sbatch builder's script; round 0 is the first array, round N the N-th retry),
``logs/task-<job>_<task>.out`` and the shared dataset folder ``dataset/``. The job of round 0 is named
``semcoat-<batch id>``, a retry ``semcoat-<batch id>.retry_<N>``: before submitting, the backend looks for a job of
that name, so a worker killed between ``sbatch`` and recording the job id never submits twice.

Complete samples (their meta file exists) are fetched by SFTP at each poll while the array runs, into
``<batches_dir>/<batch id>/``, ``dataset.json`` first, each file through a temporary name.

Before anything is submitted, the cluster's semcoat is asked what it is (:mod:`.cluster_semcoat`, once per
connection and every few minutes): one that does not match the service's fails the batch at once with one sentence
and the fix, instead of failing every task with "unknown field". A task that squeue, the jobcomp log and sacct have
all forgotten for ``lost_task_s`` (``SEMCOAT_SLURM_LOST_TASK_S``) is taken as failed, so it is retried.
"""

from __future__ import annotations

import logging
import posixpath
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from render_service.backends.base import BatchView, Handle, HealthReport, Launch, Observation, ObservedState, TaskView
from render_service.backends.cluster_semcoat import (
    FRESH_S,
    MISMATCH_RECHECK_S,
    RECHECK_S,
    IncompatibleCluster,
    incompatibility,
    read_cluster_version,
    version_argv,
)
from render_service.backends.local import count_complete_samples
from render_service.backends.slurm_lookup import detect_accounting, find_job_by_name, poll_jobcomp, poll_sacct
from render_service.backends.slurm_lost import LostTasks, lost_sentence
from render_service.slurm import jobs
from render_service.slurm.errors import RemoteFileNotFound, TransportError
from render_service.slurm.parsers import TaskState
from render_service.slurm.sbatch import RenderArrayJob, sbatch_script
from render_service.slurm.transport import CommandRunner
from semcoat.dataset import PHASES_DIR
from semcoat.versions import InstalledVersion, compatibility_problems

if TYPE_CHECKING:
    from render_service.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

_RUNNING = frozenset({"RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT",
                      "RESIZING"})
_PENDING = frozenset({"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD"})
_SAMPLE_META = re.compile(r"^\d{6,}\.json$")
# A final state that squeue shows before the jobcomp log or sacct has its exit code is taken without one after this.
_EXIT_CODE_WAIT_S = 30.0
_LOG_TAIL_BYTES = 4000


@dataclass(frozen=True)
class SlurmConfig:
    """The admin's side of the Slurm backend: where batches go on the cluster and the job defaults."""

    cluster_home: str
    cluster_semcoat: str
    jobcomp_log: str | None = None
    partition: str | None = None
    account: str | None = None
    time_limit: str | None = None
    cpus_per_task: int | None = None
    mem_per_task_mb: int | None = None
    max_parallel_tasks: int | None = None
    setup_lines: tuple[str, ...] = ()
    samples_per_collect: int = 200
    # A task none of squeue, the jobcomp log and sacct knows for this long is taken as lost (failed): longer than
    # Slurm's MinJobAge (300 s by default), after which squeue forgets a finished job.
    lost_task_s: float = 600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SlurmConfig:
        """The Slurm settings of the service (``SEMCOAT_CLUSTER_HOME``, ``SEMCOAT_SLURM_*``, ...)."""
        assert settings.cluster_home is not None, "the Slurm backend needs SEMCOAT_CLUSTER_HOME"
        return cls(cluster_home=settings.cluster_home, cluster_semcoat=settings.cluster_semcoat,
                   jobcomp_log=settings.slurm_jobcomp_log, partition=settings.slurm_partition,
                   account=settings.slurm_account, time_limit=settings.slurm_time_limit,
                   cpus_per_task=settings.slurm_cpus_per_task, mem_per_task_mb=settings.slurm_mem_per_task_mb,
                   max_parallel_tasks=settings.slurm_max_parallel_tasks, setup_lines=tuple(settings.slurm_setup_lines),
                   lost_task_s=settings.slurm_lost_task_s)


def job_name(batch_id: str, round_: int) -> str:
    """The Slurm job name of a batch's array: round 0 the first submission, round N the N-th retry."""
    return f"semcoat-{batch_id}" if round_ == 0 else f"semcoat-{batch_id}.retry_{round_}"


def observed(state: TaskState) -> ObservedState:
    """A Slurm state as the orchestration reads it."""
    if state.state == "COMPLETED":
        return "done"
    if state.state == "CANCELLED":
        return "cancelled"
    if state.state in _PENDING:
        return "pending"
    if state.is_final:
        return "failed"
    return "running"  # RUNNING and its kin, and any state this code does not know yet: not over


def exit_code_of(state: TaskState) -> int | None:
    """The task's exit code as a shell reports it: the code, or 128 + the signal that killed it."""
    if state.exit_code is None:
        return None
    if state.exit_code == 0 and state.signal:
        return 128 + state.signal
    return state.exit_code


class SlurmBackend:
    """Job arrays on a Slurm cluster through ``runner``; collected datasets under ``batches_dir``."""

    name = "slurm"
    max_in_flight: int | None = None

    def __init__(self, runner: CommandRunner, config: SlurmConfig, batches_dir: Path,
                 retry_delays_s: Sequence[float] = (0.5, 1.0), sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, service_version: InstalledVersion | None = None) -> None:
        """``retry_delays_s``: waits before reopening a dropped connection within one call (then the call fails and
        the next poll tries again, backing off up to a minute while the cluster stays unreachable).
        ``service_version``: what the cluster's semcoat must match (default: this installation)."""
        self.runner = runner
        self.config = config
        self.batches_dir = Path(batches_dir)
        self.retry_delays_s = tuple(retry_delays_s)
        self.sleep = sleep
        self.clock = clock
        self._accounting: bool | None = None
        self._final_without_code: dict[tuple[int, int | None], float] = {}
        self._failures = 0
        self._next_try = 0.0
        self._last_error = ""
        self._service_version = service_version
        self._cluster_version: tuple[float, InstalledVersion | str] | None = None  # (asked at, answer)
        self._lost = LostTasks(config.lost_task_s, clock)

    # -- connection ----------------------------------------------------------------------------------------------
    def call(self, what: Callable[[], T]) -> T:
        """Run ``what`` against the cluster, reopening a dropped connection with backoff; while the cluster has been
        unreachable, further calls fail at once until the backoff has passed (doubling, at most 60 s). The training
        backend talks to the cluster through here too, so both share one connection and one backoff."""
        now = self.clock()
        if now < self._next_try:
            raise TransportError(f"the cluster was unreachable {self._failures} time(s) in a row; next try in "
                                 f"{self._next_try - now:.0f} s. Last error: {self._last_error}")
        for delay in (*self.retry_delays_s, None):
            try:
                result = what()
            except TransportError as exc:
                close = getattr(self.runner, "close", None)
                if close is not None:
                    close()
                self._cluster_version = None  # a new connection may reach another installation: ask again
                if delay is None:
                    self._failures += 1
                    self._last_error = str(exc)
                    self._next_try = self.clock() + min(60.0, 2.0 ** self._failures)
                    raise
                self.sleep(delay)
            else:
                self._failures = 0
                return result
        raise AssertionError("unreachable")

    # -- the cluster's semcoat -------------------------------------------------------------------------------------
    @property
    def service_version(self) -> InstalledVersion:
        """The installation the cluster's semcoat must match: this service's own."""
        if self._service_version is None:
            from semcoat_cli.versions import installed_version  # imports the renderer once (about a second)

            self._service_version = installed_version()
        return self._service_version

    def cluster_version(self) -> InstalledVersion | str:
        """What the cluster's semcoat says it is, or why it says nothing; asked once per connection and again after
        :data:`~.cluster_semcoat.RECHECK_S` (an admin may reinstall it while the service runs), or
        :data:`~.cluster_semcoat.MISMATCH_RECHECK_S` while it does not match."""
        cached = self._cluster_version
        matching = cached is not None and isinstance(cached[1], InstalledVersion) and \
            not compatibility_problems(self.service_version, cached[1], needs=())
        if cached is None or self.clock() - cached[0] >= (RECHECK_S if matching else MISMATCH_RECHECK_S):
            argv = version_argv(self.config.cluster_semcoat, self.config.setup_lines)
            answer = read_cluster_version(self.call(lambda: self.runner.run(argv)))
            self._cluster_version = cached = (self.clock(), answer)
            log.info("the cluster's semcoat %s: %s", self.config.cluster_semcoat,
                     answer.describe() if isinstance(answer, InstalledVersion) else answer)
        return cached[1]

    def incompatibility(self, needs: tuple[str, ...] = ("render",)) -> str | None:
        """Why the cluster's semcoat cannot do work needing the parts ``needs`` (a sentence with the fix), or None.
        May raise TransportError."""
        return incompatibility(self.service_version, self.cluster_version(), self.config.cluster_semcoat,
                               self.runner.host, needs)

    def ensure_compatible(self, needs: tuple[str, ...] = ("render",)) -> None:
        """Raise IncompatibleCluster (nothing is submitted) when the cluster's semcoat does not match the service's."""
        problem = self.incompatibility(needs)
        if problem is not None and self._cluster_version is not None and \
                self.clock() - self._cluster_version[0] > FRESH_S:
            self._cluster_version = None  # never fail work on an old answer: the admin may have reinstalled since
            problem = self.incompatibility(needs)
        if problem is not None:
            raise IncompatibleCluster(problem)

    def has_accounting(self) -> bool:
        """Whether the cluster keeps accounting (sacct answers), asked once."""
        if self._accounting is None:
            self._accounting = detect_accounting(self.runner)
        return self._accounting

    # -- paths and the job ---------------------------------------------------------------------------------------
    def remote_dir(self, batch_id: str) -> str:
        """The batch's folder on the cluster."""
        return posixpath.join(self.config.cluster_home, "semcoat-batches", batch_id)

    def log_path(self, batch_id: str, job_id: int, task_id: int) -> str:
        """The log of one array task (sbatch's ``--output`` pattern filled in)."""
        return posixpath.join(self.remote_dir(batch_id), "logs", f"task-{job_id}_{task_id}.out")

    def array_job(self, batch: BatchView, tasks: Sequence[TaskView], round_: int) -> RenderArrayJob:
        """The job array of ``tasks``: the user's options where given, else the admin's defaults."""
        options, config, remote = batch.options, self.config, self.remote_dir(batch.id)
        cpus = options.get("cpus_per_task") or config.cpus_per_task
        return RenderArrayJob(
            job_name=job_name(batch.id, round_), semcoat_command=config.cluster_semcoat,
            batch_file=posixpath.join(remote, "batch.json"), out_dir=posixpath.join(remote, "dataset"),
            batch_count=batch.count, images_per_task=batch.images_per_task,
            log_path=posixpath.join(remote, "logs", "task-%A_%a.out"), work_dir=remote,
            partition=options.get("partition") or config.partition, account=options.get("account") or config.account,
            time_limit=options.get("time_limit") or config.time_limit, cpus_per_task=cpus,
            mem_per_task_mb=options.get("mem_per_task_mb") or config.mem_per_task_mb,
            max_parallel_tasks=options.get("max_parallel_tasks") or config.max_parallel_tasks,
            task_ids=None if round_ == 0 and len(tasks) == len(batch.tasks) else tuple(t.index for t in tasks),
            setup_lines=config.setup_lines)

    # -- Backend -------------------------------------------------------------------------------------------------
    def launch(self, batch: BatchView, tasks: Sequence[TaskView]) -> Launch:
        """Submit ``tasks`` as one array (round = arrays submitted so far), unless a job of its name exists."""
        round_ = len(batch.slurm_job_ids)
        job = self.array_job(batch, tasks, round_)  # checked before anything reaches the cluster
        self.ensure_compatible(("render",))
        remote = self.remote_dir(batch.id)
        script_path = posixpath.join(remote, f"sbatch-{round_}.sh")

        def submit() -> int:
            existing = find_job_by_name(self.runner, job.job_name, self.config.jobcomp_log, self.has_accounting())
            if existing is not None:
                log.info("batch %s: found job %s (%s) already submitted; not submitting again", batch.id, existing,
                         job.job_name)
                return existing
            self.runner.make_dirs(posixpath.join(remote, "logs"))
            self.runner.put_text(posixpath.join(remote, "batch.json"), batch.spec_json)
            self.runner.put_text(script_path, sbatch_script(job))
            return jobs.submit_array(self.runner, script_path)

        job_id = self.call(submit)
        return Launch(handles={t.index: Handle(job_id=job_id, array_task_id=t.index) for t in tasks},
                      job_id=job_id, remote_dir=remote)

    def observe(self, batches: Sequence[BatchView]) -> dict[str, dict[int, Observation]]:
        """Every handed-over task of ``batches``: one squeue for all jobs, the jobcomp log or sacct for exit codes,
        and the log tail of each task that failed."""
        owners: dict[tuple[int, int | None], tuple[str, TaskView]] = {}
        for batch in batches:
            for task in batch.tasks:
                if task.job_id is not None and task.state in ("pending", "running"):
                    owners[(task.job_id, task.array_task_id)] = (batch.id, task)
        if not owners:
            return {}
        prefixes = {key[0]: job_name(batch_id, 0) for key, (batch_id, _task) in owners.items()}
        found = self.job_states(prefixes)
        seen: dict[str, dict[int, Observation]] = {}
        for key, (batch_id, task) in owners.items():
            log = self.log_path(batch_id, key[0], key[1]) if key[1] is not None else None
            seen.setdefault(batch_id, {})[task.index] = self.observation(key, found.get(key), log)
        return seen

    def job_states(self, name_prefixes: dict[int, str]) -> dict[tuple[int, int | None], TaskState]:
        """Every task of the given jobs (job id → the start of its job name): one squeue for all, then the final
        states with exit codes from the jobcomp log (records under the given names only) or sacct.

        A task squeue still shows as live (COMPLETING included) keeps squeue's state: Slurm logs a cancelled job's
        final record at scancel, while its processes are still being killed, and a batch is cancelled only once
        nothing of it runs (a requeued task, pending again, also outranks its earlier record).
        """
        job_ids = set(name_prefixes)

        def states() -> dict[tuple[int, int | None], TaskState]:
            found = jobs.poll(self.runner, job_ids)  # squeue: pending, running, finished within MinJobAge
            live = {key for key, state in found.items() if not state.is_final}
            final: dict[tuple[int, int | None], TaskState] = {}
            if self.config.jobcomp_log is not None:  # final states with exit codes, these jobs only
                final.update(poll_jobcomp(self.runner, self.config.jobcomp_log, name_prefixes))
            if self.has_accounting():
                final.update({k: s for k, s in poll_sacct(self.runner, job_ids).items() if s.is_final})
            found.update({key: state for key, state in final.items() if key not in live})
            return found

        return self.call(states)

    def observation(self, key: tuple[int, int | None], state: TaskState | None, log_path: str | None) -> Observation:
        """What the orchestration reads of one task (or plain job) ``key`` in ``state`` (None: no source knows it,
        which makes it lost after ``lost_task_s``); a failed one gets the tail of its log at ``log_path`` (None: no
        log is read)."""
        if state is None:  # no source knows it: unknown within the grace, then lost (failed, so retried)
            missed_s = self._lost.missed(key)
            if missed_s is None:
                return Observation("unknown")
            sources = ["squeue", *(["the jobcomp log"] if self.config.jobcomp_log else []),
                       *(["sacct"] if self._accounting else [])]
            lost = lost_sentence(key, missed_s, self.config.lost_task_s, sources)
            tail = self._log_tail(log_path)
            return Observation("failed", exit_code=None, log_tail=f"{tail}\n{lost}" if tail else lost)
        self._lost.seen(key)
        kind = observed(state)
        if kind != "failed":
            return Observation(kind, exit_code=0 if kind == "done" else exit_code_of(state))
        if state.exit_code is None and (self.config.jobcomp_log or self._accounting):
            # squeue shows the end before the log has the exit code: wait a little for it
            first = self._final_without_code.setdefault(key, self.clock())
            if self.clock() - first < _EXIT_CODE_WAIT_S:
                return Observation("running")
        self._final_without_code.pop(key, None)
        return Observation("failed", exit_code=exit_code_of(state),
                           log_tail=f"Slurm state {state.state}\n{self._log_tail(log_path)}")

    def _log_tail(self, log_path: str | None) -> str:
        """The end of a task's log ("" when no log is read; a note when there is none)."""
        if log_path is None:
            return ""
        path = log_path
        try:
            return self.call(lambda: self.runner.read_text(path, max_bytes=_LOG_TAIL_BYTES, tail=True))
        except RemoteFileNotFound:
            return f"(no log at {path})"

    def collect(self, batch: BatchView) -> int:
        """Fetch the complete samples not fetched yet (``dataset.json`` first); return how many are here."""
        local = self.batches_dir / batch.id
        if batch.remote_dir is None:
            return count_complete_samples(local)
        return self.call(lambda: self._collect(posixpath.join(batch.remote_dir or "", "dataset"), local))

    def _collect(self, remote: str, local: Path) -> int:
        try:
            names = [n for n in self.runner.list_dir(posixpath.join(remote, "meta")) if _SAMPLE_META.match(n)]
        except RemoteFileNotFound:
            return count_complete_samples(local)  # no task has finished an image yet
        local.mkdir(parents=True, exist_ok=True)
        if not (local / "dataset.json").exists():
            self.runner.fetch(posixpath.join(remote, "dataset.json"), local / "dataset.json")
        have = set()
        if (local / "meta").is_dir():
            have = {p.name for p in (local / "meta").iterdir()}
        if set(names) <= have:
            return count_complete_samples(local)
        try:  # the optional precipitate-phase maps (renders write them), listed once per poll
            phase_maps = set(self.runner.list_dir(posixpath.join(remote, PHASES_DIR)))
        except RemoteFileNotFound:
            phase_maps = set()
        fetched = 0
        for name in names:
            if name in have:
                continue
            stem = name[:-len(".json")]
            files = [("images", f"{stem}.png"), ("masks", f"{stem}.png")]
            if f"{stem}.png" in phase_maps:
                files.append((PHASES_DIR, f"{stem}.png"))
            for sub, file in (*files, ("meta", name)):
                target = local / sub / file
                if not target.exists():  # a fetch lands whole or not at all; the meta file last
                    self.runner.fetch(posixpath.join(remote, sub, file), target)
            fetched += 1
            if fetched >= self.config.samples_per_collect:
                break  # the rest at the next poll: one poll must not hold the backend for long
        return count_complete_samples(local)

    def stop(self, batch: BatchView) -> None:
        """scancel every array of the batch, and a job of the next round's name (submitted, not yet recorded)."""
        def cancel() -> None:
            jobs.cancel(self.runner, batch.slurm_job_ids)
            self.runner.run(["scancel", f"--name={job_name(batch.id, len(batch.slurm_job_ids))}"]).check()

        self.call(cancel)

    def check(self) -> HealthReport:
        """SSH login, ``sinfo`` and the cluster's semcoat: reachable, with the partitions and whether each is up,
        and whether the cluster's semcoat matches the service's (``extra["compatible"]``)."""
        try:
            result = self.call(lambda: self.runner.run(["sinfo", "-h", "-o", "%P %a"]))
            if result.exit_code != 0:
                return HealthReport(False, f"sinfo on {self.runner.host} exited {result.exit_code}: "
                                           f"{result.stderr.strip() or result.stdout.strip()}")
            problem = self.incompatibility(("render",))
            cluster = self.cluster_version()
        except TransportError as exc:
            return HealthReport(False, str(exc))
        if problem is not None:
            return HealthReport(False, problem, {"compatible": False})
        partitions = ", ".join(" ".join(line.split()) for line in result.stdout.splitlines() if line.strip())
        detail = f"Slurm on {self.runner.host} answers; partitions: {partitions or 'none'}; its semcoat matches " \
                 f"this service's ({self.service_version.describe()})"
        if isinstance(cluster, InstalledVersion) and "train" not in cluster.parts:
            detail += "; it has no train part, so trainings fail at submit"
        return HealthReport(True, detail, {"compatible": True})
