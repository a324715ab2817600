"""The local backend's processes, driven by the orchestration over a temporary SQLite database. The render is a
small stand-in script (it writes a chunk's sample files like ``semcoat render``, fails or hangs when told), so these
tests need no Blender; the wrapper, the process handling, the limits and the states are the real ones."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from render_service.backends.local import LocalBackend
from render_service.db.models import Batch
from render_service.db.session import Database
from render_service.orchestrate import Orchestrator
from render_service.store import create_batch
from semcoat.batch import BatchSpec

FAKE_RENDER = '''
import json, os, pathlib, signal, sys, time
args = sys.argv[1:]
assert args[0] == "render", args
out = pathlib.Path(args[args.index("--out") + 1])
start, count = int(args[args.index("--start") + 1]), int(args[args.index("--count") + 1])
plan = json.loads(pathlib.Path(__file__).with_name("plan.json").read_text())
stopped = []
signal.signal(signal.SIGTERM, lambda *_: stopped.append(1))
flag = pathlib.Path(__file__).with_name(f"ran-{start}")
print(f"rendering {start}..{start + count - 1}", flush=True)
if str(start) in plan.get("fail_once", []) and not flag.exists():
    flag.touch()
    print("error: first attempt fails", flush=True)
    sys.exit(3)
if str(start) in plan.get("always_fail", []):
    print("error: this chunk always fails", flush=True)
    sys.exit(4)
for sub in ("images", "masks", "meta"):
    (out / sub).mkdir(parents=True, exist_ok=True)
(out / "dataset.json").write_text("{}")
for index in range(start, start + count):
    if stopped:
        sys.exit(143)
    time.sleep(plan.get("sleep_s", 0.0))
    sid = f"{index:06d}"
    (out / "images" / f"{sid}.png").write_bytes(b"i")
    (out / "masks" / f"{sid}.png").write_bytes(b"m")
    (out / "meta" / f"{sid}.json").write_text(json.dumps({"index": index}))
sys.exit(143 if stopped else 0)
'''


def make_backend(tmp_path: Path, max_processes: int = 2, **plan: object) -> LocalBackend:
    script = tmp_path / "fake" / "semcoat_fake.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(FAKE_RENDER)
    (script.parent / "plan.json").write_text(json.dumps(plan))
    return LocalBackend(tmp_path / "batches", tmp_path / "work", max_processes,
                       semcoat_command=(sys.executable, str(script)))


def new_batch(db: Database, count: int = 6, per_task: int = 2) -> str:
    with db.session() as session:
        spec = BatchSpec.from_dict({"name": "p91", "count": count, "seed": 3})
        return create_batch(session, "alice", spec, "local", {}, images_per_task=per_task).id


def run_until_final(orch: Orchestrator, db: Database, batch_id: str, timeout_s: float = 30.0,
                    ) -> tuple[Batch, list[tuple[str, int]], int]:
    """Step until the batch is final; also return the most processes seen running at once."""
    deadline = time.monotonic() + timeout_s
    most = 0
    while True:
        orch.step()
        with db.session() as session:
            batch = session.get(Batch, batch_id)
            assert batch is not None
            tasks = [(t.state, t.attempts) for t in batch.tasks]
            most = max(most, sum(1 for t in batch.tasks if t.pid is not None and t.state in ("pending", "running")))
            if batch.state in ("succeeded", "failed", "cancelled"):
                return batch, tasks, most
        assert time.monotonic() < deadline, tasks
        time.sleep(0.05)


def test_local_tasks_run_at_most_max_processes_at_once_and_succeed(db: Database, tmp_path: Path) -> None:
    batch_id = new_batch(db, count=7, per_task=2)
    orch = Orchestrator(db, make_backend(tmp_path, max_processes=1, sleep_s=0.05), max_retries=2)
    batch, tasks, most = run_until_final(orch, db, batch_id)
    assert batch.state == "succeeded" and batch.images_done == 7 and tasks == [("done", 1)] * 4
    assert most == 1
    assert len(list((tmp_path / "batches" / batch_id / "meta").iterdir())) == 7
    assert (tmp_path / "work" / batch_id / "tasks" / "3.exit").read_text().strip() == "0"


def test_a_local_task_failing_once_is_retried(db: Database, tmp_path: Path) -> None:
    batch_id = new_batch(db)
    orch = Orchestrator(db, make_backend(tmp_path, fail_once=["2"]), max_retries=2)
    batch, tasks, _ = run_until_final(orch, db, batch_id)
    assert batch.state == "succeeded" and tasks == [("done", 1), ("done", 2), ("done", 1)]


def test_a_local_task_always_failing_fails_the_batch_with_its_log(db: Database, tmp_path: Path) -> None:
    batch_id = new_batch(db)
    orch = Orchestrator(db, make_backend(tmp_path, always_fail=["4"]), max_retries=1)
    batch, tasks, _ = run_until_final(orch, db, batch_id)
    assert batch.state == "failed" and tasks == [("done", 1), ("done", 1), ("failed", 2)]
    assert batch.error is not None and "images 4-5" in batch.error and "exit code 4" in batch.error
    assert "this chunk always fails" in batch.error and batch.images_done == 4


def test_a_lost_process_is_a_failed_attempt_and_is_retried(db: Database, tmp_path: Path) -> None:
    batch_id = new_batch(db, count=2)
    backend = make_backend(tmp_path, sleep_s=5.0)
    orch = Orchestrator(db, backend, max_retries=2)
    orch.step()
    with db.session() as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        pid = batch.tasks[0].pid
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)  # the wrapper and the render die without a word, as with a killed worker
    backend._children[pid].wait()
    (tmp_path / "fake" / "plan.json").write_text("{}")  # the retry renders at once
    # a new worker: a backend that never started these processes
    fresh = Orchestrator(db, make_backend(tmp_path), max_retries=2)
    batch, tasks, _ = run_until_final(fresh, db, batch_id)
    assert batch.state == "succeeded" and tasks == [("done", 2)]


def test_cancel_stops_local_processes_and_keeps_finished_images(db: Database, tmp_path: Path) -> None:
    batch_id = new_batch(db, count=8, per_task=4)
    # 1 s per image: the cancel must land before the task's last image, also on a stalled machine
    orch = Orchestrator(db, make_backend(tmp_path, max_processes=1, sleep_s=1.0), max_retries=2)
    orch.step()
    meta = tmp_path / "batches" / batch_id / "meta"
    deadline = time.monotonic() + 20
    while not (meta.is_dir() and any(meta.iterdir())):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    orch.cancel(batch_id)
    batch, tasks, _ = run_until_final(orch, db, batch_id)
    assert batch.state == "cancelled" and tasks == [("cancelled", 1), ("cancelled", 0)]
    assert 1 <= batch.images_done < 4 and (tmp_path / "work" / batch_id / "tasks" / "0.exit").read_text() == "143\n"
