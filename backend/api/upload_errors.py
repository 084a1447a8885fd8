"""The answers to a refused multipart upload, the same for every upload route
(POST /generators, /inversions, /images): 415, 413 naming the setting, 422 naming the
field, 400 for a malformed body, 429 past the token's upload rate or while the validators
(or this token's share of them, or the pixel budget) are busy, 507 on a full disk."""

from __future__ import annotations

import errno
import math

from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError

from backend.uploads import MalformedUpload, NotMultipart, UploadFieldError, UploadRefused
from backend.validation_slots import ValidatorsBusy
from jobs.settings import Settings

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _DISK_FULL


def disk_full(lost: str) -> HTTPException:
    """507 saying what was not stored (`lost`: 'the photo was not stored')."""
    return HTTPException(
        status.HTTP_507_INSUFFICIENT_STORAGE,
        f"the server's disk is full; {lost} (try again later)",
    )


def validators_busy(exc: ValidatorsBusy, message: str | None = None) -> HTTPException:
    """429 with Retry-After while every validation slot is taken (`message`: the route's
    words for that), this token holds its share of them or the pixel budget is spent (the
    exception's own words: backend/validation_slots.py)."""
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        str(exc) if exc.own_message else message or str(exc),
        headers={"Retry-After": str(exc.retry_after_s)},
    )


def check_upload_rate(request: Request, settings: Settings, owner: str | None) -> None:
    """429 with Retry-After past NADA_UPLOADS_PER_MINUTE uploads of this token in a minute
    (every upload route together, counted when the request arrives, refused or not;
    backend/security.py's limiter, per API process). Without tokens, no limit."""
    if owner is None:
        return
    wait = request.app.state.upload_limiter.acquire(owner)
    if wait:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"more than {settings.uploads_per_minute} uploads in a minute from this token "
            "(NADA_UPLOADS_PER_MINUTE)",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


def unprocessable(field: str, message: str) -> RequestValidationError:
    """422 with FastAPI's shape: loc ['body', field]."""
    return RequestValidationError(
        [{"type": "invalid_param", "loc": ("body", field), "msg": message, "input": None}]
    )


def upload_refusal(
    exc: UploadRefused, *, max_bytes: int, what: str, setting: str
) -> HTTPException | RequestValidationError:
    """`what`: 'the upload', 'the photo'; `setting`: the cap's variable (NADA_MAX_UPLOAD_MB)."""
    if isinstance(exc, NotMultipart):
        return HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, str(exc))
    if isinstance(exc, UploadFieldError):
        return unprocessable(exc.field, exc.message)
    if isinstance(exc, MalformedUpload):
        return HTTPException(status.HTTP_400_BAD_REQUEST, f"malformed multipart body: {exc}")
    return HTTPException(  # UploadTooLarge
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"{what} is larger than the {max_bytes / (1 << 20):g} MiB limit ({setting})",
    )
