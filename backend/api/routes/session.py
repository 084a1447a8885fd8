"""/session: the page signs in to a service that has API tokens (NADA_API_TOKENS).

Scripts send `Authorization: Bearer <token>`. A page cannot: its <img> samples, download
links and EventSource streams carry no headers. So the page posts the token here once; the
service makes a server-side session (jobs/sessions.py) and sets its random id, never the
token, as a cookie that the browser sends with every request to this origin: HttpOnly (the
page's scripts never read it back), SameSite=Strict (another site's page cannot make the
browser send it), Secure over HTTPS, 7 days. Since a page of this host on another port
would still send it, every change a cookie signs must also prove it comes from this
service's own page (backend/api/deps.py check_origin; docs/security.md "Forgery").
Signing out deletes the session, so a copy of the cookie stops working too.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from backend.api.deps import (
    SESSION_COOKIE,
    SettingsDep,
    TwoSessionCookies,
    check_origin,
    identify,
    session_cookie,
)
from jobs import sessions
from jobs.db.session import session_scope
from jobs.settings import Settings
from jobs.tokens import ApiToken, authenticate

router = APIRouter(prefix="/session", tags=["session"])

LEGACY_COOKIE = "nada_token"  # before sessions the cookie held the token: forget it
SESSION_DAYS = sessions.SESSION_DAYS


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=512, description="one of NADA_API_TOKENS")


class SessionPublic(BaseModel):
    tokens: bool = Field(description="whether this service asks for a token at all")
    owner: str | None = Field(
        description="the name of the token the request carries (null: none, or no tokens)"
    )


def _set_cookie(response: Response, request: Request, name: str, value: str | None) -> None:
    """Set (a value) or delete (None) a cookie with the sign-in's attributes."""
    secure = request.url.scheme == "https"
    if value is None:
        response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="strict")
    else:
        response.set_cookie(
            name,
            value,
            max_age=SESSION_DAYS * 24 * 3600,
            path="/",
            secure=secure,
            httponly=True,
            samesite="strict",
        )


def _cookie_or_none(request: Request) -> str | None:
    try:
        return session_cookie(request)
    except TwoSessionCookies:
        return None


def _sign_in(settings: Settings, token: ApiToken, replaced: str | None) -> str:
    with session_scope(settings.db_url) as session:
        if replaced is not None:
            sessions.revoke(session, replaced)  # one active sign-in per browser
        return sessions.create(session, token=token).session_id


def _sign_out(settings: Settings, session_id: str) -> None:
    with session_scope(settings.db_url) as session:
        sessions.revoke(session, session_id)


@router.get("", response_model=SessionPublic)
async def read_session(request: Request, settings: SettingsDep) -> SessionPublic:
    """Whether this service needs a token and whose token (or live sign-in) the request
    carries. Never 401: the page asks this first to know whether to show its sign-in."""
    if not settings.tokens:
        return SessionPublic(tokens=False, owner=None)
    try:
        token = await identify(request, settings)
    except TwoSessionCookies:
        token = None
    return SessionPublic(tokens=True, owner=token.owner if token else None)


@router.post(
    "",
    response_model=SessionPublic,
    responses={
        401: {"description": "Not one of this service's tokens"},
        403: {"description": "Not sent by this service's own page (no proof of origin)"},
    },
)
async def create_session(
    body: SessionCreate, request: Request, response: Response, settings: SettingsDep
) -> SessionPublic:
    """Sign the page in: the token, once checked, becomes a server-side session whose id
    is the cookie that the browser sends with every API call, picture, download and event
    stream of this origin. A session the browser held before is ended."""
    tokens = settings.tokens
    if not tokens:
        return SessionPublic(tokens=False, owner=None)  # nothing to sign in to; no cookie
    check_origin(request, settings)  # no other page may sign this browser in
    token = authenticate(tokens, body.token)
    if token is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "not a token of this service (NADA_API_TOKENS)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    session_id = await run_in_threadpool(_sign_in, settings, token, _cookie_or_none(request))
    _set_cookie(response, request, SESSION_COOKIE, session_id)
    if LEGACY_COOKIE in request.cookies:
        _set_cookie(response, request, LEGACY_COOKIE, None)
    return SessionPublic(tokens=True, owner=token.owner)


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={403: {"description": "Not sent by this service's own page"}},
)
async def delete_session(request: Request, settings: SettingsDep) -> Response:
    """Sign the page out: the session ends on the service (a copy of the cookie is refused
    from now on) and the browser forgets the cookie."""
    session_id = _cookie_or_none(request)
    if session_id is not None:
        check_origin(request, settings)  # another page may not sign this browser out
        await run_in_threadpool(_sign_out, settings, session_id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _set_cookie(response, request, SESSION_COOKIE, None)
    if LEGACY_COOKIE in request.cookies:
        _set_cookie(response, request, LEGACY_COOKIE, None)
    return response
