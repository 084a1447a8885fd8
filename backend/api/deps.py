"""Dependencies shared by the routes, declared once as Annotated aliases.

They are `async def` although they do no I/O: FastAPI runs a plain `def` dependency in its
thread pool, and four thread hops per request cost more than the poll they serve. The
session is only created here (no connection yet); the route's own thread uses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.orm import Session

from jobs.db.session import get_sessionmaker
from jobs.queue import JobQueue
from jobs.settings import Settings
from jobs.tokens import authenticate


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(settings: SettingsDep) -> AsyncIterator[Session]:
    session = get_sessionmaker(settings.db_url)()
    try:
        yield session
    finally:
        # The hot read routes close it in their own thread first (giving the connection back
        # is a ROLLBACK); closing a closed session does no I/O.
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


async def get_queue(request: Request) -> JobQueue:
    return request.app.state.queue


QueueDep = Annotated[JobQueue, Depends(get_queue)]


TOKEN_COOKIE = "nada_token"  # set by POST /session for the page (routes/session.py)


def presented_token(request: Request) -> str | None:
    """The token a request carries: `Authorization: Bearer <token>` (scripts, the CLI), else
    the page's sign-in cookie (an <img>, a download link or an EventSource cannot send a
    header, but the browser sends the cookie with each of them)."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, presented = header.partition(" ")
        return presented.strip() if scheme.lower() == "bearer" else None
    return request.cookies.get(TOKEN_COOKIE)


async def get_owner(request: Request, settings: SettingsDep) -> str | None:
    """The caller's identity: the name of its token, or None when no tokens are set (a
    single-user service: every job is visible).

    With NADA_API_TOKENS set, a request without a valid token (presented_token) is refused
    with 401 (the token is never logged or echoed)."""
    tokens = settings.tokens
    if not tokens:
        return None
    presented = presented_token(request)
    token = authenticate(tokens, presented) if presented else None
    if token is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or unknown API token; send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.owner


CurrentOwner = Annotated[str | None, Depends(get_owner)]
