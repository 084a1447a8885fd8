"""ASGI middleware at the edge of the API: a body-size limit for JSON requests, and HEAD.

Both are plain ASGI (no BaseHTTPMiddleware): they must not buffer bodies, and they must
not get in the way of streamed responses (SSE) or streamed uploads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
from fastapi import HTTPException, status

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]


class BodyTooLarge(HTTPException):
    """Raised from inside `receive` once a body passes the limit: FastAPI re-raises an
    HTTPException met while reading a body, so the client gets this 413, not a 400."""

    def __init__(self, limit: int):
        super().__init__(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"the request body is larger than {limit} bytes (a JSON request may have at most 64 KiB)",
        )


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` with 413, by Content-Length before reading and
    by counting while reading (chunked bodies). Paths for which `exempt(method, path)` is
    true (the streamed generator upload, capped by its own limit) pass through."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, exempt: Callable[[str, str], bool]):
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _send_json(send, 413, BodyTooLarge(self.max_bytes).detail)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited, send)


class HeadMiddleware:
    """Answer HEAD wherever GET is answered: run the GET, send its status and headers, drop
    its body. A streamed response (SSE) is told the client left once the headers are out."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        started = anyio.Event()
        first = True

        async def head_receive() -> Message:
            nonlocal first
            if first:
                first = False
                return await receive()
            await started.wait()
            return {"type": "http.disconnect"}

        async def head_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await send(message)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                started.set()
            # the body (every chunk of it) is dropped

        await self.app({**scope, "method": "GET"}, head_receive, head_send)


async def _send_json(send: Send, status_code: int, detail: Any) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
