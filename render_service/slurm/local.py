"""``LocalRunner``: the ``CommandRunner`` of a service running on the login node itself (plain processes, files)."""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path

from render_service.slurm.errors import RemoteFileError, RemoteFileNotFound, TransportError
from render_service.slurm.transport import (
    DEFAULT_READ_MAX_BYTES,
    CommandResult,
    check_max_bytes,
    staged_local_path,
    too_large_message,
)


class LocalRunner:
    """Runs commands and handles files on this machine."""

    host = "localhost"

    def run(self, argv: Sequence[str], stdin: str | None = None, timeout_s: float = 60.0) -> CommandResult:
        """Run ``argv`` locally, without a shell."""
        try:
            proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=timeout_s,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TransportError(f"cannot run `{shlex.join(argv)}`: {exc}") from exc
        return CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)

    def _error(self, exc: OSError, doing: str, path: str | Path) -> RemoteFileError:
        if isinstance(exc, FileNotFoundError):
            return RemoteFileNotFound(f"cannot {doing} {path} on {self.host}: it does not exist", self.host, str(path))
        return RemoteFileError(f"cannot {doing} {path} on {self.host}: {exc.strerror or exc}", self.host, str(path))

    def put_text(self, remote_path: str, text: str) -> None:
        """Write a text file atomically: a temporary file in the same folder, renamed over the target."""
        target = Path(remote_path)
        staging = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            staging.write_text(text, encoding="utf-8")
            os.replace(staging, target)
        except OSError as exc:
            staging.unlink(missing_ok=True)
            raise self._error(exc, "write", remote_path) from exc

    def make_dirs(self, path: str) -> None:
        """Create a folder and its missing parents."""
        try:
            Path(path).mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            blocking = next((p for p in (Path(path), *Path(path).parents) if p.exists() and not p.is_dir()), path)
            raise RemoteFileError(f"cannot create the folder {path} on {self.host}: {blocking} is a file",
                                  self.host, path) from exc
        except OSError as exc:
            raise self._error(exc, "create the folder", path) from exc

    def list_dir(self, path: str) -> list[str]:
        """Sorted names of the entries of a folder."""
        try:
            return sorted(os.listdir(path))
        except NotADirectoryError as exc:
            raise RemoteFileError(f"cannot list {path} on {self.host}: it is a file, not a folder",
                                  self.host, path) from exc
        except OSError as exc:
            raise self._error(exc, "list", path) from exc

    def read_text(self, path: str, max_bytes: int = DEFAULT_READ_MAX_BYTES, tail: bool = False) -> str:
        """A text file, refused over ``max_bytes`` unless ``tail`` asks for its last ``max_bytes`` bytes."""
        check_max_bytes(max_bytes)
        try:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size > max_bytes:
                    if not tail:
                        raise RemoteFileError(too_large_message(self.host, path, size, max_bytes), self.host, path)
                    handle.seek(size - max_bytes)
                data = handle.read(max_bytes)
        except OSError as exc:
            raise self._error(exc, "read", path) from exc
        return data.decode("utf-8", errors="replace")

    def exists(self, path: str) -> bool:
        """True when a file or folder exists at ``path`` (a dangling link does not count)."""
        try:
            os.stat(path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._error(exc, "look at", path) from exc
        return True

    def fetch(self, remote_path: str, local_path: str | Path) -> int:
        """Copy a file or folder into ``local_path`` (which must not exist) through a hidden temporary name."""
        try:
            info = os.stat(remote_path)
        except OSError as exc:
            raise self._error(exc, "fetch", remote_path) from exc
        with staged_local_path(local_path) as staging:
            if stat.S_ISDIR(info.st_mode):
                return self._copy_tree(Path(remote_path), staging)
            self._copy_file(Path(remote_path), staging)
            return 1

    def _copy_file(self, source: Path, target: Path) -> None:
        try:
            shutil.copyfile(source, target)  # follows a link to a file: its content is what the dataset holds
        except OSError as exc:
            raise self._error(exc, "fetch", source) from exc

    def _copy_tree(self, source: Path, target: Path) -> int:
        try:
            target.mkdir()
            entries = sorted(os.scandir(source), key=lambda e: e.name)
        except OSError as exc:
            raise self._error(exc, "fetch", source) from exc
        copied = 0
        for entry in entries:
            # a linked folder could loop or leave the dataset; refuse it rather than skip it silently
            if entry.is_dir(follow_symlinks=False):
                copied += self._copy_tree(Path(entry.path), target / entry.name)
            elif entry.is_file(follow_symlinks=True):
                self._copy_file(Path(entry.path), target / entry.name)
                copied += 1
            else:
                raise RemoteFileError(f"cannot fetch {entry.path} on {self.host}: not a regular file or folder",
                                      self.host, entry.path)
        return copied
