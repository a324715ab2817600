"""LocalRunner and FakeRunner: the file-operation contract (runner_contract.py), commands, and the fake's scripting."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from render_service.slurm.errors import CommandFailed, RemoteFileError, TransportError
from render_service.slurm.fake import UNSCRIPTED_EXIT_CODE, FakeRunner
from render_service.slurm.local import LocalRunner
from render_service.slurm.transport import CommandResult
from tests.render_service.runner_contract import CONTRACT, RunnerSetup, check_fetch_failure_leaves_no_folder


def _local(tmp_path: Path) -> RunnerSetup:
    root = tmp_path / "cluster"
    root.mkdir()
    local = tmp_path / "here"
    local.mkdir()
    return RunnerSetup(LocalRunner(), str(root), local, lambda path, data: Path(path).write_bytes(data))


def _fake(tmp_path: Path) -> RunnerSetup:
    runner = FakeRunner()
    runner.make_dirs("/home/user/work")
    local = tmp_path / "here"
    local.mkdir()
    return RunnerSetup(runner, "/home/user/work", local, runner.add_file)


@pytest.mark.parametrize("make", [_local, _fake], ids=["local", "fake"])
@pytest.mark.parametrize("check", CONTRACT, ids=lambda c: c.__name__.removeprefix("check_"))
def test_file_operations(make: Callable[[Path], RunnerSetup], check: Callable[[RunnerSetup], None],
                         tmp_path: Path) -> None:
    check(make(tmp_path))


def test_local_fetch_failure_leaves_no_folder(tmp_path: Path) -> None:
    check_fetch_failure_leaves_no_folder(_local(tmp_path), os.mkfifo)


def test_local_fetch_copies_a_linked_file_and_refuses_a_linked_folder(tmp_path: Path) -> None:
    s = _local(tmp_path)
    root = Path(s.root)
    (root / "ds" / "real").mkdir(parents=True)
    (root / "ds" / "real" / "a.txt").write_text("a")
    (root / "ds" / "link.txt").symlink_to(root / "ds" / "real" / "a.txt")
    assert s.runner.fetch(str(root / "ds"), s.local_dir / "one") == 2
    assert (s.local_dir / "one" / "link.txt").read_text() == "a"
    assert not (s.local_dir / "one" / "link.txt").is_symlink()
    (root / "ds" / "loop").symlink_to(root / "ds")
    with pytest.raises(RemoteFileError, match="loop on localhost: not a regular file or folder"):
        s.runner.fetch(str(root / "ds"), s.local_dir / "two")
    assert not (s.local_dir / "two").exists()


def test_local_runner_runs_argv_without_a_shell() -> None:
    result = LocalRunner().run(["echo", "a;b $(x)"])
    assert (result.exit_code, result.stdout) == (0, "a;b $(x)\n")
    with pytest.raises(TransportError, match="cannot run"):
        LocalRunner().run(["/nonexistent/binary"])


def test_local_put_text_failure_is_typed_and_leaves_no_temporary(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    with pytest.raises(RemoteFileError, match="cannot write"):
        LocalRunner().put_text(str(tmp_path / "folder"), "a folder cannot be replaced by a file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]


def test_command_result_check_raises_command_failed_not_transport_error() -> None:
    ok = CommandResult(("true",), 0, "", "")
    assert ok.check() is ok
    failed = CommandResult(("sbatch", "x y.sh"), 1, "", "boom\n")
    with pytest.raises(CommandFailed, match="`sbatch 'x y.sh'` exited 1: boom") as info:
        failed.check()
    assert info.value.result is failed
    assert not isinstance(info.value, TransportError)


def test_fake_answers_in_order_and_records_commands() -> None:
    fake = FakeRunner()
    fake.answer("squeue", stdout="first\n", times=1)
    fake.answer("squeue", stdout="later\n")
    fake.answer("sbatch", stderr="refused", exit_code=1)
    assert fake.run(["squeue", "-h"]).stdout == "first\n"
    assert fake.run(["squeue", "-h"]).stdout == "later\n"
    assert fake.run(["squeue"]).stdout == "later\n"
    refused = fake.run(["sbatch", "x.sh"], stdin="in")
    assert (refused.exit_code, refused.stderr) == (1, "refused")
    assert fake.commands == [("squeue", "-h"), ("squeue", "-h"), ("squeue",), ("sbatch", "x.sh")]
    assert fake.stdins[-1] == "in"


def test_fake_unscripted_command_looks_like_command_not_found() -> None:
    result = FakeRunner().run(["scancel", "3"])
    assert result.exit_code == UNSCRIPTED_EXIT_CODE and "scancel: command not found" in result.stderr
    with pytest.raises(CommandFailed):
        result.check()


def test_fake_handler_computes_answers() -> None:
    fake = FakeRunner()
    job_ids = iter(range(100, 200))
    fake.answer("sbatch", handler=lambda argv, stdin: CommandResult(argv, 0, f"{next(job_ids)}\n", ""))
    assert [fake.run(["sbatch", "a.sh"]).stdout for _ in range(2)] == ["100\n", "101\n"]


def test_unreachable_fake_raises_transport_error_for_everything(tmp_path: Path) -> None:
    fake = FakeRunner(host="login.hpc")
    fake.add_file("/w/a.txt", "a")
    fake.reachable = False
    calls: list[Callable[[], object]] = [
        lambda: fake.run(["squeue"]), lambda: fake.put_text("/w/b", "b"), lambda: fake.make_dirs("/w/c"),
        lambda: fake.list_dir("/w"), lambda: fake.read_text("/w/a.txt"), lambda: fake.exists("/w/a.txt"),
        lambda: fake.fetch("/w", tmp_path / "w"),
    ]
    for call in calls:
        with pytest.raises(TransportError, match="login.hpc"):
            call()
    assert fake.commands == [] and not (tmp_path / "w").exists()
