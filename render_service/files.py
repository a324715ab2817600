"""A batch's dataset folder (``settings.batches_dir / <batch id>``) served safely: listing, one file, a zip stream.

Nothing outside the folder is ever opened: a requested path is checked as text first (no ``..``, ``.``, empty or
absolute parts, no backslash or NUL) and then opened one component at a time relative to the folder's descriptor
with ``O_NOFOLLOW``, so a symlink anywhere on the way (a linked file or a linked sub-folder) is refused by the
kernel, not by a check that could race. Walking the folder (listing, archive) uses ``os.fwalk`` without following
links and lists regular files only. Temporaries of writes in progress (``.name.tmp-*``) are never shown.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from semcoat.errors import SemcoatError

CHUNK_BYTES = 64 * 1024
MAX_PATH_CHARS = 1024
_TMP_MARK = ".tmp-"  # the dataset writer's temporaries (semcoat.dataset.write_atomic)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)


class FileRefused(SemcoatError):
    """The path is not a regular file inside the batch folder (missing, outside, through a symlink): a 404."""


@dataclass(frozen=True)
class FileInfo:
    """One file of a dataset folder: its '/'-separated path relative to the folder and its size in bytes."""

    path: str
    size_bytes: int


def path_parts(relative: str) -> list[str]:
    """The components of a requested relative path; FileRefused for anything that could leave the folder."""
    if not relative or len(relative) > MAX_PATH_CHARS or "\\" in relative or "\0" in relative:
        raise FileRefused(f"no such file: {relative[:200]!r}")
    if relative.startswith("/"):
        raise FileRefused(f"no such file: {relative[:200]!r} (paths are relative to the batch folder)")
    parts = relative.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise FileRefused(f"no such file: {relative[:200]!r} (paths may not hold '.', '..' or empty parts)")
    return parts


def _open_root(root: Path) -> int:
    try:
        return os.open(root, _DIR_FLAGS)
    except OSError as exc:
        raise FileRefused(f"the batch has no files yet ({root.name})") from exc


def open_file(root: Path, relative: str) -> tuple[IO[bytes], int]:
    """Open ``root/relative`` for reading, refusing symlinks at every step; returns (file, size in bytes).

    Raises FileRefused when the path is invalid, missing, a folder, a symlink or under one; nothing is read then.
    """
    parts = path_parts(relative)
    fd = _open_root(root)
    try:
        for part in parts[:-1]:
            try:
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise FileRefused(f"no such file: {relative!r}") from exc
            os.close(fd)
            fd = next_fd
        try:
            file_fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
        except OSError as exc:
            raise FileRefused(f"no such file: {relative!r}") from exc
    finally:
        os.close(fd)
    info = os.fstat(file_fd)
    if not stat.S_ISREG(info.st_mode) or _TMP_MARK in parts[-1]:
        os.close(file_fd)
        raise FileRefused(f"no such file: {relative!r}")
    os.set_blocking(file_fd, True)
    return os.fdopen(file_fd, "rb"), info.st_size


def iter_file(handle: IO[bytes], chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The file's bytes in chunks of ``chunk_bytes``; closes it at the end (or when the consumer stops)."""
    with handle:
        while chunk := handle.read(chunk_bytes):
            yield chunk


def _walk(root: Path) -> Iterator[tuple[str, str, int]]:
    """(relative path, name, dir fd) of every regular file under ``root``, sorted, no symlink followed."""
    if not root.is_dir() or root.is_symlink():
        return
    for top, dirs, names, dir_fd in os.fwalk(root, follow_symlinks=False):
        dirs.sort()
        rel_top = os.path.relpath(top, root)
        for name in sorted(names):
            if _TMP_MARK in name:
                continue
            rel = name if rel_top == "." else f"{rel_top}/{name}"
            yield rel.replace(os.sep, "/"), name, dir_fd


def list_files(root: Path) -> list[FileInfo]:
    """Every regular file of the folder with its size, sorted by path (empty when the folder does not exist)."""
    out = []
    for rel, name, dir_fd in _walk(root):
        with contextlib.suppress(FileNotFoundError):
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISREG(info.st_mode):
                out.append(FileInfo(rel, info.st_size))
    return sorted(out, key=lambda f: f.path)


class _Pipe:
    """A write-only, unseekable stream that keeps what was written until :meth:`take` (zipfile writes into it)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._written = 0

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def _zip_time(mtime: float) -> tuple[int, int, int, int, int, int]:
    """A file's modification time as zip stores it (local time; zip cannot hold dates before 1980)."""
    t = time.localtime(max(mtime, 315532800 + 86400))
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def iter_zip(root: Path, prefix: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """A zip of every regular file under ``root`` (entries ``prefix/<path>``), produced while it is written.

    At most one chunk of ``chunk_bytes`` of file data plus zip headers is held at a time. PNGs are stored (they are
    compressed already), everything else deflated. An empty or missing folder gives an empty zip.
    """
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", allowZip64=True) as archive:
        for rel, name, dir_fd in _walk(root):
            try:
                fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
            except OSError:
                continue  # removed or replaced by a link since the walk saw it
            with os.fdopen(fd, "rb") as source:
                info = os.fstat(source.fileno())
                if not stat.S_ISREG(info.st_mode):
                    continue
                os.set_blocking(fd, True)
                entry = zipfile.ZipInfo(f"{prefix}/{rel}", date_time=_zip_time(info.st_mtime))
                entry.external_attr = (stat.S_IFREG | 0o644) << 16
                entry.compress_type = zipfile.ZIP_STORED if name.endswith(".png") else zipfile.ZIP_DEFLATED
                with archive.open(entry, "w", force_zip64=info.st_size > 0x7FFF0000) as target:
                    while chunk := source.read(chunk_bytes):
                        target.write(chunk)
                        if data := pipe.take():
                            yield data
            if data := pipe.take():
                yield data
    if data := pipe.take():
        yield data
