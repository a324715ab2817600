"""What the training routes do, as plain functions over a session and a task sender (the routes only translate).

A request is checked whole before anything is stored, and every problem found is reported (a 422): the config (a
ready one by name, or YAML text) with its overrides, by :mod:`training.config_check` (the keys and values Lightning's
CLI would refuse, found without torch); the dataset (batches of the caller that succeeded, whose dataset folders the
service knows; folders on the cluster); the backend and resources. The config the job runs is then written once,
with the dataset folders in it; the service's own settings of the run (devices, nodes, the run folder) go on the
job's command line.
"""

from __future__ import annotations

import json
import logging
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from render_service.api.actions import BROKER_ERRORS, RequestProblem, ServiceUnavailable
from render_service.backends.training_base import METRICS_FILE
from render_service.db.models import Training, utc_now
from render_service.queue import TaskSender, enqueue_cancel_training, enqueue_submit_training
from render_service.schemas import FieldProblem
from render_service.settings import Settings
from render_service.states import FINAL_BATCH_STATES
from render_service.store import get_batch
from render_service.training_schemas import TrainingCreate
from render_service.training_store import create_training, get_training
from semcoat.params import quoted
from training.config_check import (
    MAX_NAME_CHARS,
    READY_CONFIGS,
    ConfigError,
    ConfigProblem,
    apply_overrides,
    check_config,
    checkpoint_path_problem,
    drop_service_keys,
    parse_config,
    ready_config_text,
)

log = logging.getLogger(__name__)

SLURM_ONLY = ("partition", "account", "time_limit", "mem_per_node_mb")


@dataclass(frozen=True)
class CheckedTraining:
    """A request that passed every check: the config the job runs (YAML), its folders and resources."""

    name: str
    config_name: str | None
    config_yaml: str
    datasets: list[dict[str, Any]]
    resources: dict[str, Any]


def _config_loc(problem: ConfigProblem, body: TrainingCreate) -> list[str | int]:
    """Where a problem of the merged config came from: an override, else the config text (or the ready config)."""
    dotted = problem.dotted
    for key in body.overrides:
        if dotted == key or dotted.startswith(key + ".") or (dotted and key.startswith(dotted + ".")):
            return ["body", "overrides", key]
    return ["body", "config_yaml" if body.config_yaml is not None else "config", *problem.path]


def _problem(loc: list[str | int], msg: str, value: Any = None) -> FieldProblem:
    return FieldProblem(loc=loc, msg=msg, value=None if value is None else quoted(value))


def _dataset_folders(session: Session, owner: str, body: TrainingCreate, settings: Settings,
                     problems: list[FieldProblem]) -> list[dict[str, Any]]:
    """The folders the job reads, batches first: a local job reads the service's collected copy of a batch, a
    Slurm job the batch's folder on the cluster."""
    folders: list[dict[str, Any]] = []
    for i, batch_id in enumerate(body.dataset.batches):
        loc: list[str | int] = ["body", "dataset", "batches", i]
        batch = get_batch(session, batch_id, owner)
        if batch is None:
            problems.append(_problem(loc, "no batch of yours has this id", batch_id))
        elif batch.state != "succeeded":
            problems.append(_problem(loc, f"batch {batch_id} is {batch.state}; train on batches that succeeded",
                                     batch_id))
        elif body.backend == "local":
            folders.append({"batch_id": batch_id, "path": str(settings.batches_dir / batch_id)})
        elif batch.backend != "slurm" or not batch.remote_dir:
            problems.append(_problem(loc, f"batch {batch_id} was rendered by the {batch.backend} backend: its dataset "
                                          "is on this server, not on the cluster; train on it with backend 'local'",
                                     batch_id))
        else:
            folders.append({"batch_id": batch_id, "path": posixpath.join(batch.remote_dir, "dataset")})
    if body.dataset.folders and body.backend != "slurm":
        problems.append(_problem(["body", "dataset", "folders"], "folders are paths on the cluster (backend 'slurm' "
                                 "only); with backend 'local' give batch ids", body.dataset.folders[0]))
    else:
        folders += [{"batch_id": None, "path": folder} for folder in body.dataset.folders]
    if not body.dataset.batches and not body.dataset.folders:
        problems.append(_problem(["body", "dataset"], "give at least one batch id (dataset.batches) or folder on the "
                                                      "cluster (dataset.folders)"))
    return folders


def packaged_checkpoint(settings: Settings, training: Training) -> str | None:
    """Where the job of another training reads ``training``'s best checkpoint: the service's collected copy (local
    backend) or the package on the cluster (slurm); None when its package names no usable checkpoint."""
    try:
        summary = json.loads((settings.trainings_dir / training.id / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    relative = summary.get("checkpoint") if isinstance(summary, dict) else None
    # written by the job: only a plain checkpoints/<name>.ckpt is taken
    name = relative[len("checkpoints/"):] if isinstance(relative, str) and relative.startswith("checkpoints/") else ""
    if not (name.endswith(".ckpt") and "/" not in name and name.isprintable() and len(name) <= MAX_NAME_CHARS):
        return None
    relative = f"checkpoints/{name}"  # the same text, now known to be a str
    if training.backend == "slurm":
        return posixpath.join(training.remote_dir, "outputs", relative) if training.remote_dir else None
    return str((settings.trainings_dir / training.id / relative).absolute())


def _init_from(session: Session, owner: str, body: TrainingCreate, settings: Settings, doc: dict[str, Any],
               problems: list[FieldProblem]) -> str | None:
    """The checkpoint path of ``init_from_training`` (None: not asked, or a problem was added); a
    ``model.init_from`` the config gives itself is checked here too."""
    model = doc.get("model")
    given = model.get("init_from") if isinstance(model, dict) else None
    source_id = body.init_from_training
    if given is not None:
        loc = _config_loc(ConfigProblem(("model", "init_from"), ""), body)
        if source_id is not None:
            problems.append(_problem(loc, "give init_from_training or model.init_from, not both", given))
        elif body.backend != "slurm":
            problems.append(_problem(loc, "a checkpoint path is a path on the cluster (backend 'slurm' only); to "
                                          "fine-tune from a training of yours give init_from_training: ID", given))
        elif isinstance(given, str) and given.startswith((settings.cluster_home or "").rstrip("/") +
                                                          "/semcoat-trainings/"):
            problems.append(_problem(loc, "the service's own trainings are named by id: give init_from_training: "
                                          "ID (one of yours)", given))
        return None
    if source_id is None:
        return None
    loc = ["body", "init_from_training"]
    source = get_training(session, source_id, owner)
    if source is None:
        problems.append(_problem(loc, "no training of yours has this id", source_id))
        return None
    if source.state != "succeeded":
        problems.append(_problem(loc, f"training {source_id} is {source.state}; fine-tune from a training that "
                                      "succeeded", source_id))
        return None
    if source.backend != body.backend:
        problems.append(_problem(loc, f"training {source_id} ran on the {source.backend} backend, where its "
                                      f"checkpoint is; fine-tune it with backend '{source.backend}'", source_id))
        return None
    path = packaged_checkpoint(settings, source)
    if path is None:
        problems.append(_problem(loc, f"training {source_id}'s package names no usable checkpoint (its "
                                      "metrics.json should say checkpoint: checkpoints/<name>.ckpt)", source_id))
        return None
    problem = checkpoint_path_problem(path)
    if problem is None and source.backend == "local" and not Path(path).is_file():
        problem = f"its checkpoint {path} is gone from this server"
    if problem is not None:
        problems.append(_problem(loc, f"training {source_id}'s checkpoint cannot be read from here: {problem}",
                                 source_id))
        return None
    theirs, ours = _model_name(yaml.safe_load(source.config_yaml)), _model_name(doc)
    if theirs is not None and ours is not None and theirs != ours:  # a malformed model section is reported apart
        problems.append(_problem(loc, f"training {source_id} trained a {theirs}; this config builds a {ours}: "
                                      "fine-tuning needs the same network", source_id))
        return None
    return path


def _model_name(doc: Any) -> str | None:
    """The network a config builds (the module's default where not given), None where its model section is no
    mapping (the config check says so). The job compares the weights' names and shapes."""
    model = doc.get("model", {}) if isinstance(doc, dict) else None
    if not isinstance(model, dict):
        return None
    name = model.get("model", "unet")
    return name if isinstance(name, str) else None


def _resource_problems(body: TrainingCreate, settings: Settings) -> list[FieldProblem]:
    problems = []
    resources = body.resources
    if body.backend == "slurm" and not settings.slurm_configured:
        problems.append(_problem(["body", "backend"], "this service has no cluster configured (the admin sets "
                                 "SEMCOAT_SSH_HOST and the other Slurm settings); use backend 'local'", "slurm"))
    if body.backend == "local":
        if (resources.nodes or 1) > 1:
            problems.append(_problem(["body", "resources", "nodes"], "a local training runs on this one machine; "
                                     "use backend 'slurm' for more nodes", resources.nodes))
        for field in SLURM_ONLY:
            if getattr(resources, field) is not None:
                problems.append(_problem(["body", "resources", field], "a Slurm option: backend 'slurm' only; drop "
                                         "it or choose 'slurm'", getattr(resources, field)))
    if resources.gpus_per_node and resources.processes_per_node not in (None, resources.gpus_per_node):
        problems.append(_problem(["body", "resources", "processes_per_node"], "with GPUs a training runs one process "
                                 "per GPU; leave processes_per_node out or equal to gpus_per_node",
                                 resources.processes_per_node))
    return problems


def check_training(session: Session, owner: str, body: TrainingCreate, settings: Settings) -> CheckedTraining:
    """The request checked whole; RequestProblem lists every problem found."""
    problems: list[FieldProblem] = []
    doc: dict[str, Any] | None = None
    if (body.config is None) == (body.config_yaml is None):
        problems.append(_problem(["body", "config"], "give either 'config' (a ready config: "
                                 f"{', '.join(READY_CONFIGS)}) or 'config_yaml' (a config as YAML text), not "
                                 f"{'both' if body.config is not None else 'neither'}"))
    else:
        loc: list[str | int] = ["body", "config"] if body.config is not None else ["body", "config_yaml"]
        try:
            text = ready_config_text(body.config) if body.config is not None else body.config_yaml or ""
            doc, _dropped = drop_service_keys(parse_config(text))
        except ConfigError as exc:
            problems += [_problem([*loc, *p.path], p.msg, body.config if body.config is not None else p.value)
                         for p in exc.problems]
    folders = _dataset_folders(session, owner, body, settings, problems)
    if doc is not None:
        doc, refused = apply_overrides(doc, body.overrides)
        problems += [_problem(["body", "overrides", *p.path], p.msg, p.value) for p in refused]
        if not refused:
            init_from = _init_from(session, owner, body, settings, doc, problems)
            if init_from is not None and isinstance(doc.setdefault("model", {}), dict):
                doc["model"]["init_from"] = init_from
            problems += [_problem(_config_loc(p, body), p.msg, p.value)
                         for p in check_config(doc, dataset_count=len(body.dataset.batches) +
                                               len(body.dataset.folders))]
    problems += _resource_problems(body, settings)
    if problems:
        raise RequestProblem(problems)
    assert doc is not None
    data = doc.setdefault("data", {})
    data["datasets"] = [f["path"] for f in folders]
    # a progress bar in a log file is a line per refresh: off unless the config asks for it
    doc.setdefault("trainer", {}).setdefault("enable_progress_bar", False)
    return CheckedTraining(name=body.name or body.config or "training", config_name=body.config,
                           config_yaml=yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), datasets=folders,
                           resources=body.resources.model_dump(exclude_none=True))


def submit_training(session: Session, sender: TaskSender, settings: Settings, owner: str,
                    body: TrainingCreate) -> Training:
    """Check, store (committed, so a worker finds it) and hand the training to the workers.

    When the task queue cannot be reached the training is marked ``failed`` with the reason and ServiceUnavailable
    is raised: nothing is left ``queued`` that no worker will ever hear of.
    """
    checked = check_training(session, owner, body, settings)
    training = create_training(session, owner, checked.name, body.backend, checked.config_name, checked.config_yaml,
                               checked.datasets, checked.resources)
    session.commit()
    try:
        enqueue_submit_training(sender, training.id)
    except BROKER_ERRORS as exc:
        log.error("could not queue training %s: %s", training.id, exc)
        training.state, training.finished_at = "failed", utc_now()
        training.error = "the service could not reach its task queue (Redis) to start this training; submit it again"
        session.commit()
        raise ServiceUnavailable("the task queue (Redis) cannot be reached, so the training was not started; "
                                 "try again in a minute, or ask the admin to check `GET /health`") from exc
    return training


def cancel_training(session: Session, sender: TaskSender, training: Training) -> Training:
    """Ask for the training to be stopped; a training in a final state is left as it is."""
    if training.state in FINAL_BATCH_STATES:
        return training
    training.cancel_requested = True
    session.commit()
    try:
        enqueue_cancel_training(sender, training.id)
    except BROKER_ERRORS as exc:
        log.error("could not queue the cancel of training %s: %s", training.id, exc)
        raise ServiceUnavailable("the cancel is recorded but the task queue (Redis) cannot be reached to carry it "
                                 "out; send DELETE again in a minute") from exc
    return training
