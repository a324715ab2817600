"""Service throughput: a 100-image 1024x768 batch through the REST API onto the loopback Slurm cluster (submit →
every file collected into the service's dataset folder), beside a plain ``semcoat render`` of the same batch on the
same machine in the same run.

    .venv/bin/python bench/service_throughput.py [--count 100] [--images-per-task N] [--cpus-per-task N]

By default the array has one task on all cores, as the plain render has one process on all cores, so the ratio is
the service's own cost (submission, polling, SFTP collection); ``--images-per-task 50 --cpus-per-task 1`` measures
two single-threaded tasks side by side instead.

Needs the stack (``bash scripts/stack.sh up``; its settings are read from stack.env). Starts ``semcoat serve``
(API only) and ``semcoat worker`` as separate processes with a temporary data folder. Prints both wall times, the
ratio (target ≤ 1.25x) and where the service's time went (queued → first task running, running, collection tail).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SEMCOAT = [sys.executable, "-m", "semcoat_cli"]
STACK_ENV = Path(os.environ.get("SEMCOAT_STACK_DIR", "/var/lib/semcoat-stack")) / "stack.env"


def stack_env() -> dict[str, str]:
    """The stack's SEMCOAT_* settings (brought up first)."""
    subprocess.run(["bash", str(ROOT / "scripts" / "stack.sh"), "up"], check=True, capture_output=True)
    return dict(line.split("=", 1) for line in STACK_ENV.read_text().splitlines() if "=" in line)


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, timeout_s: float) -> None:
    """Wait until ``url`` answers 200."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout_s} s")


def through_service(spec: dict[str, Any], env: dict[str, str], images_per_task: int, work: Path) -> dict[str, float]:
    """Submit ``spec`` to a fresh service; return the wall time from POST to every file collected, and its parts."""
    port = free_port()
    made = subprocess.run([*SEMCOAT, "token", "create", "bench"], env=env, capture_output=True, text=True, check=True)
    token = made.stdout.split()[-1]
    logs = work / "logs"
    logs.mkdir()
    procs = []
    try:
        with open(logs / "api.log", "wb") as api_log, open(logs / "worker.log", "wb") as worker_log:
            procs.append(subprocess.Popen([*SEMCOAT, "serve", "--port", str(port)], env=env, cwd=ROOT,
                                          stdout=api_log, stderr=subprocess.STDOUT, start_new_session=True))
            procs.append(subprocess.Popen([*SEMCOAT, "worker", "--loglevel", "WARNING"], env=env, cwd=ROOT,
                                          stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True))
        base = f"http://127.0.0.1:{port}/api/v1"
        wait_http(f"{base}/health", 30)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
            while http.get("/health").json()["workers"] < 1:  # the worker is ready: its start is not the batch's
                time.sleep(0.2)
            t0 = time.perf_counter()
            batch = http.post("/batches", json={"spec": spec, "backend": "slurm",
                                                "slurm": {"images_per_task": images_per_task}}).json()
            first_running = None
            while True:
                now = http.get(f"/batches/{batch['id']}").json()
                if first_running is None and now["state"] == "running":
                    first_running = time.perf_counter() - t0
                if now["state"] in ("succeeded", "failed", "cancelled"):
                    break
                time.sleep(0.1)
            total = time.perf_counter() - t0
        if now["state"] != "succeeded":
            raise SystemExit(f"the batch ended {now['state']}: {now['error']}")
        dataset = Path(env["SEMCOAT_DATA_DIR"]) / "batches" / batch["id"]
        files = sum(1 for p in dataset.rglob("*") if p.is_file())
        assert files == 1 + 3 * spec["count"], f"{files} files collected"
        finished = dt.datetime.fromisoformat(now["finished_at"])
        started = dt.datetime.fromisoformat(now["started_at"])
        return {"total_s": total, "to_running_s": first_running or 0.0,
                "running_s": (finished - started).total_seconds(), "files": files}
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def plain_render(spec_path: Path, out: Path, threads: int) -> float:
    """Wall time of one ``semcoat render`` of the whole batch."""
    t0 = time.perf_counter()
    subprocess.run([*SEMCOAT, "render", str(spec_path), "--out", str(out), "--threads", str(threads)], check=True,
                   cwd=ROOT, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--preset", default="5h_650C")
    parser.add_argument("--images-per-task", type=int, help="images per Slurm array task (default: all in one)")
    parser.add_argument("--cpus-per-task", type=int, default=os.cpu_count() or 1,
                        help="CPUs (render threads) of each array task (default: all cores, as the plain render)")
    parser.add_argument("--plain-threads", type=int, default=0, help="threads of the plain render (0 = all cores)")
    parser.add_argument("--poll-interval-s", type=float, default=1.0)
    args = parser.parse_args()
    args.images_per_task = args.images_per_task or args.count

    from semcoat.presets import preset_batch

    batch = preset_batch(args.preset, count=args.count, seed=0)
    img = batch.base.imaging
    spec = batch.to_dict()
    env_stack = stack_env()
    with tempfile.TemporaryDirectory(prefix="semcoat-bench-service-") as tmp:
        work = Path(tmp)
        env = {**os.environ, **env_stack, "SEMCOAT_DATA_DIR": str(work / "data"),
               "SEMCOAT_POLL_INTERVAL_S": str(args.poll_interval_s),
               "SEMCOAT_SLURM_CPUS_PER_TASK": str(args.cpus_per_task)}
        print(f"{args.count} images {img.width_px}x{img.height_px} ({args.preset}), {os.cpu_count()} cores; "
              f"service: {args.images_per_task} images per array task, {args.cpus_per_task} CPU each, poll every "
              f"{args.poll_interval_s} s; plain: one `semcoat render`, threads {args.plain_threads or 'all'}",
              flush=True)
        service = through_service(spec, env, args.images_per_task, work)
        print(f"service: {service['total_s']:.1f} s submit → all {service['files']} files collected "
              f"(first task running after {service['to_running_s']:.1f} s; started → finished "
              f"{service['running_s']:.1f} s)", flush=True)
        spec_path = work / "batch.json"
        spec_path.write_text(batch.to_json())
        plain = plain_render(spec_path, work / "plain", args.plain_threads)
        print(f"plain semcoat render: {plain:.1f} s")
        print(f"ratio service / plain: {service['total_s'] / plain:.2f}x (target ≤ 1.25x)")


if __name__ == "__main__":
    main()
