"""Server-Sent Events of one job, read from the job_events table.

The table is written by whichever process did the thing (the API: queued, canceled; a
worker: started, progress, sample, succeeded, failed, ...), so the stream polls the
database: it works the same with SQLite and PostgreSQL and across machines. An event's
row id is its SSE id, so a client that reconnects with Last-Event-ID misses nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import anyio

from backend.schemas import sample_url
from jobs import store
from jobs.db.models import FINISHED, Job, JobEvent
from jobs.db.session import get_sessionmaker

RETRY_MS = 2000  # how long a browser's EventSource waits before reconnecting


def format_event(event: JobEvent) -> str:
    data = {"job_id": event.job_id, "attempt": event.attempt, **event.data}
    if event.kind == "sample":
        data["url"] = sample_url(event.job_id, int(event.data["step"]))
    data["time"] = event.created_at.isoformat()
    return f"id: {event.id}\nevent: {event.kind}\ndata: {json.dumps(data)}\n\n"


def _heartbeat() -> str:
    return f"event: heartbeat\ndata: {json.dumps({'time': datetime.now(UTC).isoformat()})}\n\n"


def _poll(db_url: str, job_id: str, after_id: int) -> tuple[list[JobEvent], str | None]:
    """New events of the job and its status (None once the job is deleted)."""
    with get_sessionmaker(db_url)() as session:
        events = store.events_after(session, job_id=job_id, after_id=after_id)
        status = session.get(Job, job_id)
        return events, (status.status if status else None)


async def job_event_stream(
    *,
    db_url: str,
    job_id: str,
    last_event_id: int,
    poll_seconds: float,
    heartbeat_seconds: float,
    is_disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    """Yield SSE frames after `last_event_id` until the job's final event (or disconnect)."""
    yield f"retry: {RETRY_MS}\n\n"
    last_id = last_event_id
    last_sent = time.monotonic()
    while True:
        events, status = await anyio.to_thread.run_sync(_poll, db_url, job_id, last_id)
        for event in events:
            yield format_event(event)
            last_id = event.id
            last_sent = time.monotonic()
            if event.kind in store.TERMINAL_EVENTS:
                return
        if not events and (status is None or status in FINISHED):
            return  # deleted, or finished and its final event already delivered
        if time.monotonic() - last_sent >= heartbeat_seconds:
            yield _heartbeat()
            last_sent = time.monotonic()
        if await is_disconnected():
            return
        if not events:
            await anyio.sleep(poll_seconds)
