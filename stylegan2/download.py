"""Fetch one file over HTTP(S) into a cache: resumable, checksummed, one process at a time.

`download(url, dest, sha256=...)` streams into `<dest>.part`, resumes a `.part` left by an
earlier attempt with an HTTP Range request, checks the SHA-256 of the whole file and only
then renames it to `dest`. A lock file (`<dest>.lock`, `fcntl.flock`) makes a second process
wait for the first instead of downloading the same bytes twice.

Standard library only (urllib), plus tqdm for the progress bar; no torch.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import logging
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from nada import rundir

log = logging.getLogger(__name__)

USER_AGENT = "stylegan-nada (+https://github.com/rinongal/StyleGAN-nada)"
_CHUNK = 1 << 20  # bytes per read/write
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")


OFFLINE_ENV = "NADA_OFFLINE"  # "1": this machine downloads no model file (HF_HUB_OFFLINE too)


def downloads_off() -> bool:
    """Whether this machine is told to download nothing: $NADA_OFFLINE, or Hugging Face's
    own $HF_HUB_OFFLINE (an operator who set that for open_clip's weights is offline for
    every model file). Read on each call, so a test or a long-lived process may change it."""
    return any(
        os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on")
        for var in (OFFLINE_ENV, "HF_HUB_OFFLINE")
    )


class DownloadError(RuntimeError):
    """A file could not be fetched; the message says how to place it by hand (for the
    operator: paths, variables, commands). `model` names the file's registry entry ('ffhq-1024',
    'face-s3fd', 'ViT-B-32:openai') where the raiser knows it: worker/failures.py words the
    page's message from it."""

    def __init__(self, message: str, *, model: str | None = None):
        super().__init__(message)
        self.model = model


class ChecksumError(DownloadError):
    """A file's SHA-256 is not the expected one."""

    def __init__(self, message: str, *, expected: str, got: str, model: str | None = None):
        super().__init__(message, model=model)
        self.expected = expected
        self.got = got


class _Incomplete(Exception):
    """The server closed the connection early; the attempt is retried (and resumed)."""


# (path, inode, size, mtime_ns) -> hex digest, so that verifying a cached file and then
# recording its hash in a checkpoint's identity reads a 380 MB file once, not twice.
_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def _stat_key(path: Path) -> tuple[str, int, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file (remembered while the file's size and mtime are unchanged)."""
    path = Path(path)
    key = _stat_key(path)
    digest = _DIGESTS.get(key)
    if digest is None:
        hasher = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                hasher.update(chunk)
        digest = _DIGESTS[key] = hasher.hexdigest()
    return digest


def remember_digest(path: Path, digest: str) -> None:
    """Tell `sha256_file` the digest of a file just written (so it is not read back)."""
    _DIGESTS[_stat_key(path)] = digest


# -- trust on first use ------------------------------------------------------------------
# A file whose publisher lists no checksum is trusted the first time it is used, and its
# hash is recorded next to it in `<file>.sha256`; every later use verifies against that.

_SHA256 = re.compile(r"[0-9a-f]{64}")


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def recorded_sha256(path: Path) -> str | None:
    """The digest recorded next to `path` on first use, or None."""
    try:
        text = sidecar_path(path).read_text().split()
    except FileNotFoundError:
        return None
    return text[0].lower() if text and _SHA256.fullmatch(text[0].lower()) else None


def record_sha256(path: Path, digest: str) -> None:
    rundir.write_text(sidecar_path(path), f"{digest}  {path.name}\n")


def verify_file(path: Path, published: str | None, *, name: str, fix: str) -> str:
    """Check `path` against its published sha256, else the one recorded on first use.

    A file with neither (placed by hand, or downloaded from a source that publishes no
    hash) is trusted now and its hash recorded. `fix` ends the mismatch message: how to
    get a good copy. Returns the file's digest.

    Raises:
        ChecksumError: the file does not match.
    """
    digest = sha256_file(path)
    expected = published or recorded_sha256(path)
    if expected is None:
        log.warning("%s: no checksum known; trusting %s (sha256 %s)", name, path, digest)
        record_sha256(path, digest)
    elif digest != expected:
        what = "published" if published else f"recorded in {sidecar_path(path).name} on first use"
        raise ChecksumError(
            f"{name}: cached file {path} has sha256 {digest}, but the {what} sha256 is "
            f"{expected}; the file is damaged or was replaced. {fix}",
            expected=expected,
            got=digest,
        )
    return digest


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing); blocks while another holds it.

    The lock file is left in place: deleting it would let a third process lock a new file
    while a second still waits on the old one.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process to finish %s", path.with_suffix(""))
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,  # expected hex digest; None: accept any (caller records it)
    name: str | None = None,  # what the file is, for messages ('ffhq-1024'); default: file name
    progress: bool | None = None,  # progress bar on stderr; None: only when stderr is a tty
    timeout: float = 15.0,  # seconds without data before an attempt fails (no answer at
    # all: the server is taken as unreachable and not retried)
    retries: int = 3,  # further attempts (each resuming) after a failure mid-transfer
    backoff: float = 1.0,  # seconds before the first retry; doubles each time
    by_hand: str | None = None,  # how to get the file without us; default: a generator's
) -> str:
    """Download `url` to `dest` and return the file's hex SHA-256.

    Bytes go to `<dest>.part` first; a `.part` from an interrupted attempt is resumed with a
    Range request (a server that answers 200 instead of 206 restarts it from zero). `dest`
    appears only once complete and, when `sha256` is given, verified. If `dest` already
    exists (e.g. another process finished it while this one waited on the lock) it is
    verified and kept.

    A server that cannot be reached at all (no DNS, refused, no route, no answer within
    `timeout`) fails at once without retries, and so does any download while
    `downloads_off()`: a job whose model is not here fails in seconds, not minutes.

    Raises:
        ChecksumError: the downloaded bytes do not hash to `sha256` (the `.part` is removed).
        DownloadError: the network or server failed, or downloads are off; the `.part` is
            kept for a later resume.
    """
    dest = Path(dest)
    label = name or dest.name
    how = by_hand or f"place the file by hand at {dest} or pass a local path with --generator PATH"
    expected = sha256.lower() if sha256 else None
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")

    with file_lock(dest.with_name(dest.name + ".lock")):
        if dest.is_file():
            cached = sha256_file(dest)
            if expected and cached != expected:
                raise ChecksumError(
                    f"{label}: cached file {dest} has sha256 {cached}, expected {expected}; "
                    "delete it and download again",
                    expected=expected,
                    got=cached,
                )
            return cached
        if downloads_off():
            raise DownloadError(
                f"{label} is not on this machine and downloads are off ({OFFLINE_ENV} or "
                f"HF_HUB_OFFLINE is set); {how}",
                model=name,
            )

        last_error: BaseException | None = None
        digest: str | None = None
        for attempt in range(retries + 1):
            if attempt:
                delay = backoff * 2 ** (attempt - 1)
                log.warning("%s: %s; retrying in %.0f s", label, _reason(last_error), delay)
                time.sleep(delay)
            try:
                digest = _fetch(url, part, label=label, progress=progress, timeout=timeout)
                break
            except urllib.error.HTTPError as exc:
                last_error = exc
                if exc.code < 500 and exc.code not in (408, 429):
                    break  # 404, 403, ...: asking again will not help
            except (OSError, http.client.HTTPException, _Incomplete) as exc:
                last_error = exc  # URLError, refused, reset, timeout, short read
                if _offline(exc):
                    break  # no route or no server: fail now, with the how-to message
        if digest is None:
            raise DownloadError(
                f"could not download {label} from {url} ({_reason(last_error)}); {how}"
                + (" (a later attempt resumes the partial download)" if part.exists() else ""),
                model=name,
            ) from last_error

        if expected and digest != expected:
            part.unlink(missing_ok=True)
            raise ChecksumError(
                f"checksum mismatch for {label} downloaded from {url}: expected sha256 "
                f"{expected}, got {digest}; the download was deleted. Try again; if it "
                "persists, the file at that URL is not the published one",
                expected=expected,
                got=digest,
                model=name,
            )
        with rundir.atomic_output(dest) as tmp:
            os.replace(part, tmp)  # the verified download is published by the one writer
        remember_digest(dest, digest)
        log.info("downloaded %s to %s (sha256 %s)", label, dest, digest)
        return digest


class _Unreachable(OSError):
    """The server never answered (connecting, or its headers): taken as offline, not retried."""


def _offline(exc: BaseException) -> bool:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return isinstance(reason, socket.gaierror | _Unreachable) or (
        isinstance(reason, OSError)
        and reason.errno in (errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH)
    )


def _reason(exc: BaseException | None) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _fetch(
    url: str,
    part: Path,
    *,
    label: str,
    progress: bool | None,
    timeout: float,
) -> str:
    """One attempt: append the missing bytes to `part` and return the whole file's digest.

    No answer within `timeout` (connecting, or the response's headers) is `_Unreachable`:
    the caller does not retry a server that never answered."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except TimeoutError as exc:  # socket.timeout: connecting, or waiting for the headers
        raise _Unreachable(f"no answer within {timeout:g} s") from exc
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not offset:
            raise
        # Range Not Satisfiable: the .part may already hold the whole file.
        match = _UNSATISFIED_RANGE.search(exc.headers.get("Content-Range", ""))
        exc.close()
        if match and int(match.group(1)) == offset:
            return _hash_file(part)
        log.info("%s: partial download does not match the server's file; restarting", label)
        part.unlink()
        return _fetch(url, part, label=label, progress=progress, timeout=timeout)
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise _Unreachable(f"no answer within {timeout:g} s") from exc
        raise

    with response:
        total: int | None = None
        if offset and response.status == 206:
            match = _CONTENT_RANGE.search(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != offset:
                part.unlink()  # the next attempt starts from zero
                raise _Incomplete(f"server answered an unexpected range {match and match[0]!r}")
            total = None if match.group(3) == "*" else int(match.group(3))
            mode, hasher = "ab", _hash_prefix(part)
        else:
            if offset:
                log.info("%s: server does not support resuming; restarting from zero", label)
            offset, mode, hasher = 0, "wb", hashlib.sha256()
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None

        from tqdm.auto import tqdm

        show = sys.stderr.isatty() if progress is None else progress
        with (
            part.open(mode) as f,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=label,
                file=sys.stderr,
                disable=not show,
            ) as bar,
        ):
            size = offset
            while chunk := response.read(_CHUNK):
                f.write(chunk)
                hasher.update(chunk)
                size += len(chunk)
                bar.update(len(chunk))
            f.flush()
            os.fsync(f.fileno())
    if total is not None and size != total:
        raise _Incomplete(f"connection closed after {size} of {total} bytes")
    return hasher.hexdigest()


def _hash_prefix(path: Path) -> hashlib._Hash:
    hasher = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            hasher.update(chunk)
    return hasher


def _hash_file(path: Path) -> str:
    return _hash_prefix(path).hexdigest()
