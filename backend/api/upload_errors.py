"""The answers to a refused multipart upload, the same for every upload route
(POST /generators, POST /inversions): 415, 413 naming the setting, 422 naming the field,
400 for a malformed body."""

from __future__ import annotations

from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError

from backend.uploads import MalformedUpload, NotMultipart, UploadFieldError, UploadRefused


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
