"""The shared follower of job_events (backend/sse.py EventHub) behind every event stream.

A real uvicorn server in this process (streams are read as they come, clients disconnect
for real) over SQLite and PostgreSQL; jobs advance through jobs.leases like a worker's.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from sqlalchemy import delete, event

from backend.main import create_app
from backend.sse import EventHub, Subscription, _Frame
from jobs import leases, store
from jobs.db.models import Job, JobEvent, JobStatus
from jobs.db.session import get_engine, get_sessionmaker, session_scope
from jobs.settings import Settings

API = "/api/v1"
SMALL = {"source_text": "photo", "target_text": "sketch", "generator": "random-64", "steps": 3}


class Server:
    """The API under uvicorn in a thread, on a free loopback port."""

    def __init__(self, settings: Settings, queue: Any):
        self.app = create_app(settings, queue=queue)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1
        )
        self.uvicorn = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.uvicorn.run, kwargs={"sockets": [self.sock]})

    @property
    def hub(self) -> EventHub:
        hub: EventHub = self.app.state.event_hub
        return hub

    def wait_for_subscribers(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.hub.subscribers < count:
            assert time.monotonic() < deadline, f"{self.hub.subscribers} of {count} streams"
            time.sleep(0.01)


@pytest.fixture
def server(settings: Settings, queue: Any) -> Iterator[Server]:
    srv = Server(settings, queue)
    srv.thread.start()
    deadline = time.monotonic() + 30
    while not srv.uvicorn.started:
        assert time.monotonic() < deadline and srv.thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    yield srv
    srv.uvicorn.should_exit = True
    srv.thread.join(timeout=30)
    srv.sock.close()


def new_job(srv: Server) -> str:
    r = httpx.post(f"{srv.base}{API}/jobs", json=SMALL, timeout=30)
    assert r.status_code == 202, r.text
    job_id: str = r.json()["id"]
    return job_id


async def follow(
    srv: Server,
    job_id: str,
    *,
    last_event_id: int | None = None,
    stop_after: int | None = None,
    into: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """A stream's events (heartbeats left out) until the server ends it, or `stop_after`
    events, when the client hangs up; `into` receives them as they come."""
    headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
    events: list[dict[str, Any]] = [] if into is None else into
    current: dict[str, Any] = {}
    url = f"{API}/jobs/{job_id}/events"
    async with (
        httpx.AsyncClient(base_url=srv.base, timeout=60) as client,
        client.stream("GET", url, headers=headers) as r,
    ):
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line:
                key, _, value = line.partition(": ")
                current[key] = value
                continue
            if current.get("event") not in (None, "heartbeat"):
                data = json.loads(current["data"])
                events.append({"id": int(current["id"]), "event": current["event"], "data": data})
                if stop_after is not None and len(events) >= stop_after:
                    break
            current = {}
    return events


def stored_events(settings: Settings, job_id: str) -> list[tuple[int, str]]:
    with get_sessionmaker(settings.db_url)() as session:
        return [(e.id, e.kind) for e in store.events_after(session, job_id=job_id, limit=10**6)]


def claim(settings: Settings, job_id: str) -> int:
    with session_scope(settings.db_url) as s:
        taken = leases.claim_job(s, job_id=job_id, worker_id="t", lease_seconds=30, max_attempts=3)
    assert taken is not None
    return taken.attempt


def progress(settings: Settings, job_id: str, attempt: int, step: int, steps: int) -> None:
    with session_scope(settings.db_url) as s:
        assert leases.record_progress(
            s, job_id=job_id, attempt=attempt, stage="training", step=step, total_steps=steps,
            losses={"total": 1.0 / step}, seconds_per_step=0.1, lease_seconds=30,
        )  # fmt: skip
        if step % 3 == 0:
            assert leases.record_sample(s, job_id=job_id, attempt=attempt, step=step)


def finish(settings: Settings, job_id: str, attempt: int, status: JobStatus) -> None:
    with session_scope(settings.db_url) as s:
        code = "engine_error" if status == JobStatus.failed else None
        assert leases.finish_job(
            s, job_id=job_id, attempt=attempt, status=status, error_code=code,
            error_message="boom" if code else None,
        )  # fmt: skip


def play_jobs(settings: Settings, job_ids: list[str], steps: int, pause: float) -> None:
    """A worker per job, their events interleaved in the table."""
    attempts = {job_id: claim(settings, job_id) for job_id in job_ids}
    for step in range(1, steps + 1):
        for job_id in job_ids:
            progress(settings, job_id, attempts[job_id], step, steps)
        time.sleep(pause)
    outcomes = [JobStatus.succeeded, JobStatus.failed, JobStatus.canceled]
    for job_id, status in zip(job_ids, outcomes * len(job_ids), strict=False):
        finish(settings, job_id, attempts[job_id], status)


def test_every_stream_gets_its_jobs_events_in_order(server: Server, settings: Settings) -> None:
    jobs = [new_job(server) for _ in range(3)]
    early, late = 12, 8  # streams open before the jobs start, and while they run

    async def main() -> list[tuple[str, list[dict[str, Any]]]]:
        results: list[tuple[str, list[dict[str, Any]]]] = []

        async def one(job_id: str, delay: float) -> None:
            await anyio.sleep(delay)
            results.append((job_id, await follow(server, job_id)))

        async with anyio.create_task_group() as tasks:
            for i in range(early):
                tasks.start_soon(one, jobs[i % 3], 0.0)
            await anyio.to_thread.run_sync(server.wait_for_subscribers, early)
            for i in range(late):
                tasks.start_soon(one, jobs[i % 3], 0.05 + 0.1 * i)
            await anyio.to_thread.run_sync(play_jobs, settings, jobs, 12, 0.06)
        return results

    results = anyio.run(main)
    assert len(results) == early + late
    for job_id, events in results:
        got = [(e["id"], e["event"]) for e in events]
        assert got == stored_events(settings, job_id)  # all, in id order, once each
        assert got[-1][1] in store.TERMINAL_EVENTS
        assert {e["data"]["job_id"] for e in events} == {job_id}
    assert server.hub.subscribers == 0


def test_queries_per_interval_do_not_grow_with_streams(server: Server, settings: Settings) -> None:
    jobs = [new_job(server) for _ in range(31)]
    engine = get_engine(settings.db_url)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    def queries_while_open(followed: list[str], seconds: float = 1.0) -> float:
        """Queries per poll interval while a stream of each job is open (and idle)."""

        async def main() -> float:
            async with anyio.create_task_group() as tasks:
                for job_id in followed:
                    tasks.start_soon(follow, server, job_id)
                await anyio.to_thread.run_sync(server.wait_for_subscribers, len(followed))
                await anyio.sleep(0.3)  # past the replays
                statements.clear()
                event.listen(engine, "before_cursor_execute", count)
                await anyio.sleep(seconds)
                event.remove(engine, "before_cursor_execute", count)
                measured = len(statements)
                for job_id in followed:  # end the streams
                    r = await anyio.to_thread.run_sync(
                        lambda j=job_id: httpx.post(f"{server.base}{API}/jobs/{j}/cancel")
                    )
                    assert r.status_code == 200
            return measured / (seconds / settings.sse_poll_seconds)

        return anyio.run(main)

    one = queries_while_open(jobs[:1])
    many = queries_while_open(jobs[1:])
    # The hub: one query for new events, one for the status of the jobs followed. (Each
    # stream polling on its own made two per stream: 60 here.)
    assert one <= 2.5 and many <= 2.5, (one, many, statements[:5])


def test_reconnect_with_last_event_id_gets_exactly_the_rest(
    server: Server, settings: Settings
) -> None:
    job_id = new_job(server)

    async def main() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(anyio.to_thread.run_sync, play_jobs, settings, [job_id], 10, 0.05)
            first = await follow(server, job_id, stop_after=6)  # hangs up mid-job
            rest = await follow(server, job_id, last_event_id=first[-1]["id"])
        return first, rest

    first, rest = anyio.run(main)
    assert len(first) == 6 and first[-1]["event"] != "succeeded"
    got = [(e["id"], e["event"]) for e in first + rest]
    assert got == stored_events(settings, job_id) and got[-1][1] == "succeeded"


def test_the_stream_of_a_deleted_job_ends(server: Server, settings: Settings) -> None:
    job_id = new_job(server)
    new_job(server)  # the newest event is another job's (see the test below)

    async def main() -> list[dict[str, Any]]:
        async with anyio.create_task_group() as tasks:
            result: list[list[dict[str, Any]]] = []

            seen: list[dict[str, Any]] = []

            async def read() -> None:
                result.append(await follow(server, job_id, into=seen))

            tasks.start_soon(read)
            await anyio.to_thread.run_sync(server.wait_for_subscribers, 1)
            with anyio.fail_after(10):  # its replay is done: the stream is live
                while not seen:
                    await anyio.sleep(0.02)
            with session_scope(settings.db_url) as s:  # an operator's clean-up, say
                s.execute(delete(JobEvent).where(JobEvent.job_id == job_id))
                s.execute(delete(Job).where(Job.id == job_id))
            with anyio.fail_after(10):
                while not result:
                    await anyio.sleep(0.05)
        return result[0]

    assert [e["event"] for e in anyio.run(main)] == ["queued"]
    assert server.hub.subscribers == 0


def test_streams_survive_the_newest_events_being_deleted(
    server: Server, settings: Settings
) -> None:
    """SQLite gives the ids of deleted newest rows to the next ones (no AUTOINCREMENT)."""
    followed = new_job(server)
    other = new_job(server)
    httpx.post(f"{server.base}{API}/jobs/{other}/cancel").raise_for_status()

    async def main() -> list[dict[str, Any]]:
        async with anyio.create_task_group() as tasks:
            result: list[list[dict[str, Any]]] = []

            async def read() -> None:
                result.append(await follow(server, followed))

            tasks.start_soon(read)
            await anyio.to_thread.run_sync(server.wait_for_subscribers, 1)
            await anyio.sleep(10 * settings.sse_poll_seconds)  # the hub has seen 'canceled'
            r = await anyio.to_thread.run_sync(
                lambda: httpx.delete(f"{server.base}{API}/jobs/{other}")
            )
            assert r.status_code == 204
            await anyio.to_thread.run_sync(play_jobs, settings, [followed], 4, 0.0)
        return result[0]

    got = [(e["id"], e["event"]) for e in anyio.run(main)]
    assert got == stored_events(settings, followed) and got[-1][1] == "succeeded"
    assert len(got) == 8  # queued, started, progress x4 and a sample at 3, succeeded
    if settings.db_url.startswith("sqlite"):
        assert got[1][0] == 2  # 'started' took the id of the deleted job's 'queued


def test_streams_keep_their_heartbeats_while_the_database_is_unreachable(
    server: Server, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    import backend.sse

    job_id = new_job(server)
    real_read = backend.sse._read_new
    down = threading.Event()

    def flaky_read(*args: Any) -> Any:
        if down.is_set():
            raise OperationalError("SELECT", {}, Exception("connection refused"))
        return real_read(*args)

    monkeypatch.setattr(backend.sse, "_read_new", flaky_read)

    async def main() -> tuple[list[str], list[dict[str, Any]]]:
        beats: list[str] = []
        events: list[dict[str, Any]] = []
        async with (
            httpx.AsyncClient(base_url=server.base, timeout=60) as client,
            client.stream("GET", f"{API}/jobs/{job_id}/events") as r,
        ):
            lines = r.aiter_lines()
            async for line in lines:  # the replay: 'queued'
                if line.startswith("event: queued"):
                    break
            down.set()
            deadline = time.monotonic() + 1.0
            async for line in lines:
                if line == "event: heartbeat":
                    beats.append(line)
                if time.monotonic() > deadline:
                    break
            down.clear()  # back: the stream goes on where it was
            await anyio.to_thread.run_sync(play_jobs, settings, [job_id], 1, 0.0)
            async for line in lines:
                if line.startswith("event: "):
                    events.append({"event": line.removeprefix("event: ")})
        return beats, events

    beats, events = anyio.run(main)
    assert len(beats) >= 2  # every 0.3 s
    assert [e["event"] for e in events if e["event"] != "heartbeat"] == [
        "started", "progress", "succeeded",
    ]  # fmt: skip


def test_a_stream_that_falls_too_far_behind_is_ended() -> None:
    async def main() -> Subscription:
        sub = Subscription("0" * 32, backlog=3)
        for i in range(1, 5):
            sub.push(_Frame(i, False, f"id: {i}\n\n"))
        return sub

    sub = anyio.run(main)
    assert sub.ended and sub.take() == []  # its frames are dropped: it replays on reconnect
