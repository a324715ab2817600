"""The dashboard's routes: pages at ``/`` and ``/ui/...``, the JSON their script polls, thumbnails, static files.

Thin adapters: :mod:`.session` says who is signed in, :mod:`.views` gathers the values, :mod:`.pages` writes the
HTML, :mod:`.thumbnails` makes the pictures. None of it is in the OpenAPI schema: the API for programs stays
``/api/v1`` with its bearer tokens. Every answer carries a strict Content-Security-Policy (scripts, styles, images
and fetches from this server only; no inline script or style; no framing) and is not cached, but for thumbnails
and static files.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from render_service.api.deps import SessionDep, SettingsDep
from render_service.dashboard import pages, session, trainings, views
from render_service.dashboard.thumbnails import NoThumbnail, thumbnail
from render_service.files import FileRefused
from render_service.store import batch_public, get_batch, list_batches
from render_service.tokens import owner_of
from render_service.training_metrics import training_work_dir

router = APIRouter(include_in_schema=False)

POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
          "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
# Referrer-Policy same-origin, not no-referrer: under no-referrer a browser posts our own forms with "Origin: null",
# which the sign-in's cross-site check must refuse.
SECURITY_HEADERS = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}
NO_STORE = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
OVERVIEW_LIMIT = 50
STATIC = {"dashboard.js": "text/javascript; charset=utf-8", "dashboard.css": "text/css; charset=utf-8",
          "favicon.svg": "image/svg+xml"}
SIGNED_OUT = "you are not signed in, or your token was revoked: sign in again at /"

Start = Annotated[int, Query(ge=0, le=10_000_000, description="The first image of the page.")]
CurvesVersion = Annotated[str | None, Query(max_length=100, description="The curves the page shows already.")]


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status, headers=NO_STORE)


def _json(content: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(content, status, headers=NO_STORE)


def _owner(request: Request, db: SessionDep) -> str | None:
    token = session.cookie_token(request)
    return owner_of(db, token) if token is not None else None


def _to_signin() -> RedirectResponse:
    return RedirectResponse("/", 303, headers=NO_STORE)


def overview_data(db: SessionDep, owner: str) -> dict[str, Any]:
    """The overview's values: the owner's newest batches (and trainings, where the service has them)."""
    rows, _total = list_batches(db, owner, OVERVIEW_LIMIT, 0)
    return {"batches": [views.batch_view(batch_public(b)) for b in rows],
            "trainings": trainings.overview_trainings(db, owner, OVERVIEW_LIMIT)}


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, db: SessionDep) -> Response:
    """The overview, or the sign-in form when the browser is not signed in."""
    owner = _owner(request, db)
    if owner is None:
        return _html(pages.signin_page())
    data = overview_data(db, owner)
    return _html(pages.overview_page(owner, data["batches"], data["trainings"]))


@router.post("/ui/signin")
async def signin(request: Request, db: SessionDep) -> Response:
    """Check the token of the sign-in form and set the session cookie (303 to the overview); 401 with the form and
    a sentence when the token is unknown, revoked or malformed; 403 for a form posted from another site."""
    if not session.same_site(request):
        return _html(pages.signin_page("This sign-in came from another site and was refused; sign in here."), 403)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    token = session.form_token(await request.body()) if content_type == "application/x-www-form-urlencoded" else None
    owner = await run_in_threadpool(owner_of, db, token) if token is not None else None
    if token is None or owner is None:
        return _html(pages.signin_page("That token is unknown or revoked (a token starts with 'sct_'); ask the "
                                       "admin for one: `semcoat token create NAME`."), 401)
    response = RedirectResponse("/", 303, headers=NO_STORE)
    session.set_cookie(response, request, token)
    return response


@router.post("/ui/signout")
def signout(request: Request) -> Response:
    """Forget the session cookie and go back to the sign-in form."""
    if not session.same_site(request):
        return _html(pages.signin_page("This sign-out came from another site and was refused."), 403)
    response = RedirectResponse("/", 303, headers=NO_STORE)
    session.clear_cookie(response, request)
    return response


def batch_data(db: SessionDep, settings: SettingsDep, owner: str, batch_id: str, start: int) -> dict[str, Any] | None:
    """A batch page's values (None: no batch of ``owner``'s has this id)."""
    batch = get_batch(db, batch_id, owner)
    if batch is None:
        return None
    window = views.samples_page(settings.batches_dir / batch.id, batch.id, start)
    window["text"] = pages.samples_text(window)
    return {"batch": views.batch_view(batch_public(batch)), "window": window}


@router.get("/ui/batches/{batch_id}", response_class=HTMLResponse)
def batch_page(request: Request, db: SessionDep, settings: SettingsDep, batch_id: str, start: Start = 0) -> Response:
    """A batch's page."""
    owner = _owner(request, db)
    if owner is None:
        return _to_signin()
    data = batch_data(db, settings, owner, batch_id, start)
    if data is None:
        return _html(pages.message_page("No such batch", f"No batch of yours has id {batch_id[:64]!r}.", owner), 404)
    return _html(pages.batch_page(owner, data["batch"], data["window"], views.legend()))


@router.get("/ui/data/overview")
def overview_json(request: Request, db: SessionDep) -> Response:
    """What the overview's script polls."""
    owner = _owner(request, db)
    if owner is None:
        return _json({"detail": SIGNED_OUT}, 401)
    return _json(overview_data(db, owner))


@router.get("/ui/data/batches/{batch_id}")
def batch_json(request: Request, db: SessionDep, settings: SettingsDep, batch_id: str, start: Start = 0) -> Response:
    """What a batch page's script polls."""
    owner = _owner(request, db)
    if owner is None:
        return _json({"detail": SIGNED_OUT}, 401)
    data = batch_data(db, settings, owner, batch_id, start)
    if data is None:
        return _json({"detail": f"no batch of yours has id {batch_id[:64]!r}"}, 404)
    return _json(data)


@router.get("/ui/thumbs/{batch_id}/{sample}/{kind}.png")
def thumbnail_png(request: Request, db: SessionDep, settings: SettingsDep, batch_id: str, sample: str,
                  kind: str) -> Response:
    """A sample's thumbnail: ``image`` (grey) or ``overlay`` (the mask's classes over it)."""
    owner = _owner(request, db)
    if owner is None:
        return _json({"detail": SIGNED_OUT}, 401)
    batch = get_batch(db, batch_id, owner)
    if batch is None:
        return _json({"detail": f"no batch of yours has id {batch_id[:64]!r}"}, 404)
    db.close()  # give the connection back before the (possibly slow) decoding
    try:
        png = thumbnail(settings.batches_dir / batch.id, settings.data_dir / "cache" / "thumbnails" / batch.id,
                        sample, kind)
    except (NoThumbnail, FileRefused) as exc:
        return _json({"detail": str(exc)}, 404)
    return Response(png, media_type="image/png",
                    headers={**SECURITY_HEADERS, "Cache-Control": "private, max-age=300"})


@functools.cache
def _static_file(name: str) -> bytes:
    return resources.files("render_service.dashboard").joinpath("static", name).read_bytes()


@router.get("/ui/static/{name}")
def static(name: str) -> Response:
    """The dashboard's script, stylesheet and icon (these names only)."""
    if name not in STATIC:
        return _json({"detail": f"no static file {name[:64]!r}"}, 404)
    return Response(_static_file(name), media_type=STATIC[name],
                    headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


@router.get("/ui/trainings/{training_id}", response_class=HTMLResponse)
def training_page(request: Request, db: SessionDep, settings: SettingsDep, training_id: str) -> Response:
    """A training's page: state, progress, what it trains on, its loss and Dice curves."""
    owner = _owner(request, db)
    if owner is None:
        return _to_signin()
    data = trainings.training_data(db, settings.trainings_dir, training_work_dir(settings.data_dir), owner,
                                   training_id)
    if data is None:
        return _html(pages.message_page("No such training", f"No training of yours has id {training_id[:64]!r}.",
                                        owner), 404)
    return _html(pages.training_page(owner, data["training"], data["loss"], data["dice"], data["curves_version"]))


@router.get("/ui/data/trainings/{training_id}")
def training_json(request: Request, db: SessionDep, settings: SettingsDep, training_id: str,
                  curves: CurvesVersion = None) -> Response:
    """What a training page's script polls: the training's values, the version of its curves (``curves_version``)
    and, when the page shows another version (``curves``), the curves' block drawn afresh (``curves_html``)."""
    owner = _owner(request, db)
    if owner is None:
        return _json({"detail": SIGNED_OUT}, 401)
    data = trainings.training_data(db, settings.trainings_dir, training_work_dir(settings.data_dir), owner,
                                   training_id, known_version=curves)
    if data is None:
        return _json({"detail": f"no training of yours has id {training_id[:64]!r}"}, 404)
    answer = {"training": data["training"], "curves_version": data["curves_version"],
              "has_curves": not data["curves_version"].startswith("none")}
    if data["loss"] is not None:
        answer["curves_html"] = pages.curves_html(data["loss"], data["dice"])
    return _json(answer)
