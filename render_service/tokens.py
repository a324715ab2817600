"""Bearer tokens: made by the admin (``semcoat token create NAME``), shown once, stored as SHA-256 only.

A token is 32 random bytes, URL-safe base64, prefixed ``sct_`` so it is recognisable in a leaked log. Tokens are
never logged; lookups compare hashes.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from render_service.db.models import Token, utc_now
from semcoat.errors import InvalidArgument

TOKEN_PREFIX = "sct_"
OWNER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


def token_sha256(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, owner: str) -> tuple[Token, str]:
    """Make a token for ``owner`` (a user name); returns the row and the token itself, which is not stored."""
    if not OWNER_PATTERN.fullmatch(owner):
        raise InvalidArgument(f"user name {owner!r} is not accepted: use 1-64 letters, digits, '.', '_', '@' or '-'",
                              argument="owner")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = Token(owner=owner, token_sha256=token_sha256(token))
    session.add(row)
    session.flush()
    return row, token


def owner_of(session: Session, token: str) -> str | None:
    """The user a valid, unrevoked token belongs to, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    row = session.scalar(select(Token).where(Token.token_sha256 == token_sha256(token), Token.revoked_at.is_(None)))
    return row.owner if row is not None else None


def list_tokens(session: Session) -> list[Token]:
    """Every token row (hashes only), oldest first."""
    return list(session.scalars(select(Token).order_by(Token.id)))


def revoke_tokens(session: Session, token_id: int | None = None, owner: str | None = None) -> int:
    """Revoke the token ``token_id``, or every token of ``owner``; returns how many were revoked."""
    query = select(Token).where(Token.revoked_at.is_(None))
    if token_id is not None:
        query = query.where(Token.id == token_id)
    elif owner is not None:
        query = query.where(Token.owner == owner)
    else:
        raise InvalidArgument("say which token to revoke: its id or its owner", argument="token_id")
    rows = list(session.scalars(query))
    for row in rows:
        row.revoked_at = utc_now()
    return len(rows)
