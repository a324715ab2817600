"""The web dashboard's routes: signing in with a token (cookie HttpOnly + SameSite=Strict, refused from another
site), no data without a valid token, another user's batches invisible, every user string escaped, a strict
Content-Security-Policy and no inline script or style, thumbnails and truth of a batch, the JSON API unchanged."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from render_service.db.models import Batch
from semcoat import pngio
from semcoat.classes import CLASSES, FE2AL5, SUBSTRATE
from semcoat.dataset import sample_id
from semcoat.measurements import MEASUREMENTS
from semcoat.predictions import OVERLAY_ALPHA
from tests.render_service.api.conftest import Api
from tests.render_service.api.test_files import write_dataset

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&amp;"


def sign_in(api: Api, token: str | None = None) -> None:
    """Sign the test client's cookie jar in through the form."""
    answer = api.client.post("/ui/signin", data={"token": token or api.token}, follow_redirects=False)
    assert answer.status_code == 303, answer.text


def submit(api: Api, name: str = "p91", token: str | None = None) -> str:
    answer = api.client.post("/api/v1/batches", json={"spec": {"name": name, "count": 3}},
                             headers=api.auth(token))
    assert answer.status_code == 202, answer.text
    batch_id: str = answer.json()["id"]
    return batch_id


def set_batch(api: Api, batch_id: str, **fields: object) -> None:
    """Change a stored batch as a worker would (or a database edited by hand: names the API would refuse)."""
    with api.database.session() as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        for key, value in fields.items():
            setattr(batch, key, value)


def test_without_a_token_the_front_page_is_the_signin_form_and_shows_no_data(api: Api) -> None:
    submit(api, "secret-batch")
    for cookies in ({}, {"semcoat_dashboard": "sct_" + "x" * 43}, {"semcoat_dashboard": "not-a-token"}):
        api.client.cookies.clear()
        api.client.cookies.update(cookies)
        page = api.client.get("/")
        assert page.status_code == 200 and 'action="/ui/signin"' in page.text
        assert "secret-batch" not in page.text
        data = api.client.get("/ui/data/overview")
        assert data.status_code == 401 and "sign in" in data.json()["detail"]
        deeper = api.client.get("/ui/batches/0123456789abcdef", follow_redirects=False)
        assert deeper.status_code == 303 and deeper.headers["location"] == "/"


def test_signin_sets_an_httponly_strict_cookie_and_a_wrong_token_is_refused(api: Api) -> None:
    wrong = api.client.post("/ui/signin", data={"token": "sct_wrong"}, follow_redirects=False)
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.text and "set-cookie" not in wrong.headers
    empty = api.client.post("/ui/signin", content=b"", follow_redirects=False,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert empty.status_code == 401
    as_json = api.client.post("/ui/signin", json={"token": api.token}, follow_redirects=False)
    assert as_json.status_code == 401  # only the form signs in
    good = api.client.post("/ui/signin", data={"token": f"  {api.token}\n"}, follow_redirects=False)
    assert good.status_code == 303 and good.headers["location"] == "/"
    cookie = good.headers["set-cookie"]
    assert cookie.startswith(f"semcoat_dashboard={api.token};")
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Path=/" in cookie
    assert "Max-Age" not in cookie and "expires" not in cookie.lower()  # a session cookie
    assert "Secure" not in cookie  # plain http here; https sets it
    page = api.client.get("/")
    assert 'action="/ui/signout"' in page.text and ">alice<" in page.text
    out = api.client.post("/ui/signout", follow_redirects=False)
    assert out.status_code == 303 and 'semcoat_dashboard=""' in out.headers["set-cookie"]


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Origin": "null"},
                                     {"Origin": "http://testserver.evil.example"},
                                     {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                                     {"Sec-Fetch-Site": "cross-site", "Origin": "http://testserver"}])
def test_a_signin_or_signout_posted_from_another_site_is_refused(api: Api, headers: dict[str, str]) -> None:
    answer = api.client.post("/ui/signin", data={"token": api.token}, headers=headers, follow_redirects=False)
    assert answer.status_code == 403 and "set-cookie" not in answer.headers
    sign_in(api)
    out = api.client.post("/ui/signout", headers=headers, follow_redirects=False)
    assert out.status_code == 403 and "set-cookie" not in out.headers


@pytest.mark.parametrize("headers", [
    {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
    {"Origin": "https://testserver"},  # behind a TLS proxy the service sees http
    {"Origin": "https://dashboard.example", "Sec-Fetch-Site": "same-origin"},  # a proxy that rewrote Host
    {}])  # not a browser: curl
def test_signin_from_the_dashboards_own_page_is_accepted(api: Api, headers: dict[str, str]) -> None:
    answer = api.client.post("/ui/signin", data={"token": api.token}, follow_redirects=False, headers=headers)
    assert answer.status_code == 303


def test_the_overview_shows_the_users_batches_only(api: Api) -> None:
    mine = submit(api, "mine-p91")
    theirs = submit(api, "bobs-batch", token=api.new_token("bob"))
    set_batch(api, mine, state="running", images_done=2)
    sign_in(api)
    page = api.client.get("/").text
    assert "mine-p91" in page and mine in page and f'href="/ui/batches/{mine}"' in page
    assert "bobs-batch" not in page and theirs not in page
    assert '<progress data-progress max="3" value="2">' in page and "2 / 3" in page
    data = api.client.get("/ui/data/overview").json()
    assert [b["id"] for b in data["batches"]] == [mine]
    assert data["batches"][0]["progress"] == "2 / 3" and data["batches"][0]["state"] == "running"
    assert api.client.get(f"/ui/batches/{theirs}").status_code == 404
    assert api.client.get(f"/ui/data/batches/{theirs}").status_code == 404
    assert api.client.get(f"/ui/thumbs/{theirs}/000000/image.png").status_code == 404


def test_a_revoked_token_signs_the_browser_out(api: Api) -> None:
    token = api.new_token("carol")
    sign_in(api, token)
    assert api.client.get("/ui/data/overview").status_code == 200
    from render_service.tokens import revoke_tokens

    with api.database.session() as session:
        assert revoke_tokens(session, owner="carol") == 1
    assert api.client.get("/ui/data/overview").status_code == 401
    assert 'action="/ui/signin"' in api.client.get("/").text


def test_user_strings_are_escaped_everywhere(api: Api) -> None:
    batch_id = submit(api)
    set_batch(api, batch_id, name=HOSTILE, state="failed", error=f"task 0 failed: {HOSTILE}")
    root = api.settings.batches_dir / batch_id
    write_dataset(root, count=1)
    meta = json.loads((root / "meta" / "000000.json").read_text())
    meta["truth"]["fe2al5_thickness_um"] = HOSTILE
    (root / "meta" / "000000.json").write_text(json.dumps(meta))
    sign_in(api)
    for path in ("/", f"/ui/batches/{batch_id}"):
        page = api.client.get(path).text
        assert "<script>alert" not in page and "<img src=x" not in page and "onerror=alert" not in page.replace(
            "onerror=alert(2)&gt;", "")
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&quot;&#x27;&amp;amp;" in page
    data = api.client.get(f"/ui/data/batches/{batch_id}").json()
    assert data["batch"]["name"] == HOSTILE  # JSON carries the text; the script sets it as text
    assert data["window"]["samples"][0]["cells"][0].startswith("<script>")


def test_pages_hold_no_inline_script_style_or_handler_and_send_a_strict_policy(api: Api) -> None:
    batch_id = submit(api)
    write_dataset(api.settings.batches_dir / batch_id, count=2)
    pages = [api.client.get("/")]
    sign_in(api)
    pages += [api.client.get("/"), api.client.get(f"/ui/batches/{batch_id}"),
              api.client.get("/ui/batches/ffffffffffffffff")]
    for page in pages:
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy and "style-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy and "unsafe" not in policy
        assert page.headers["x-content-type-options"] == "nosniff" and page.headers["cache-control"] == "no-store"
        assert re.findall(r"<script(?![^>]*\ssrc=)[^>]*>", page.text) == []
        assert re.findall(r"\son[a-z]+\s*=", page.text) == [] and " style=" not in page.text
        assert "<style" not in page.text


def test_the_batch_page_shows_state_tasks_thumbnails_legend_and_truth(api: Api) -> None:
    batch_id = submit(api, "p91-page")
    set_batch(api, batch_id, state="running", images_done=2)
    write_dataset(api.settings.batches_dir / batch_id, count=2)
    sign_in(api)
    page = api.client.get(f"/ui/batches/{batch_id}").text
    assert "p91-page" in page and "1 task: 0 done, 0 running, 1 pending" in page
    for i in range(2):
        assert f'src="/ui/thumbs/{batch_id}/{sample_id(i)}/overlay.png"' in page
    assert page.count("<tr data-key=") == 2 + 1  # two truth rows and the template's
    for c in CLASSES[1:]:
        r, g, b = c.color_rgb
        assert f'fill="rgb({r},{g},{b})"' in page and c.label in page
    for m in MEASUREMENTS:
        assert m.label in page
    assert "Images 1–2 of 2 complete." in page
    data = api.client.get(f"/ui/data/batches/{batch_id}").json()
    assert data["batch"]["done"] == 2 and data["window"]["total"] == 2
    assert data["window"]["samples"][1]["cells"][0] == "0"  # fe2al5_thickness_um 0.0 at 3 significant digits
    assert data["window"]["text"] == "Images 1–2 of 2 complete."


def test_samples_are_paged(api: Api) -> None:
    from render_service.dashboard.views import SAMPLES_PER_PAGE

    batch_id = submit(api)
    write_dataset(api.settings.batches_dir / batch_id, count=SAMPLES_PER_PAGE + 2, width=8, height=8)
    sign_in(api)
    first = api.client.get(f"/ui/data/batches/{batch_id}").json()["window"]
    assert len(first["samples"]) == SAMPLES_PER_PAGE and first["total"] == SAMPLES_PER_PAGE + 2
    second = api.client.get(f"/ui/data/batches/{batch_id}?start={SAMPLES_PER_PAGE}").json()["window"]
    assert [s["id"] for s in second["samples"]] == [sample_id(SAMPLES_PER_PAGE), sample_id(SAMPLES_PER_PAGE + 1)]
    page = api.client.get(f"/ui/batches/{batch_id}").text
    assert f"?start={SAMPLES_PER_PAGE}\">next" in page
    assert api.client.get(f"/ui/batches/{batch_id}?start=-1").status_code == 422


def _png_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_thumbnails_are_small_coloured_by_class_and_cached(api: Api) -> None:
    batch_id = submit(api)
    root = api.settings.batches_dir / batch_id
    width, height = 1000, 400
    write_dataset(root, count=1, width=width, height=height)
    sign_in(api)
    image = api.client.get(f"/ui/thumbs/{batch_id}/000000/image.png")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert "private" in image.headers["cache-control"]
    header, _ = pngio.decode_grey(image.content)
    assert (header.width, header.height) == (250, 100)  # shrunk by 4: the longer side <= 320 px
    overlay = _png_rgb(api.client.get(f"/ui/thumbs/{batch_id}/000000/overlay.png").content)
    assert overlay.shape == (100, 250, 3)
    grey = np.frombuffer(pngio.decode_grey(image.content)[1], np.uint8).reshape(100, 250).astype(float)
    # write_dataset's mask: background (top quarter), Fe2Al5 (middle half), substrate (bottom quarter)
    for row, cls in ((10, None), (50, FE2AL5), (90, SUBSTRATE)):
        red = grey[row] if cls is None else CLASSES[cls].color_rgb[0]
        expected = grey[row] if cls is None else (1 - OVERLAY_ALPHA) * grey[row] + OVERLAY_ALPHA * red
        assert np.abs(overlay[row, :, 0] - np.round(expected)).max() <= 1
    cache = api.settings.data_dir / "cache" / "thumbnails" / batch_id
    assert len(list(cache.glob("000000.overlay.*.png"))) == 1 and not list(root.rglob("*overlay*"))
    for missing in ("000001/image.png", "000000/mask.png", "..%2f..%2fetc/image.png", "abc/image.png"):
        assert api.client.get(f"/ui/thumbs/{batch_id}/{missing}").status_code == 404, missing


def test_a_thumbnail_is_made_once_and_again_when_its_sample_changes(tmp_path: Path) -> None:
    from render_service.dashboard.thumbnails import make_thumbnail, thumbnail

    write_dataset(tmp_path / "ds", count=1)
    made: list[str] = []

    def counting(image: bytes, mask: bytes | None, kind: str) -> bytes:
        made.append(kind)
        return make_thumbnail(image, mask, kind)

    first = thumbnail(tmp_path / "ds", tmp_path / "cache", "000000", "overlay", make=counting)
    assert thumbnail(tmp_path / "ds", tmp_path / "cache", "000000", "overlay", make=counting) == first
    assert made == ["overlay"]
    image = tmp_path / "ds" / "images" / "000000.png"
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))
    thumbnail(tmp_path / "ds", tmp_path / "cache", "000000", "overlay", make=counting)
    assert made == ["overlay", "overlay"] and len(list((tmp_path / "cache").iterdir())) == 1


def test_a_symlinked_or_damaged_picture_gives_no_thumbnail(api: Api) -> None:
    batch_id = submit(api)
    root = api.settings.batches_dir / batch_id
    write_dataset(root, count=2)
    (root / "images" / "000000.png").unlink()
    os.symlink("/etc/passwd", root / "images" / "000000.png")
    (root / "masks" / "000001.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    sign_in(api)
    linked = api.client.get(f"/ui/thumbs/{batch_id}/000000/image.png")
    assert linked.status_code == 404 and "root:" not in linked.text
    damaged = api.client.get(f"/ui/thumbs/{batch_id}/000001/overlay.png")
    assert damaged.status_code == 404 and "cannot be shown" in damaged.json()["detail"]
    assert api.client.get(f"/ui/thumbs/{batch_id}/000001/image.png").status_code == 200


def test_shrinking_keeps_the_mean_and_the_class_at_each_block_centre() -> None:
    from render_service.dashboard.thumbnails import shrink_factor, shrink_grey, shrink_mask

    assert shrink_factor(1024, 768) == 4 and shrink_factor(320, 100) == 1 and shrink_factor(321, 10) == 2
    grey = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000
    assert shrink_grey(grey, 4).tolist() == [[13500, 17500], [45500, 49500]]
    mask = np.zeros((9, 9), np.uint8)
    mask[1::3, 1::3] = 5
    assert shrink_mask(mask, 3).tolist() == [[5] * 3] * 3


def test_static_files_are_served_by_name_only(api: Api) -> None:
    for name, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css"),
                       ("favicon.svg", "image/svg+xml")):
        answer = api.client.get(f"/ui/static/{name}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind) and answer.content
    for name in ("routes.py", "..%2froutes.py", "%2e%2e%2f__init__.py"):
        assert api.client.get(f"/ui/static/{name}").status_code == 404


def test_the_json_api_ignores_the_cookie_and_the_schema_has_no_dashboard_route(api: Api) -> None:
    sign_in(api)
    answer = api.client.get("/api/v1/batches")
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert api.client.get("/api/v1/batches", headers=api.auth()).status_code == 200
    paths = api.client.get("/openapi.json").json()["paths"]
    assert all(p.startswith("/api/v1/") for p in paths), sorted(paths)
