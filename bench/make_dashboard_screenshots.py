"""The README's pictures of the web dashboard, taken from a real ``semcoat serve`` (embedded default) in headless
Chromium: ``docs/dashboard_overview.png`` (a finished batch, one rendering, one cancelled), ``docs/dashboard_batch.png``
(the finished batch's thumbnails with mask overlays, legend and truth) and, where the service has trainings,
``docs/dashboard_training.png`` (a short U-Net training on that batch). Prints how long each step took.

    .venv/bin/python bench/make_dashboard_screenshots.py [--out docs] [--count 8]

Renders two small preset batches (512x384, the preset's field of view) with the local worker: a few minutes here.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

from semcoat.presets import preset_batch  # noqa: E402
from tests.integration.dashboard_browser import EmbeddedService, chromium, sign_in, wait_for  # noqa: E402

WIDTH_PX = 1280


def preset_spec(name: str, preset: str, count: int, seed: int) -> dict[str, Any]:
    """A preset batch at half the preset's pixels over the same field of view, one render task."""
    batch = preset_batch(preset, count=count, seed=seed)
    batch.name = name
    imaging = batch.base.imaging
    imaging.pixel_size_um *= imaging.width_px / 512
    imaging.width_px, imaging.height_px = 512, 384
    imaging.data_bar_height_px = max(16, imaging.data_bar_height_px // 2)
    batch.render.images_per_task = count
    batch.validate()
    return batch.to_dict()


def train(service: EmbeddedService, batch_id: str) -> str:
    """A short U-Net training on the batch through the API (local backend): 60 steps of 128 px crops in full
    precision (bf16 autocast is slow on CPUs without bf16 units), validated every 5 steps, so the curves have some
    points. Returns its id once it has ended."""
    body = {"name": "unet-p91-20h", "dataset": {"batches": [batch_id]}, "config": "unet", "backend": "local",
            "overrides": {"trainer.max_steps": 60, "trainer.log_every_n_steps": 5, "trainer.precision": "32-true",
                          "data.crop_px": 128, "data.crops_per_epoch": 40, "data.num_workers": 0}}
    with service.api() as http:
        answer = http.post("/trainings", json=body)
        assert answer.status_code == 202, answer.text
        training_id: str = answer.json()["id"]
        final = wait_for(lambda: (t := http.get(f"/trainings/{training_id}").json())["state"] in
                         ("succeeded", "failed", "cancelled") and t, 1800, "the training to end", 1.0)
    assert final["state"] == "succeeded", final
    return training_id


def full_page(driver: webdriver.Chrome, path: Path) -> None:
    """A screenshot of the whole page (the window made as tall as the document)."""
    height, chrome = driver.execute_script(
        "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight];")
    driver.set_window_size(WIDTH_PX, min(max(int(height), 600), 4000) + int(chrome))
    time.sleep(0.5)
    driver.save_screenshot(str(path))
    driver.set_window_size(WIDTH_PX, 900)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--count", type=int, default=8, help="images of the finished batch")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="semcoat-dashboard-") as tmp:
        service = EmbeddedService(Path(tmp)).launch()
        driver = chromium(Path(tmp) / "profile")
        try:
            service.ready(worker=True)
            driver.set_window_size(WIDTH_PX, 900)
            print(f"service and browser up: {time.monotonic() - started:.1f} s")
            done = service.submit(preset_spec("p91-20h-650C", "20h_650C", args.count, seed=3))
            service.wait(done, timeout_s=1800)
            print(f"batch of {args.count} rendered: {time.monotonic() - started:.1f} s")
            with service.api() as http:
                has_trainings = "/api/v1/trainings" in http.get(f"{service.url}/openapi.json").json()["paths"]
            training = train(service, done) if has_trainings else None
            print(f"training done: {time.monotonic() - started:.1f} s" if training else
                  "this service has no /api/v1/trainings: no training page to show")
            cancelled = service.submit(preset_spec("p91-thin-slurry-trial", "thin_slurry", 4, seed=5))
            with service.api() as http:
                http.delete(f"/batches/{cancelled}")
            running = service.submit(preset_spec("p91-5h-650C", "5h_650C", 3 * args.count, seed=4))
            sign_in(driver, service.url, service.token)
            with service.api() as http:
                wait_for(lambda: http.get(f"/batches/{running}").json()["images_done"] >= 3, 600,
                         "the second batch to be under way", 0.5)
            driver.get(service.url + "/")
            wait_for(lambda: driver.find_element(By.ID, "status").text.startswith("Updated"), 10, "a poll")
            full_page(driver, args.out / "dashboard_overview.png")
            driver.get(f"{service.url}/ui/batches/{done}")
            wait_for(lambda: driver.execute_script(
                "const imgs = [...document.querySelectorAll('#samples img')];"
                "return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0);"), 120, "thumbnails")
            full_page(driver, args.out / "dashboard_batch.png")
            with service.api() as http:
                http.delete(f"/batches/{running}")
            if training is not None:
                driver.get(f"{service.url}/ui/trainings/{training}")
                wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#curves polyline"), 30, "the curves")
                full_page(driver, args.out / "dashboard_training.png")
            print(f"screenshots in {args.out}: {time.monotonic() - started:.1f} s")
        finally:
            driver.quit()
            service.stop()


if __name__ == "__main__":
    main()
