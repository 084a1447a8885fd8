"""A per-process cache of job views and job lists: a poll of an unchanged job answers
stored bytes, with no database query, no serialisation and no thread-pool hop (and, for a
caller with a Bearer token or on a service without tokens, without FastAPI at all:
backend/api/cached_reads.py).

A script that follows fifty jobs, or a page open in a few dozen browsers, polls job views
many times a second, and most polls find nothing new. An entry holds the view's encoded
JSON and its ETag, made once per state of the job. Two kinds of entries, with two rules:

- **Settled entries**: a finished job's view (succeeded, failed, canceled), whose queue
  position, ETA, heartbeat and `stalled` no longer change with time or with other jobs.
  The event hub (backend/sse.py), which polls the job events once per NADA_SSE_POLL_SECONDS
  anyway, drops the entries of jobs with new events, and in the same read compares every
  cached job's row (`STAMP_COLUMNS`) and children with the entry's (`confirm`): a change
  made by any process (another API process, a worker, the reaper's retention pass, a
  deletion, which leaves no event) drops the entry. A settled entry is answered only
  while the newest read that found it true began less than `max_age` seconds ago (1.5
  polling intervals), so it can live as long as nothing changes, and if the hub stops or
  cannot reach the database, entries age out and polls read the database again
  (answering 503 as before while it is down).
- **Live entries**: a queued or running job's view, and a list (`GET /jobs?...`, keyed by
  the caller and the query string). What they show also moves with time and with other
  jobs (a queued job's position and ETA, a running job's heartbeat and `stalled`; a list
  shows many jobs), so a live entry is never extended: it is answered only while the read
  that made it began less than `live_age` seconds ago (one polling interval), and every
  change this cache hears of (a new event of any job, this process's own writes) drops all
  live entries at once. A poll of a queued job then costs one database read per interval
  instead of one per request, and shows the database as it was at most one interval ago,
  the bound the page's event streams already have. A live entry past half its interval
  is read again in the background by the poll that finds it so (`refresh_ahead`, the
  same read that made it), so that the polls never queue behind that read.
- **The files** (samples, checkpoints, snapshots are listed only while their file is
  there): the job folder's and its listed subfolders' (inode, mtime) are taken before the
  view is read and compared at every hit, a few `stat` calls, so a file a worker writes
  shows on the next poll. A folder changed within the last `_RACY_SECONDS` is not trusted
  (file systems stamp mtimes coarsely: a file written in the same tick as the listing
  leaves the mtime as it was): a finished job is not cached until its folders settle; a
  live entry is, as what it may miss that way is bounded by its interval.
- **This process's own writes** (a submission, a delete, a continuation's new child, a
  cancel) drop the entries they touch, and every live entry, at once (`invalidate`), so a
  client sees its own change on its next request.
- **Per-token views**: an entry records the job's owner (a list: the caller's), and is
  answered only to a caller who may see it (no tokens configured, or the same owner); the
  view itself does not depend on who asks.

A request that read the database while entries were dropped does not store what it read
(`begin` / `store`: a generation counter), so a read that lost a race with a change cannot
outlive it. Memory is bounded by `max_bytes` (least recently answered entries go first).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from sqlalchemy import Engine, event

from jobs.db.models import Job
from nada import rundir

# What of a job's row its view shows and may change after it finished (a re-queue by the
# reaper, a late cancel, retention's marks, snapshots given up): compared at each hub poll.
# The creation-time columns (id, kind, owner, params, webhook, sweep, parent, created_at)
# never change.
STAMP_COLUMNS = (
    Job.status, Job.stage, Job.step, Job.total_steps, Job.priority, Job.selected_layers,
    Job.losses, Job.sample_steps, Job.snapshot_steps, Job.scores, Job.error_code,
    Job.error_message, Job.error_details, Job.attempt, Job.cancel_requested,
    Job.heartbeat_at, Job.files_expired_at, Job.resumable_expired_at, Job.started_at,
    Job.finished_at,
)  # fmt: skip
_RACY_SECONDS = 2.0  # a folder changed this recently may change again within its mtime's tick
_MAX_ENTRIES = 2048  # least recently answered entries go first beyond this
_MAX_BYTES = 64 << 20  # and beyond this many bytes of bodies (a 100-job list is ~250 KB)

log = logging.getLogger(__name__)

_LIST = "list"  # CachedView.kind of a list's entry

# The views kept, by name: GET /jobs/{id} (public_job of a job of any kind, keyed by its
# id) and GET /jobs (JobsPublic, keyed by list_key).
DETAIL = "detail"
LIST = "list"


def list_key(owner: str | None, query: bytes) -> str:
    """A list's key: who asks (lists are per token) and the query string as sent."""
    return f"{owner or ''}\n{query.decode('latin-1')}"


Fingerprint = tuple[tuple[int, int] | None, ...]


def stamp_of(values: Iterable[object]) -> str:
    """The row's `STAMP_COLUMNS` values as one comparable string (repr: NaN equals itself;
    an enum as its value, as a row read back holds it)."""
    return repr(tuple(v.value if isinstance(v, enum.Enum) else v for v in values))


def job_stamp(job: Job) -> str:
    return stamp_of(getattr(job, column.key) for column in STAMP_COLUMNS)


def _folders(root: Path) -> tuple[Path, ...]:
    """The folders whose listing a job's view depends on."""
    return (
        root,
        rundir.samples_dir(root),
        rundir.checkpoints_dir(root),
        rundir.snapshots_dir(root),
    )


def fingerprint(root: Path) -> tuple[Fingerprint, bool]:
    """((inode, mtime) of each folder, None if absent), and whether all are settled (none
    changed within the last _RACY_SECONDS)."""
    prints: list[tuple[int, int] | None] = []
    settled = True
    newest = time.time_ns() - int(_RACY_SECONDS * 1e9)
    for folder in _folders(root):
        try:
            st = os.stat(folder)
        except OSError:
            prints.append(None)
            continue
        prints.append((st.st_ino, st.st_mtime_ns))
        settled = settled and st.st_mtime_ns < newest
    return tuple(prints), settled


def _current(root: Path) -> Fingerprint:
    return fingerprint(root)[0]


@dataclass
class CachedView:
    """One answer as sent: its bytes, ETag, and what it was made from."""

    body: bytes
    etag: str
    owner: str  # the job's owner, a list's caller ('' without tokens)
    kind: str
    stamp: str  # job_stamp of the row it was made from ('' for a list)
    children: tuple[str, ...]  # the ids of the jobs continued from it, oldest first
    root: Path | None  # the job's folder (None for a list)
    files: Fingerprint | None  # the folders' fingerprint, checked at each hit (None: a list)
    confirmed_at: float  # monotonic: when the newest read that showed this state began
    live: bool = False  # a queued or running job's view, or a list: see the module's rules
    # The read that made it, to renew it (live entries): in a thread, with the cache.
    refresh: Callable[[ViewCache], object] | None = None
    read_seconds: float = 0.0  # how long that read took (set by store)

    @classmethod
    def of_list(
        cls,
        body: bytes,
        etag: str,
        owner: str,
        confirmed_at: float,
        refresh: Callable[[ViewCache], object] | None = None,
    ) -> CachedView:
        return cls(
            body=body, etag=etag, owner=owner, kind=_LIST, stamp="", children=(), root=None,
            files=None, confirmed_at=confirmed_at, live=True, refresh=refresh,
        )  # fmt: skip

    @property
    def is_list(self) -> bool:
        """A list's entry, whose key is not a job id."""
        return self.kind == _LIST


@dataclass(frozen=True)
class Ticket:
    """Taken before a request reads the database: when, and the cache's generation then."""

    started: float
    generation: int


# A statement that changes a job's row or adds to its events (what any view may show).
_JOB_WRITE = re.compile(r"\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(jobs|job_events)\b", re.I)
_WROTE = "nada_wrote_jobs"  # connection.info flag: a job write in the open transaction


class ViewCache:
    """Job views and lists, keyed by (view name, key: a job id, or a list's caller and
    query); thread-safe (requests store from the thread pool, the hub confirms from the
    event loop, backend/api/cached_reads.py looks up from it)."""

    def __init__(
        self,
        *,
        max_age: float,
        live_age: float | None = None,
        max_entries: int = _MAX_ENTRIES,
        max_bytes: int = _MAX_BYTES,
    ):
        self.max_age = max_age  # seconds: the oldest state a settled entry may show
        self.live_age = max_age if live_age is None else live_age  # the same, live entries
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], CachedView] = OrderedDict()
        self._bytes = 0
        self._generation = 0  # bumped whenever entries are dropped by a change
        # Reads in flight of keys whose entry aged out: set when done (used on the event
        # loop only; backend/api/job_views.py read_cached_job_view).
        self.reading: dict[tuple[str, str], anyio.Event] = {}
        self.hits = 0
        self.misses = 0
        self._renewing: set[asyncio.Task[None]] = set()  # refresh_ahead's, held till done

    def __len__(self) -> int:
        return len(self._entries)

    def begin(self) -> Ticket:
        with self._lock:
            return Ticket(time.monotonic(), self._generation)

    def lookup(self, view: str, key: str, owner: str | None) -> CachedView | None:
        """The entry, if it is fresh, its files unchanged, and `owner` may see it."""
        entry_key = (view, key)
        with self._lock:
            entry = self._entries.get(entry_key)
            fresh = entry is not None and time.monotonic() - entry.confirmed_at <= (
                self.live_age if entry.live else self.max_age
            )
            if entry is not None and fresh:
                self._entries.move_to_end(entry_key)
        if entry is None or not fresh or (owner is not None and entry.owner != owner):
            self.misses += 1
            return None
        if (
            entry.files is not None
            and entry.root is not None
            and _current(entry.root) != entry.files
        ):
            self.invalidate([key])
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def refresh_ahead(self, view: str, key: str, entry: CachedView) -> None:
        """(On the event loop, after answering `entry`.) A live entry past half its
        interval, or close enough to its end that a read as long as its last one (twice
        over) would not finish in time, is read again in the background, once at a time,
        while it is still answered: the polls of a queued job or a list never wait for that
        read (without it, all of them waited for it once per interval: a p99 of 70-400 ms;
        a list of twenty queued jobs on a busy PostgreSQL takes a few hundred ms). What is
        answered is still never older than `live_age`; a read that fails or loses a race
        is dropped, and the entry ages out as before."""
        entry_key = (view, key)
        refresh = entry.refresh
        if refresh is None or entry_key in self.reading or not entry.live:
            return
        due = min(self.live_age / 2, self.live_age - 2 * entry.read_seconds)
        if time.monotonic() - entry.confirmed_at <= due:
            return
        done = self.reading[entry_key] = anyio.Event()

        async def renew() -> None:
            try:
                await anyio.to_thread.run_sync(refresh, self)
            except Exception as exc:  # the job went, the database is down: it ages out
                log.debug("view cache: renewing %s failed: %s", entry_key, exc)
            finally:
                del self.reading[entry_key]
                done.set()

        task = asyncio.get_running_loop().create_task(renew())
        self._renewing.add(task)
        task.add_done_callback(self._renewing.discard)

    def holds(self, view: str, key: str) -> bool:
        """Whether there is an entry, fresh or aged out."""
        with self._lock:
            return (view, key) in self._entries

    def store(self, ticket: Ticket, view: str, key: str, entry: CachedView) -> bool:
        """Keep `entry` (read after `ticket` was taken) unless entries were dropped since:
        what it shows may be the state such a drop was about."""
        with self._lock:
            if ticket.generation != self._generation:
                return False
            entry.read_seconds = max(0.0, time.monotonic() - ticket.started)
            old = self._entries.pop((view, key), None)
            if old is not None:
                self._bytes -= len(old.body)
            self._entries[(view, key)] = entry
            self._bytes += len(entry.body)
            while len(self._entries) > self.max_entries or (
                self._bytes > self.max_bytes and len(self._entries) > 1
            ):
                _, gone = self._entries.popitem(last=False)
                self._bytes -= len(gone.body)
            return True

    def job_ids(self) -> tuple[str, ...]:
        """The ids of the jobs whose views are cached (for the hub's read)."""
        with self._lock:
            return tuple({key for (_, key), e in self._entries.items() if not e.is_list})

    def _drop(self, keys: Iterable[tuple[str, str]]) -> None:
        """(Under the lock.) Remove `keys`; a change: the generation moves on."""
        self._generation += 1
        for key in keys:
            gone = self._entries.pop(key, None)
            if gone is not None:
                self._bytes -= len(gone.body)

    def invalidate(self, job_ids: Iterable[str]) -> None:
        """Something changed: drop the entries of `job_ids`, and every live entry (a queued
        job's position, a list, may move with any job's change)."""
        drop = set(job_ids)
        with self._lock:
            self._drop([k for k, e in self._entries.items() if e.live or k[1] in drop])

    def clear(self) -> None:
        with self._lock:
            self._drop(list(self._entries))

    def confirm(
        self,
        started: float,
        stamps: Mapping[str, str],
        children: Mapping[str, tuple[str, ...]],
    ) -> None:
        """After a read that began at `started` (monotonic) found these rows (`stamps`: job
        id -> stamp_of its STAMP_COLUMNS; a cached job missing from it was deleted) and
        `children`: settled entries that still match are confirmed as of `started`, the
        others dropped (live ones too: their job changed). Live entries are never extended,
        and entries stored after `started` are left to the next read."""
        with self._lock:
            stale = [
                key
                for key, entry in self._entries.items()
                if entry.confirmed_at < started
                and not entry.is_list
                and (
                    stamps.get(key[1]) != entry.stamp or children.get(key[1], ()) != entry.children
                )
            ]
            if stale:
                self._drop(stale)
            for entry in self._entries.values():
                if entry.confirmed_at < started and not entry.live:
                    entry.confirmed_at = started

    @contextlib.contextmanager
    def dropping_live_on_writes(self, engine: Engine) -> Iterator[None]:
        """While the block runs, every commit through `engine` (this process's) that wrote
        to jobs or job_events drops the live entries at once: this process's own writes,
        the explicit `invalidate`s' and any other (a route, the reaper, a worker thread
        sharing the process), need not wait for the hub's next read."""

        def wrote(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if _JOB_WRITE.match(statement):
                conn.info[_WROTE] = True

        def committed(conn: Any) -> None:
            if conn.info.pop(_WROTE, False):
                self.invalidate(())

        def rolled_back(conn: Any) -> None:
            conn.info.pop(_WROTE, None)

        hooks = (("before_cursor_execute", wrote), ("commit", committed),
                 ("rollback", rolled_back))  # fmt: skip
        for name, hook in hooks:
            event.listen(engine, name, hook)
        try:
            yield
        finally:
            for name, hook in hooks:
                event.remove(engine, name, hook)
