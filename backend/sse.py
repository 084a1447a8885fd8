"""Server-Sent Events of one job, read from the job_events table.

The table is written by whichever process did the thing (the API: queued, canceled; a
worker: started, progress, sample, succeeded, failed, ...), so the API follows it by
polling: that works the same with SQLite and PostgreSQL and across machines. An event's
row id is its SSE id, so a client that reconnects with Last-Event-ID misses nothing.

One `EventHub` per API process does the polling for every stream: once per
NADA_SSE_POLL_SECONDS it reads the events newer than the newest it has seen (one query on
the primary key, plus one for the status of the jobs being followed) and hands each to the
streams of its job. A stream subscribes first, then replays its job's events after
Last-Event-ID from the table, then takes the hub's, dropping ids it already sent: nothing
falls between the two and nothing comes twice. So the database sees the same few queries
per interval however many streams are open.

The same reads keep this process's cache of finished jobs' views true (`EventHub.views`,
backend/api/view_cache.py): a job with new events loses its entry, and every cached job's
row and children are compared with its entry's, so polls of finished jobs need no query.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError

from backend.api.view_cache import STAMP_COLUMNS, ViewCache, stamp_of
from backend.schemas.jobs import sample_url, snapshot_url
from jobs import store
from jobs.db.models import ACTIVE, FINISHED, Job, JobEvent
from jobs.db.session import get_engine, get_sessionmaker

log = logging.getLogger(__name__)

RETRY_MS = 2000  # how long a browser's EventSource waits before reconnecting
_REPLAY_PAGE = 500  # events per query of a stream's replay
_HUB_PAGE = 1000  # events per query of the hub; a full page is followed at once by the next
_STREAM_BACKLOG = 1000  # events waiting for one stream; beyond that it is closed (reconnects)
# PostgreSQL hands out ids when a row is inserted, not when it commits, so a transaction that
# commits late leaves a hole below ids the hub has already seen. It asks for such ids again
# for this long (far longer than any of the job system's short transactions), at most:
_HOLE_SECONDS = 30.0
_MAX_HOLES = 256
_START_BACKFILL = 1000  # ids below the newest that the hub re-reads on start (the same race)
_STATUS_CHUNK = 500  # job ids per status query
_INT32_MAX = 2**31 - 1  # the largest id job_events.id holds on PostgreSQL (INTEGER)


def format_event(event: JobEvent) -> str:
    data = {"job_id": event.job_id, "attempt": event.attempt, **event.data}
    if event.kind == "sample":
        data["url"] = sample_url(event.job_id, int(event.data["step"]))
    elif event.kind == "snapshot":  # snapshot_every: the kept step's download
        data["url"] = snapshot_url(event.job_id, int(event.data["step"]))
    data["time"] = event.created_at.isoformat()
    return f"id: {event.id}\nevent: {event.kind}\ndata: {json.dumps(data)}\n\n"


def _heartbeat() -> str:
    return f"event: heartbeat\ndata: {json.dumps({'time': datetime.now(UTC).isoformat()})}\n\n"


@dataclass(frozen=True)
class _Frame:
    id: int
    terminal: bool  # succeeded, failed or canceled: the stream ends after it
    text: str  # format_event's text, made once for all the job's streams


class Subscription:
    """One stream's share of the hub: its job's new events, in id order."""

    def __init__(self, job_id: str, backlog: int):
        self.job_id = job_id
        self._backlog = backlog  # frames kept for a stream that does not read; then `ended`
        self._frames: deque[_Frame] = deque()
        self._resync = False
        self.ended = False  # the stream fell `backlog` frames behind, or the hub stopped
        self._wake = anyio.Event()

    def push(self, frame: _Frame) -> None:
        if self.ended:
            return
        if len(self._frames) >= self._backlog:
            # A client this slow reconnects with Last-Event-ID and replays from the table;
            # keeping its frames would only grow memory.
            self.ended = True
            self._frames.clear()
        else:
            self._frames.append(frame)
        self._wake.set()

    def resync(self) -> None:
        """Ask the stream to read its job's events from the table again (the hub saw ids
        reused, or the job finished or vanished without its final event reaching it)."""
        self._resync = True
        self._wake.set()

    def end(self) -> None:
        self.ended = True
        self._wake.set()

    def take_resync(self) -> bool:
        asked, self._resync = self._resync, False
        return asked

    def take(self) -> list[_Frame]:
        frames = list(self._frames)
        self._frames.clear()
        return frames

    async def wait(self, seconds: float) -> None:
        """Until there is something to do, or `seconds` passed."""
        self._wake = anyio.Event()
        if self._frames or self._resync or self.ended:
            return
        with anyio.move_on_after(max(seconds, 0.0)):
            await self._wake.wait()


@dataclass
class _Read:
    """What one poll of the hub read."""

    events: list[JobEvent]
    statuses: dict[str, str]  # followed job -> its status (absent: deleted)
    stamps: dict[str, str]  # cached job -> view_cache.stamp_of its row (absent: deleted)
    children: dict[str, tuple[str, ...]]  # cached job -> its children's ids, oldest first


def _read_new(
    db_url: str,
    after_id: int,
    holes: tuple[int, ...],
    job_ids: tuple[str, ...],
    cached: tuple[str, ...] = (),
) -> _Read:
    """(In a worker thread.) The hub's query, the status of the followed jobs, and the
    rows and children of the jobs whose views are cached (backend/api/view_cache.py)."""
    with get_sessionmaker(db_url)() as session:
        events = store.events_since(session, after_id=after_id, also_ids=holes, limit=_HUB_PAGE)
        statuses: dict[str, str] = {}
        for start in range(0, len(job_ids), _STATUS_CHUNK):
            chunk = job_ids[start : start + _STATUS_CHUNK]
            rows = session.execute(select(Job.id, Job.status).where(Job.id.in_(chunk)))
            statuses.update({row.id: row.status for row in rows})
        stamps: dict[str, str] = {}
        children: dict[str, tuple[str, ...]] = {}
        for start in range(0, len(cached), _STATUS_CHUNK):
            chunk = cached[start : start + _STATUS_CHUNK]
            rows = session.execute(select(Job.id, *STAMP_COLUMNS).where(Job.id.in_(chunk)))
            stamps.update({row[0]: stamp_of(row[1:]) for row in rows})
            found = store.children_of(session, job_ids=list(chunk))
            children.update({job_id: tuple(ids) for job_id, ids in found.items() if ids})
        return _Read(events, statuses, stamps, children)


class EventHub:
    """Follows job_events for the whole process and fans new events out to the streams.

    Start it with `async with hub.running():` (the app's lifespan); streams use
    `with hub.subscribe(job_id) as subscription:` from the same event loop.
    """

    def __init__(self, db_url: str, *, poll_seconds: float, backlog: int = _STREAM_BACKLOG):
        self.db_url = db_url
        self.poll_seconds = poll_seconds  # between two reads of the table
        self._backlog = backlog  # frames one stream may fall behind before it is closed
        self._subscribers: dict[str, set[Subscription]] = {}
        self._high: int | None = None  # the highest id seen; None until the first read
        self._top_job: str | None = None  # the job of event `_high` (None: not known)
        self._holes: dict[int, float] = {}  # unseen id below _high -> when to give up on it
        self._stopped = False
        # Its own thread, so its reads never queue behind the request threads' (and take
        # one of theirs); created in running(), on the event loop.
        self._thread: anyio.CapacityLimiter | None = None
        # Job views and lists, kept true by this hub's reads: an answer shows the database
        # as it was at most 1.5 polling intervals ago (a finished job's), one interval ago
        # (a queued or running job's, a list) (backend/api/view_cache.py).
        self.views = ViewCache(max_age=1.5 * poll_seconds, live_age=poll_seconds)

    @property
    def subscribers(self) -> int:
        return sum(len(subs) for subs in self._subscribers.values())

    @contextmanager
    def subscribe(self, job_id: str) -> Iterator[Subscription]:
        sub = Subscription(job_id, self._backlog)
        if self._stopped:
            sub.end()
        self._subscribers.setdefault(job_id, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._subscribers.get(job_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscribers[job_id]

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Poll in the background while the block runs; at its end, close every stream."""
        self._stopped = False
        self._thread = anyio.CapacityLimiter(1)
        with self.views.dropping_live_on_writes(get_engine(self.db_url)):
            async with self._polling():
                yield

    @asynccontextmanager
    async def _polling(self) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._run)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
                self._stopped = True
                for subs in self._subscribers.values():
                    for sub in subs:
                        sub.end()  # clients reconnect with Last-Event-ID

    async def _run(self) -> None:
        failing = False
        while True:
            try:
                more = await self.poll_once()
            except Exception:  # the database is unreachable (or worse): keep trying
                if not failing:
                    log.exception("event hub: cannot read job_events; retrying")
                failing, more = True, False
            else:
                if failing:
                    log.info("event hub: reading job_events again")
                failing = False
            if not more:
                await anyio.sleep(self.poll_seconds)

    async def poll_once(self) -> bool:
        """One read of the table and its fan-out; True when a full page says there is more."""
        if self._high is None:  # start a little below the newest event (see _START_BACKFILL)
            newest = (await self._read(_INT32_MAX, (), ())).events
            self._high = max(0, newest[-1].id - _START_BACKFILL) if newest else 0
        job_ids = tuple(self._subscribers)
        # The event at _high comes back too when its job is known: if it is gone, the newest
        # events were deleted, and SQLite gives their ids to the next rows.
        after = self._high - 1 if self._top_job is not None else self._high
        started = time.monotonic()
        read = await self._read(after, tuple(self._holes), job_ids, self.views.job_ids())
        events, statuses = read.events, read.statuses
        fresh, reused = self._absorb(events)
        if reused:
            log.info("event hub: the newest events were deleted; streams re-read their job's")
            self.views.clear()
            for subs in self._subscribers.values():
                for sub in subs:
                    sub.resync()
        if fresh:
            self.views.invalidate({event.job_id for event in fresh})
        self.views.confirm(started, read.stamps, read.children)
        ended = set()
        for event in fresh:
            terminal = event.kind in store.TERMINAL_EVENTS
            if terminal:
                ended.add(event.job_id)
            followers = self._subscribers.get(event.job_id)
            if followers:
                frame = _Frame(event.id, terminal, format_event(event))
                for sub in followers:
                    sub.push(frame)
        # A job that finished or vanished without its final event reaching its streams (a
        # deleted job, an event given up on): they read the table once more, and end.
        for job_id in job_ids:
            status = statuses.get(job_id)
            if job_id not in ended and (status is None or status in FINISHED):
                for sub in self._subscribers.get(job_id, ()):
                    sub.resync()
        return len(events) >= _HUB_PAGE

    async def _read(
        self,
        after_id: int,
        holes: tuple[int, ...],
        job_ids: tuple[str, ...],
        cached: tuple[str, ...] = (),
    ) -> _Read:
        return await anyio.to_thread.run_sync(
            _read_new, self.db_url, after_id, holes, job_ids, cached,
            limiter=self._thread, abandon_on_cancel=True,
        )  # fmt: skip

    def _absorb(self, events: list[JobEvent]) -> tuple[list[JobEvent], bool]:
        """The events not seen before, and whether the newest ones seen were deleted."""
        assert self._high is not None
        now = time.monotonic()
        self._holes = {i: t for i, t in self._holes.items() if t > now}
        high, fresh = self._high, []
        top_found = self._top_job is None
        for event in events:
            if self._holes.pop(event.id, None) is not None:
                fresh.append(event)  # a late commit
            elif event.id == self._high:
                top_found = event.job_id == self._top_job
            elif event.id > high:
                for missing in range(max(high + 1, event.id - _MAX_HOLES), event.id):
                    self._holes[missing] = now + _HOLE_SECONDS
                high = event.id
                fresh.append(event)
        while len(self._holes) > _MAX_HOLES:
            del self._holes[min(self._holes)]
        if not top_found:  # start again from the newest event there is (0: none)
            self._high = events[-1].id if events else 0
            self._top_job = events[-1].job_id if events else None
        elif high > self._high or self._top_job is None:
            self._high = high
            self._top_job = next((e.job_id for e in events if e.id == high), None)
        return fresh, not top_found


def _poll(db_url: str, job_id: str, after_id: int) -> tuple[list[JobEvent], str | None]:
    """New events of the job and its status (None once the job is deleted)."""
    with get_sessionmaker(db_url)() as session:
        events = store.events_after(
            session, job_id=job_id, after_id=after_id, limit=_REPLAY_PAGE
        )  # fmt: skip
        status = session.scalar(select(Job.status).where(Job.id == job_id))
        return events, status


async def job_event_stream(
    *,
    hub: EventHub,
    job_id: str,
    last_event_id: int,
    heartbeat_seconds: float,
    is_disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    """Yield SSE frames after `last_event_id` until the job's final event (or disconnect)."""
    yield f"retry: {RETRY_MS}\n\n"
    last_id = last_event_id
    last_sent = time.monotonic()
    failed = False
    with hub.subscribe(job_id) as sub:  # before the replay: no event falls in between
        # Read the table before taking the hub's frames (whose ids may be newer): the
        # replay, its next pages, a retry after an error, and whenever the hub asks.
        reading = True
        while True:
            if reading or sub.take_resync():
                try:
                    events, status = await anyio.to_thread.run_sync(
                        _poll, hub.db_url, job_id, last_id
                    )
                except (OperationalError, InterfaceError) as exc:  # the database is unreachable
                    if not failed:
                        log.warning("event stream of job %s: %s; retrying", job_id, exc)
                    failed = reading = True
                else:
                    failed = False
                    for event in events:
                        yield format_event(event)
                        last_id, last_sent = event.id, time.monotonic()
                        if event.kind in store.TERMINAL_EVENTS:
                            return
                    if not events and status not in ACTIVE:
                        return  # deleted, or finished and its final event already delivered
                    reading = bool(events) and (len(events) >= _REPLAY_PAGE or status not in ACTIVE)
            if not reading:
                for frame in sub.take():
                    if frame.id <= last_id:
                        continue  # the replay (or a re-read) sent it already
                    yield frame.text
                    last_id, last_sent = frame.id, time.monotonic()
                    if frame.terminal:
                        return
            if sub.ended:
                return  # too far behind, or the server stops: the client reconnects
            if time.monotonic() - last_sent >= heartbeat_seconds:
                yield _heartbeat()
                last_sent = time.monotonic()
            if await is_disconnected():
                return
            if reading and not failed:
                continue  # the next page
            wait = heartbeat_seconds - (time.monotonic() - last_sent)
            await sub.wait(min(wait, hub.poll_seconds) if failed else wait)
