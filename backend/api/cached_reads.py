"""The outermost layer of the API: polls answered from the view cache before FastAPI.

A poll of a job (`GET /jobs/{id}`) or of a list (`GET /jobs?...`) whose answer this
process's cache holds (backend/api/view_cache.py: fresh, and the caller may see it) costs
one dictionary look-up and two socket sends here. Through FastAPI the same hit cost 2-3
times as much: its middleware stack, the routing, and the per-request solving of the
route's dependencies (docs/performance.md, "Where a poll's time went"), which on one API
process capped polls at ~0.4x a bare FastAPI app's rate and left a p99 near 90 ms.

What is answered here is byte for byte what the route answers for a hit
(backend/api/job_views.py answer_cached: the same stored body, ETag and headers; 304 for a
matching If-None-Match; HEAD without the body). Everything else goes on to the app
unchanged, and the route decides as before:
- a miss (nothing cached, aged out, another owner's), any other path or method (a poll
  of an entry the route is reading again waits for that read here, then is answered);
- a caller the cache cannot identify without the database: a sign-in cookie (its session
  is a row), or with tokens configured, a missing or unknown Bearer token (the 401 is the
  route's);
- a cross-origin request on a service with NADA_CORS_ORIGINS (its CORS headers are the
  CORS middleware's);
- a GET with a body (the body limit's to judge).
"""

from __future__ import annotations

from typing import Any

import anyio

from backend.api.middleware import ASGIApp, Receive, Scope, Send
from backend.api.responses import not_modified, view_headers
from backend.api.view_cache import DETAIL, LIST, CachedView, ViewCache, list_key
from backend.schemas import API_PREFIX
from jobs.settings import Settings
from jobs.tokens import authenticate
from nada.ids import is_id

_JOBS = f"{API_PREFIX}/jobs"
_JOB = _JOBS + "/"
_NOT_CACHED = object()  # the caller cannot be told here: the app decides


class CachedReads:
    """ASGI middleware (added last, so outermost): see the module's docstring."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            headers = _headers(scope)
            hit = await _lookup(scope, headers) if headers is not None else None
            if hit is not None and headers is not None:
                await _answer(scope, send, hit, headers)
                return
        await self.app(scope, receive, send)


async def _lookup(scope: Scope, headers: dict[bytes, bytes]) -> CachedView | None:
    """The cache's answer for this request, if it has one the caller may see. An entry
    that aged out while the route reads it again (a live one, every interval) is waited
    for: the polls that come meanwhile take that read's answer instead of all going
    through FastAPI to wait there (backend/api/job_views.py answer_cached)."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    if path == _JOBS:
        view, key = LIST, None
    elif path.startswith(_JOB) and is_id(path[len(_JOB) :]):
        view, key = DETAIL, path[len(_JOB) :]
    else:
        return None
    state = scope["app"].state
    hub = getattr(state, "event_hub", None)
    if hub is None:  # before the lifespan started it
        return None
    views: ViewCache = hub.views
    settings: Settings = state.settings
    owner = _owner(settings, headers)
    if owner is _NOT_CACHED:
        return None
    if settings.cors_origin_list and b"origin" in headers:
        return None
    if key is None:
        key = list_key(owner, scope["query_string"])  # type: ignore[arg-type]
    hit = views.lookup(view, key, owner)  # type: ignore[arg-type]
    if hit is not None:
        views.refresh_ahead(view, key, hit)  # type: ignore[arg-type]
        return hit
    reading = views.reading.get((view, key))  # type: ignore[arg-type]
    if reading is not None:
        with anyio.move_on_after(views.max_age):
            await reading.wait()
        hit = views.lookup(view, key, owner)  # type: ignore[arg-type]
    return hit


def _headers(scope: Scope) -> dict[bytes, bytes] | None:
    """The request's headers by name, or None when one this layer does not judge is there
    (a body, or a header sent twice that the app's own reading would see otherwise)."""
    headers: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in headers and name in (b"authorization", b"cookie", b"if-none-match"):
            return None
        headers[name] = value
    if headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers:
        return None
    return headers


def _owner(settings: Settings, headers: dict[bytes, bytes]) -> Any:
    """The caller as backend/api/deps.get_owner names it (None: a service without tokens),
    or _NOT_CACHED when only the app can tell (a cookie, a refusal)."""
    if not settings.tokens:
        return None
    header = headers.get(b"authorization")
    if header is None:
        return _NOT_CACHED  # a sign-in cookie's session (a row), or the route's 401
    scheme, _, presented = header.decode("latin-1").partition(" ")
    presented = presented.strip()
    token = authenticate(settings.tokens, presented) if scheme.lower() == "bearer" else None
    return _NOT_CACHED if not presented or token is None else token.owner


async def _answer(
    scope: Scope, send: Send, hit: CachedView, request_headers: dict[bytes, bytes]
) -> None:
    """What encoded_response sends for this entry: 200 with the body (HEAD: without it),
    or 304 for a matching If-None-Match."""
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in view_headers(hit.etag).items()
    ]
    if_none_match = request_headers.get(b"if-none-match", b"").decode("latin-1")
    if not_modified(if_none_match, hit.etag):
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers.append((b"content-length", str(len(hit.body)).encode()))
    headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    body = b"" if scope["method"] == "HEAD" else hit.body
    await send({"type": "http.response.body", "body": body})
