"""The dashboard's trainings: rows on the overview (the user's own only), a training's page with its loss and Dice
curves drawn from the collected ``metrics.csv`` (classes in their table colours), escaped names and errors, no data
without a token."""

from __future__ import annotations

import html
import re
from pathlib import Path

from render_service.db.models import Training
from render_service.training_store import create_training
from semcoat.classes import CLASSES, PORE
from tests.render_service.api.conftest import Api
from tests.render_service.api.test_dashboard import HOSTILE, sign_in
from tests.render_service.api.test_dashboard_curves import METRICS


def add_training(api: Api, owner: str = "alice", name: str = "unet-p91", state: str = "running",
                 error: str | None = None) -> str:
    with api.database.session() as session:
        training: Training = create_training(session, owner, name, "local", "unet", "model: {}\n",
                                             [{"path": "/data/p91", "batch_id": None}], {})
        training.state, training.error = state, error
        training_id: str = training.id
    return training_id


def test_trainings_show_on_the_overview_for_their_owner_only(api: Api) -> None:
    mine = add_training(api, name="unet-p91")
    theirs = add_training(api, owner="bob", name="bobs-unet")
    sign_in(api)
    page = api.client.get("/").text
    assert "<h1>Trainings</h1>" in page and f'href="/ui/trainings/{mine}"' in page and "unet-p91" in page
    assert theirs not in page and "bobs-unet" not in page
    data = api.client.get("/ui/data/overview").json()
    assert [t["id"] for t in data["trainings"]] == [mine]
    assert data["trainings"][0]["summary"] == "unet, 1 dataset, 1 node x 1 CPU process"
    assert api.client.get(f"/ui/trainings/{theirs}").status_code == 404
    assert api.client.get(f"/ui/data/trainings/{theirs}").status_code == 404


def test_a_training_page_draws_its_curves_once_the_metrics_are_collected(api: Api) -> None:
    training_id = add_training(api, state="running")
    sign_in(api)
    page = api.client.get(f"/ui/trainings/{training_id}").text
    assert "The curves appear when the training has finished" in page and "<polyline" not in page
    assert api.client.get(f"/ui/data/trainings/{training_id}").json()["has_curves"] is False
    folder: Path = api.settings.trainings_dir / training_id
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text(METRICS)
    with api.database.session() as session:
        row = session.get(Training, training_id)
        assert row is not None
        row.state = "succeeded"
    page = api.client.get(f"/ui/trainings/{training_id}").text
    assert page.count("<polyline") == 2 + 3 and 'id="curves"' in page
    assert "Validation Dice" in page and CLASSES[PORE].label in page
    data = api.client.get(f"/ui/data/trainings/{training_id}").json()
    assert data["has_curves"] is True and data["training"]["final"] is True


def test_training_strings_are_escaped_and_nothing_shows_signed_out(api: Api) -> None:
    training_id = add_training(api, name=HOSTILE, state="failed", error=f"exit 1: {HOSTILE}")
    folder = api.settings.trainings_dir / training_id
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_bytes(b"\xff\xfe not text")
    assert api.client.get(f"/ui/trainings/{training_id}", follow_redirects=False).status_code == 303
    assert api.client.get(f"/ui/data/trainings/{training_id}").status_code == 401
    sign_in(api)
    for path in ("/", f"/ui/trainings/{training_id}"):
        page = api.client.get(path)
        assert page.status_code == 200 and "<script>alert" not in page.text and "&lt;script&gt;" in page.text
        markup = page.text.replace(html.escape(HOSTILE), "")  # the text may say onerror=; no attribute may
        assert re.findall(r"\son[a-z]+\s*=", markup) == [] and " style=" not in markup
    assert "The curves appear" in api.client.get(f"/ui/trainings/{training_id}").text  # undecodable CSV: none
