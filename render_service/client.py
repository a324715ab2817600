"""A Python client of the REST API (httpx), used by ``semcoat submit|status|fetch|cancel``, ``semcoat train
submit|status|fetch|cancel`` and by scripts.

It reads ``SEMCOAT_URL`` (default ``http://127.0.0.1:8000``) and ``SEMCOAT_TOKEN`` (default: the embedded
default's token file, ``<SEMCOAT_DATA_DIR>/token``). Every failure is a :class:`ServiceError` whose message says
what to do: the service's own ``detail`` for 4xx, what to check for a connection error.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from render_service.files import FileRefused, path_parts
from render_service.schemas import BatchList, BatchPublic, FileEntry, Health
from render_service.training_schemas import TrainingList, TrainingPublic
from semcoat.errors import SemcoatError

DEFAULT_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1"
TIMEOUT_S = 30.0
CHUNK_BYTES = 256 * 1024


class ServiceError(SemcoatError):
    """The service refused a request or could not be reached; ``status_code`` is None for a connection error."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


def default_token() -> str | None:
    """``SEMCOAT_TOKEN``, else the embedded default's token file (``SEMCOAT_DATA_DIR`` or the default data folder)."""
    token = os.environ.get("SEMCOAT_TOKEN", "").strip()
    if token:
        return token
    from render_service.settings import default_data_dir

    path = Path(os.environ.get("SEMCOAT_DATA_DIR") or default_data_dir()) / "token"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def describe_error(response: httpx.Response) -> str:
    """The service's ``detail`` as one readable text (a 422's problems one per line)."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):
        lines = []
        for p in detail:
            if isinstance(p, dict):
                loc = ".".join(str(x) for x in p.get("loc", []) if x != "body")
                got = f" (got {p['value']})" if p.get("value") is not None else ""
                lines.append(f"{loc or 'request'}: {p.get('msg')}{got}")
        return "the service refused the request:\n  - " + "\n  - ".join(lines)
    if isinstance(detail, str):
        if response.status_code == 401:
            return f"{detail} (the client sends SEMCOAT_TOKEN, else the token file of `semcoat serve`)"
        return detail
    return f"the service answered HTTP {response.status_code} {response.reason_phrase}"


@dataclass(frozen=True)
class FetchResult:
    """What :meth:`ServiceClient.fetch` did: files downloaded and files already there (same size)."""

    downloaded: int
    skipped: int
    bytes_downloaded: int


class ServiceClient:
    """The REST API at ``url`` with bearer ``token``. ``transport``: an httpx transport (tests)."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout_s: float = TIMEOUT_S,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = (url or os.environ.get("SEMCOAT_URL") or DEFAULT_URL).rstrip("/")
        self.token = token if token is not None else default_token()
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(base_url=self.url + API_PREFIX, headers=headers, timeout=timeout_s,
                                  transport=transport)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceError(f"cannot reach the service at {self.url} ({exc}); is `semcoat serve` running, and "
                               "is SEMCOAT_URL right?") from exc
        if response.status_code >= 400:
            raise ServiceError(describe_error(response), response.status_code)
        return response

    def health(self) -> Health:
        """``GET /health``."""
        return Health.model_validate(self._request("GET", "/health").json())

    def submit(self, spec: dict[str, Any], backend: str = "local", slurm: dict[str, Any] | None = None) -> BatchPublic:
        """``POST /batches``: the new batch (``queued``)."""
        body: dict[str, Any] = {"spec": spec, "backend": backend}
        if slurm:
            body["slurm"] = slurm
        return BatchPublic.model_validate(self._request("POST", "/batches", json=body).json())

    def batch(self, batch_id: str) -> BatchPublic:
        """``GET /batches/{id}``."""
        return BatchPublic.model_validate(self._request("GET", f"/batches/{batch_id}").json())

    def batches(self, limit: int = 50, offset: int = 0, state: str | None = None) -> BatchList:
        """``GET /batches``: one page of the caller's batches, newest first."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if state:
            params["state"] = state
        return BatchList.model_validate(self._request("GET", "/batches", params=params).json())

    def cancel(self, batch_id: str) -> BatchPublic:
        """``DELETE /batches/{id}``."""
        return BatchPublic.model_validate(self._request("DELETE", f"/batches/{batch_id}").json())

    def submit_training(self, body: dict[str, Any]) -> TrainingPublic:
        """``POST /trainings`` with ``body`` (dataset, config or config_yaml, overrides, backend, resources): the new
        training (``queued``)."""
        return TrainingPublic.model_validate(self._request("POST", "/trainings", json=body).json())

    def training(self, training_id: str) -> TrainingPublic:
        """``GET /trainings/{id}``."""
        return TrainingPublic.model_validate(self._request("GET", f"/trainings/{training_id}").json())

    def trainings(self, limit: int = 50, offset: int = 0, state: str | None = None) -> TrainingList:
        """``GET /trainings``: one page of the caller's trainings, newest first."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if state:
            params["state"] = state
        return TrainingList.model_validate(self._request("GET", "/trainings", params=params).json())

    def cancel_training(self, training_id: str) -> TrainingPublic:
        """``DELETE /trainings/{id}``."""
        return TrainingPublic.model_validate(self._request("DELETE", f"/trainings/{training_id}").json())

    def files(self, batch_id: str, resource: str = "batches") -> list[FileEntry]:
        """``GET /batches/{id}/files`` (``resource="trainings"``: a training's files)."""
        return [FileEntry.model_validate(f) for f in self._request("GET", f"/{resource}/{batch_id}/files").json()]

    def download(self, batch_id: str, path: str, dest: Path, resource: str = "batches") -> int:
        """Write file ``path`` of the batch (or training) to ``dest`` (through ``dest.part`` and a rename); returns
        its bytes."""
        part = dest.with_name(dest.name + ".part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        try:
            with self._http.stream("GET", f"/{resource}/{batch_id}/files/{path}") as response:
                if response.status_code >= 400:
                    response.read()
                    raise ServiceError(describe_error(response), response.status_code)
                with open(part, "wb") as handle:
                    for chunk in response.iter_bytes(CHUNK_BYTES):
                        handle.write(chunk)
                        size += len(chunk)
        except httpx.HTTPError as exc:
            raise ServiceError(f"downloading {path} from {self.url} failed ({exc}); run the fetch again to "
                               "resume") from exc
        os.replace(part, dest)
        return size

    def fetch(self, batch_id: str, out: Path, on_file: Callable[[str, int], None] | None = None,
              resource: str = "batches") -> FetchResult:
        """Copy the batch's (or training's) files into ``out``; a file already there with the listed size is kept
        (so a broken fetch resumes). ``on_file(path, bytes)`` is called after each download."""
        downloaded = skipped = total = 0
        for entry in self.files(batch_id, resource):
            try:
                dest = out.joinpath(*path_parts(entry.path))  # never write outside ``out``, whatever is listed
            except FileRefused as exc:
                raise ServiceError(f"the service listed an unsafe path {entry.path[:200]!r}; nothing of it was "
                                   "written") from exc
            if dest.is_file() and not dest.is_symlink() and dest.stat().st_size == entry.size_bytes:
                skipped += 1
                continue
            size = self.download(batch_id, entry.path, dest, resource)
            downloaded, total = downloaded + 1, total + size
            if on_file is not None:
                on_file(entry.path, size)
        return FetchResult(downloaded, skipped, total)
