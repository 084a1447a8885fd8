"""Cheap answers to frequent polls: one encoding pass, ETag / If-None-Match, shared stats.

A page or a script polls a job every second or two; most polls find nothing new. The body
is encoded once by pydantic (no second validation of the response model), its hash is the
ETag, and a client that sends it back in If-None-Match gets 304 with no body. The queue's
load and speed, which every poll of a queued or running job needs for its ETA, are read at
most once per `ttl` seconds per process instead of once per request.
"""

from __future__ import annotations

import hashlib
import threading
import time

from fastapi import Request, Response, status
from pydantic import BaseModel
from sqlalchemy.orm import Session

from jobs import store


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _matches(if_none_match: str, etag: str) -> bool:
    candidates = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in candidates or etag in candidates


def encoded(model: BaseModel) -> tuple[bytes, str]:
    """`model`'s JSON and its ETag (backend/api/view_cache.py keeps both)."""
    body = model.model_dump_json().encode()
    return body, etag_of(body)


def json_response(request: Request, model: BaseModel, *, status_code: int = 200) -> Response:
    """`model` as JSON with an ETag; 304 (no body) when the client already has it. Only a
    200 GET or HEAD is conditional: other answers are never cached by the client."""
    body, etag = encoded(model)
    return encoded_response(request, body, etag, status_code=status_code)


def not_modified(if_none_match: str, etag: str) -> bool:
    """Whether a GET with this If-None-Match already has the body of `etag` (304)."""
    return _matches(if_none_match, etag)


def view_headers(etag: str) -> dict[str, str]:
    """The headers of a view's answer besides its length and type (also sent as raw ASGI
    by backend/api/cached_reads.py: one list of them)."""
    return {"ETag": etag, "Cache-Control": "no-cache"}


def encoded_response(
    request: Request, body: bytes, etag: str, *, status_code: int = 200
) -> Response:
    """json_response of a body already encoded (with its etag_of)."""
    headers = view_headers(etag)
    conditional = request.method in ("GET", "HEAD") and status_code == 200
    if conditional and not_modified(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)


class QueueStatsCache:
    """`store.queue_stats`, shared by this process's requests for `ttl` seconds."""

    def __init__(self, ttl: float = 1.0):
        self.ttl = ttl
        self._lock = threading.Lock()
        self._value: store.QueueStats | None = None
        self._read_at = -float("inf")

    def get(self, session: Session) -> store.QueueStats:
        now = time.monotonic()
        with self._lock:
            if self._value is not None and now - self._read_at < self.ttl:
                return self._value
        value = store.queue_stats(session)  # outside the lock: a slow read blocks no one
        with self._lock:
            self._value, self._read_at = value, now
        return value
