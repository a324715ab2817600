"""``FakeRunner``: an in-memory ``CommandRunner`` for unit tests of the Slurm layer and of the service built on it.

It records every command, answers the ones a test scripted (by argv prefix, in the order scripted, optionally a
limited number of times) and keeps the cluster's files in a dict. It behaves like the real runners where a caller
could tell: the same typed errors naming host and path, the same refusal of a fetch target that exists.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from render_service.slurm.errors import RemoteFileError, RemoteFileNotFound, TransportError
from render_service.slurm.transport import (
    DEFAULT_READ_MAX_BYTES,
    CommandResult,
    check_max_bytes,
    staged_local_path,
    too_large_message,
)

# What a shell answers for a command it cannot find; an unscripted command looks like that, never like success.
UNSCRIPTED_EXIT_CODE = 127

Handler = Callable[[tuple[str, ...], "str | None"], CommandResult]


@dataclass
class _Answer:
    prefix: tuple[str, ...]
    handler: Handler
    times_left: int | None


class FakeRunner:
    """A cluster in memory: scripted command answers, recorded commands, files in ``files`` (path → bytes)."""

    def __init__(self, host: str = "fake-cluster") -> None:
        self.host = host
        self.commands: list[tuple[str, ...]] = []
        self.stdins: list[str | None] = []
        self.files: dict[str, bytes] = {}
        self.dirs: set[str] = {"/"}
        # False makes every call fail as an unreachable cluster does
        self.reachable = True
        self._answers: list[_Answer] = []

    # -- scripting -------------------------------------------------------------------------------------------------
    def answer(self, *prefix: str, stdout: str = "", stderr: str = "", exit_code: int = 0,
               times: int | None = None, handler: Handler | None = None) -> None:
        """Answer commands whose argv starts with ``prefix``.

        Answers are tried in the order scripted; one given ``times`` is used that many times, then skipped, so
        ``answer("squeue", stdout=a, times=1); answer("squeue", stdout=b)`` gives ``a`` once, then ``b``.
        ``handler(argv, stdin)`` computes the result instead of the fixed ``stdout``/``stderr``/``exit_code``.
        """
        if handler is None:
            def handler(argv: tuple[str, ...], stdin: str | None) -> CommandResult:
                return CommandResult(argv, exit_code, stdout, stderr)
        self._answers.append(_Answer(tuple(prefix), handler, times))

    def add_file(self, path: str, content: str | bytes) -> None:
        """Put a file on the fake cluster, creating its folders (test set-up; the runner API keeps real rules)."""
        norm = self._norm(path)
        self._add_dirs(posixpath.dirname(norm))
        self.files[norm] = content.encode("utf-8") if isinstance(content, str) else content

    # -- CommandRunner ---------------------------------------------------------------------------------------------
    def run(self, argv: Sequence[str], stdin: str | None = None, timeout_s: float = 60.0) -> CommandResult:
        """Record ``argv`` and return the first scripted answer whose prefix matches."""
        self._check_reachable(f"run `{shlex.join(argv)}`")
        command = tuple(argv)
        self.commands.append(command)
        self.stdins.append(stdin)
        for scripted in self._answers:
            if command[:len(scripted.prefix)] == scripted.prefix and scripted.times_left != 0:
                if scripted.times_left is not None:
                    scripted.times_left -= 1
                return scripted.handler(command, stdin)
        return CommandResult(command, UNSCRIPTED_EXIT_CODE, "",
                             f"{command[0] if command else ''}: command not found (no answer scripted in FakeRunner)")

    def put_text(self, remote_path: str, text: str) -> None:
        """Store a text file; its folder must exist."""
        self._check_reachable(f"write {remote_path}")
        norm = self._norm(remote_path)
        if posixpath.dirname(norm) not in self.dirs:
            raise RemoteFileNotFound(f"cannot write {remote_path} on {self.host}: its folder does not exist",
                                     self.host, remote_path)
        if norm in self.dirs:
            raise RemoteFileError(f"cannot write {remote_path} on {self.host}: it is a folder", self.host, remote_path)
        self.files[norm] = text.encode("utf-8")

    def make_dirs(self, path: str) -> None:
        """Create a folder and its missing parents."""
        self._check_reachable(f"create the folder {path}")
        norm = self._norm(path)
        probe = norm
        while probe != "/":
            if probe in self.files:
                raise RemoteFileError(f"cannot create the folder {path} on {self.host}: {probe} is a file",
                                      self.host, path)
            probe = posixpath.dirname(probe)
        self._add_dirs(norm)

    def list_dir(self, path: str) -> list[str]:
        """Sorted names of the entries of a folder."""
        self._check_reachable(f"list {path}")
        norm = self._norm(path)
        if norm in self.files:
            raise RemoteFileError(f"cannot list {path} on {self.host}: it is a file, not a folder", self.host, path)
        if norm not in self.dirs:
            raise RemoteFileNotFound(f"cannot list {path} on {self.host}: it does not exist", self.host, path)
        return sorted({posixpath.basename(p) for p in (*self.files, *self.dirs)
                       if p != norm and posixpath.dirname(p) == norm})

    def read_text(self, path: str, max_bytes: int = DEFAULT_READ_MAX_BYTES, tail: bool = False) -> str:
        """A text file, refused over ``max_bytes`` unless ``tail`` asks for its last ``max_bytes`` bytes."""
        check_max_bytes(max_bytes)
        self._check_reachable(f"read {path}")
        data = self._file(path, "read")
        if len(data) > max_bytes:
            if not tail:
                raise RemoteFileError(too_large_message(self.host, path, len(data), max_bytes), self.host, path)
            data = data[-max_bytes:]
        return data.decode("utf-8", errors="replace")

    def exists(self, path: str) -> bool:
        """True when a file or folder exists at ``path``."""
        self._check_reachable(f"look at {path}")
        norm = self._norm(path)
        return norm in self.files or norm in self.dirs

    def fetch(self, remote_path: str, local_path: str | Path) -> int:
        """Copy a file or folder to ``local_path`` on this machine (which must not exist) through a temporary name."""
        self._check_reachable(f"fetch {remote_path}")
        norm = self._norm(remote_path)
        if norm not in self.dirs:
            data = self._file(remote_path, "fetch")
            with staged_local_path(local_path) as staging:
                staging.write_bytes(data)
            return 1
        prefix = norm.rstrip("/") + "/"
        with staged_local_path(local_path) as staging:
            staging.mkdir()
            for folder in sorted(d for d in self.dirs if d.startswith(prefix)):
                (staging / folder[len(prefix):]).mkdir(parents=True, exist_ok=True)
            copied = 0
            for name, data in sorted(self.files.items()):
                if name.startswith(prefix):
                    target = staging / name[len(prefix):]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                    copied += 1
        return copied

    # -- helpers ---------------------------------------------------------------------------------------------------
    @staticmethod
    def _norm(path: str) -> str:
        return posixpath.normpath(posixpath.join("/", path))

    def _add_dirs(self, norm: str) -> None:
        while norm not in self.dirs:
            self.dirs.add(norm)
            norm = posixpath.dirname(norm)

    def _file(self, path: str, doing: str) -> bytes:
        norm = self._norm(path)
        if norm in self.dirs:
            raise RemoteFileError(f"cannot {doing} {path} on {self.host}: it is a folder", self.host, path)
        if norm not in self.files:
            raise RemoteFileNotFound(f"cannot {doing} {path} on {self.host}: it does not exist", self.host, path)
        return self.files[norm]

    def _check_reachable(self, doing: str) -> None:
        if not self.reachable:
            raise TransportError(f"cannot {doing} on {self.host}: the cluster is unreachable (FakeRunner.reachable)")
