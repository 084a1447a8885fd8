"""Whether the data directory can take a job's files: free space and a write probe.

Read by `/healthz` (degraded, with the reason), by `POST /jobs` (507 while the directory
is full or not writable) and by the workers (a job refused or failed with `io` names the
fault instead of quoting a writer's message). The check is cheap: `os.statvfs` on every
call (less than NADA_MIN_FREE_DISK_MB free is full: seen at once, and so is its end, with
no restart), and a small write probe (read-only, not writable, no space the statistics
show) whose answer is trusted for NADA_DISK_CHECK_SECONDS.
"""

from __future__ import annotations

import errno
import os
import tempfile
import time
from pathlib import Path
from typing import Literal

from jobs.settings import Settings

DataDirState = Literal["ok", "full", "unwritable"]

REASONS: dict[str, str] = {
    "full": "the data directory is full",
    "unwritable": "the data directory is not writable",
}
FOLDER_REMOVED = "the job's files were removed while it ran"

_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_UNWRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
_PROBE_BYTES = 4096  # one page: a filesystem with no block left refuses it


class DataDirFault(Exception):
    """The data directory cannot take a job's files; `state` says why."""

    def __init__(self, state: DataDirState):
        super().__init__(REASONS[state])
        self.state = state


def fault_of(exc: BaseException, data_dir: Path | None = None) -> DataDirState | None:
    """'full' or 'unwritable' when `exc`, or an exception it was raised from or while
    handling, is that OSError (torch's checkpoint writer, for one, turns ENOSPC into a
    RuntimeError about stream positions). An error naming a file outside `data_dir` (a
    model cache, /tmp) is not the data directory's fault."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DataDirFault):
            return current.state
        if isinstance(current, OSError) and _inside(current.filename, data_dir):
            if current.errno in _FULL:
                return "full"
            if current.errno in _UNWRITABLE:
                return "unwritable"
        current = current.__cause__ or current.__context__
    return None


def _inside(filename: object, data_dir: Path | None) -> bool:
    if data_dir is None or not isinstance(filename, str | bytes | os.PathLike):
        return True  # no file named: the write that failed was on an open file
    path = Path(os.fsdecode(filename)).absolute()
    return path == data_dir or data_dir in path.parents


def _write_probe(directory: Path) -> None:
    """Create, fill and remove a small hidden file in `directory`; OSError if it cannot."""
    fd, name = tempfile.mkstemp(dir=directory, prefix=".write-probe-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"\0" * _PROBE_BYTES)  # a full filesystem refuses here or at close
    finally:
        Path(name).unlink(missing_ok=True)


class DataDirCheck:
    """The state of one data directory's job folder (`<data_dir>/jobs`)."""

    def __init__(
        self,
        path: Path,  # the directory jobs write into (created if missing)
        *,
        min_free_bytes: int,  # less free space than this counts as full; 0 = only the probe
        probe_seconds: float,  # how long a write probe's answer is trusted; 0 = probe each time
    ):
        self.path = path
        self.min_free_bytes = min_free_bytes
        self.probe_seconds = probe_seconds
        self._probed: tuple[float, DataDirState] | None = None  # (monotonic time, answer)

    def state(self, *, fresh: bool = False) -> DataDirState:
        """'ok', 'full' or 'unwritable'; `fresh` ignores a cached probe (after a failure)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            stat = os.statvfs(self.path)
        except OSError as exc:
            return fault_of(exc) or "unwritable"
        if stat.f_bavail * stat.f_frsize < self.min_free_bytes:
            return "full"
        if stat.f_files and not stat.f_favail:  # no inode left: no new file either
            return "full"
        now = time.monotonic()
        cached = self._probed
        if not fresh and cached is not None and now - cached[0] < self.probe_seconds:
            return cached[1]
        try:
            _write_probe(self.path)
            answer: DataDirState = "ok"
        except OSError as exc:
            answer = fault_of(exc) or "unwritable"
        self._probed = (now, answer)
        return answer


_checks: dict[tuple[Path, int, float], DataDirCheck] = {}


def check(settings: Settings, *, fresh: bool = False) -> DataDirState:
    """The state of `settings`' data directory (one cached probe per directory and process)."""
    key = (
        settings.jobs_dir,
        int(settings.min_free_disk_mb * 2**20),
        settings.disk_check_seconds,
    )
    checker = _checks.get(key)
    if checker is None:
        checker = _checks.setdefault(
            key, DataDirCheck(key[0], min_free_bytes=key[1], probe_seconds=key[2])
        )
    return checker.state(fresh=fresh)


class JobFolder:
    """A job's run directory as an attempt found it. `removed()` tells whether it was
    deleted since (an operator's `rm -r`, a clean-up script), also after a later write made
    the path again: the open descriptor pins the directory the attempt began with, so its
    inode cannot be reused by the new one."""

    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))

    def removed(self) -> bool:
        if self._fd is None:
            return False
        try:
            now = os.stat(self.path)
        except OSError:
            return True
        held = os.fstat(self._fd)
        return (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
