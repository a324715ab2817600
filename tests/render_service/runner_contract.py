"""What every CommandRunner's file operations must do, written once and run against LocalRunner and FakeRunner (unit
tests) and SSHRunner against the real sshd (integration tests).

Each check takes a :class:`RunnerSetup`: the runner, an empty folder on its machine, an empty local folder, and a way
to put raw bytes on its machine that does not go through the operation under test.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from render_service.slurm.errors import RemoteFileError, RemoteFileNotFound
from render_service.slurm.transport import CommandRunner
from semcoat.errors import InvalidArgument, SemcoatError


@dataclass
class RunnerSetup:
    """A runner under test and its scratch space."""

    runner: CommandRunner
    root: str
    local_dir: Path
    write_bytes: Callable[[str, bytes], object]


def check_put_and_read_text(s: RunnerSetup) -> None:
    """put_text writes UTF-8 text read_text gives back; a second put replaces it and leaves no temporary."""
    path = f"{s.root}/batch file.json"
    s.runner.put_text(path, '{"name": "µm — 20 h"}\n')
    assert s.runner.read_text(path) == '{"name": "µm — 20 h"}\n'
    s.runner.put_text(path, "second\n")
    assert s.runner.read_text(path) == "second\n"
    assert s.runner.list_dir(s.root) == ["batch file.json"]


def check_put_text_into_missing_folder(s: RunnerSetup) -> None:
    """put_text does not create folders: a missing one is a RemoteFileNotFound naming host and path."""
    path = f"{s.root}/no-such-folder/x.txt"
    with pytest.raises(RemoteFileNotFound) as info:
        s.runner.put_text(path, "x")
    assert info.value.host == s.runner.host and info.value.path == path
    assert path in str(info.value) and s.runner.host in str(info.value)
    assert not s.runner.exists(f"{s.root}/no-such-folder")


def check_make_dirs(s: RunnerSetup) -> None:
    """make_dirs creates nested folders, accepts existing ones and refuses a path through a file."""
    s.runner.make_dirs(f"{s.root}/a/b c/d")
    s.runner.make_dirs(f"{s.root}/a/b c/d")
    assert s.runner.list_dir(f"{s.root}/a") == ["b c"]
    assert s.runner.list_dir(f"{s.root}/a/b c/d") == []
    s.runner.put_text(f"{s.root}/file", "x")
    with pytest.raises(RemoteFileError, match=re.escape(f"{s.root}/file is a file")):
        s.runner.make_dirs(f"{s.root}/file/sub")


def check_list_dir(s: RunnerSetup) -> None:
    """list_dir gives sorted names; a missing folder and a file are typed errors."""
    for name in ("b.png", "a.json", "c"):
        s.runner.put_text(f"{s.root}/{name}", name)
    s.runner.make_dirs(f"{s.root}/sub")
    assert s.runner.list_dir(s.root) == ["a.json", "b.png", "c", "sub"]
    with pytest.raises(RemoteFileNotFound, match="does not exist"):
        s.runner.list_dir(f"{s.root}/missing")
    with pytest.raises(RemoteFileError, match="it is a file, not a folder"):
        s.runner.list_dir(f"{s.root}/c")


def check_read_missing_file(s: RunnerSetup) -> None:
    """Reading a missing file is a RemoteFileNotFound (a SemcoatError) naming host and path."""
    path = f"{s.root}/logs/task-7_3.out"
    with pytest.raises(RemoteFileNotFound) as info:
        s.runner.read_text(path)
    assert isinstance(info.value, SemcoatError)
    assert (info.value.host, info.value.path) == (s.runner.host, path)
    assert f"{path} on {s.runner.host}" in str(info.value)


def check_read_limit_and_tail(s: RunnerSetup) -> None:
    """A file over max_bytes is refused with its size, or its tail given; bad bytes are replaced, not fatal."""
    path = f"{s.root}/task.log"
    s.write_bytes(path, b"".join(b"line %03d\n" % i for i in range(100)) + b"\xff end\n")
    with pytest.raises(RemoteFileError, match=r"is 906 bytes, over the 100 bytes"):
        s.runner.read_text(path, max_bytes=100)
    assert s.runner.read_text(path, max_bytes=15, tail=True) == "line 099\n\ufffd end\n"
    assert s.runner.read_text(path, max_bytes=10_000, tail=True).startswith("line 000\n")
    with pytest.raises(InvalidArgument, match="max_bytes 0"):
        s.runner.read_text(path, max_bytes=0)


def check_exists(s: RunnerSetup) -> None:
    """exists is true for files and folders, false for what is not there."""
    s.runner.put_text(f"{s.root}/f", "x")
    assert s.runner.exists(f"{s.root}/f") and s.runner.exists(s.root)
    assert not s.runner.exists(f"{s.root}/g")


def _dataset(s: RunnerSetup) -> dict[str, bytes]:
    files = {
        "dataset.json": b'{"count": 2}\n',
        "images/000000.png": bytes(range(256)) * 40,
        "images/000001.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 5000,
        "masks/000000.png": b"\x00\x01\x05",
        "meta/deeper/still/x.json": b"{}",
        "empty.txt": b"",
    }
    for rel, data in files.items():
        folder = f"{s.root}/ds/{rel}".rsplit("/", 1)[0]
        s.runner.make_dirs(folder)
        s.write_bytes(f"{s.root}/ds/{rel}", data)
    s.runner.make_dirs(f"{s.root}/ds/empty-folder")
    return files


def check_fetch_folder(s: RunnerSetup) -> None:
    """fetch copies a whole folder, nested files and empty folders too, bit for bit, and counts the files."""
    files = _dataset(s)
    target = s.local_dir / "fetched" / "ds"
    assert s.runner.fetch(f"{s.root}/ds", target) == len(files)
    got = {p.relative_to(target).as_posix(): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert got == files
    assert (target / "empty-folder").is_dir()
    assert [p.name for p in target.parent.iterdir()] == ["ds"]  # no staging folder left beside it


def check_fetch_file_and_refusals(s: RunnerSetup) -> None:
    """fetch of one file; a target that exists and a missing source are refused and leave nothing behind."""
    s.write_bytes(f"{s.root}/one.bin", b"\x00\xffabc")
    assert s.runner.fetch(f"{s.root}/one.bin", s.local_dir / "one.bin") == 1
    assert (s.local_dir / "one.bin").read_bytes() == b"\x00\xffabc"
    with pytest.raises(InvalidArgument, match="exists already"):
        s.runner.fetch(f"{s.root}/one.bin", s.local_dir / "one.bin")
    with pytest.raises(RemoteFileNotFound, match="does not exist"):
        s.runner.fetch(f"{s.root}/nothing-here", s.local_dir / "nothing")
    assert sorted(p.name for p in s.local_dir.iterdir()) == ["one.bin"]


CONTRACT = [check_put_and_read_text, check_put_text_into_missing_folder, check_make_dirs, check_list_dir,
            check_read_missing_file, check_read_limit_and_tail, check_exists, check_fetch_folder,
            check_fetch_file_and_refusals]


def check_fetch_failure_leaves_no_folder(s: RunnerSetup, make_fifo: Callable[[str], object]) -> None:
    """A fetch that fails half-way (a FIFO it will not copy) leaves neither the target nor a staging folder."""
    _dataset(s)
    make_fifo(f"{s.root}/ds/zz-pipe")  # sorted last: the other files are copied before the refusal
    with pytest.raises(RemoteFileError, match="not a regular file or folder"):
        s.runner.fetch(f"{s.root}/ds", s.local_dir / "ds")
    assert list(s.local_dir.iterdir()) == []
