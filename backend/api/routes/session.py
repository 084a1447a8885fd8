"""/session: the page signs in to a service that has API tokens (NADA_API_TOKENS).

Scripts send `Authorization: Bearer <token>`. A page cannot: its <img> samples, download
links and EventSource streams carry no headers. So the page posts the token here once, and
the answer sets it as a cookie that the browser sends with every request to this origin:
HttpOnly (the page's scripts never read it back), SameSite=Strict (another site's page
cannot make the browser send it: no cross-site request forgery), Secure over HTTPS. The
token is checked exactly as a header's is (backend/api/deps.py); nothing is stored.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from backend.api.deps import TOKEN_COOKIE, SettingsDep, presented_token
from jobs.settings import Settings
from jobs.tokens import authenticate

router = APIRouter(prefix="/session", tags=["session"])

SESSION_DAYS = 7  # the cookie's lifetime; signing out (DELETE) ends it sooner


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=512, description="one of NADA_API_TOKENS")


class SessionPublic(BaseModel):
    tokens: bool = Field(description="whether this service asks for a token at all")
    owner: str | None = Field(
        description="the name of the token the request carries (null: none, or no tokens)"
    )


def _owner(settings: Settings, presented: str | None) -> SessionPublic:
    tokens = settings.tokens
    if not tokens:
        return SessionPublic(tokens=False, owner=None)
    token = authenticate(tokens, presented) if presented else None
    return SessionPublic(tokens=True, owner=token.owner if token else None)


@router.get("", response_model=SessionPublic)
async def read_session(request: Request, settings: SettingsDep) -> SessionPublic:
    """Whether this service needs a token and whose token the request carries. Never 401:
    the page asks this first to know whether to show its sign-in."""
    return _owner(settings, presented_token(request))


@router.post(
    "",
    response_model=SessionPublic,
    responses={401: {"description": "Not one of this service's tokens"}},
)
async def create_session(
    body: SessionCreate, request: Request, response: Response, settings: SettingsDep
) -> SessionPublic:
    """Sign the page in: the token, once checked, becomes a cookie that the browser sends
    with every API call, picture, download and event stream of this origin."""
    public = _owner(settings, body.token)
    if not public.tokens:
        return public  # nothing to sign in to; no cookie
    if public.owner is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "not a token of this service (NADA_API_TOKENS)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    response.set_cookie(
        TOKEN_COOKIE,
        body.token,
        max_age=SESSION_DAYS * 24 * 3600,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return public


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
async def delete_session(request: Request) -> Response:
    """Sign the page out: the browser forgets the cookie."""
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(
        TOKEN_COOKIE,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response
