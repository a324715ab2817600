"""Load on the status endpoint: 100 clients polling ``GET /api/v1/batches/{id}`` at a fixed rate (open loop) for
30 s against a real ``semcoat serve`` on loopback (API only, on a Redis of its own, SQLite; no worker renders, so
the figures are the API's).

Each client sends on a fixed schedule whatever the answers do (as the add-on's poller does), so a slow server shows
as latency, not as a lower offered rate; latency is counted from the scheduled send time. Prints the offered and
served requests/s, p50 and p99 latency (ms) and errors. Target on the 2-core machine: p99 <= 50 ms at >= 300 req/s,
zero errors.

    .venv/bin/python bench/service_load.py [--rate 300] [--clients 100] [--duration-s 30]
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from render_service.embedded import free_port, start_redis, stop  # noqa: E402


def start_serve(data_dir: Path, port: int, redis_url: str) -> tuple[subprocess.Popen[bytes], str]:
    """``semcoat serve`` (API only, on the given Redis) on 127.0.0.1:``port`` with a fresh data folder and a token
    made by ``semcoat token create``; returns it and the token once /health answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEMCOAT_")}
    env.update(SEMCOAT_DATA_DIR=str(data_dir), HOME=str(data_dir), SEMCOAT_REDIS_URL=redis_url)
    token = subprocess.run([sys.executable, "-m", "semcoat_cli", "token", "create", "bench"], env=env, check=True,
                           capture_output=True, text=True).stdout.strip()
    log = open(data_dir.parent / "serve.log", "wb")  # noqa: SIM115 - the child writes it
    serve = subprocess.Popen([sys.executable, "-m", "semcoat_cli", "serve", "--port", str(port)], env=env,
                             stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2):
                return serve, token
        except OSError:
            if serve.poll() is not None:
                raise SystemExit(f"semcoat serve exited with {serve.returncode}") from None
            time.sleep(0.2)
    serve.terminate()
    raise SystemExit("semcoat serve did not answer within 60 s")


def submit_one(base: str, token: str) -> str:
    """Submit a small batch; its id is what the clients poll."""
    body = json.dumps({"spec": {"name": "bench", "count": 1}}).encode()
    request = urllib.request.Request(f"{base}/api/v1/batches", data=body, method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        batch_id: str = json.load(response)["id"]
        return batch_id


async def client(http: httpx.AsyncClient, path: str, interval_s: float, start: float, end: float,
                 latencies: list[float], errors: list[str]) -> None:
    """Send on a fixed schedule (random phase) until ``end``; latency from the scheduled send time, seconds."""
    scheduled = start + random.uniform(0, interval_s)
    while scheduled < end:
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            response = await http.get(path)
            if response.status_code != 200:
                errors.append(f"HTTP {response.status_code}")
            else:
                latencies.append(time.perf_counter() - scheduled)
        except httpx.HTTPError as exc:
            errors.append(type(exc).__name__)
        scheduled += interval_s


async def run_load(base: str, token: str, batch_id: str, clients: int, rate: float, duration_s: float) -> None:
    """Run the clients and print the figures."""
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, limits=limits,
                                 timeout=10.0) as http:
        await http.get(f"/api/v1/batches/{batch_id}")  # warm up
        start = time.perf_counter() + 0.5
        end = start + duration_s
        await asyncio.gather(*(client(http, f"/api/v1/batches/{batch_id}", clients / rate, start, end, latencies,
                                      errors) for _ in range(clients)))
        elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] if latencies else float("nan")

    print(f"clients {clients}, offered {rate:.0f} req/s for {duration_s:.0f} s (open loop)")
    print(f"served  {len(latencies) / elapsed:.0f} req/s ({len(latencies)} ok)")
    print(f"latency p50 {pct(50):.1f} ms, p99 {pct(99):.1f} ms, max {pct(100):.1f} ms")
    print(f"errors  {len(errors)}" + (f" ({', '.join(sorted(set(errors))[:5])})" if errors else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100, choices=range(1, 501), metavar="1..500")
    parser.add_argument("--rate", type=float, default=300.0, help="offered requests/s in all (max 2000)")
    parser.add_argument("--duration-s", type=float, default=30.0, help="seconds of load (max 120)")
    args = parser.parse_args()
    if not (0 < args.rate <= 2000 and 0 < args.duration_s <= 120):
        parser.error("--rate must be in (0, 2000] and --duration-s in (0, 120]")
    faulthandler.dump_traceback_later(args.duration_s + 120, exit=True)  # a hang shows where, and ends
    with tempfile.TemporaryDirectory(prefix="semcoat-bench-") as tmp:
        # The API alone, as a deployment runs it: no worker renders (it would compete for the same two cores).
        redis_child, redis_url = start_redis(Path(tmp))
        port = free_port()
        try:
            serve, token = start_serve(Path(tmp) / "data", port, redis_url)
        except BaseException:
            stop(redis_child)
            raise
        try:
            base = f"http://127.0.0.1:{port}"
            batch_id = submit_one(base, token)
            asyncio.run(run_load(base, token, batch_id, args.clients, args.rate, args.duration_s))
        finally:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(30)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait()
            stop(redis_child)


if __name__ == "__main__":
    main()
