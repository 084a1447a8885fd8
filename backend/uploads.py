"""Receiving, checking and publishing an uploaded generator in this (torch-free) process.

`receive_upload` parses the multipart form of POST /generators as a stream with Starlette's
`MultiPartParser` (python-multipart underneath): the file part is written straight to a
temporary file under the incoming folder and the request is cut off as soon as it passes the
size cap. `validate_generator_file` runs `python -m stylegan2.validate` with RLIMIT_AS /
RLIMIT_CPU set in the child and a wall-clock timeout, at most `max_running` of them at once
in this process (`VALIDATIONS`), and turns its answer into a `ValidatedGenerator`, a
`GeneratorRejected` whose message says why, or an OSError(ENOSPC) when the child found the
disk full. `store_generator` publishes a validated file under its name.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from nada.rundir import write_text
from stylegan2 import sniff

_REPO = Path(__file__).resolve().parent.parent


class GeneratorRejected(ValueError):
    """The upload is not an acceptable generator; str() says why (safe to show the user)."""


class ValidatorsBusy(RuntimeError):
    """As many validator children as allowed are running in this process; retry later."""

    retry_after_s = 10  # the Retry-After hint: a check takes seconds, up to its 180 s timeout

    def __init__(self, limit: int):
        super().__init__(
            f"{limit} uploaded generator(s) are being checked already; try again in "
            f"{self.retry_after_s} s (NADA_MAX_CONCURRENT_VALIDATIONS)"
        )
        self.limit = limit


class ValidationSlots:
    """How many validator children run at once: a counter shared by this process's threads.

    Per process: each API process (uvicorn worker) counts its own children."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = 0

    @contextmanager
    def take(self, limit: int | None) -> Iterator[None]:
        """Hold a slot for the block; ValidatorsBusy if `limit` are taken (None: no limit)."""
        with self._lock:
            if limit is not None and self.running >= limit:
                raise ValidatorsBusy(limit)
            self.running += 1
        try:
            yield
        finally:
            with self._lock:
                self.running -= 1


VALIDATIONS = ValidationSlots()


@dataclass(frozen=True)
class ValidatedGenerator:
    size: int  # image resolution in pixels
    sha256: str  # of the re-saved file


def _limits(memory_bytes: int, cpu_seconds: int):  # type: ignore[no-untyped-def]
    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))

    return apply


def validate_generator_file(
    src: Path,
    dst: Path,
    *,
    memory_bytes: int = 8 << 30,  # address space of the child (torch alone maps ~2-3 GiB)
    cpu_seconds: int = 120,
    timeout_s: float = 180.0,
    max_running: int | None = None,  # children at once in this process; None: no limit
) -> ValidatedGenerator:
    """Validate `src` in a limited child process and write the safe re-save to `dst`.

    A file whose first bytes are neither a zip archive nor a pickle is refused here, in the
    API process, without a child (junk costs no interpreter start).

    Raises GeneratorRejected (the file is refused, or the check ran out of memory/time),
    ValidatorsBusy (`max_running` children are running; no child was started) and
    OSError(ENOSPC) (the child could not write `dst`: the disk is full).
    """
    try:
        reason = sniff.not_torch_reason(sniff.read_head(src))
    except OSError as exc:
        raise GeneratorRejected(f"the upload could not be read: {exc.strerror or exc}") from None
    if reason is not None:  # plainly not a checkpoint: no child needed to say so
        raise GeneratorRejected(f"the upload is not a PyTorch checkpoint ({reason})")
    try:
        with VALIDATIONS.take(max_running):  # held until the child has exited
            done = subprocess.run(
                [sys.executable, "-m", "stylegan2.validate", str(src), str(dst)],
                cwd=_REPO,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                preexec_fn=_limits(memory_bytes, cpu_seconds),
            )
    except subprocess.TimeoutExpired:
        raise GeneratorRejected(f"checking the file took longer than {timeout_s:.0f} s") from None
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        if done.returncode < 0 or "MemoryError" in done.stderr:
            raise GeneratorRejected(
                "checking the file exceeded its memory or CPU-time limit (is it too large?)"
            )
        raise GeneratorRejected(f"the file could not be checked (exit status {done.returncode})")
    if answer.get("disk_full"):
        raise OSError(errno.ENOSPC, "no space left on the device while re-saving the upload")
    if not answer.get("ok"):
        raise GeneratorRejected(str(answer.get("error", "refused")))
    return ValidatedGenerator(size=int(answer["size"]), sha256=str(answer["sha256"]))


def store_generator(
    src: Path,
    folder: Path,
    name: str,
    *,
    owner: str | None,
    uploaded_at: str,
    max_validations: int | None = None,  # validator children at once in this process
) -> ValidatedGenerator:
    """Validate `src` and publish it as `folder/<name>.pt` plus `folder/<name>.json`.

    Both are written under temporary names and renamed into place (the .json last: a name
    is listed/usable only once both exist). Raises GeneratorRejected, ValidatorsBusy,
    FileExistsError, OSError (ENOSPC: the disk is full)."""
    folder.mkdir(parents=True, exist_ok=True)
    final, sidecar = folder / f"{name}.pt", folder / f"{name}.json"
    tmp_pt = folder / f".{name}.{os.getpid()}.{uuid.uuid4().hex}.pt.tmp"
    try:
        result = validate_generator_file(src, tmp_pt, max_running=max_validations)
        meta = {
            "name": name,
            "size": result.size,
            "sha256": result.sha256,
            "bytes": tmp_pt.stat().st_size,
            "uploaded_at": uploaded_at,
            "owner": owner,
        }
        os.link(tmp_pt, final)  # FileExistsError if the name was taken meanwhile
        try:
            write_text(sidecar, json.dumps(meta))
        except BaseException:
            final.unlink(missing_ok=True)
            raise
        return result
    finally:
        tmp_pt.unlink(missing_ok=True)


# --- Receiving the form -------------------------------------------------------------------

_MAX_FIELDS = 4  # text parts: `name`, plus a few a client may add (ignored)
_MAX_FIELD_BYTES = 1024  # per text part; a valid name has at most 64 characters
_FORM_SLACK = 64 << 10  # how far the body may exceed the file cap: boundaries, headers, fields


class UploadRefused(ValueError):
    """The request is not an acceptable upload form; str() says why (safe to show the user)."""


class NotMultipart(UploadRefused):
    """The request is not multipart/form-data with a boundary."""


class UploadTooLarge(UploadRefused):
    """The file (or the whole body) passed the size cap; reading stopped there."""


class MalformedUpload(UploadRefused):
    """The body is not a complete multipart message (or breaks the parser's limits)."""


class UploadFieldError(UploadRefused):
    """A form field is missing or unusable; `field` names it, `message` says why."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field} {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ReceivedUpload:
    fields: dict[str, str]  # the text fields asked for, as sent (not checked yet)
    path: Path  # the `file` part's bytes; removed when the `async with` block exits

    @property
    def name(self) -> str:
        return self.fields.get("name", "")


async def _capped(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    """`stream`, raising UploadTooLarge (and reading no further) once it passes `limit` bytes."""
    received = 0
    async for chunk in stream:
        received += len(chunk)
        if received > limit:
            raise UploadTooLarge(f"the body is larger than {limit} bytes")
        yield chunk


class _IncomingFile:
    """The file part on disk; a write past `max_bytes` raises UploadTooLarge instead."""

    def __init__(self, path: Path, max_bytes: int):
        self._file = open(path, "xb")  # noqa: SIM115 - closed by the parser's discard()
        self.max_bytes = max_bytes
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise UploadTooLarge(f"the file is larger than {self.max_bytes} bytes")
        return self._file.write(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def close(self) -> None:
        self._file.close()  # flushes: a full disk can show here


class _UploadParser(MultiPartParser):
    """Starlette's streaming multipart parser with its limits set for the upload form, and:

    - the file part is written to `path` (Starlette spools to the system temp dir, which may
      be a RAM-backed tmpfs, and a copy would write a large upload twice), capped in size;
    - a second file and an over-long text field are refused naming the field (422, not 400);
    - `complete` says whether the closing boundary arrived: python-multipart's finalize()
      does not check, so a truncated body would otherwise parse as a shorter form.

    It reads two private attributes, `_current_part` and `_current_files` (Starlette 1.10);
    tests/backend/uploads/test_form.py fails if an upgrade renames them."""

    def __init__(
        self,
        headers: Headers,
        stream: AsyncGenerator[bytes, None],
        path: Path,
        max_bytes: int,
        max_field_bytes: int = _MAX_FIELD_BYTES,
    ):
        super().__init__(
            headers,
            stream,
            max_files=1,
            max_fields=_MAX_FIELDS,
            max_part_size=max_field_bytes,
        )
        self.path = path
        self.max_bytes = max_bytes  # of the file part
        self.complete = False
        self._incoming: _IncomingFile | None = None

    def on_headers_finished(self) -> None:
        try:
            super().on_headers_finished()
        except MultiPartException:
            if self._current_files > self.max_files:
                raise UploadFieldError("file", "send exactly one file") from None
            raise
        upload = self._current_part.file
        if upload is not None:  # a file part; max_files=1, so the only one
            upload.file.close()  # Starlette's spool, still empty
            self._incoming = _IncomingFile(self.path, self.max_bytes)
            # No `_rolled` attribute: UploadFile writes to it in the thread pool.
            upload.file = self._incoming  # type: ignore[assignment]

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        try:
            super().on_part_data(data, start, end)
        except MultiPartException:
            field = self._current_part.field_name
            raise UploadFieldError(field, f"is longer than {self.max_part_size} bytes") from None

    def on_end(self) -> None:
        self.complete = True

    def close_file(self) -> None:
        if self._incoming is not None:
            self._incoming.close()

    def discard(self) -> None:
        """Close and remove the file part (a failed flush of bytes to be deleted is moot)."""
        with contextlib.suppress(OSError):
            self.close_file()
        self.path.unlink(missing_ok=True)


def _form_fields(
    form: FormData, fields: tuple[str, ...], required: tuple[str, ...]
) -> dict[str, str]:
    """The text `fields` of a parsed form with one `file` part; else UploadFieldError."""
    found: dict[str, str] = {}
    for field in fields:
        values = form.getlist(field)
        if not values:
            if field in required:
                raise UploadFieldError(field, "is required")
            continue
        if len(values) > 1:
            raise UploadFieldError(field, "must be sent once")
        if not isinstance(values[0], str):
            raise UploadFieldError(field, "must be a text field, not a file")
        found[field] = values[0]
    file = form.get("file")
    if file is None:
        raise UploadFieldError("file", "is required")
    if not isinstance(file, UploadFile):
        raise UploadFieldError("file", "must be a file part (with a filename)")
    return found


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
    """Parse a multipart form with the text `fields` and `file`, streaming the file to `folder`.

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
    ctype, options = parse_options_header(headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not options.get(b"boundary"):
        names = " and ".join(f"'{f}'" for f in (*fields, "file"))
        raise NotMultipart(f"send multipart/form-data with the fields {names}")
    max_body = max_bytes + _FORM_SLACK
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body:
        raise UploadTooLarge(f"the declared body is larger than {max_body} bytes")

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.part"
    parser = _UploadParser(headers, _capped(stream, max_body), path, max_bytes, max_field_bytes)
    try:
        try:
            form = await parser.parse()
        except MultiPartException as exc:  # python-multipart's reason, if it gave one
            raise MalformedUpload(str(exc.__cause__ or exc.message)) from None
        if not parser.complete:
            raise MalformedUpload("the body ends before the closing boundary")
        found = _form_fields(form, fields, required)
        await run_in_threadpool(parser.close_file)  # flush before the validator reads it
        yield ReceivedUpload(fields=found, path=path)
    finally:
        parser.discard()  # no await: it must run even if the request is being cancelled
