"""Batch routes over a temp SQLite database and a fake task sender: submit, list, show, cancel, auth and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from render_service.db.models import Batch
from render_service.queue import CANCEL_BATCH, SUBMIT_BATCH
from render_service.tokens import revoke_tokens
from tests.render_service.api.conftest import Api, make_api

URL = "/api/v1/batches"


def _submit(api: Api, spec: dict[str, object] | None = None, **body: object) -> dict[str, object]:
    response = api.client.post(URL, json={"spec": spec or {"name": "p91", "count": 5}, **body}, headers=api.auth())
    assert response.status_code == 202, response.text
    result: dict[str, object] = response.json()
    return result


def test_submit_stores_a_queued_batch_and_enqueues_its_submission(api: Api) -> None:
    batch = _submit(api, {"name": "p91", "count": 5, "render": {"images_per_task": 2}})
    assert (batch["state"], batch["backend"], batch["count"], batch["images_done"]) == ("queued", "local", 5, 0)
    assert batch["tasks"] == {"total": 3, "pending": 3, "running": 0, "done": 0, "failed": 0, "retried": 0}
    assert api.sender.sent == [(SUBMIT_BATCH, (batch["id"],))]
    with api.database.session() as session:
        stored = session.get(Batch, batch["id"])
        assert stored is not None and stored.owner == "alice" and stored.images_per_task == 2


def test_slurm_images_per_task_comes_from_the_option_then_the_admin(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    key, known = tmp_path / "key", tmp_path / "known_hosts"
    api = make_api(tmp_path, monkeypatch, ssh_host="127.0.0.1", ssh_user="u", ssh_key=key, ssh_known_hosts=known,
                   cluster_home="/home/u", slurm_images_per_task=4)
    spec = {"name": "s", "count": 10, "render": {"images_per_task": 1}}
    assert _submit(api, spec, backend="slurm")["tasks"]["total"] == 3  # type: ignore[index]
    chosen = _submit(api, spec, backend="slurm", slurm={"images_per_task": 5, "partition": "debug"})
    assert chosen["tasks"]["total"] == 2  # type: ignore[index]
    with api.database.session() as session:
        stored = session.get(Batch, chosen["id"])
        assert stored is not None and stored.options == {"images_per_task": 5, "partition": "debug"}


def test_an_invalid_spec_names_every_bad_field_with_the_cores_message(api: Api) -> None:
    response = api.client.post(URL, headers=api.auth(), json={"spec": {
        "name": "bad name", "count": 0, "base": {"pores": {"area_fraction_pct": 500}}, "colour": 1}})
    assert response.status_code == 422
    problems = {tuple(p["loc"]): p for p in response.json()["detail"]}
    assert {("body", "spec", "name"), ("body", "spec", "count"), ("body", "spec", "colour"),
            ("body", "spec", "base", "pores", "area_fraction_pct")} <= set(problems)
    assert "unknown field" in problems[("body", "spec", "colour")]["msg"]
    assert problems[("body", "spec", "count")]["value"] == "0"
    assert api.sender.sent == []


@pytest.mark.parametrize(("body", "loc", "words"), [
    ({"spec": {"name": "big", "count": 10_001}}, ["body", "spec", "count"], "at most 10000 images"),
    ({"spec": {"name": "s"}, "backend": "slurm"}, ["body", "backend"], "no cluster configured"),
    ({"spec": {"name": "s"}, "backend": "mars"}, ["body", "backend"], "local"),
    ({"spec": {"name": "s"}, "slurm": {"partition": "a;b"}}, ["body", "slurm", "partition"], "partition"),
    ({"spec": {"name": "s"}, "slurm": {"time_limit": "$(touch owned)"}}, ["body", "slurm", "time_limit"], "time"),
    ({"spec": {"name": "s"}, "slurm": {"cpus_per_task": 2}}, ["body", "slurm"], "backend 'slurm' only"),
    ({"spec": [1, 2]}, ["body", "spec"], "dictionary"),
    ({}, ["body", "spec"], "required"),
])
def test_requests_the_service_refuses_are_422_naming_the_field(api: Api, body: dict[str, object], loc: list[str],
                                                               words: str) -> None:
    response = api.client.post(URL, json=body, headers=api.auth())
    assert response.status_code == 422, response.text
    matching = [p for p in response.json()["detail"] if p["loc"] == loc]
    assert matching and words in matching[0]["msg"], response.json()
    assert api.sender.sent == []


def test_malformed_json_wrong_type_and_oversize_bodies_are_4xx_with_a_detail(api: Api) -> None:
    json_header = {**api.auth(), "Content-Type": "application/json"}
    bad = api.client.post(URL, content=b'{"spec": {', headers=json_header)
    assert bad.status_code == 422 and "not valid JSON" in bad.json()["detail"][0]["msg"]
    text = api.client.post(URL, content=b"spec", headers={**api.auth(), "Content-Type": "text/plain"})
    assert text.status_code == 415 and "application/json" in text.json()["detail"]
    huge = api.client.post(URL, content=b" " * 1_000_001, headers=json_header)
    assert huge.status_code == 413 and "1000000 bytes" in huge.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is found by counting
        yield b'{"spec": {"name": "'
        for _ in range(20):
            yield b"x" * 100_000

    streamed = api.client.post(URL, content=chunks(), headers=json_header)
    assert streamed.status_code == 413
    assert api.sender.sent == []


def test_list_is_the_callers_own_newest_first_with_paging_and_state(api: Api) -> None:
    ids = [_submit(api, {"name": f"b{i}", "count": 1})["id"] for i in range(3)]
    bob = api.new_token("bob")
    api.client.post(URL, json={"spec": {"name": "bobs", "count": 1}}, headers=api.auth(bob))
    page = api.client.get(URL, params={"limit": 2, "offset": 0}, headers=api.auth()).json()
    assert page["total"] == 3 and [b["id"] for b in page["items"]] == ids[::-1][:2]
    assert api.client.get(URL, params={"offset": 2}, headers=api.auth()).json()["items"][0]["id"] == ids[0]
    assert api.client.get(URL, params={"state": "running"}, headers=api.auth()).json()["total"] == 0
    assert api.client.get(URL, params={"state": "queued"}, headers=api.auth()).json()["total"] == 3
    for params in ({"limit": 0}, {"limit": 201}, {"offset": -1}, {"state": "done"}):
        assert api.client.get(URL, params=params, headers=api.auth()).status_code == 422, params


def test_another_users_batch_and_an_unknown_one_are_404(api: Api) -> None:
    batch_id = _submit(api)["id"]
    bob = api.auth(api.new_token("bob"))
    for path in (f"{URL}/{batch_id}", f"{URL}/{batch_id}/files", f"{URL}/{batch_id}/archive",
                 f"{URL}/{batch_id}/files/dataset.json"):
        assert api.client.get(path, headers=bob).status_code == 404
    assert api.client.delete(f"{URL}/{batch_id}", headers=bob).status_code == 404
    unknown = api.client.get(f"{URL}/0000000000000000", headers=api.auth())
    assert unknown.status_code == 404 and "no batch of yours" in unknown.json()["detail"]
    assert api.client.get(f"{URL}/{batch_id}", headers=api.auth()).status_code == 200


def test_no_wrong_or_revoked_token_is_401_with_a_challenge(api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer sct_wrong"}, {"Authorization": "Basic YTpi"},
                    {"Authorization": "Bearer " + "x" * 5000}):
        response = api.client.get(URL, headers=headers)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer", headers
        assert "token" in response.json()["detail"]
    with api.database.session() as session:
        revoke_tokens(session, owner="alice")
    revoked = api.client.get(URL, headers=api.auth())
    assert revoked.status_code == 401 and api.token not in revoked.text


def test_cancel_marks_the_batch_and_enqueues_the_cancel_but_leaves_a_final_batch(api: Api) -> None:
    batch_id = _submit(api)["id"]
    response = api.client.delete(f"{URL}/{batch_id}", headers=api.auth())
    assert response.status_code == 202 and response.json()["id"] == batch_id
    assert api.sender.sent[-1] == (CANCEL_BATCH, (batch_id,))
    done_id = _submit(api)["id"]
    with api.database.session() as session:
        assert session.get(Batch, batch_id).cancel_requested  # type: ignore[union-attr]
        session.get(Batch, done_id).state = "succeeded"  # type: ignore[union-attr]
    sent = len(api.sender.sent)
    final = api.client.delete(f"{URL}/{done_id}", headers=api.auth())
    assert final.status_code == 202 and final.json()["state"] == "succeeded" and len(api.sender.sent) == sent
    with api.database.session() as session:
        assert not session.get(Batch, done_id).cancel_requested  # type: ignore[union-attr]


def test_a_broker_that_is_down_gives_503_and_leaves_no_batch_queued(api: Api) -> None:
    api.sender.fail = True
    response = api.client.post(URL, json={"spec": {"name": "p", "count": 2}}, headers=api.auth())
    assert response.status_code == 503 and "Redis" in response.json()["detail"]
    page = api.client.get(URL, headers=api.auth()).json()
    assert [(b["state"], "task queue" in b["error"]) for b in page["items"]] == [("failed", True)]


def test_unknown_paths_and_methods_say_where_the_api_is(api: Api) -> None:
    missing = api.client.get("/api/v2/batches")
    assert missing.status_code == 404 and "/api/v1" in missing.json()["detail"]
    assert api.client.put(URL, headers=api.auth()).status_code == 405
