"""``/batches/{id}/files`` and ``/archive``: a batch's dataset folder, listed, one file, or zipped as a stream."""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from fastapi.responses import StreamingResponse

from render_service.api.deps import SettingsDep
from render_service.api.routes.batches import AUTH_RESPONSES, NOT_FOUND, OwnedBatch
from render_service.files import FileRefused, iter_file, iter_zip, list_files, open_file
from render_service.schemas import ErrorBody, FileEntry

router = APIRouter(prefix="/batches/{batch_id}", tags=["files"])

FilePath = Annotated[str, Path(description="Relative to the dataset folder, '/'-separated.",
                               examples=["images/000000.png"])]


@router.get("/files", response_model=list[FileEntry], responses={**AUTH_RESPONSES, **NOT_FOUND})
def listing(batch: OwnedBatch, settings: SettingsDep) -> list[FileEntry]:
    """Every file of the batch's dataset folder collected so far, with its size (empty before the first)."""
    return [FileEntry(path=f.path, size_bytes=f.size_bytes) for f in list_files(settings.batches_dir / batch.id)]


@router.get("/files/{path:path}", response_class=StreamingResponse,
            responses={**AUTH_RESPONSES, 404: {"model": ErrorBody, "description": "No such batch or file."},
                       200: {"content": {"application/octet-stream": {}}, "description": "The file's bytes."}})
def one_file(batch: OwnedBatch, settings: SettingsDep, path: FilePath) -> StreamingResponse:
    """One file of the dataset folder. A path that leaves the folder (``..``, absolute, through a symlink) is a 404
    and nothing is read."""
    try:
        handle, size = open_file(settings.batches_dir / batch.id, path)
    except FileRefused as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return StreamingResponse(iter_file(handle), media_type=media_type, headers={"Content-Length": str(size)})


@router.get("/archive", response_class=StreamingResponse,
            responses={**AUTH_RESPONSES, **NOT_FOUND,
                       200: {"content": {"application/zip": {}}, "description": "A zip of the dataset folder."}})
def archive(batch: OwnedBatch, settings: SettingsDep) -> StreamingResponse:
    """The dataset folder as a zip (entries under ``<batch id>/``), streamed while it is written."""
    return StreamingResponse(iter_zip(settings.batches_dir / batch.id, batch.id), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{batch.id}.zip"'})
