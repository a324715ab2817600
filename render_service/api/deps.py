"""What routes depend on, as ``Annotated[..., Depends(...)]`` aliases: the context, a database session, the task
sender, the caller (from the bearer token)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from render_service.api.context import ApiContext
from render_service.queue import TaskSender
from render_service.settings import Settings
from render_service.tokens import owner_of

_bearer = HTTPBearer(auto_error=False, description="A token from `semcoat token create NAME`.")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


# Dependencies that do no I/O are ``async def``: FastAPI runs a sync one in the thread pool, a hop per dependency
# that costs more than the work on a status poll.
async def get_context(request: Request) -> ApiContext:
    """The app's :class:`ApiContext` (settings, database, sender, health probe)."""
    context: ApiContext = request.app.state.context
    return context


ContextDep = Annotated[ApiContext, Depends(get_context)]


async def get_settings(context: ContextDep) -> Settings:
    """The service's settings."""
    return context.settings


async def get_session(context: ContextDep) -> AsyncIterator[Session]:
    """A session for one request. Routes that write commit themselves (in their thread); what is left pending is
    committed here in the thread pool, and a read-only session is just closed (giving its connection back)."""
    session = Session(context.database.engine, expire_on_commit=False)
    try:
        yield session
        if session.new or session.dirty or session.deleted:
            await run_in_threadpool(session.commit)
    finally:
        session.close()


async def get_sender(context: ContextDep) -> TaskSender:
    """Where tasks for the workers go (Celery through Redis; a fake in unit tests)."""
    return context.sender


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
SenderDep = Annotated[TaskSender, Depends(get_sender)]


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def owner_from(session: Session, credentials: HTTPAuthorizationCredentials | None) -> str:
    """The user the bearer token belongs to; 401 (with ``WWW-Authenticate: Bearer``) when it is missing, unknown or
    revoked. The token itself never appears in a message or a log."""
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "no token: send 'Authorization: Bearer <token>' "
                            "(an admin makes one with `semcoat token create NAME`)", headers=_CHALLENGE)
    owner = owner_of(session, credentials.credentials)
    if owner is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "the token is unknown or revoked; ask the admin for a "
                            "new one (`semcoat token create NAME`)", headers=_CHALLENGE)
    return owner


def current_owner(session: SessionDep, credentials: Credentials) -> str:
    """The caller (see :func:`owner_from`)."""
    return owner_from(session, credentials)


OwnerDep = Annotated[str, Depends(current_owner)]
