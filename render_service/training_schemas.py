"""The REST API's bodies for trainings (pydantic): ``TrainingCreate`` what a client sends, ``TrainingPublic`` what it
gets. Shapes and checks follow the batches' (:mod:`render_service.schemas`): Slurm names and time limits pass the
sbatch builder's own checks, so no user string that reaches the cluster can hold shell syntax; the config is
checked by :mod:`render_service.training_request` (422 listing every problem).
"""

from __future__ import annotations

import datetime as dt
import posixpath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from render_service.schemas import BackendName, BatchStateName, SlurmJobFields
from render_service.slurm.errors import InvalidJobSetting
from render_service.slurm.sbatch import check_name

MAX_DATASETS = 64
MAX_PATH_CHARS = 1024


class TrainingDataset(BaseModel):
    """The folders to train on, in this order: the caller's succeeded batches (the service knows where their
    dataset folders are), then folders on the cluster (absolute paths, backend 'slurm' only)."""

    model_config = ConfigDict(extra="forbid")

    batches: list[str] = Field(default_factory=list, max_length=MAX_DATASETS,
                               description="Ids of your batches that succeeded.", examples=[["3f2a9c0d1b7e4a55"]])
    folders: list[str] = Field(default_factory=list, max_length=MAX_DATASETS,
                               description="Dataset folders on the cluster (absolute paths).",
                               examples=[["/shared/data/real_p91"]])

    @field_validator("folders")
    @classmethod
    def _folders(cls, values: list[str]) -> list[str]:
        for value in values:
            problem = folder_problem(value)
            if problem:
                raise ValueError(f"{value[:200]!r}: {problem}")
        _once_each(values)
        return values

    @field_validator("batches")
    @classmethod
    def _batch_ids(cls, values: list[str]) -> list[str]:
        for value in values:
            if not (1 <= len(value) <= 32 and value.isascii() and value.isalnum()):
                raise ValueError(f"{value[:64]!r} is not a batch id (16 hex digits, as POST /batches returns)")
        _once_each(values)
        return values


def _once_each(values: list[str]) -> None:
    """A folder given twice would be split twice, its images validating what the other copy trained on (the job's
    fit refuses it too, after queueing)."""
    twice = sorted({v for v in values if values.count(v) > 1})
    if twice:
        raise ValueError(f"{twice[0][:200]!r} is given twice; give each once")


def folder_problem(path: str) -> str | None:
    """Why ``path`` is not accepted as a dataset folder on the cluster (None: accepted). It travels inside a YAML
    file, never a shell line, but it must still be a plain absolute path."""
    if not path.startswith("/"):
        return "give an absolute path on the cluster"
    if len(path) > MAX_PATH_CHARS or any(ord(c) < 32 or c == "\x7f" for c in path):
        return f"give a path of at most {MAX_PATH_CHARS} printable characters"
    trimmed = path.rstrip("/") or "/"
    if any(part in (".", "..") for part in path.split("/")) or posixpath.normpath(trimmed) != trimmed:
        return "give a normalised path (no '.', '..' or repeated '/')"
    return None


class TrainingResources(SlurmJobFields):
    """Where and how wide the training runs; every field is optional (None: the default, the admin's Slurm default,
    or the cluster's)."""

    model_config = ConfigDict(extra="forbid")

    nodes: int | None = Field(None, ge=1, le=256, description="Nodes (Slurm only; one locally).")
    gpus_per_node: int | None = Field(None, ge=0, le=16, description="GPUs per node, one process each; 0 or unset: "
                                                                      "CPU processes.")
    processes_per_node: int | None = Field(None, ge=1, le=256, description="CPU processes per node when there are "
                                                                           "no GPUs (gloo DDP); default 1.")
    cpus_per_task: int | None = Field(None, ge=1, le=1024, description="CPU cores of each process.")
    mem_per_node_mb: int | None = Field(None, ge=1, le=16_777_216, description="Memory of each node, MB (Slurm).")
    partition: str | None = Field(None, description="Slurm partition.", examples=["gpu"])
    account: str | None = Field(None, description="Slurm account charged.", examples=["materials"])
    time_limit: str | None = Field(None, description="Of the whole job: minutes or [D-]H:M:S.", examples=["4:00:00"])


class TrainingCreate(BaseModel):
    """``POST /api/v1/trainings``: what to train on, the config (a ready one by name, or YAML text, plus dotted
    overrides), where and how wide."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="A name for your list (default: the config's name).",
                             examples=["unet-p91"])
    dataset: TrainingDataset = Field(description="Your succeeded batches and/or folders on the cluster.")
    config: str | None = Field(None, description="A ready config: 'unet', 'deeplab' or 'swin_unetr'.",
                               examples=["unet"])
    config_yaml: str | None = Field(None, description="A config as YAML text (as training/configs/*.yaml); give "
                                                      "this or 'config'.")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Dotted keys set over the config.",
                                      examples=[{"trainer.max_steps": 2000, "data.crop_px": 256}])
    backend: BackendName = Field("local", description="'local' (this server's processes) or 'slurm' (the cluster).")
    resources: TrainingResources = Field(default_factory=TrainingResources)  # type: ignore[arg-type]
    init_from_training: str | None = Field(
        None, description="Fine-tuning: the id of your earlier training that succeeded on the same backend; this one "
                          "starts from its best checkpoint's weights (the same network and classes).",
        examples=["9b1c2d3e4f5a6b7c"])

    @field_validator("init_from_training")
    @classmethod
    def _training_id(cls, value: str | None) -> str | None:
        if value is not None and not (1 <= len(value) <= 32 and value.isascii() and value.isalnum()):
            raise ValueError(f"{value[:64]!r} is not a training id (as POST /trainings returns)")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_name("name", value)
            except InvalidJobSetting as exc:
                raise ValueError(str(exc)) from None
            if len(value) > 64:
                raise ValueError("give a name of at most 64 characters")
        return value


class DatasetFolder(BaseModel):
    """One folder a training reads: the batch it came from (None: a folder given by path) and its path where the job
    runs."""

    batch_id: str | None
    path: str


class TrainingResourcesPublic(BaseModel):
    """The resources the job runs with (the user's, defaults filled in where the service decides them)."""

    nodes: int
    devices_per_node: int = Field(description="Processes per node: one per GPU, or the CPU processes.")
    gpus_per_node: int
    cpus_per_task: int | None
    mem_per_node_mb: int | None
    partition: str | None
    account: str | None
    time_limit: str | None


class TrainingProgress(BaseModel):
    """How far a training has come, read by the worker from the fit's CSV log (``metrics.csv``) while it runs (on
    Slurm at most every ``SEMCOAT_SLURM_PROGRESS_S`` seconds) and from the collected log once it has succeeded.
    Values the log has not shown yet are null."""

    step: int | None = Field(None, description="Training step of the latest logged row, as metrics.csv numbers it "
                                               "(from 0: step 99 is the 100th).")
    epoch: int | None = Field(None, description="Epoch of the latest logged row (from 0).")
    max_steps: int | None = Field(None, description="The config's trainer.max_steps (null: none).")
    max_epochs: int | None = Field(None, description="The config's trainer.max_epochs, Lightning's default 1000 "
                                                     "when no limit is given (null: none).")
    max_time_s: float | None = Field(None, description="The config's trainer.max_time, seconds (null: none).")
    elapsed_s: float | None = Field(None, description="Seconds since the job started running (until it ended).")
    fraction: float | None = Field(None, ge=0, le=1, description="How far towards the limit it is closest to "
                                                                 "(`limit`), 0 to 1; null without a known limit.")
    limit: str | None = Field(None, description="Which limit `fraction` is of: max_steps, max_epochs or max_time.")
    train_loss: float | None = Field(None, description="The latest training loss logged (null when it was NaN or "
                                                       "infinite: see `warning`).")
    val_dice_mean: float | None = Field(None, description="Mean validation Dice of the latest validation.")
    val_step: int | None = Field(None, description="Step of the latest validation.")
    val_epoch: int | None = Field(None, description="Epoch of the latest validation.")
    val_dice: dict[str, float] = Field(default_factory=dict, description="Per-class validation Dice of the latest "
                                                                         "validation (class name: Dice).",
                                       examples=[{"fe2al5": 0.97, "pore": 0.81}])
    best_val_dice_mean: float | None = Field(None, description="The best mean validation Dice so far (what the "
                                                               "best checkpoint is chosen by).")
    best_step: int | None = Field(None, description="Step of the best validation.")
    best_epoch: int | None = Field(None, description="Epoch of the best validation.")
    warning: str | None = Field(None, description="Something in the log worth a look (a NaN loss), as a sentence.")
    updated_at: dt.datetime | None = Field(None, description="When the service last read new rows of the log.")


class TrainingPublic(BaseModel):
    """A training as the API shows it. Once ``succeeded``, its files are ``model.onnx``, ``checkpoints/*.ckpt``,
    ``metrics.json``, ``metrics.csv``, ``config.yaml``, ``train.log`` (``GET .../files``); while it runs,
    ``progress`` and ``GET .../metrics`` (the log so far) show how it goes."""

    id: str
    name: str
    state: BatchStateName
    backend: BackendName
    config: str | None = Field(description="The ready config it started from; None for a config given as YAML.")
    init_from: str | None = Field(None, description="The checkpoint its network's weights started from (its config's "
                                                    "model.init_from: fine-tuning, e.g. set by init_from_training); "
                                                    "None when it trained from scratch.")
    datasets: list[DatasetFolder]
    resources: TrainingResourcesPublic
    slurm_job_id: int | None
    created_at: dt.datetime
    submitted_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None = Field(description="What went wrong, as a sentence a user can act on; None when nothing did.")
    progress: TrainingProgress | None = Field(None, description="How far it has come (null only for a training "
                                                                "submitted before the service recorded progress).")


class TrainingList(BaseModel):
    """A page of the caller's trainings, newest first."""

    items: list[TrainingPublic]
    total: int
    limit: int
    offset: int
