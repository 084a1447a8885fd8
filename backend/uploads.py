"""Receiving a multipart upload form: every file part streamed to disk, capped as it arrives.

One receiver serves every upload route. `receive_upload` takes a form with one file and a
few text fields (POST /generators: `name`; POST /inversions: `params`); `receive_files`
takes 1..n `file` parts (POST /images). Both run python-multipart's public streaming
parser (`MultipartParser`) over Starlette's `request.stream()`: each file part is written to
its own temporary file under the incoming folder (never spooled to the system temp dir,
which may be a RAM-backed tmpfs, and never copied), the body and every file are cut off as
soon as they pass their caps, text fields are limited in number and size, and a body that
ends before its closing boundary is refused (python-multipart's finalize() does not check).

What the file is (a generator, a photo, an image) is the routes' to judge once received;
a generator's check is backend/generator_validation.py's. The refusals are the
`UploadRefused` classes here, answered alike by backend/api/upload_errors.py.
"""

from __future__ import annotations

import codecs
import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

_MAX_FIELDS = 4  # text parts: the ones a route reads, plus a few a client may add (ignored)
_MAX_FIELD_BYTES = 1024  # per text part; a generator's name has at most 64 characters
_FORM_SLACK = 64 << 10  # how far the body may exceed its files: boundaries, headers, fields


class UploadRefused(ValueError):
    """The request is not an acceptable upload form; str() says why (safe to show the user)."""


class NotMultipart(UploadRefused):
    """The request is not multipart/form-data with a boundary."""


class UploadTooLarge(UploadRefused):
    """A file (or the whole body) passed its size cap; reading stopped there.

    `part` is the file that did (None: the body, or a declared Content-Length)."""

    def __init__(self, message: str, part: ReceivedFile | None = None):
        super().__init__(message)
        self.part = part


class MalformedUpload(UploadRefused):
    """The body is not a complete multipart message (or breaks the parser's limits)."""


class UploadFieldError(UploadRefused):
    """A form field is missing or unusable; `field` names it, `message` says why."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field} {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ReceivedFile:
    index: int  # 1-based place among the form's files
    filename: str  # as the client named it (for messages only; never a path)
    path: Path  # the bytes; removed when the `async with` block exits

    def describe(self) -> str:
        """'file 2 ("cat.jpg")': how a refusal names it."""
        name = self.filename.encode("utf-8", "backslashreplace").decode()[:80]
        return f'file {self.index} ("{name}")' if name else f"file {self.index}"


@dataclass(frozen=True)
class ReceivedUpload:
    fields: dict[str, str]  # the text fields asked for, as sent (not checked yet)
    path: Path  # the `file` part's bytes; removed when the `async with` block exits

    @property
    def name(self) -> str:
        return self.fields.get("name", "")


@dataclass(frozen=True)
class _Limits:
    max_files: int
    max_bytes: int  # per file
    max_body: int
    max_field_bytes: int
    too_many: str  # UploadFieldError's message for the file part past max_files
    only_field: str | None  # the one name file parts may have (None: any)


async def _capped(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    """`stream`, raising UploadTooLarge (and reading no further) once it passes `limit` bytes."""
    received = 0
    async for chunk in stream:
        received += len(chunk)
        if received > limit:
            raise UploadTooLarge(f"the body is larger than {limit} bytes")
        yield chunk


class _IncomingFile:
    """One file part on its way to disk (written in the thread pool, never in the loop)."""

    def __init__(self, received: ReceivedFile):
        self.received = received
        self._file = open(received.path, "xb")  # noqa: SIM115 - closed by close()/discard
        self.size = 0  # bytes accepted so far (counted as they arrive, before the write)

    def write(self, data: bytes) -> int:
        return self._file.write(data)

    def close(self) -> None:
        self._file.close()  # flushes: a full disk can show here


def _decode(raw: bytes | bytearray, charset: str) -> str:
    """As Starlette decodes form text: the form's charset, else latin-1 (never an error)."""
    try:
        return raw.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return raw.decode("latin-1")


def _charset(content_type: str) -> str:
    _, options = parse_options_header(content_type)
    name = options.get(b"charset", b"utf-8").decode("latin-1")
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "latin-1"


class _Form:
    """The callbacks of python-multipart's parser: text parts kept (capped), file parts
    handed to `_IncomingFile`s in `folder`, each capped at `limits.max_bytes`."""

    def __init__(self, folder: Path, limits: _Limits, charset: str):
        self.folder = folder
        self.limits = limits
        self.charset = charset
        self.items: list[tuple[str, str | ReceivedFile]] = []  # in the form's order
        self.files: list[_IncomingFile] = []
        self.complete = False  # the closing boundary arrived
        self._pending: list[tuple[_IncomingFile, bytes]] = []  # file bytes not written yet
        self._fields = 0
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name = ""
        self._text: bytearray | None = None
        self._file: _IncomingFile | None = None

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_part,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._disposition, self._name, self._text, self._file = b"", "", None, None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_part(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise MalformedUpload('The Content-Disposition header field "name" must be provided.')
        self._name = _decode(options[b"name"], self.charset)
        if b"filename" not in options:
            self._fields += 1
            if self._fields > _MAX_FIELDS:
                raise MalformedUpload(
                    f"Too many fields. Maximum number of fields is {_MAX_FIELDS}."
                )
            self._text = bytearray()
            return
        if len(self.files) >= self.limits.max_files:
            raise UploadFieldError("file", self.limits.too_many)
        only = self.limits.only_field
        if only is not None and self._name != only:
            raise UploadFieldError(self._name, f"is not a field; send '{only}'")
        index = len(self.files) + 1
        path = self.folder / f"{uuid.uuid4().hex}.part"
        received = ReceivedFile(index, _decode(options[b"filename"], self.charset), path)
        self._file = _IncomingFile(received)
        self.files.append(self._file)
        self.items.append((self._name, received))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._file is not None:
            self._file.size += len(chunk)
            if self._file.size > self.limits.max_bytes:
                raise UploadTooLarge(
                    f"the file is larger than {self.limits.max_bytes} bytes", self._file.received
                )
            self._pending.append((self._file, chunk))
        elif self._text is not None:
            if len(self._text) + len(chunk) > self.limits.max_field_bytes:
                raise UploadFieldError(  # say it is a text part: a file sent without a filename
                    self._name,
                    f"is a form field (a part without a filename) longer than "
                    f"{self.limits.max_field_bytes} bytes; a file part needs a filename",
                )
            self._text += chunk

    def _part_end(self) -> None:
        if self._text is not None:
            self.items.append((self._name, _decode(self._text, self.charset)))

    def _end(self) -> None:
        self.complete = True

    @property
    def pending(self) -> bool:
        """Whether parsed file bytes wait to be written."""
        return bool(self._pending)

    def write_pending(self) -> None:
        """Write the file bytes parsed so far (thread pool: a disk write may block)."""
        pending, self._pending = self._pending, []
        for incoming, chunk in pending:
            incoming.write(chunk)

    def close_files(self) -> None:
        for incoming in self.files:
            incoming.close()

    def discard(self) -> None:
        """Close and remove every file part (a failed flush of bytes to be deleted is moot)."""
        for incoming in self.files:
            with contextlib.suppress(OSError):
                incoming.close()
            incoming.received.path.unlink(missing_ok=True)

    def values(self, field: str) -> list[str | ReceivedFile]:
        return [value for name, value in self.items if name == field]


def _check_multipart(headers: Headers, expected: str) -> bytes:
    """The boundary, or NotMultipart saying what to send."""
    ctype, options = parse_options_header(headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise NotMultipart(f"send multipart/form-data with {expected}")
    return boundary


def _check_declared_length(headers: Headers, max_body: int) -> None:
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body:
        raise UploadTooLarge(f"the declared body is larger than {max_body} bytes")


@asynccontextmanager
async def _receive(
    headers: Headers,
    stream: AsyncIterator[bytes],
    folder: Path,
    boundary: bytes,
    limits: _Limits,
) -> AsyncIterator[_Form]:
    """The whole form parsed, its files on disk and flushed; removed when the block exits."""
    folder.mkdir(parents=True, exist_ok=True)
    form = _Form(folder, limits, _charset(headers.get("content-type", "")))
    try:
        try:
            parser = MultipartParser(boundary, form.callbacks())
            async for chunk in _capped(stream, limits.max_body):
                parser.write(chunk)
                if form.pending:
                    await run_in_threadpool(form.write_pending)
            parser.finalize()
        except FormParserError as exc:  # python-multipart's reason
            raise MalformedUpload(str(exc) or "Invalid multipart data.") from None
        if not form.complete:
            raise MalformedUpload("the body ends before the closing boundary")
        await run_in_threadpool(form.close_files)  # flush before anyone reads them
        yield form
    finally:
        form.discard()  # no await: it must run even if the request is being cancelled


@asynccontextmanager
async def receive_upload(
    headers: Headers,
    stream: AsyncIterator[bytes],
    folder: Path,
    *,
    max_bytes: int,
    fields: tuple[str, ...] = ("name",),  # text fields read (others are ignored)
    required: tuple[str, ...] = ("name",),
    max_field_bytes: int = _MAX_FIELD_BYTES,
) -> AsyncIterator[ReceivedUpload]:
    """Parse a multipart form with the text `fields` and one `file`, streaming it to `folder`.

    Memory stays bounded whatever the size: the file goes to disk as it arrives, text fields
    are limited in number and size. Raises NotMultipart, UploadTooLarge (a declared
    Content-Length or the body past `max_bytes` plus the form's slack, or the file past
    `max_bytes`, as soon as either shows), MalformedUpload, UploadFieldError, and OSError
    from the disk (ENOSPC). The file is removed when the block exits, whichever way.

    Example:
        async with receive_upload(request.headers, request.stream(), incoming,
                                  max_bytes=1 << 30) as upload:
            name = check_upload_name(upload.name)
            await run_in_threadpool(store_generator, upload.path, folder, name, ...)
    """
    names = " and ".join(f"'{f}'" for f in (*fields, "file"))
    boundary = _check_multipart(headers, f"the fields {names}")
    max_body = max_bytes + _FORM_SLACK
    _check_declared_length(headers, max_body)
    limits = _Limits(1, max_bytes, max_body, max_field_bytes, "send exactly one file", None)
    async with _receive(headers, stream, folder, boundary, limits) as form:
        found: dict[str, str] = {}
        for field in fields:
            values = form.values(field)
            if not values:
                if field in required:
                    raise UploadFieldError(field, "is required")
                continue
            if len(values) > 1:
                raise UploadFieldError(field, "must be sent once")
            if not isinstance(values[0], str):
                raise UploadFieldError(field, "must be a text field, not a file")
            found[field] = values[0]
        files = form.values("file")
        if not files:
            raise UploadFieldError("file", "is required")
        if not isinstance(files[-1], ReceivedFile):
            raise UploadFieldError("file", "must be a file part (with a filename)")
        yield ReceivedUpload(fields=found, path=files[-1].path)


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

    A part beyond `max_files` stops the parse at its headers; text parts are ignored.
    Raises NotMultipart, UploadTooLarge (`part`: which file; None: the body),
    MalformedUpload, UploadFieldError (no file, too many, a file under another name) and
    OSError (ENOSPC).
    """
    boundary = _check_multipart(headers, f"1 to {max_files} 'file' parts")
    max_body = max_files * (max_bytes + _FORM_SLACK)
    _check_declared_length(headers, max_body)
    too_many = f"send at most {max_files} images in one request"
    limits = _Limits(max_files, max_bytes, max_body, _MAX_FIELD_BYTES, too_many, "file")
    async with _receive(headers, stream, folder, boundary, limits) as form:
        if not form.files:
            raise UploadFieldError("file", f"is required: send 1 to {max_files} images")
        yield [incoming.received for incoming in form.files]


__all__ = [
    "MalformedUpload",
    "NotMultipart",
    "ReceivedFile",
    "ReceivedUpload",
    "UploadFieldError",
    "UploadRefused",
    "UploadTooLarge",
    "receive_files",
    "receive_upload",
]
