"""What a worker process holds: its settings, database, backends (one SSH connection, kept), Redis and the lock
that makes one worker at a time work on a backend.

The lock (a Redis lock per backend, ``semcoat:lock:<backend>``, with a short expiry that the work extends as it
goes) keeps two workers, or two threads of one, from submitting the same batch at once; a worker killed while
holding it holds it no longer than :data:`LOCK_TTL_S`.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import redis

from render_service.backends.base import Backend
from render_service.backends.local import LocalBackend
from render_service.backends.local_training import LocalTrainingBackend
from render_service.backends.training_base import TrainingBackend
from render_service.db.models import Batch, Training
from render_service.db.session import Database
from render_service.health import health_ttl_s, write_backend_health
from render_service.orchestrate import Orchestrator, StepReport
from render_service.settings import Settings, SettingsError, load_settings
from render_service.train_orchestrate import TrainingOrchestrator
from render_service.training_metrics import training_work_dir

if TYPE_CHECKING:
    from redis.lock import Lock

log = logging.getLogger(__name__)

LOCK_TTL_S = 15
LOCK_KEY = "semcoat:lock:{backend}"


class Runtime:
    """One worker process's long-lived parts, built once from the settings."""

    def __init__(self, settings: Settings) -> None:
        if settings.redis_url is None:
            raise SettingsError("SEMCOAT_REDIS_URL is not set: a worker takes its tasks from Redis; set it to the "
                                "broker the API uses (e.g. redis://127.0.0.1:6379/0)")
        self.settings = settings
        self.db = Database(settings.database)
        self.redis = redis.Redis.from_url(settings.redis_url, socket_timeout=10.0, socket_connect_timeout=5.0)
        self.backends: dict[str, Backend] = {"local": LocalBackend(
            settings.batches_dir, settings.data_dir / "work", settings.local_max_processes,
            settings.local_threads_per_process)}
        self.training_backends: dict[str, TrainingBackend] = {"local": LocalTrainingBackend(
            settings.trainings_dir, training_work_dir(settings.data_dir))}
        if settings.slurm_configured:
            self.backends["slurm"] = _slurm_backend(settings)
            self.training_backends["slurm"] = _slurm_training_backend(self.backends["slurm"], settings)

    def backend(self, name: str) -> Backend:
        """The backend called ``name``; a batch of a backend this worker lacks is a settings problem."""
        try:
            return self.backends[name]
        except KeyError:
            raise SettingsError(f"this worker has no {name!r} backend (it has {', '.join(self.backends)}); set the "
                                "SEMCOAT_SSH_* and SEMCOAT_CLUSTER_HOME settings for the Slurm backend") from None

    def backend_of(self, batch_id: str) -> str | None:
        """The backend name of a batch (None: no such batch)."""
        with self.db.session() as session:
            batch = session.get(Batch, batch_id)
            return None if batch is None else batch.backend

    def training_backend_of(self, training_id: str) -> str | None:
        """The backend name of a training (None: no such training)."""
        with self.db.session() as session:
            training = session.get(Training, training_id)
            return None if training is None else training.backend

    @contextmanager
    def locked(self, backend: str) -> Iterator[Lock | None]:
        """The backend's lock, held for the block, or None when another worker holds it. Batches and trainings of
        a backend share it (and its one SSH connection)."""
        lock: Lock = self.redis.lock(LOCK_KEY.format(backend=backend), timeout=LOCK_TTL_S, blocking=False)
        if not lock.acquire(blocking=False):
            yield None
            return
        try:
            yield lock
        finally:
            try:
                lock.release()
            except redis.exceptions.LockError:
                log.warning("the %s lock expired before the work ended (it took over %s s)", backend, LOCK_TTL_S)

    @contextmanager
    def orchestrator(self, backend: str) -> Iterator[Orchestrator | None]:
        """An orchestrator of ``backend`` holding the backend's lock, or None when another worker holds it."""
        with self.locked(backend) as lock:
            yield None if lock is None else Orchestrator(self.db, self.backend(backend), self.settings.max_retries,
                                                         keepalive=lock.reacquire)

    def training_orchestrator(self, backend: str, keepalive: Callable[[], object]) -> TrainingOrchestrator:
        """The trainings' orchestrator of ``backend``; the caller holds the backend's lock (:meth:`locked`)."""
        try:
            training_backend = self.training_backends[backend]
        except KeyError:
            raise SettingsError(f"this worker has no {backend!r} backend (it has {', '.join(self.training_backends)})"
                                "; set the SEMCOAT_SSH_* and SEMCOAT_CLUSTER_HOME settings for the Slurm backend"
                                ) from None
        return TrainingOrchestrator(self.db, training_backend, keepalive=keepalive)

    def record_health(self, backend: str, report: StepReport) -> None:
        """Write the backend's reachability for ``/health``: the step's problem, else a fresh check."""
        if report.reachable:
            check = self.backend(backend).check()
            reachable, detail = check.reachable, check.detail
        else:
            reachable, detail = False, report.detail
        write_backend_health(self.redis, backend, reachable, detail, health_ttl_s(self.settings.poll_interval_s))


def _slurm_backend(settings: Settings) -> Backend:
    from render_service.backends.slurm import SlurmBackend, SlurmConfig
    from render_service.slurm.ssh import SSHRunner

    assert settings.ssh_host and settings.ssh_user and settings.ssh_key and settings.ssh_known_hosts
    runner = SSHRunner(settings.ssh_host, settings.ssh_port, settings.ssh_user, settings.ssh_key,
                       settings.ssh_known_hosts)
    return SlurmBackend(runner, SlurmConfig.from_settings(settings), settings.batches_dir)


def _slurm_training_backend(cluster: Backend, settings: Settings) -> TrainingBackend:
    from render_service.backends.slurm import SlurmBackend
    from render_service.backends.slurm_training import SlurmTrainingBackend

    assert isinstance(cluster, SlurmBackend)
    return SlurmTrainingBackend(cluster, settings.trainings_dir, training_work_dir(settings.data_dir),
                                progress_interval_s=settings.slurm_progress_s)


_RUNTIME_LOCK = threading.Lock()


@functools.cache
def _build_runtime() -> Runtime:
    return Runtime(load_settings())


def runtime() -> Runtime:
    """This process's runtime (built at the first task, from the environment's settings).

    Built under a lock: the worker runs tasks in threads, and two first tasks building it at once would run two
    Alembic migrations side by side in one process (Alembic's ``context``/``op`` proxies are module globals: a
    ``KeyError: 'config'`` in ``_remove_proxy`` was seen) and open two SSH connections.
    """
    with _RUNTIME_LOCK:
        return _build_runtime()
