"""The add-on's HTTP client of the semcoat render service (REST under ``/api/v1``): standard library only, no bpy.

Everything the panel shows comes from here as small frozen dataclasses; every failure is a :class:`ServiceError`
whose message is a sentence the user can act on (what went wrong, at which URL, what to do). Plain pytest covers this
module, and a test validates :func:`batch_payload` against the service's OpenAPI schema so the two cannot drift.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import semcoat
from semcoat.batch import BatchSpec
from semcoat.errors import SemcoatError

API_PREFIX = "/api/v1"
FINAL_STATES = ("succeeded", "failed", "cancelled")
BACKENDS = ("local", "slurm")
DEFAULT_TIMEOUT_S = 10.0
CHUNK_BYTES = 1 << 20
# The add-on speaks the API of its own core version: the same major version, and for 0.x the same minor (0.x
# releases may change the API, as semantic versioning allows).
ADDON_VERSION = semcoat.__version__


class ServiceError(SemcoatError):
    """A request to the service failed; the message says why and what to do."""


class ServiceUnreachable(ServiceError):
    """No answer at the URL: refused, unknown host, timed out, or not an http(s) URL."""


class Unauthorized(ServiceError):
    """The service refused the token (HTTP 401)."""


class IncompatibleService(ServiceError):
    """Something answers at the URL but it is not a semcoat service this add-on can talk to."""


class NotFound(ServiceError):
    """No such batch (or file) for this token (HTTP 404)."""


@dataclass(frozen=True)
class Problem:
    """One problem of a refused request (a 422 body entry): ``loc`` as the service gives it, ``msg``, ``value``."""

    loc: tuple[str | int, ...]
    msg: str
    value: Any = None

    @property
    def spec_path(self) -> str:
        """Dotted path inside the request body without the leading ``body``: ``spec.base.layers.x``, ``backend``."""
        parts = [str(p) for p in self.loc]
        if parts and parts[0] == "body":
            parts = parts[1:]
        return ".".join(parts)


class RequestRefused(ServiceError):
    """The service refused the request (HTTP 422) with every problem it found."""

    def __init__(self, problems: list[Problem], message: str) -> None:
        super().__init__(message)
        self.problems = problems


@dataclass(frozen=True)
class TaskCounts:
    """How many render tasks of a batch are in each state."""

    total: int = 0
    pending: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    retried: int = 0


@dataclass(frozen=True)
class BatchStatus:
    """A batch as the service reports it (``GET /batches/{id}``)."""

    id: str
    name: str
    state: str
    backend: str
    count: int
    images_done: int
    tasks: TaskCounts = field(default_factory=TaskCounts)
    slurm_job_ids: tuple[int, ...] = ()
    created_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None

    @property
    def final(self) -> bool:
        """True once the batch has ended (succeeded, failed or cancelled)."""
        return self.state in FINAL_STATES

    @property
    def progress(self) -> float:
        """Images done as a fraction of the count, 0-1."""
        return min(1.0, self.images_done / self.count) if self.count > 0 else 0.0

    @classmethod
    def from_json(cls, data: Any) -> BatchStatus:
        """Build from the service's JSON; IncompatibleService when a field is missing or of the wrong kind."""
        try:
            tasks = data.get("tasks") or {}
            return cls(
                id=str(data["id"]), name=str(data["name"]), state=str(data["state"]), backend=str(data["backend"]),
                count=int(data["count"]), images_done=int(data["images_done"]),
                tasks=TaskCounts(**{k: int(tasks.get(k, 0)) for k in TaskCounts.__dataclass_fields__}),
                slurm_job_ids=tuple(int(j) for j in data.get("slurm_job_ids") or ()),
                created_at=str(data.get("created_at") or ""), started_at=data.get("started_at"),
                finished_at=data.get("finished_at"), error=data.get("error"))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise IncompatibleService(f"the service's batch record lacks or garbles {exc}; update the add-on or the "
                                      "service so both speak the same API version") from exc


@dataclass(frozen=True)
class ServiceHealth:
    """``GET /health``: the service's version and the state of what it depends on (each with a sentence)."""

    status: str
    version: str
    workers: int
    parts: dict[str, tuple[bool, str]]

    def summary(self) -> str:
        """One line: version, workers and any part that is down."""
        down = [f"{name}: {detail}" for name, (ok, detail) in sorted(self.parts.items()) if not ok]
        text = f"semcoat service {self.version}, {self.workers} worker(s)"
        return text + (f"; not working: {'; '.join(down)}" if down else "; everything reachable")


def version_problem(service_version: str, addon_version: str = ADDON_VERSION) -> str | None:
    """Why a service of ``service_version`` cannot serve this add-on, or None when it can."""
    def major_minor(text: str) -> tuple[int, int] | None:
        m = re.match(r"^(\d+)\.(\d+)", text)
        return (int(m.group(1)), int(m.group(2))) if m else None

    mine, theirs = major_minor(addon_version), major_minor(service_version)
    if theirs is None:
        return f"the service reports version {service_version[:40]!r}, which is not a version number"
    assert mine is not None
    if theirs[0] != mine[0] or (mine[0] == 0 and theirs[1] != mine[1]):
        return (f"the service runs semcoat {service_version} but this add-on is semcoat {addon_version}; install "
                f"the add-on built by that service's `semcoat addon build`, or a service of version "
                f"{mine[0]}.{mine[1]}.x")
    return None


def batch_payload(spec: BatchSpec, backend: str, slurm: dict[str, Any] | None = None) -> dict[str, Any]:
    """The body of ``POST /batches``: the batch spec, the backend and (Slurm only) the options that are set."""
    if backend not in BACKENDS:
        raise ServiceError(f"backend {backend!r} is not one the service offers; accepted: {', '.join(BACKENDS)}")
    body: dict[str, Any] = {"spec": spec.to_dict(), "backend": backend}
    options = {k: v for k, v in (slurm or {}).items() if v not in (None, "", 0)}
    if backend == "slurm" and options:
        body["slurm"] = options
    return body


def _detail(body: bytes) -> str:
    """The ``detail`` sentence of an error body, or the start of the body when it has none."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace").strip()
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        return str(data["detail"])
    return json.dumps(data)[:200]


def _problems(body: bytes) -> list[Problem]:
    """The problems of a 422 body (``{"detail": [{loc, msg, value}]}``)."""
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        return []
    if not isinstance(detail, list):
        return [Problem((), str(detail))]
    return [Problem(tuple(p.get("loc") or ()), str(p.get("msg", "invalid")), p.get("value"))
            for p in detail if isinstance(p, dict)]


class ServiceClient:
    """Talks to one service as one user.

    Parameters
    ----------
    url : the service's base URL, e.g. ``http://127.0.0.1:8000`` (the API is under ``/api/v1``).
    token : the bearer token (from ``semcoat token create NAME``); empty sends none.
    timeout_s : seconds to wait for a connection or an answer, per request.
    """

    def __init__(self, url: str, token: str = "", timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url.strip().rstrip("/")
        self.token = token.strip()
        self.timeout_s = timeout_s

    # --- the API ---------------------------------------------------------------------------------------------------
    def health(self) -> ServiceHealth:
        """``GET /health`` (open to all); IncompatibleService when what answers is not a semcoat service."""
        data = self._json("GET", "/health", authorised=False)
        try:
            parts = {"database": data["database"], "redis": data["redis"],
                     **{f"backend {k}": v for k, v in (data.get("backends") or {}).items()}}
            return ServiceHealth(status=str(data["status"]), version=str(data["version"]),
                                 workers=int(data.get("workers", 0)),
                                 parts={k: (bool(v["reachable"]), str(v["detail"])) for k, v in parts.items()})
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise IncompatibleService(f"{self.url} answers /api/v1/health but not as a semcoat service does "
                                      f"(missing {exc}); check the URL in the add-on's preferences") from exc

    def check(self) -> ServiceHealth:
        """What "Test connection" does: the service answers, speaks this add-on's version, and takes the token."""
        health = self.health()
        problem = version_problem(health.version)
        if problem is not None:
            raise IncompatibleService(f"{self.url}: {problem}")
        self._json("GET", "/batches?limit=1")  # /health is open to all: only this proves the token
        return health

    def submit(self, payload: dict[str, Any]) -> BatchStatus:
        """``POST /batches`` with a :func:`batch_payload`; RequestRefused lists every problem of a 422."""
        return BatchStatus.from_json(self._json("POST", "/batches", payload))

    def batch(self, batch_id: str) -> BatchStatus:
        """``GET /batches/{id}``."""
        return BatchStatus.from_json(self._json("GET", f"/batches/{urllib.parse.quote(batch_id, safe='')}"))

    def batches(self, limit: int = 50) -> list[BatchStatus]:
        """``GET /batches``: the user's batches, newest first."""
        data = self._json("GET", f"/batches?limit={int(limit)}")
        return [BatchStatus.from_json(item) for item in data.get("items", [])]

    def cancel(self, batch_id: str) -> BatchStatus:
        """``DELETE /batches/{id}``: stop the batch (finished images stay)."""
        return BatchStatus.from_json(self._json("DELETE", f"/batches/{urllib.parse.quote(batch_id, safe='')}"))

    def download_archive(self, batch_id: str, out: BinaryIO, progress: Callable[[int], bool] | None = None) -> int:
        """Stream ``GET /batches/{id}/archive`` (a zip) into ``out``; returns the bytes written.

        ``progress(bytes_so_far)`` is called after each chunk; returning False stops the download (ServiceError).
        """
        quoted = urllib.parse.quote(batch_id, safe="")
        with self._open("GET", f"/batches/{quoted}/archive", None, authorised=True) as response:
            done = 0
            while True:
                chunk = response.read(CHUNK_BYTES)
                if not chunk:
                    return done
                out.write(chunk)
                done += len(chunk)
                if progress is not None and not progress(done):
                    raise ServiceError(f"the download of batch {batch_id} was stopped")

    # --- plumbing --------------------------------------------------------------------------------------------------
    def _json(self, method: str, path: str, payload: Any = None, authorised: bool = True) -> Any:
        with self._open(method, path, payload, authorised) as response:
            body = response.read()
        try:
            return json.loads(body)
        except ValueError as exc:
            raise IncompatibleService(f"{self.url}{API_PREFIX}{path.split('?')[0]} did not answer JSON: this is not "
                                      "a semcoat service; check the URL in the add-on's preferences") from exc

    def _open(self, method: str, path: str, payload: Any, authorised: bool) -> Any:
        """The open response of one request; every failure is a ServiceError with a sentence."""
        parsed = urllib.parse.urlparse(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ServiceUnreachable(f"the service URL {self.url[:100]!r} is not an http(s) URL such as "
                                     "http://127.0.0.1:8000; set it in the add-on's preferences")
        headers = {"Accept": "application/json", "User-Agent": f"semcoat-blender-addon/{ADDON_VERSION}"}
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        if authorised and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(f"{self.url}{API_PREFIX}{path}", data=data, method=method, headers=headers)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout_s)  # noqa: S310 (the scheme is checked above)
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc, method, path) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, socket.timeout | TimeoutError):
                why = f"no answer within {self.timeout_s:g} s"
            elif isinstance(reason, ConnectionRefusedError):
                why = "the connection was refused (nothing listens there)"
            elif isinstance(reason, socket.gaierror):
                why = f"the host name {parsed.hostname!r} is unknown"
            else:
                why = str(reason)
            raise ServiceUnreachable(f"cannot reach the semcoat service at {self.url}: {why}. Is `semcoat serve` "
                                     "running there, and is the URL in the add-on's preferences right?") from None

    def _http_error(self, exc: urllib.error.HTTPError, method: str, path: str) -> ServiceError:
        body = exc.read() if exc.fp is not None else b""
        where = f"{method} {API_PREFIX}{path.split('?')[0]}"
        if exc.code == 401:
            how = ("paste a token from `semcoat token create NAME` into the add-on's preferences"
                   if self.token else "no token is set: paste one from `semcoat token create NAME` into the add-on's "
                   "preferences")
            return Unauthorized(f"the service at {self.url} refused the token (401: {_detail(body)}); {how}")
        if exc.code == 404:
            if path.startswith("/health"):
                return IncompatibleService(f"{self.url} has no {API_PREFIX}/health: it is not a semcoat service of "
                                           "this API version; check the URL in the add-on's preferences")
            return NotFound(f"{where}: {_detail(body)}")
        if exc.code == 422:
            problems = _problems(body)
            listed = "; ".join(f"{p.spec_path}: {p.msg}" for p in problems[:5])
            return RequestRefused(problems, f"the service refused the request: {listed}")
        if exc.code >= 500:
            return ServiceError(f"the service at {self.url} failed ({exc.code}) on {where}: {_detail(body)}")
        return ServiceError(f"{where} was refused ({exc.code}): {_detail(body)}")


def download_batch(client: ServiceClient, batch_id: str, folder: Path,
                   progress: Callable[[int], bool] | None = None) -> Path:
    """Download a batch's dataset into ``folder`` (made complete or not at all) and return it.

    The archive goes to a temporary file beside ``folder``; its entries (all under ``<batch id>/``) are extracted into
    a temporary folder, checked to stay inside it, and the folder is moved into place, replacing an earlier download.
    """
    import tempfile
    import zipfile

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".semcoat-download-", dir=folder.parent) as scratch:
        archive_path = Path(scratch) / "archive.zip"
        with archive_path.open("wb") as out:
            client.download_archive(batch_id, out, progress)
        staged = Path(scratch) / "dataset"
        try:
            with zipfile.ZipFile(archive_path) as archive:
                for info in archive.infolist():
                    parts = Path(info.filename).parts
                    if not parts or parts[0] != batch_id or ".." in parts or Path(info.filename).is_absolute():
                        raise ServiceError(f"the archive of batch {batch_id} holds {info.filename[:100]!r}, outside "
                                           "its folder; nothing was extracted")
                    if info.is_dir() or len(parts) == 1:
                        continue
                    target = staged.joinpath(*parts[1:])
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(info) as src, target.open("wb") as dst:
                        shutil.copyfileobj(src, dst, CHUNK_BYTES)
        except zipfile.BadZipFile as exc:
            raise ServiceError(f"the archive of batch {batch_id} is not a valid zip ({exc}); download it "
                               "again") from exc
        staged.mkdir(exist_ok=True)
        if folder.exists():
            shutil.rmtree(folder)
        staged.replace(folder)
    return folder
