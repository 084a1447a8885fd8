"""Receiving several files in one multipart form (POST /images): streamed to disk, capped.

The one-file receiver (backend/uploads.py) serves the generator and photo uploads; example
images come several at a time, so here every `file` part goes to its own temporary file
under the incoming folder, each capped at `max_bytes`, the body at `max_files` of them,
and a part beyond `max_files` stops the parse at its headers. The refusals are
backend/uploads.py's, so the answers (backend/api/upload_errors.py) are the same.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from backend.uploads import (
    _FORM_SLACK,
    MalformedUpload,
    NotMultipart,
    UploadFieldError,
    UploadTooLarge,
    _capped,
    _IncomingFile,
)

_MAX_FIELDS = 4  # text parts are ignored; a few are tolerated
_MAX_FIELD_BYTES = 1024


@dataclass(frozen=True)
class ReceivedFile:
    index: int  # 1-based place among the form's files
    filename: str  # as the client named it (for messages only; never a path)
    path: Path  # the bytes; removed when the `async with` block exits

    def describe(self) -> str:
        """'file 2 ("cat.jpg")': how a refusal names it."""
        name = self.filename.encode("utf-8", "backslashreplace").decode()[:80]
        return f'file {self.index} ("{name}")' if name else f"file {self.index}"


class _NumberedFile(_IncomingFile):
    """A file part whose refusal for size names the part."""

    def __init__(self, path: Path, max_bytes: int, label: str):
        super().__init__(path, max_bytes)
        self.label = label

    def write(self, data: bytes) -> int:
        try:
            return super().write(data)
        except UploadTooLarge:
            mib = self.max_bytes / (1 << 20)
            raise UploadTooLarge(
                f"{self.label} is larger than the {mib:g} MiB limit per image (NADA_MAX_PHOTO_MB)"
            ) from None


class _ImagesParser(MultiPartParser):
    """Starlette's streaming parser; each file part to its own capped file in `folder`, and
    `complete` set only when the closing boundary arrived (see backend/uploads.py)."""

    def __init__(
        self,
        headers: Headers,
        stream: AsyncGenerator[bytes, None],
        folder: Path,
        max_files: int,
        max_bytes: int,
    ):
        super().__init__(
            headers,
            stream,
            max_files=max_files,
            max_fields=_MAX_FIELDS,
            max_part_size=_MAX_FIELD_BYTES,
        )
        self.folder = folder
        self.max_bytes = max_bytes
        self.complete = False
        self.incoming: list[tuple[_NumberedFile, Path, str]] = []

    def on_headers_finished(self) -> None:
        try:
            super().on_headers_finished()
        except MultiPartException:
            if self._current_files > self.max_files:
                raise UploadFieldError(
                    "file", f"send at most {self.max_files} images in one request"
                ) from None
            raise
        upload = self._current_part.file
        if upload is None:
            return
        if self._current_part.field_name != "file":
            raise UploadFieldError(self._current_part.field_name, "is not a field; send 'file'")
        upload.file.close()  # Starlette's spool, still empty
        path = self.folder / f"{uuid.uuid4().hex}.part"
        name = upload.filename or ""
        label = ReceivedFile(len(self.incoming) + 1, name, path).describe()
        incoming = _NumberedFile(path, self.max_bytes, label)
        self.incoming.append((incoming, path, name))
        upload.file = incoming  # type: ignore[assignment]

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        try:
            super().on_part_data(data, start, end)
        except MultiPartException:
            field = self._current_part.field_name
            raise UploadFieldError(field, f"is longer than {self.max_part_size} bytes") from None

    def on_end(self) -> None:
        self.complete = True

    def close_files(self) -> None:
        for incoming, _, _ in self.incoming:
            incoming.close()

    def discard(self) -> None:
        for incoming, path, _ in self.incoming:
            with contextlib.suppress(OSError):
                incoming.close()
            path.unlink(missing_ok=True)


@asynccontextmanager
async def receive_files(
    headers: Headers,
    stream: AsyncIterator[bytes],
    folder: Path,
    *,
    max_files: int,
    max_bytes: int,  # per file
) -> AsyncIterator[list[ReceivedFile]]:
    """The form's `file` parts (1..max_files), each on disk; removed when the block exits.

    Raises NotMultipart, UploadTooLarge (str(): which file, or the body), MalformedUpload,
    UploadFieldError (no file, too many, a file under another name) and OSError (ENOSPC).
    """
    ctype, options = parse_options_header(headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not options.get(b"boundary"):
        raise NotMultipart(f"send multipart/form-data with 1 to {max_files} 'file' parts")
    max_body = max_files * (max_bytes + _FORM_SLACK)
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body:
        raise UploadTooLarge(f"the declared body is larger than {max_body} bytes")
    folder.mkdir(parents=True, exist_ok=True)
    parser = _ImagesParser(headers, _capped(stream, max_body), folder, max_files, max_bytes)
    try:
        try:
            form = await parser.parse()
        except MultiPartException as exc:
            raise MalformedUpload(str(exc.__cause__ or exc.message)) from None
        if not parser.complete:
            raise MalformedUpload("the body ends before the closing boundary")
        files = [f for f in form.getlist("file") if isinstance(f, UploadFile)]
        if not files:
            raise UploadFieldError("file", f"is required: send 1 to {max_files} images")
        await run_in_threadpool(parser.close_files)  # flush before they are decoded
        yield [
            ReceivedFile(index=i, filename=name, path=path)
            for i, (_, path, name) in enumerate(parser.incoming, start=1)
        ]
    finally:
        parser.discard()
