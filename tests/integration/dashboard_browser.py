"""A real browser on a real service, for the dashboard's tests and its screenshot script: ``semcoat serve`` as a
user starts it (the embedded default: its own Redis and a local worker, a fresh data folder and HOME) and Debian's
headless Chromium driven by Selenium through Debian's chromedriver (never a driver or browser downloaded by
Selenium Manager)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By

from semcoat.batch import BatchSpec
from semcoat.spec import CoatingSpec, ImagingSpec

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,1000", "--hide-scrollbars")
FINAL = ("succeeded", "failed", "cancelled")


def chromium(profile_dir: Path) -> webdriver.Chrome:
    """Headless Chromium with a fresh profile in ``profile_dir``, its console kept for :func:`console_errors`.
    Fails (never skips) when Debian's chromium or chromium-driver is missing."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    assert not missing, (f"{', '.join(missing)} missing: the dashboard's browser tests need Debian's chromium and "
                         "chromium-driver (scripts/setup.sh installs them with the dev extra)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=DriverService(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    return driver


def console_errors(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """The console's errors since the last call (failed loads, script errors, Content-Security-Policy refusals)."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def wait_for(condition: Any, timeout_s: float, what: str, interval_s: float = 0.1) -> Any:
    """Call ``condition`` until it returns something truthy (returned); fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"waited {timeout_s} s for {what}"
        time.sleep(interval_s)


def sign_in(driver: webdriver.Chrome, url: str, token: str) -> None:
    """Sign in through the form as a user does (paste the token, press the button)."""
    driver.get(url + "/")
    field = driver.find_element(By.ID, "token")
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form.signin button").click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "form.signout"), 10, "the signed-in overview")


def small_batch(name: str, count: int, seed: int = 7, width_px: int = 320, height_px: int = 256,
                images_per_task: int | None = None) -> dict[str, Any]:
    """A batch of small images (320x256), all in one render task unless ``images_per_task`` says otherwise.

    A small image renders in a fraction of a second, faster than a page polls (2 s): to watch progress move, give
    each image its own task and the service one render process at a time (:class:`EmbeddedService`), so every
    image also waits for its process to start (Blender's import, a second or more).
    """
    imaging = ImagingSpec(width_px=width_px, height_px=height_px, pixel_size_um=0.8 * 160 / width_px)
    batch = BatchSpec(name=name, count=count, seed=seed, base=CoatingSpec(imaging=imaging))
    batch.render.images_per_task = images_per_task or count
    batch.validate()
    return batch.to_dict()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedService:
    """``semcoat serve`` with no configuration on a free loopback port: the README's embedded default."""

    def __init__(self, root: Path) -> None:
        self.data_dir = root / "data"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SEMCOAT_")}
        self.env.update(HOME=str(root / "home"), SEMCOAT_DATA_DIR=str(self.data_dir), SEMCOAT_POLL_INTERVAL_S="0.5",
                        SEMCOAT_LOCAL_MAX_PROCESSES="1", PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        self.log = root / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.token = ""

    def launch(self) -> EmbeddedService:
        """Start it without waiting (something else can start meanwhile, e.g. the browser); see :meth:`ready`."""
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "semcoat_cli", "serve", "--port", str(self.port)],
                                            env=self.env, cwd=self.data_dir.parent, stdout=log,
                                            stderr=subprocess.STDOUT)
        return self

    def ready(self, timeout_s: float = 60, worker: bool = False) -> EmbeddedService:
        """Wait until the API answers (and /health sees its worker, with ``worker``: that takes Celery some 10-30 s
        here, and a batch submitted before simply waits in the queue); read the token it made."""
        assert self.process is not None, "launch() first"
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, f"semcoat serve not ready after {timeout_s} s:\n{self.log.read_text()}"
            try:
                health = httpx.get(f"{self.url}/api/v1/health", timeout=2).json()
                if health["workers"] >= 1 or not worker:
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        self.token = (self.data_dir / "token").read_text().strip()
        return self

    def stop(self) -> None:
        """SIGTERM (it stops its Redis and worker), SIGKILL after 30 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def api(self) -> httpx.Client:
        """The JSON API with the service's token."""
        return httpx.Client(base_url=f"{self.url}/api/v1", headers={"Authorization": f"Bearer {self.token}"},
                            timeout=30)

    def submit(self, spec: dict[str, Any]) -> str:
        """POST a local batch; its id."""
        with self.api() as http:
            answer = http.post("/batches", json={"spec": spec, "backend": "local"})
        assert answer.status_code == 202, answer.text
        batch_id: str = answer.json()["id"]
        return batch_id

    def wait(self, batch_id: str, timeout_s: float) -> dict[str, Any]:
        """Poll the batch until it ends; fail with the service's log after ``timeout_s``."""
        with self.api() as http:
            def ended() -> dict[str, Any] | None:
                batch: dict[str, Any] = http.get(f"/batches/{batch_id}").json()
                return batch if batch["state"] in FINAL else None

            result: dict[str, Any] = wait_for(ended, timeout_s, f"batch {batch_id} to end", 0.25)
        return result
