"""``/trainings``: submit, list, show, cancel, the files of a finished training (listed, one file, zipped) and its
logged metrics, live while it runs.

The same shapes, states and errors as ``/batches``; each route translates, :mod:`render_service.api.training_actions`
does the work, :mod:`render_service.files` serves the training's folder (``settings.trainings_dir / <id>``).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from fastapi.responses import StreamingResponse

from render_service.api import training_actions
from render_service.api.deps import Credentials, OwnerDep, SenderDep, SessionDep, SettingsDep, owner_from
from render_service.api.routes.batches import AUTH_RESPONSES, UNAVAILABLE, require_json
from render_service.db.models import Training
from render_service.files import FileRefused, iter_file, iter_zip, list_files, open_file
from render_service.schemas import BatchStateName, ErrorBody, FileEntry
from render_service.training_metrics import METRICS_CSV, live_metrics, open_complete_lines, training_work_dir
from render_service.training_schemas import TrainingCreate, TrainingList, TrainingPublic
from render_service.training_store import get_training, list_trainings, training_public

router = APIRouter(prefix="/trainings", tags=["trainings"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No training of yours has this id."}}

TrainingId = Annotated[str, Path(description="The training id (16 hex digits).", examples=["9b1c7e2f40d35a68"])]
FilePath = Annotated[str, Path(description="Relative to the training's folder, '/'-separated.",
                               examples=["model.onnx"])]


def owned_training(session: SessionDep, credentials: Credentials, training_id: TrainingId) -> Training:
    """The caller's training ``training_id``; 401 without a valid token, 404 when it does not exist or belongs to
    someone else."""
    training = get_training(session, training_id, owner_from(session, credentials))
    if training is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no training of yours has id {training_id[:64]!r}")
    return training


OwnedTraining = Annotated[Training, Depends(owned_training)]


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=TrainingPublic,
             dependencies=[Depends(require_json)],
             responses={**AUTH_RESPONSES, **UNAVAILABLE,
                        415: {"model": ErrorBody, "description": "The body is not declared as JSON."}})
def submit(body: TrainingCreate, session: SessionDep, sender: SenderDep, settings: SettingsDep,
           owner: OwnerDep) -> TrainingPublic:
    """Submit a training: the config, dataset and resources are checked (422 lists every problem), stored, and
    handed to a worker. The training starts ``queued``; its job runs ``semcoat train fit`` (DDP over the devices
    asked for), then packages the best checkpoint, its ONNX export and the metrics."""
    return training_public(training_actions.submit_training(session, sender, settings, owner, body))


@router.get("", response_model=TrainingList, responses=AUTH_RESPONSES)
def list_mine(session: SessionDep, owner: OwnerDep,
              limit: Annotated[int, Query(ge=1, le=200, description="Trainings per page.")] = 50,
              offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="Trainings skipped.")] = 0,
              state: Annotated[BatchStateName | None, Query(description="Only trainings in this state.")] = None,
              ) -> TrainingList:
    """The caller's trainings, newest first."""
    rows, total = list_trainings(session, owner, limit, offset, state)
    return TrainingList(items=[training_public(t) for t in rows], total=total, limit=limit, offset=offset)


@router.get("/{training_id}", response_model=TrainingPublic, responses={**AUTH_RESPONSES, **NOT_FOUND})
def show(training: OwnedTraining) -> TrainingPublic:
    """One training: state, dataset folders, resources, the Slurm job id, times and any error."""
    return training_public(training)


@router.delete("/{training_id}", status_code=status.HTTP_202_ACCEPTED, response_model=TrainingPublic,
               responses={**AUTH_RESPONSES, **NOT_FOUND, **UNAVAILABLE})
def cancel(training: OwnedTraining, session: SessionDep, sender: SenderDep) -> TrainingPublic:
    """Cancel a training: its job is stopped (scancel, or the local processes). A training that already ended is
    left as it is."""
    return training_public(training_actions.cancel_training(session, sender, training))


@router.get("/{training_id}/files", response_model=list[FileEntry], responses={**AUTH_RESPONSES, **NOT_FOUND})
def listing(training: OwnedTraining, settings: SettingsDep) -> list[FileEntry]:
    """Every file of the training's folder with its size (empty until the training has succeeded)."""
    return [FileEntry(path=f.path, size_bytes=f.size_bytes) for f in list_files(settings.trainings_dir / training.id)]


@router.get("/{training_id}/files/{path:path}", response_class=StreamingResponse,
            responses={**AUTH_RESPONSES, 404: {"model": ErrorBody, "description": "No such training or file."},
                       200: {"content": {"application/octet-stream": {}}, "description": "The file's bytes."}})
def one_file(training: OwnedTraining, settings: SettingsDep, path: FilePath) -> StreamingResponse:
    """One file of the training's folder (``model.onnx``, ``checkpoints/...``, ``metrics.json``). A path that leaves
    the folder (``..``, absolute, through a symlink) is a 404 and nothing is read."""
    try:
        handle, size = open_file(settings.trainings_dir / training.id, path)
    except FileRefused as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return StreamingResponse(iter_file(handle), media_type=media_type, headers={"Content-Length": str(size)})


@router.get("/{training_id}/archive", response_class=StreamingResponse,
            responses={**AUTH_RESPONSES, **NOT_FOUND,
                       200: {"content": {"application/zip": {}}, "description": "A zip of the training's folder."}})
def archive(training: OwnedTraining, settings: SettingsDep) -> StreamingResponse:
    """The training's folder as a zip (entries under ``<training id>/``), streamed while it is written."""
    return StreamingResponse(iter_zip(settings.trainings_dir / training.id, training.id),
                             media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{training.id}.zip"'})


def _iter_length(handle: IO[bytes], length: int, chunk_bytes: int = 64 * 1024) -> Iterator[bytes]:
    """The first ``length`` bytes of ``handle`` in chunks (a log may grow while it is sent); closes it."""
    with handle:
        while length > 0 and (chunk := handle.read(min(chunk_bytes, length))):
            length -= len(chunk)
            yield chunk


@router.get("/{training_id}/metrics", response_class=StreamingResponse,
            responses={**AUTH_RESPONSES,
                       404: {"model": ErrorBody, "description": "No such training, or it has logged nothing yet."},
                       200: {"content": {"text/csv": {}},
                             "description": "Lightning's metrics.csv: a row per logging call, a column per metric, "
                                            "blank where a row did not log it. Header X-Semcoat-Metrics: 'live' "
                                            "(the log so far) or 'final' (the collected log)."}})
def metrics(training: OwnedTraining, settings: SettingsDep) -> StreamingResponse:
    """The training's logged metrics as CSV (step, epoch, train/loss, val/loss, val/dice_<class>, val/dice_mean,
    ...): the collected log once it has succeeded, else the log so far while it runs (the local run's own, or the
    worker's latest copy of a Slurm run's: at most ``SEMCOAT_SLURM_PROGRESS_S`` old); complete lines only."""
    found = ("final", open_complete_lines(settings.trainings_dir / training.id, METRICS_CSV))
    if found[1] is None:
        live = live_metrics(training_work_dir(settings.data_dir) / training.id)
        found = ("live", open_complete_lines(*live) if live is not None else None)
    source, opened = found
    if opened is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"training {training.id} has logged no metrics yet (it is "
                            f"{training.state}; a fit logs every trainer.log_every_n_steps steps)")
    handle, length = opened
    return StreamingResponse(_iter_length(handle, length), media_type="text/csv; charset=utf-8",
                             headers={"Content-Length": str(length), "X-Semcoat-Metrics": source,
                                      "Cache-Control": "no-store"})
