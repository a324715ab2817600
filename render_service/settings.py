"""The service's settings: one ``Settings`` read from the environment (prefix ``SEMCOAT_``) and an ``.env`` file.

The names are those ``scripts/stack.sh`` writes into ``stack.env`` (``SEMCOAT_SSH_HOST``, ``SEMCOAT_REDIS_URL``, ...),
so pointing the service at the loopback cluster is ``set -a; . stack.env``. A bad or missing setting fails at start,
naming the setting (:func:`load_settings` turns pydantic's errors into one :class:`SettingsError`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from semcoat.batch import MAX_IMAGES
from semcoat.errors import SemcoatError

ENV_PREFIX = "SEMCOAT_"


class SettingsError(SemcoatError):
    """A setting is missing or invalid; the message names each setting (as an environment variable)."""


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/semcoat`` or ``~/.local/share/semcoat``: the embedded default's database, data and token."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "semcoat"


PositiveInt = Annotated[int, Field(gt=0)]


class Settings(BaseSettings):
    """Every setting of the API and the workers. Slurm settings are needed only when the Slurm backend is used."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir,
                           description="Database, collected datasets and the embedded default's token file.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite in the data folder.")
    redis_url: str | None = Field(None, description="Celery's broker; unset: `semcoat serve` starts its own Redis.")
    max_images_per_batch: int = Field(10_000, gt=0, le=MAX_IMAGES, description="Largest batch a user may submit.")
    max_retries: int = Field(2, ge=0, le=20, description="Resubmissions of a failed render task before it fails.")
    poll_interval_s: float = Field(3.0, gt=0, le=3600, description="Seconds between polls of active batches.")
    local_max_processes: PositiveInt = Field(default_factory=lambda: os.cpu_count() or 1,
                                             description="Render processes the local backend runs at once.")
    local_threads_per_process: int = Field(1, ge=0, description="Render threads of each local process (0 = all).")

    # The Slurm backend: where the login node is, who the service is there, where batches go.
    ssh_host: str | None = None
    ssh_port: int = Field(22, gt=0, lt=65536)
    ssh_user: str | None = None
    ssh_key: Path | None = None
    ssh_known_hosts: Path | None = None
    cluster_home: str | None = Field(None, description="Cluster folder that holds one sub-folder per batch.")
    cluster_semcoat: str = Field("semcoat", description="The cluster's semcoat (scripts/install-render-env.sh).")
    slurm_jobcomp_log: str | None = Field(None, description="jobcomp/filetxt log, for clusters without accounting.")
    slurm_partition: str | None = None
    slurm_account: str | None = None
    slurm_time_limit: str | None = None
    slurm_cpus_per_task: int | None = Field(None, gt=0)
    slurm_mem_per_task_mb: int | None = Field(None, gt=0)
    slurm_images_per_task: int | None = Field(None, gt=0)
    slurm_max_parallel_tasks: int | None = Field(None, gt=0)
    slurm_setup_lines: list[str] = Field(default_factory=list,
                                         description="Admin's shell lines run before each task (JSON list).")
    slurm_lost_task_s: float = Field(600.0, ge=60, le=7 * 24 * 3600,
                                     description="Seconds a task unknown to squeue, jobcomp and sacct is waited for "
                                                 "before it is taken as failed (longer than Slurm's MinJobAge).")
    slurm_progress_s: float = Field(30.0, ge=1, le=3600,
                                    description="Least seconds between two reads of a running training's log "
                                                "(metrics.csv) on the cluster; a log that has not changed is not read.")

    @field_validator("database_url", "redis_url", "ssh_host", "ssh_user", "cluster_home")
    @classmethod
    def _no_placeholders(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or value.strip().lower() in {"changeme", "change-me", "todo"}):
            raise ValueError(f"{value!r} is empty or a placeholder")
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        # A relative SEMCOAT_DATA_DIR is taken from the folder this process started in, once: a child started in
        # another folder (the demo runs `semcoat serve` inside its data folder) would read it again from there.
        return value.expanduser().absolute()

    @model_validator(mode="after")
    def _slurm_settings_complete(self) -> Settings:
        slurm = {"ssh_host": self.ssh_host, "ssh_user": self.ssh_user, "ssh_key": self.ssh_key,
                 "ssh_known_hosts": self.ssh_known_hosts, "cluster_home": self.cluster_home}
        given = [k for k, v in slurm.items() if v is not None]
        if given and len(given) < len(slurm):
            missing = ", ".join(ENV_PREFIX + k.upper() for k, v in slurm.items() if v is None)
            raise ValueError(f"the Slurm backend needs {missing} as well (set all of them, or none for local only)")
        return self

    @property
    def slurm_configured(self) -> bool:
        """Whether the Slurm backend has what it needs (host, user, key, known_hosts, cluster folder)."""
        return self.ssh_host is not None

    @property
    def database(self) -> str:
        """The SQLAlchemy URL in force: the given one, or SQLite in the data folder."""
        return self.database_url or f"sqlite:///{self.data_dir / 'semcoat.db'}"

    @property
    def batches_dir(self) -> Path:
        """Where collected datasets live: ``<data_dir>/batches/<batch id>/``."""
        return self.data_dir / "batches"

    @property
    def trainings_dir(self) -> Path:
        """Where collected trainings live (model, checkpoint, metrics): ``<data_dir>/trainings/<training id>/``."""
        return self.data_dir / "trainings"


def load_settings(**overrides: object) -> Settings:
    """Read the settings; raise SettingsError naming every bad or missing setting as its environment variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ENV_PREFIX + "_".join(str(p) for p in error["loc"] if isinstance(p, str)).upper()
            problems.append(f"{name if name != ENV_PREFIX else 'settings'}: {error['msg']}")
        raise SettingsError("bad service settings: " + "; ".join(problems)) from None
