"""The ``CommandRunner`` protocol: run commands and handle files where Slurm is.

The rest of the Slurm layer talks to a ``CommandRunner`` only, so unit tests use :class:`~.fake.FakeRunner` and
integration tests the real SSH server (:class:`~.ssh.SSHRunner`); :class:`~.local.LocalRunner` serves a service that
runs on the login node itself.

Every runner raises the same typed errors: :class:`~.errors.TransportError` when the cluster cannot be reached,
:class:`~.errors.RemoteFileNotFound` / :class:`~.errors.RemoteFileError` (naming host and path) when a file operation is
refused. A command that runs and exits non-zero is not an error of ``run``: the caller decides with
:meth:`CommandResult.check`.
"""

from __future__ import annotations

import shlex
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from render_service.slurm.errors import CommandFailed
from semcoat.errors import InvalidArgument

__all__ = ["DEFAULT_READ_MAX_BYTES", "CommandResult", "CommandRunner", "check_max_bytes", "staged_local_path",
           "too_large_message"]

# read_text refuses larger files unless asked for their tail: a log that grew without bound must not fill memory.
DEFAULT_READ_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class CommandResult:
    """What a command returned."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    def check(self) -> CommandResult:
        """Return self when the exit code is 0; raise CommandFailed quoting the command and its stderr otherwise."""
        if self.exit_code != 0:
            raise CommandFailed(
                f"`{shlex.join(self.argv)}` exited {self.exit_code}: {self.stderr.strip() or self.stdout.strip()}",
                self)
        return self


class CommandRunner(Protocol):
    """Runs commands (argv, never a shell string) and handles files on the machine where the Slurm tools are.

    Paths are that machine's paths (POSIX). ``host`` names the machine in error messages.
    """

    host: str

    def run(self, argv: Sequence[str], stdin: str | None = None, timeout_s: float = 60.0) -> CommandResult:
        """Run ``argv`` and return its result, whatever its exit code; raise TransportError when it cannot be run."""
        ...

    def put_text(self, remote_path: str, text: str) -> None:
        """Write a UTF-8 text file atomically (a temporary name, then a rename); its folder must exist."""
        ...

    def make_dirs(self, path: str) -> None:
        """Create a folder and its missing parents; an existing folder is fine."""
        ...

    def list_dir(self, path: str) -> list[str]:
        """Names (not paths) of the entries of a folder, sorted."""
        ...

    def read_text(self, path: str, max_bytes: int = DEFAULT_READ_MAX_BYTES, tail: bool = False) -> str:
        """A text file (undecodable bytes replaced). A file over ``max_bytes`` is refused, or with ``tail`` its last
        ``max_bytes`` bytes are returned (the end of a log)."""
        ...

    def fetch(self, remote_path: str, local_path: str | Path) -> int:
        """Copy a file or a whole folder (recursively, every file) to ``local_path`` on this machine; return the
        number of files copied.

        ``local_path`` must not exist. The copy is made beside it under a hidden temporary name and renamed into place
        when complete, so ``local_path`` never holds a half copy.
        """
        ...

    def exists(self, path: str) -> bool:
        """True when a file or folder exists at ``path``."""
        ...


def check_max_bytes(max_bytes: int) -> None:
    """Refuse a ``read_text`` limit that is not a positive number of bytes."""
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise InvalidArgument(f"max_bytes {max_bytes!r} is not accepted: give a positive number of bytes",
                                argument="max_bytes")


def too_large_message(host: str, path: str, size_bytes: int, max_bytes: int) -> str:
    """The message of a file that ``read_text`` refuses for its size."""
    return (f"{path} on {host} is {size_bytes} bytes, over the {max_bytes} bytes read_text reads; "
            "read its tail (tail=True) or fetch it")


@contextmanager
def staged_local_path(local_path: str | Path) -> Iterator[Path]:
    """A hidden temporary path beside ``local_path`` that becomes ``local_path`` when the block ends without error.

    On an error the temporary file or folder is removed, so a failed fetch leaves nothing that looks complete.
    Refuses a ``local_path`` that exists already: a fetch never overwrites.
    """
    target = Path(local_path)
    if target.exists() or target.is_symlink():
        raise InvalidArgument(f"fetch target {target} exists already; remove it or fetch into a new path",
                                argument="local_path")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.fetching-{uuid.uuid4().hex[:8]}")
    try:
        yield staging
        staging.rename(target)
    except BaseException:
        if staging.is_dir() and not staging.is_symlink():
            shutil.rmtree(staging, ignore_errors=True)
        else:
            staging.unlink(missing_ok=True)
        raise
