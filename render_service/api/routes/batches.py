"""``/batches``: submit, list, show, cancel. Each route translates; :mod:`render_service.api.actions` does the work."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status

from render_service.api import actions
from render_service.api.deps import Credentials, OwnerDep, SenderDep, SessionDep, SettingsDep, owner_from
from render_service.db.models import Batch
from render_service.schemas import BatchCreate, BatchList, BatchPublic, BatchStateName, ErrorBody, ValidationErrorBody
from render_service.store import batch_public, get_batch, list_batches

router = APIRouter(prefix="/batches", tags=["batches"])

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No token, or an unknown or revoked one."},
    413: {"model": ErrorBody, "description": "The request body is over 1 MB."},
    422: {"model": ValidationErrorBody, "description": "Every problem of the request."},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No batch of yours has this id."}}
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "The task queue (Redis) cannot be reached; try again later."}}

BatchId = Annotated[str, Path(description="The batch id (16 hex digits).", examples=["3f2a9c0d1b7e4a55"])]


def require_json(request: Request) -> None:
    """415 unless the body is declared JSON (a form or plain text is refused before anything reads it)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            f"send the batch as JSON with 'Content-Type: application/json' (got {content_type[:80]!r})")


def owned_batch(session: SessionDep, credentials: Credentials, batch_id: BatchId) -> Batch:
    """The caller's batch ``batch_id`` with its tasks loaded; 401 without a valid token, 404 when it does not exist
    or belongs to someone else. One function, so a status poll costs one trip to the thread pool."""
    batch = get_batch(session, batch_id, owner_from(session, credentials))
    if batch is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no batch of yours has id {batch_id[:64]!r}")
    _ = batch.tasks  # loaded here, in the thread, so the route does no I/O
    return batch


OwnedBatch = Annotated[Batch, Depends(owned_batch)]


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=BatchPublic,
             dependencies=[Depends(require_json)],
             responses={**AUTH_RESPONSES, **UNAVAILABLE,
                        415: {"model": ErrorBody, "description": "The body is not declared as JSON."}})
def submit(body: BatchCreate, session: SessionDep, sender: SenderDep, settings: SettingsDep,
           owner: OwnerDep) -> BatchPublic:
    """Submit a batch: the spec is validated by the core (422 lists every bad field), stored, and handed to a
    worker. The batch starts ``queued``."""
    return batch_public(actions.submit_batch(session, sender, settings, owner, body))


@router.get("", response_model=BatchList, responses=AUTH_RESPONSES)
def list_mine(session: SessionDep, owner: OwnerDep,
              limit: Annotated[int, Query(ge=1, le=200, description="Batches per page.")] = 50,
              offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="Batches skipped.")] = 0,
              state: Annotated[BatchStateName | None, Query(description="Only batches in this state.")] = None,
              ) -> BatchList:
    """The caller's batches, newest first."""
    rows, total = list_batches(session, owner, limit, offset, state)
    return BatchList(items=[batch_public(b) for b in rows], total=total, limit=limit, offset=offset)


@router.get("/{batch_id}", response_model=BatchPublic, responses={**AUTH_RESPONSES, **NOT_FOUND})
async def show(batch: OwnedBatch) -> BatchPublic:
    """One batch: state, progress (images done, tasks), Slurm job ids, times and any error."""
    return batch_public(batch)


@router.delete("/{batch_id}", status_code=status.HTTP_202_ACCEPTED, response_model=BatchPublic,
               responses={**AUTH_RESPONSES, **NOT_FOUND, **UNAVAILABLE})
def cancel(batch: OwnedBatch, session: SessionDep, sender: SenderDep) -> BatchPublic:
    """Cancel a batch: its tasks are stopped (scancel, or the local processes), finished images stay. A batch that
    already ended is left as it is."""
    return batch_public(actions.cancel_batch(session, sender, batch))
