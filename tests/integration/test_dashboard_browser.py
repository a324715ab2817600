"""The dashboard in headless Chromium against a real ``semcoat serve`` (embedded default, rendering with its local
worker): signing in, the overview's progress advancing while a batch renders (no reload), the batch page's
thumbnails, legend and truth, a running training's progress bar and curves updating by themselves (no reload), no
console error on any page (script errors, failed loads and Content-Security-Policy refusals all land there), no data
without a valid token, hostile strings shown as text."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from render_service.db.models import Batch, Training
from render_service.db.session import Database
from render_service.store import create_batch
from render_service.tokens import owner_of
from render_service.training_progress import fold_window, with_source
from render_service.training_store import create_training
from semcoat import pngio
from semcoat.batch import BatchSpec
from semcoat.dataset import DatasetInfo, DatasetWriter
from semcoat.measurements import MEASUREMENT_NAMES, YES_NO_NAMES
from tests.integration.dashboard_browser import (
    EmbeddedService,
    chromium,
    console_errors,
    sign_in,
    small_batch,
    wait_for,
)
from tests.render_service.api.test_dashboard_curves import METRICS
from tests.render_service.test_training_progress import DEMO_LOG, window

pytestmark = pytest.mark.integration
COUNT = 5
HOSTILE = "<img src=x id=injected onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedService]:
    embedded = EmbeddedService(tmp_path_factory.mktemp("dashboard")).launch()
    yield embedded
    embedded.stop()


@pytest.fixture(scope="module")
def browser(launched: EmbeddedService, tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    driver = chromium(tmp_path_factory.mktemp("chromium-profile"))  # while the service starts
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def service(launched: EmbeddedService, browser: webdriver.Chrome) -> EmbeddedService:
    return launched.ready()


@pytest.fixture()
def fresh(browser: webdriver.Chrome, service: EmbeddedService) -> webdriver.Chrome:
    """The browser signed out, its console read empty."""
    browser.get(service.url + "/")
    browser.delete_all_cookies()
    console_errors(browser)
    return browser


def _progress(driver: webdriver.Chrome, batch_id: str) -> tuple[int, str, bool]:
    """(progress bar value, state text, whether the page was loaded only once) of a batch's overview row."""
    value, state, marked = driver.execute_script(
        "const row = document.querySelector(`tr[data-key='${arguments[0]}']`);"
        "return row ? [row.querySelector('progress').value, row.querySelector('[data-text=state]').textContent,"
        " window.notReloaded === true] : [-1, '', window.notReloaded === true];", batch_id)
    return int(value), str(state), bool(marked)


def _stored_batch(service: EmbeddedService, name: str, text: str | None = None) -> str:
    """A failed batch written into the service's own database (the API refuses names such as HOSTILE; a database
    edited by hand or an error quoting a log need not), with ``text`` as its error and in one sample's truth."""
    database = Database(f"sqlite:///{service.data_dir / 'semcoat.db'}")
    try:
        with database.session() as session:
            owner = owner_of(session, service.token)
            assert owner is not None
            batch: Batch = create_batch(session, owner, BatchSpec(name="placeholder", count=1), "local", {}, 1)
            batch.name, batch.state = name, "failed"
            batch.error = None if text is None else f"task 0 failed: {text}"
            batch_id = batch.id
    finally:
        database.dispose()
    if text is not None:
        info = DatasetInfo(name="x", pixel_size_um=0.5, image_width_px=8, image_height_px=8, count=1, seed=1)
        truth: dict[str, object] = {n: False if n in YES_NO_NAMES else 1.0 for n in MEASUREMENT_NAMES}
        truth[MEASUREMENT_NAMES[0]] = text
        DatasetWriter.open(service.data_dir / "batches" / batch_id, info).write_sample(
            "000000", pngio.encode_grey(8, 8, 8, bytes(range(64))), pngio.encode_grey(8, 8, 8, bytes([1]) * 64),
            {"id": "000000", "index": 0, "params": {}, "truth": truth})
    return batch_id


def _polled(driver: webdriver.Chrome) -> None:
    """Wait for the page's script to have polled once (it rewrites the page from the JSON)."""
    wait_for(lambda: driver.find_element(By.ID, "status").text.startswith("Updated"), 10, "a poll")


@pytest.mark.timeout(60)
def test_hostile_strings_render_as_text(fresh: webdriver.Chrome, service: EmbeddedService) -> None:
    driver = fresh
    batch_id = _stored_batch(service, HOSTILE, HOSTILE)
    sign_in(driver, service.url, service.token)
    row = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, f"tr[data-key='{batch_id}']"), 10, "the row")[0]
    assert HOSTILE in row.find_element(By.CSS_SELECTOR, "a").text
    assert HOSTILE in row.find_element(By.CSS_SELECTOR, ".error").text
    for path in ("/", f"/ui/batches/{batch_id}"):
        driver.get(service.url + path)
        _polled(driver)
        assert driver.title != "pwned" and not driver.find_elements(By.ID, "injected")
    assert HOSTILE in driver.find_element(By.CSS_SELECTOR, "#batch h1").text
    assert HOSTILE[:39] in driver.find_element(By.CSS_SELECTOR, "#truth-rows td:nth-child(2)").text
    assert console_errors(driver) == []


@pytest.mark.timeout(60)
def test_a_wrong_or_missing_token_gets_the_signin_page_and_no_data(fresh: webdriver.Chrome,
                                                                   service: EmbeddedService) -> None:
    driver = fresh
    batch_id = _stored_batch(service, "dash-secret")
    driver.get(service.url + "/")
    assert driver.find_elements(By.ID, "token") and "dash-secret" not in driver.page_source
    assert console_errors(driver) == []
    driver.find_element(By.ID, "token").send_keys("sct_not-a-real-token")
    driver.find_element(By.CSS_SELECTOR, "form.signin button").click()
    alert = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "p.error[role=alert]"), 10, "the refusal")[0]
    assert "unknown or revoked" in alert.text
    assert driver.get_cookies() == [] and "dash-secret" not in driver.page_source
    driver.add_cookie({"name": "semcoat_dashboard", "value": "sct_" + "A" * 43, "path": "/"})
    for path in ("/", f"/ui/batches/{batch_id}"):
        driver.get(service.url + path)
        assert driver.current_url == service.url + "/" and driver.find_elements(By.ID, "token")
        assert "dash-secret" not in driver.page_source and batch_id not in driver.page_source
    status = driver.execute_async_script("const done = arguments[arguments.length - 1];"
                                         "fetch('/ui/data/overview').then(r => done(r.status));")
    assert status == 401


@pytest.mark.timeout(60)
def test_a_training_page_draws_its_curves(fresh: webdriver.Chrome, service: EmbeddedService) -> None:
    driver = fresh
    database = Database(f"sqlite:///{service.data_dir / 'semcoat.db'}")
    try:
        with database.session() as session:
            owner = owner_of(session, service.token)
            assert owner is not None
            training = create_training(session, owner, "unet-dash", "local", "unet", "model: {}\n",
                                       [{"path": "/data/p91", "batch_id": None}], {})
            training.state = "succeeded"
            training_id = training.id
    finally:
        database.dispose()
    folder = service.data_dir / "trainings" / training_id
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text(METRICS)
    sign_in(driver, service.url, service.token)
    driver.find_element(By.CSS_SELECTOR, f"#training-rows tr[data-key='{training_id}'] a").click()
    wait_for(lambda: driver.find_elements(By.ID, "training"), 10, "the training page")
    assert driver.find_element(By.CSS_SELECTOR, "#training h1").text == "unet-dash"
    assert len(driver.find_elements(By.CSS_SELECTOR, "#curves svg.chart")) == 2
    assert len(driver.find_elements(By.CSS_SELECTOR, "#curves polyline")) == 2 + 3
    _polled(driver)
    assert console_errors(driver) == []


def _points(driver: webdriver.Chrome) -> int:
    """How many points the training page's charts draw (polyline vertices and single-point circles)."""
    return int(driver.execute_script(
        "return [...document.querySelectorAll('#curves polyline')]"
        ".reduce((n, l) => n + l.getAttribute('points').trim().split(/\\s+/).length, 0);"))


@pytest.mark.timeout(60)
def test_a_running_trainings_progress_and_curves_update_by_themselves(fresh: webdriver.Chrome,
                                                                      service: EmbeddedService) -> None:
    driver = fresh
    text = DEMO_LOG.read_text()
    first_epoch = text[:text.index("1,,39,")]
    database = Database(f"sqlite:///{service.data_dir / 'semcoat.db'}")

    def worker_read(log_text: str) -> None:  # what a Slurm worker does: the live copy, then the record
        live.write_text(log_text)
        with database.session() as session:
            row = session.get(Training, training_id)
            assert row is not None
            row.progress = with_source(fold_window(row.progress, window(log_text)), time.time(), len(log_text), 1.0)

    try:
        with database.session() as session:
            owner = owner_of(session, service.token)
            assert owner is not None
            # backend 'slurm': this embedded service has no cluster, so its worker leaves the training alone
            training = create_training(session, owner, "unet-live", "slurm", "unet", "trainer: {max_steps: 400}\n",
                                       [{"path": "/data/p91", "batch_id": None}], {})
            training.state, training.job_state, training.job_id = "running", "running", 4242
            training.started_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)
            training_id = training.id
        live = service.data_dir / "work" / "trainings" / training_id / "live" / "metrics.csv"
        live.parent.mkdir(parents=True)
        worker_read(first_epoch)
        sign_in(driver, service.url, service.token)
        row = f"#training-rows tr[data-key='{training_id}']"
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, row), 10, "the training's row")
        assert driver.find_element(By.CSS_SELECTOR, f"{row} progress").get_attribute("value") == "82"  # 33 steps of 400
        driver.execute_script("window.notReloaded = true;")
        worker_read(text)
        wait_for(lambda: driver.find_element(By.CSS_SELECTOR, f"{row} progress").get_attribute("value") == "185",
                 10, "the overview's bar to move")
        assert "loss 1.865" in driver.find_element(By.CSS_SELECTOR, f"{row} .scores").text
        assert driver.execute_script("return window.notReloaded === true;")

        worker_read(first_epoch)
        driver.find_element(By.CSS_SELECTOR, f"{row} a").click()
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#curves svg.chart"), 10, "the curves")
        driver.execute_script("window.notReloaded = true;")
        before = _points(driver)
        assert "step 32 / 400" in driver.find_element(By.CSS_SELECTOR, "#training .progress-text").text
        worker_read(text)
        wait_for(lambda: _points(driver) > before, 15, "the curves to grow")
        wait_for(lambda: "step 73 / 400" in driver.find_element(By.CSS_SELECTOR, "#training .progress-text").text,
                 10, "the progress text")
        assert driver.execute_script("return window.notReloaded === true;")
        assert "pore 0.679" in driver.find_element(By.CSS_SELECTOR, "#training [data-text=classes]").text
        assert console_errors(driver) == []
    finally:
        database.dispose()


@pytest.mark.timeout(180)
def test_progress_advances_on_the_overview_and_the_batch_page_shows_its_images(
        fresh: webdriver.Chrome, service: EmbeddedService, tmp_path: Path) -> None:
    driver = fresh
    sign_in(driver, service.url, service.token)
    driver.execute_script("window.notReloaded = true;")
    batch_id = service.submit(small_batch("dash-progress", COUNT, images_per_task=1))
    seen: list[int] = []
    deadline = time.monotonic() + 150
    while True:
        value, state, not_reloaded = _progress(driver, batch_id)
        assert not_reloaded, "the overview reloaded itself; it should only poll"
        if value >= 0 and (not seen or seen[-1] != value):
            seen.append(value)
        if state in ("succeeded", "failed", "cancelled"):
            break
        assert time.monotonic() < deadline, f"batch {batch_id} still {state!r} after 150 s; progress seen {seen}"
        time.sleep(0.2)
    assert state == "succeeded", service.log.read_text()[-3000:]
    assert seen == sorted(seen) and seen[-1] == COUNT, seen
    assert any(0 < v < COUNT for v in seen), f"no intermediate progress shown: {seen}"
    driver.save_screenshot(str(tmp_path / "overview.png"))
    assert console_errors(driver) == []

    driver.find_element(By.CSS_SELECTOR, f"tr[data-key='{batch_id}'] a").click()  # a real navigation
    wait_for(lambda: driver.find_elements(By.ID, "samples"), 10, "the batch page")
    assert driver.find_element(By.CSS_SELECTOR, "#batch h1").text == "dash-progress"

    def all_loaded() -> bool:
        return bool(driver.execute_script(
            "const imgs = [...document.querySelectorAll('#samples img')];"
            "return imgs.length === arguments[0] && imgs.every(i => i.complete && i.naturalWidth > 0);", COUNT))

    wait_for(all_loaded, 60, f"{COUNT} thumbnails")
    sizes = driver.execute_script("return [...document.querySelectorAll('#samples img')].map(i => i.naturalWidth);")
    assert sizes == [320] * COUNT  # 320x256 fits 320 px: shown at full size
    truth_rows = driver.find_elements(By.CSS_SELECTOR, "#truth-rows tr")
    assert len(truth_rows) == COUNT
    thickness = float(truth_rows[0].find_elements(By.TAG_NAME, "td")[1].text)
    assert 1 < thickness < 200  # the Fe2Al5 thickness of the rendered image, in um
    assert len(driver.find_elements(By.CSS_SELECTOR, "ul.legend li")) >= 5
    assert "succeeded" in driver.find_element(By.CSS_SELECTOR, "#batch .state").text
    driver.save_screenshot(str(tmp_path / "batch.png"))

    driver.find_element(By.ID, "show-masks").click()
    first = driver.find_element(By.CSS_SELECTOR, "#samples img")
    wait_for(lambda: (first.get_attribute("src") or "").endswith("/image.png"), 5, "the plain image")
    wait_for(lambda: driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0;", first),
             20, "the plain image to load")
    assert console_errors(driver) == []
