"""Dependencies shared by the routes, declared once as Annotated aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.orm import Session

from jobs.db.session import get_sessionmaker
from jobs.queue import JobQueue
from jobs.settings import Settings
from jobs.tokens import authenticate


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    with get_sessionmaker(settings.db_url)() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_queue(request: Request) -> JobQueue:
    return request.app.state.queue


QueueDep = Annotated[JobQueue, Depends(get_queue)]


def get_owner(request: Request, settings: SettingsDep) -> str | None:
    """The caller's identity: the name of its bearer token, or None when no tokens are set
    (a single-user service: every job is visible).

    With NADA_API_TOKENS set, a request without a valid `Authorization: Bearer <token>` is
    refused with 401 (the token is never logged or echoed)."""
    tokens = settings.tokens
    if not tokens:
        return None
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    token = authenticate(tokens, presented.strip()) if scheme.lower() == "bearer" else None
    if token is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or unknown API token; send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.owner


CurrentOwner = Annotated[str | None, Depends(get_owner)]
