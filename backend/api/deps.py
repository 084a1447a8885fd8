"""Dependencies shared by the routes, declared once as Annotated aliases.

They are `async def` although they do no I/O: FastAPI runs a plain `def` dependency in its
thread pool, and four thread hops per request cost more than the poll they serve. (The one
exception, a sign-in cookie's session look-up, takes that hop itself.) The
session is only created here (no connection yet); the route's own thread uses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from jobs import sessions
from jobs.db.session import get_sessionmaker, session_scope
from jobs.queue import JobQueue
from jobs.settings import Settings
from jobs.tokens import ApiToken, authenticate


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


SESSION_COOKIE = "nada_session"  # a sign-in's random id, set by POST /session (routes/session.py)
REQUEST_HEADER = "X-Nada-Request"  # the page sends '1' with every call (frontend/js/api.js)
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SAME_ORIGIN_SITES = frozenset({"same-origin", "none"})  # Sec-Fetch-Site values we accept


class TwoSessionCookies(Exception):
    """The request carries the sign-in cookie twice (one set for another path or a parent
    domain): which one is the caller's? Neither counts."""


def bearer_header(request: Request) -> str | None:
    """`Authorization: Bearer <token>` (scripts, the CLI): the token; '' for an
    Authorization header of another scheme (refused, never the cookie instead); None when
    there is no Authorization header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, presented = header.partition(" ")
    return presented.strip() if scheme.lower() == "bearer" else ""


def session_cookie(request: Request) -> str | None:
    """The sign-in cookie's value (an <img>, a download link or an EventSource cannot send a
    header, but the browser sends the cookie with each of them). Read from the raw Cookie
    header, not `request.cookies` (where the last of two wins). Raises TwoSessionCookies."""
    values = [
        value.strip()
        for header in request.headers.getlist("cookie")
        for name, _, value in (part.partition("=") for part in header.split(";"))
        if name.strip() == SESSION_COOKIE
    ]
    if len(values) > 1:
        raise TwoSessionCookies
    return values[0] if values else None


def own_origin(request: Request) -> str:
    """The origin this request was sent to, as a browser writes it in `Origin`."""
    return f"{request.url.scheme}://{request.url.netloc}".lower()


def check_origin(request: Request, settings: Settings) -> None:
    """Proof that an unsafe request a cookie signs comes from this service's own page
    (docs/security.md, "Forgery"): the browser's `Sec-Fetch-Site` is same-origin (or none),
    or, where a browser does not send it, `Origin` is this service's origin or one of
    NADA_TRUSTED_ORIGINS; and the request has `X-Nada-Request: 1`, which a form or a
    no-cors fetch cannot send (another origin's fetch would need a CORS preflight that
    allows it). Raises 403. SameSite=Strict alone stops other *sites* only, not a page of
    this host on another port or a sibling subdomain."""
    if request.method not in _UNSAFE:
        return
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    if site is not None:
        same = site.strip().lower() in _SAME_ORIGIN_SITES
    else:
        allowed = {own_origin(request), *settings.trusted_origin_list}
        same = origin is not None and origin.strip().rstrip("/").lower() in allowed
    if not same:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "refused: a signed-in page's change must come from this service's own page "
            "(Sec-Fetch-Site same-origin, or Origin this service's or one of "
            "NADA_TRUSTED_ORIGINS); scripts send 'Authorization: Bearer <token>'",
        )
    if request.headers.get(REQUEST_HEADER) != "1":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"refused: a signed-in page's change must send the header '{REQUEST_HEADER}: 1' "
            "(a form or another page cannot); scripts send 'Authorization: Bearer <token>'",
        )


def _look_up_session(settings: Settings, session_id: str) -> ApiToken | None:
    with session_scope(settings.db_url) as session:
        return sessions.look_up(session, session_id, tokens=settings.tokens)


async def identify(request: Request, settings: Settings) -> ApiToken | None:
    """The configured token a request stands for: its `Authorization: Bearer` header if it
    has one (the cookie is then ignored), else its live sign-in session; None if neither.
    A cookie-signed unsafe request must pass check_origin (403). Raises TwoSessionCookies."""
    tokens = settings.tokens
    presented = bearer_header(request)
    if presented is not None:
        return authenticate(tokens, presented) if presented else None
    session_id = session_cookie(request)
    if session_id is None:
        return None
    check_origin(request, settings)
    return await run_in_threadpool(_look_up_session, settings, session_id)


async def get_owner(request: Request, settings: SettingsDep) -> str | None:
    """The caller's identity: the name of its token, or None when no tokens are set (a
    single-user service: every job is visible).

    With NADA_API_TOKENS set, a request without a valid token or live sign-in session
    (identify) is refused with 401 (the token is never logged or echoed); a cookie-signed
    change without proof of origin with 403 (check_origin)."""
    if not settings.tokens:
        return None
    try:
        token = await identify(request, settings)
    except TwoSessionCookies:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"the request carries two '{SESSION_COOKIE}' cookies (one set for another path "
            "or domain); neither counts: sign in again, or send 'Authorization: Bearer'",
            headers={"WWW-Authenticate": "Bearer"},
        ) from None
    if token is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or unknown API token; send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.owner


CurrentOwner = Annotated[str | None, Depends(get_owner)]
