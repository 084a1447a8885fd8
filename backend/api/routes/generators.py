"""/generators: the base generators a job may start from, and uploads of custom ones.

POST /generators reads the multipart body as a stream (python-multipart's push parser over
`request.stream()`, never Starlette's spooled form): the file part goes to a temporary
file under the data dir and the request is refused with 413 as soon as it passes
NADA_MAX_UPLOAD_MB. The file is then checked by `backend.uploads` in a limited child
process (this process never imports torch nor unpickles the upload) and published
atomically as `<data_dir>/generators/<name>.pt` plus a JSON sidecar.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, status
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from backend.api.deps import CurrentOwner, SettingsDep
from backend.schemas import GeneratorPublic, GeneratorsPublic
from backend.uploads import GeneratorRejected, UploadTooLarge, store_generator
from jobs.generators import (
    RANDOM_SIZES,
    check_upload_name,
    list_generators,
    list_uploaded,
    name_taken,
    uploads_dir,
)
from nada.errors import ParamError

router = APIRouter(prefix="/generators", tags=["generators"])

_FORM_SLACK = 64 << 10  # multipart headers and the name field around the file
_NAME_FIELD_MAX = 1024


@router.get("", response_model=GeneratorsPublic)
def read_generators(settings: SettingsDep) -> GeneratorsPublic:
    """Registered and uploaded generators; 'random-<size>' (seeded random weights) too."""
    data = [GeneratorPublic(**vars(g)) for g in list_generators(settings.data_dir)]
    return GeneratorsPublic(data=data, count=len(data), random_sizes=list(RANDOM_SIZES))


def _unprocessable(field: str, message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"loc": ["body", field], "msg": message, "type": "invalid_param"}],
    )


class _Form:
    """The two fields of the upload form, collected from a streaming multipart parser."""

    def __init__(self, file_path: Path, max_bytes: int):
        self.file_path, self.max_bytes = file_path, max_bytes
        self.name: str | None = None
        self.has_file = False
        self.file_bytes = 0
        self.error: Exception | None = None
        self._out = None
        self._field: str | None = None
        self._value = bytearray()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._disposition = b""

    # python-multipart callbacks (data[start:end] is the chunk).
    def on_part_begin(self) -> None:
        self._field, self._disposition = None, b""
        self._value.clear()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if bytes(self._header_field).lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self._field = options.get(b"name", b"").decode("latin-1")
        if self._field == "file":
            if self.has_file:
                self.error = _unprocessable("file", "send exactly one file")
                return
            self.has_file = True
            self._out = open(self.file_path, "wb")  # noqa: SIM115 - closed in on_part_end/close

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.error is not None:
            return
        if self._field == "file" and self._out is not None:
            self.file_bytes += end - start
            if self.file_bytes > self.max_bytes:
                self.error = UploadTooLarge(f"the file is larger than {self.max_bytes} bytes")
                return
            self._out.write(data[start:end])
        elif self._field == "name":
            self._value += data[start:end]
            if len(self._value) > _NAME_FIELD_MAX:
                self.error = _unprocessable("name", "is too long")

    def on_part_end(self) -> None:
        if self._field == "file":
            self.close()
        elif self._field == "name" and self.error is None:
            self.name = self._value.decode("utf-8", errors="replace")

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


def _too_large(max_bytes: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"the file is larger than the {max_bytes / (1 << 20):g} MiB upload limit "
        "(NADA_MAX_UPLOAD_MB)",
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=GeneratorPublic)
async def upload_generator(
    request: Request, settings: SettingsDep, owner: CurrentOwner
) -> GeneratorPublic:
    """Upload a custom base generator: multipart form with `name` and `file` (.pt).

    The file must be a StyleGAN2 generator state dict (tensors only; loaded with
    weights_only=True in a separate, memory- and time-limited process). 201: stored and
    usable as a job's `generator`; 409: the name is taken; 413: over NADA_MAX_UPLOAD_MB;
    422: a bad name or a refused file (the message says why)."""
    max_bytes = int(settings.max_upload_mb * (1 << 20))
    ctype, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "send multipart/form-data with the fields 'name' and 'file'",
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + _FORM_SLACK:
        raise _too_large(max_bytes)

    incoming = settings.data_dir / "uploads-incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    tmp = incoming / f"{uuid.uuid4().hex}.part"
    form = _Form(tmp, max_bytes)
    callbacks = {
        k: getattr(form, k)
        for k in (
            "on_part_begin",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_part_data",
            "on_part_end",
        )
    }
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        try:
            async for chunk in request.stream():
                parser.write(chunk)
                if form.error is not None:
                    break
            else:
                parser.finalize()
        except Exception as exc:  # a malformed body
            if form.error is None:
                raise HTTPException(
                    status.HTTP_400_BAD_REQUEST, f"malformed multipart body: {exc}"
                ) from None
        finally:
            form.close()
        if isinstance(form.error, UploadTooLarge):
            raise _too_large(max_bytes)
        if isinstance(form.error, HTTPException):
            raise form.error
        if form.name is None:
            raise _unprocessable("name", "is required")
        if not form.has_file:
            raise _unprocessable("file", "is required")
        try:
            name = check_upload_name(form.name)
        except ParamError as exc:
            raise _unprocessable("name", str(exc)) from None
        folder = uploads_dir(settings.data_dir)
        if name_taken(name, settings.data_dir):
            raise HTTPException(status.HTTP_409_CONFLICT, f"generator {name!r} already exists")
        uploaded_at = datetime.now(UTC).isoformat()
        try:
            await run_in_threadpool(
                store_generator, tmp, folder, name, owner=owner, uploaded_at=uploaded_at
            )
        except GeneratorRejected as exc:
            raise _unprocessable("file", f"refused: {exc}") from None
        except FileExistsError:
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"generator {name!r} already exists"
            ) from None
    finally:
        tmp.unlink(missing_ok=True)
    entry = next(g for g in list_uploaded(settings.data_dir) if g.name == name)
    return GeneratorPublic(**vars(entry))
