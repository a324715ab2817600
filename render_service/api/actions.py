"""What the batch routes do, as plain functions over a session and a task sender (the routes only translate).

Problems a user can fix raise :class:`RequestProblem` (422 with every problem) or :class:`ServiceUnavailable` (503).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kombu.exceptions import KombuError
from redis import RedisError
from sqlalchemy.orm import Session

from render_service.db.models import Batch, utc_now
from render_service.queue import TaskSender, enqueue_cancel, enqueue_submit
from render_service.schemas import BatchCreate, FieldProblem
from render_service.settings import Settings
from render_service.states import FINAL_BATCH_STATES
from render_service.store import create_batch
from semcoat.batch import BatchSpec
from semcoat.errors import SemcoatError
from semcoat.params import SpecError, quoted

log = logging.getLogger(__name__)

# Sending a task fails like this when the broker is down or refuses the connection.
BROKER_ERRORS = (OSError, KombuError, RedisError)


class RequestProblem(SemcoatError):
    """A request the service refuses, with every problem found (shown as a 422)."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, p.loc))}: {p.msg}" for p in problems))
        self.problems = problems


class ServiceUnavailable(SemcoatError):
    """Something the service needs (the task queue) is down; the request may succeed later (shown as a 503)."""


@dataclass(frozen=True)
class Chunking:
    """How a batch is cut into render tasks, and where that choice came from."""

    images_per_task: int
    source: str


def spec_problems(exc: SpecError) -> list[FieldProblem]:
    """The core's validation errors as 422 problems, located under ``body.spec``."""
    return [FieldProblem(loc=["body", "spec", *[p for p in e.path.split(".") if p]], msg=e.message,
                         value=quoted(e.value)) for e in exc.errors]


def choose_chunking(body: BatchCreate, spec: BatchSpec, settings: Settings) -> Chunking:
    """Images per task: the user's Slurm option, else the admin's Slurm default (Slurm only), else the spec's own."""
    if body.backend == "slurm" and body.slurm is not None and body.slurm.images_per_task is not None:
        return Chunking(body.slurm.images_per_task, "slurm.images_per_task")
    if body.backend == "slurm" and settings.slurm_images_per_task is not None:
        return Chunking(settings.slurm_images_per_task, "SEMCOAT_SLURM_IMAGES_PER_TASK")
    return Chunking(spec.render.images_per_task, "spec.render.images_per_task")


def validate_request(body: BatchCreate, settings: Settings) -> BatchSpec:
    """The request's BatchSpec, checked against the core and this service's limits; RequestProblem lists all."""
    try:
        spec = BatchSpec.from_dict(body.spec)
    except SpecError as exc:
        raise RequestProblem(spec_problems(exc)) from None
    problems: list[FieldProblem] = []
    if spec.count > settings.max_images_per_batch:
        problems.append(FieldProblem(
            loc=["body", "spec", "count"], value=quoted(spec.count),
            msg=f"this service renders at most {settings.max_images_per_batch} images per batch "
                "(SEMCOAT_MAX_IMAGES_PER_BATCH); split the batch or ask the admin"))
    if body.backend == "slurm" and not settings.slurm_configured:
        problems.append(FieldProblem(
            loc=["body", "backend"], value=quoted("slurm"),
            msg="this service has no cluster configured (the admin sets SEMCOAT_SSH_HOST and the other Slurm "
                "settings); use backend 'local'"))
    if body.backend == "local" and body.slurm is not None and body.slurm.model_dump(exclude_none=True):
        problems.append(FieldProblem(loc=["body", "slurm"], value="{...}",
                                     msg="Slurm options apply to backend 'slurm' only; drop them or choose 'slurm'"))
    if problems:
        raise RequestProblem(problems)
    return spec


def submit_batch(session: Session, sender: TaskSender, settings: Settings, owner: str, body: BatchCreate) -> Batch:
    """Validate, store (committed, so a worker finds it) and hand the batch to the workers.

    When the task queue cannot be reached the batch is marked ``failed`` with the reason and ServiceUnavailable is
    raised: nothing is left ``queued`` that no worker will ever hear of.
    """
    spec = validate_request(body, settings)
    chunking = choose_chunking(body, spec, settings)
    options: dict[str, Any] = body.slurm.model_dump(exclude_none=True) if body.slurm is not None else {}
    batch = create_batch(session, owner, spec, body.backend, options, chunking.images_per_task)
    session.commit()
    try:
        enqueue_submit(sender, batch.id)
    except BROKER_ERRORS as exc:
        log.error("could not queue batch %s: %s", batch.id, exc)
        batch.state, batch.finished_at = "failed", utc_now()
        batch.error = "the service could not reach its task queue (Redis) to start this batch; submit it again"
        session.commit()
        raise ServiceUnavailable("the task queue (Redis) cannot be reached, so the batch was not started; "
                                 "try again in a minute, or ask the admin to check `GET /health`") from exc
    return batch


def cancel_batch(session: Session, sender: TaskSender, batch: Batch) -> Batch:
    """Ask for the batch to be stopped (finished images stay); a batch in a final state is left as it is."""
    if batch.state in FINAL_BATCH_STATES:
        return batch
    batch.cancel_requested = True
    session.commit()
    try:
        enqueue_cancel(sender, batch.id)
    except BROKER_ERRORS as exc:
        log.error("could not queue the cancel of batch %s: %s", batch.id, exc)
        raise ServiceUnavailable("the cancel is recorded but the task queue (Redis) cannot be reached to carry it "
                                 "out; send DELETE again in a minute") from exc
    return batch
