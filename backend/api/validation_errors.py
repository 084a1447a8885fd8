"""422 answers that can always be encoded, whatever the client sent.

FastAPI's default 422 echoes each offending input back. An input holding a lone UTF-16
surrogate, a NaN or an infinity cannot be encoded as JSON (the client got a 500 instead),
and a huge input was echoed whole. Here every echoed value is made JSON-safe and capped:
strings escaped (`\\ud800`) and cut at ECHO_CHARS, non-finite numbers as text, containers
summarised beyond a few items.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

ECHO_CHARS = 200  # longest string echoed back
ECHO_ITEMS = 8  # most list items / dict keys echoed back
ECHO_DEPTH = 3
MESSAGE_CHARS = 1000


def safe_text(text: str, limit: int = ECHO_CHARS) -> str:
    """`text` as valid UTF-8 (lone surrogates escaped), cut to `limit` characters."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def safe_echo(value: Any, depth: int = 0) -> Any:
    """A JSON-encodable, bounded stand-in for `value`."""
    if value is None or isinstance(value, bool | int):
        return value if not isinstance(value, int) or abs(value) < 10**30 else str(value)[:40]
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, bytes):
        return safe_text(value.decode("utf-8", "replace"))
    if isinstance(value, dict):
        if depth >= ECHO_DEPTH:
            return f"<object with {len(value)} keys>"
        items = list(value.items())
        out = {safe_text(str(k), 64): safe_echo(v, depth + 1) for k, v in items[:ECHO_ITEMS]}
        if len(items) > ECHO_ITEMS:
            out["..."] = f"{len(items) - ECHO_ITEMS} more keys"
        return out
    if isinstance(value, list | tuple):
        if depth >= ECHO_DEPTH:
            return f"<array of {len(value)} items>"
        out_list = [safe_echo(v, depth + 1) for v in value[:ECHO_ITEMS]]
        if len(value) > ECHO_ITEMS:
            out_list.append(f"... {len(value) - ECHO_ITEMS} more items")
        return out_list
    return safe_text(str(value))


def safe_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for error in list(errors)[:50]:
        item: dict[str, Any] = {
            "type": safe_text(str(error.get("type", "invalid")), 64),
            "loc": [safe_echo(part) for part in error.get("loc", ())][:10],
            "msg": safe_text(str(error.get("msg", "")), MESSAGE_CHARS),
        }
        if "input" in error:
            item["input"] = safe_echo(error["input"])
        if error.get("ctx"):
            item["ctx"] = {safe_text(str(k), 64): safe_echo(v) for k, v in error["ctx"].items()}
        out.append(item)
    return out


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": safe_errors(exc.errors())}, status_code=422)


def install_validation_error_handler(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
