"""Who is looking at the dashboard: the API's own bearer tokens, carried by a browser in a cookie.

A browser cannot send ``Authorization: Bearer`` when it follows a link, so signing in (``POST /ui/signin`` with the
token in a form) checks the token exactly as the API does (:func:`render_service.tokens.owner_of`) and sets it as a
session cookie that is ``HttpOnly`` (no script, ours or injected, can read it), ``SameSite=Strict`` (no other site's
page can make the browser send it) and ``Secure`` when the dashboard is served over HTTPS. Every request checks the
token again, so revoking it (``semcoat token revoke``) signs the browser out at its next poll.

The cookie is honoured by the dashboard's routes only, all of which only read, except the two that change the
cookie itself; those refuse a request that a browser marks as coming from another site (``Origin`` /
``Sec-Fetch-Site``), so another site cannot sign a visitor in with its own token. The JSON API under ``/api/v1``
ignores the cookie and keeps asking for the bearer header.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from fastapi import Request
from starlette.responses import Response

from render_service.tokens import TOKEN_PREFIX

COOKIE = "semcoat_dashboard"
# A token as `semcoat token create` makes them (URL-safe base64 after the prefix): nothing else goes into a cookie.
_TOKEN_SHAPE = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_-]{1,124}")


def cookie_token(request: Request) -> str | None:
    """The token the browser sent in the dashboard's cookie, if it has the shape of one."""
    value = request.cookies.get(COOKIE)
    return value if value is not None and _TOKEN_SHAPE.fullmatch(value) else None


def form_token(body: bytes) -> str | None:
    """The ``token`` field of a URL-encoded sign-in form, trimmed; None when absent or not shaped like a token."""
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return None
    values = fields.get("token") or [""]
    token = values[0].strip()
    return token if _TOKEN_SHAPE.fullmatch(token) else None


def same_site(request: Request) -> bool:
    """False when the browser says the request comes from another site.

    A browser's ``Sec-Fetch-Site`` decides when it sends one (every current browser does); otherwise the host of
    its ``Origin`` must be the ``Host`` it asked for (the scheme is not compared: behind a TLS proxy the service sees
    plain HTTP). A client that sends neither (curl, a script) is not a page of another site: True.
    """
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "") != ""


def set_cookie(response: Response, request: Request, token: str) -> None:
    """Give the browser the session cookie (no expiry: it ends with the browser session or at sign-out)."""
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        path="/")


def clear_cookie(response: Response, request: Request) -> None:
    """Remove the session cookie."""
    response.delete_cookie(COOKIE, httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/")
