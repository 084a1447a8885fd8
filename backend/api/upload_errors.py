"""The answers to a refused multipart upload, the same for every upload route
(POST /generators, /inversions, /images): 415, 413 naming the setting, 422 naming the
field, 400 for a malformed body, 429 while the validators are busy, 507 on a full disk."""

from __future__ import annotations

import errno

from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError

from backend.uploads import MalformedUpload, NotMultipart, UploadFieldError, UploadRefused
from backend.validation_slots import ValidatorsBusy

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
    """429 with Retry-After while every validation slot is taken."""
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        message or str(exc),
        headers={"Retry-After": str(exc.retry_after_s)},
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
