"""``semcoat demo --quick``: the whole journey as a user starts it (the README's command 1), with the embedded service
it starts itself (its own Redis, API and local worker rendering with the real bpy), and Ctrl-C in the middle of it.
Whatever happens, nothing it started may be left: no process and no listening port."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from semcoat.dataset import check_dataset
from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.blender, pytest.mark.slow]


def _environment(tmp_path: Path) -> tuple[dict[str, str], str]:
    """The demo's environment: no SEMCOAT_* setting and a fresh HOME (so it finds no running service's token and
    starts its own), and a marker every process it starts inherits."""
    marker = f"semcoat-demo-test-{uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEMCOAT_")}
    env.update(HOME=str(tmp_path / "home"), SEMCOAT_DEMO_TEST_MARKER=marker, PYTHONUNBUFFERED="1")
    return env, marker


def _processes_with(marker: str) -> list[str]:
    """Every process (and so every descendant of the demo, whatever its session) whose environment holds
    ``marker``."""
    found = []
    needle = f"SEMCOAT_DEMO_TEST_MARKER={marker}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if needle in (proc / "environ").read_bytes():
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{proc.name}: {command[:200]}")
        except OSError:
            continue  # ended meanwhile, or not ours to read
    return found


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _ports(out: Path) -> list[int]:
    """The API's and the embedded Redis's ports, from the service's log."""
    log = (out / "service" / "logs" / "serve.log").read_text()
    ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", log)]
    assert len(set(ports)) >= 2, log  # Redis and the API
    return sorted(set(ports))


def _assert_nothing_left(marker: str, out: Path) -> None:
    deadline = time.monotonic() + 10  # processes the demo waited for are gone; give the kernel a moment to reap
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_with(marker) == []
    assert [p for p in _ports(out) if _listening(p)] == []


def test_the_whole_journey_quick(tmp_path: Path) -> None:
    env, marker = _environment(tmp_path)
    out = tmp_path / "demo"
    # a relative --out, as the README's command gives it (the service runs inside its data folder)
    # six seconds of training (--quick gives 15): the test asks that it trains, exports and predicts, not how well
    run = subprocess.run([sys.executable, "-m", "semcoat_cli", "demo", "--quick", "--minutes", "0.1", "--out", "demo"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    _assert_nothing_left(marker, out)
    summary = json.loads((out / "journey.json").read_text())
    assert summary["service"]["started"] and "stopped the service the demo started" in run.stdout
    # both batches went through the service, were fetched and pass the dataset check
    for kind, count in (("train", 4), ("heldout", 2)):
        batch = summary["batches"][kind]
        assert re.fullmatch(r"[0-9a-f]{16}", batch["id"]) and (out / "service" / "batches" / batch["id"]).is_dir()
        report = check_dataset(out / "data" / kind)
        assert report.ok and report.complete == count, report.problems
    assert summary["batches"]["train"]["id"] != summary["batches"]["heldout"]["id"]
    # trained, exported, both models predicted the held-out images and the report compares them with the truth
    assert summary["training"]["steps"] >= 1 and Path(summary["training"]["checkpoint"]).is_file()
    assert (out / "unet.onnx").stat().st_size > 100_000
    for model in ("unet", "classical"):
        assert summary["predictions"][model]["images"] == 2
        assert len((out / "predictions" / model / "measurements.csv").read_text().splitlines()) == 3
    page = (out / "report" / "report.html").read_text()
    assert "2 images, 2 models: U-Net (trained here), classical baseline; ground truth from" in page
    assert "<th>U-Net (trained here): MAE</th>" in page and "<th>classical baseline: MAE</th>" in page
    assert page.count("<figcaption>ground truth</figcaption>") == 2
    assert set(summary["scores"]) == {"U-Net (trained here)", "classical baseline"}
    assert summary["scores"]["classical baseline"]["dice"]["fe2al5"] > 0.8  # the baseline's Fe2Al5 is reliable
    assert "report       " in run.stdout and str(out / "report" / "report.html") in run.stdout


def test_ctrl_c_while_rendering_cancels_the_batches_and_stops_everything(tmp_path: Path) -> None:
    env, marker = _environment(tmp_path)
    out = tmp_path / "demo"
    log = (tmp_path / "demo.out").open("w")
    demo = subprocess.Popen([sys.executable, "-m", "semcoat_cli", "demo", "--quick", "--out", str(out)], env=env,
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while "-heldout" not in (tmp_path / "demo.out").read_text():  # both batches submitted: rendering
            assert demo.poll() is None and time.monotonic() < deadline, (tmp_path / "demo.out").read_text()
            time.sleep(0.2)
        demo.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
        code = demo.wait(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
        log.close()
    text = (tmp_path / "demo.out").read_text()
    assert code == 130, text
    assert "cancelled the unfinished batch(es)" in text and "stopped the service the demo started" in text
    assert "every process it started has ended" in text
    _assert_nothing_left(marker, out)
