"""A per-process cache of finished jobs' views: a poll of an unchanged job answers stored
bytes, with no database query, no serialisation and no thread-pool hop.

A script that follows fifty jobs, or a page open in a few dozen browsers, polls job views
many times a second, and most polls find nothing new. An entry holds the view's encoded
JSON and its ETag, made once per state of the job. What keeps it true:

- **The row and the children**: the event hub (backend/sse.py), which polls the job events
  once per NADA_SSE_POLL_SECONDS anyway, drops the entries of jobs with new events, and in
  the same read compares every cached job's row (`STAMP_COLUMNS`) and children with the
  entry's (`confirm`): a change made by any process (another API process, a worker, the
  reaper's retention pass, a deletion, which leaves no event) drops the entry. An entry
  is answered only while the newest read that found it true began less than `max_age`
  seconds ago (1.5 polling intervals): so a poll never shows a state older than that,
  and if the hub stops or cannot reach the database, entries age out and polls read the
  database again (answering 503 as before while it is down).
- **The files** (samples, checkpoints, snapshots are listed only while their file is
  there): the job folder's and its listed subfolders' (inode, mtime) are taken before the
  view is read and compared at every hit, a few `stat` calls; a folder changed within the
  last `_RACY_SECONDS` is not trusted (file systems stamp mtimes coarsely) and its job is
  not cached until it settles.
- **This process's own writes** (a delete, a continuation's new child, a cancel) drop the
  entries they touch at once (`invalidate`), so a client sees its own change on its next
  request.
- **What changes with time or with other jobs** (queue_position, eta_seconds, stalled,
  heartbeat_at): only finished jobs (succeeded, failed, canceled) are cached, for which
  these are constant (null / false / the last beat). Queued and running jobs are read
  from the database at every poll, as before.
- **Per-token views**: an entry records the job's owner, and is answered only to a caller
  who may see that job (no tokens configured, or the same owner); the view itself does not
  depend on who asks.

A request that read the database while the hub dropped entries does not store what it read
(`begin` / `store`: a generation counter), so a read that lost a race with a change cannot
outlive it.
"""

from __future__ import annotations

import enum
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import anyio

from jobs.db.models import FINISHED, Job
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
    """One job's view as answered: its bytes, ETag, and what it was made from."""

    body: bytes
    etag: str
    owner: str  # the job's owner ('' without tokens)
    kind: str
    stamp: str  # job_stamp of the row it was made from
    children: tuple[str, ...]  # the ids of the jobs continued from it, oldest first
    root: Path
    files: Fingerprint
    confirmed_at: float  # monotonic: when the newest read that showed this state began


@dataclass(frozen=True)
class Ticket:
    """Taken before a request reads the database: when, and the cache's generation then."""

    started: float
    generation: int


class ViewCache:
    """Finished jobs' views, keyed by (view name, job id); thread-safe (requests store from
    the thread pool, the hub confirms from the event loop)."""

    def __init__(self, *, max_age: float, max_entries: int = _MAX_ENTRIES):
        self.max_age = max_age  # seconds: the oldest state an answer may show
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], CachedView] = OrderedDict()
        self._generation = 0  # bumped whenever entries are dropped by a change
        # Reads in flight of jobs whose entry aged out, by key: set when done (used on the
        # event loop only; backend/api/job_views.py read_cached_job_view).
        self.reading: dict[tuple[str, str], anyio.Event] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def begin(self) -> Ticket:
        with self._lock:
            return Ticket(time.monotonic(), self._generation)

    @staticmethod
    def cacheable(job: Job) -> bool:
        return job.status in FINISHED

    def lookup(self, view: str, job_id: str, owner: str | None) -> CachedView | None:
        """The entry, if it is fresh, its files unchanged, and `owner` may see it."""
        key = (view, job_id)
        with self._lock:
            entry = self._entries.get(key)
            fresh = entry is not None and time.monotonic() - entry.confirmed_at <= self.max_age
            if entry is not None and fresh:
                self._entries.move_to_end(key)
        if entry is None or not fresh or (owner is not None and entry.owner != owner):
            self.misses += 1
            return None
        if _current(entry.root) != entry.files:
            self.invalidate([job_id])
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def holds(self, view: str, job_id: str) -> bool:
        """Whether there is an entry, fresh or aged out."""
        with self._lock:
            return (view, job_id) in self._entries

    def store(self, ticket: Ticket, view: str, job_id: str, entry: CachedView) -> bool:
        """Keep `entry` (read after `ticket` was taken) unless entries were dropped since:
        what it shows may be the state such a drop was about."""
        with self._lock:
            if ticket.generation != self._generation:
                return False
            self._entries[(view, job_id)] = entry
            self._entries.move_to_end((view, job_id))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            return True

    def job_ids(self) -> tuple[str, ...]:
        """The ids of the cached jobs (for the hub's read)."""
        with self._lock:
            return tuple({job_id for _, job_id in self._entries})

    def invalidate(self, job_ids: Iterable[str]) -> None:
        drop = set(job_ids)
        with self._lock:
            self._generation += 1
            for key in [k for k in self._entries if k[1] in drop]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def confirm(
        self,
        started: float,
        stamps: Mapping[str, str],
        children: Mapping[str, tuple[str, ...]],
    ) -> None:
        """After a read that began at `started` (monotonic) found these rows (`stamps`: job
        id -> stamp_of its STAMP_COLUMNS; a cached job missing from it was deleted) and
        `children`: entries that still match are confirmed as of `started`, the others
        dropped. Entries stored after `started` are left to the next read."""
        with self._lock:
            stale = [
                key
                for key, entry in self._entries.items()
                if entry.confirmed_at < started
                and (
                    stamps.get(key[1]) != entry.stamp or children.get(key[1], ()) != entry.children
                )
            ]
            if stale:
                self._generation += 1
            for key in stale:
                del self._entries[key]
            for entry in self._entries.values():
                if entry.confirmed_at < started:
                    entry.confirmed_at = started
