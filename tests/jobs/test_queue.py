"""The producer side against the real brokers: Redis (key prefix per session) and the
embedded SQLite transport; and the reliability settings the workers share."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu import Connection, Exchange, Queue
from kombu.transport import sqlalchemy as kombu_sqla
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from jobs import broker
from jobs.queue import TASK_NAME, JobQueue, celery_config, make_celery, prune_embedded_broker
from jobs.settings import Settings

# kombu's SQLAlchemy transport uses a loader option SQLAlchemy 2.1 deprecates (not ours).
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")


def test_reliability_settings(tmp_path, redis_url) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, broker_url=redis_url, job_time_limit=3600)
    conf = celery_config(settings)
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1 and conf["worker_concurrency"] == 1
    assert conf["broker_transport_options"]["visibility_timeout"] > settings.job_time_limit
    embedded = celery_config(Settings(data_dir=tmp_path))
    # kombu's SQLAlchemy transport, by way of ours that batches (no 'sqla+': it would pick
    # kombu's class); API and workers connect through the same settings
    assert embedded["broker_url"] == f"sqlite:///{tmp_path / 'broker.sqlite'}"
    assert embedded["broker_transport"] == "jobs.broker:Transport"
    assert conf["broker_transport"] is None  # Redis: the URL says
    app = make_celery(Settings(data_dir=tmp_path))
    try:
        with app.connection_for_read() as conn:
            assert isinstance(conn.transport, broker.Transport)
            assert conn.transport_options["creator"] is not None
    finally:
        app.close()


def test_send_to_redis_under_a_key_prefix(tmp_path, redis_url, redis_prefix) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(
        data_dir=tmp_path, broker_url=redis_url, broker_prefix=redis_prefix, queue="q1"
    )
    queue = JobQueue(settings)
    try:
        assert queue.broker_ok()
        assert queue.send("ab" * 16)
    finally:
        queue.close()
    client = redis.Redis.from_url(redis_url)
    messages = client.lrange(f"{redis_prefix}q1", 0, -1)
    client.close()
    assert len(messages) == 1
    message = json.loads(messages[0])
    assert message["headers"]["task"] == TASK_NAME
    assert json.loads(__import__("base64").b64decode(message["body"]))[0] == ["ab" * 16]


def test_send_to_the_embedded_sqlite_transport(tmp_path) -> None:  # type: ignore[no-untyped-def]
    queue = JobQueue(Settings(data_dir=tmp_path))
    try:
        assert queue.send("cd" * 16) and queue.send("ef" * 16)
    finally:
        queue.close()
    import sqlite3

    with sqlite3.connect(tmp_path / "broker.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM kombu_message").fetchone()[0] == 2
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute(
            "UPDATE kombu_message SET visible = 0, timestamp = '2000-01-01 00:00:00' WHERE id = 1"
        )
    assert prune_embedded_broker(Settings(data_dir=tmp_path)) == 1
    # kombu's engine connects through this: no fsync per publish (WAL + NORMAL)
    connect = celery_config(Settings(data_dir=tmp_path))["broker_transport_options"]["creator"]
    conn = connect()
    try:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_send_to_an_unreachable_broker_is_false(tmp_path) -> None:  # type: ignore[no-untyped-def]
    queue = JobQueue(Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:1/0"))
    try:
        assert not queue.send("01" * 16)
        assert not queue.broker_ok(timeout=0.5)
    finally:
        queue.close()


def test_each_kind_goes_to_its_lanes_queue(tmp_path, redis_url, redis_prefix) -> None:  # type: ignore[no-untyped-def]
    """Adaptations to settings.queue, photos and edits to '<queue>-fast' (looked up by kind
    when the caller does not say), a render by its size (a long video to the train lane),
    and the depth the reaper compares counts both."""
    from jobs.db.session import migrate, session_scope
    from jobs.kinds import INVERT, RENDER
    from jobs.store import create_job
    from nada.params import AdaptParams
    from nada.photo_params import InvertParams
    from nada.render_params import RenderParams

    settings = Settings(
        data_dir=tmp_path, broker_url=redis_url, broker_prefix=redis_prefix, queue="lanes"
    )
    migrate(settings.db_url)
    with session_scope(settings.db_url) as session:
        adapt = create_job(session, params=AdaptParams(source_text="a", target_text="b")).id
        photo = create_job(session, params=InvertParams(generator="random-64"), kind=INVERT).id
        grid = RenderParams(job_id=adapt, generator="ffhq-1024")
        video = RenderParams(job_id=adapt, generator="ffhq-1024", mode="video", frames=120)
        short = create_job(session, params=grid, kind=RENDER).id
        long = create_job(session, params=video, kind=RENDER).id  # 241 frames at 1024 px
    queue = JobQueue(settings)
    try:
        assert queue.dispatch([adapt, photo, short, long]) == [adapt, photo, short, long]
        assert queue.pending_messages() == 4
    finally:
        queue.close()
    client = redis.Redis.from_url(redis_url)
    try:
        bodies = {
            name: [json.loads(__import__("base64").b64decode(json.loads(m)["body"]))[0][0]
                   for m in client.lrange(f"{redis_prefix}{name}", 0, -1)]
            for name in ("lanes", "lanes-fast")
        }  # fmt: skip
    finally:
        client.close()
    lanes = {name: sorted(ids) for name, ids in bodies.items()}  # the broker pushes left
    assert lanes == {"lanes": sorted([adapt, long]), "lanes-fast": sorted([photo, short])}


def test_housekeeping_sweeps_example_images_unused_for_a_day(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The reaper's periodic pass removes pool images nobody sent for STALE_AFTER_S and
    keeps fresh ones (jobs hold their own copies, so the pool needs no other keeper)."""
    import os
    import time

    from jobs import image_pool
    from jobs.queue import housekeeping

    old, fresh = "a" * 64, "b" * 64
    for name in (old, fresh):
        image_pool.add(tmp_path, name, b"\x89PNG not checked here", owner=None)
    then = time.time() - image_pool.STALE_AFTER_S - 60
    os.utime(image_pool.pool_path(tmp_path, old), (then, then))
    housekeeping(Settings(data_dir=tmp_path))
    assert not image_pool.pool_path(tmp_path, old).exists()
    assert image_pool.pool_path(tmp_path, fresh).is_file()


def _queued_jobs(settings: Settings, n: int) -> list[str]:
    from jobs.db.session import migrate, session_scope
    from jobs.store import create_job
    from nada.params import AdaptParams

    migrate(settings.db_url)
    with session_scope(settings.db_url) as session:
        params = AdaptParams(source_text="a", target_text="b")
        return [create_job(session, params=params).id for _ in range(n)]


def _dispatched(settings: Settings, job_ids: list[str]) -> set[str]:
    from sqlalchemy import select

    from jobs.db.models import Job
    from jobs.db.session import session_scope

    with session_scope(settings.db_url) as session:
        rows = session.execute(select(Job.id).where(Job.id.in_(job_ids)))
        query = select(Job.id).where(Job.id.in_(job_ids), Job.dispatched_at.is_not(None))
        assert len(list(rows)) == len(job_ids)
        return set(session.scalars(query))


def _read_back(url: str, name: str) -> list[tuple[str, list[Any]]]:
    """(task name, args) of every message waiting in queue `name`, read by a consumer of
    kombu's own SQLAlchemy transport (as a worker of an older release would)."""
    queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
    got: list[tuple[str, list[Any]]] = []
    with Connection(url) as conn:
        assert type(conn.transport) is kombu_sqla.Transport
        with conn.SimpleQueue(queue) as simple:
            while True:
                try:
                    message = simple.get(block=False)
                except simple.Empty:
                    return got
                args, _kwargs, _embed = message.decode()
                got.append((message.headers["task"], args))
                message.ack()


def _rows(path: Path) -> list[tuple[str, str, int, int]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute(
            "SELECT q.name, m.payload, m.visible, m.version FROM kombu_message m"
            " JOIN kombu_queue q ON q.id = m.queue_id ORDER BY m.id"
        ).fetchall()


@pytest.fixture
def puts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every (queue, payload) our channel's _put is given, as kombu's virtual channel built
    it (the payload rows must be what kombu writes of these)."""
    seen: list[tuple[str, dict[str, Any]]] = []
    put = broker.Channel._put

    def spy(self: broker.Channel, queue: str, payload: dict[str, Any], **kw: Any) -> None:
        seen.append((queue, json.loads(json.dumps(payload))))
        put(self, queue, payload, **kw)

    monkeypatch.setattr(broker.Channel, "_put", spy)
    yield seen


def _count_commits(settings: Settings) -> list[int]:
    """A list that grows by one per commit of the embedded broker's engine."""
    engine, _ = broker.Channel._engines[f"sqlite:///{settings.data_dir / 'broker.sqlite'}"]
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    return commits


def test_a_batch_to_the_embedded_broker_is_one_transaction(tmp_path, puts) -> None:  # type: ignore[no-untyped-def]
    """20 jobs through one producer into one transaction of the broker file, the queue's row
    looked up once; kombu's own consumer reads 20 messages of the right task and args, and
    the rows are byte for byte what kombu's stock channel writes of the same payloads."""
    settings = Settings(data_dir=tmp_path, queue="batch")
    first, job_ids = _queued_jobs(settings, 1), _queued_jobs(settings, 20)
    queue = JobQueue(settings)
    acquired: list[int] = []
    acquire = queue.app.producer_pool.acquire

    def counting_acquire(*args: Any, **kwargs: Any) -> Any:
        acquired.append(1)
        return acquire(*args, **kwargs)

    try:
        assert queue.dispatch(first) == first  # creates the queue's row and the engine
        commits, selects = _count_commits(settings), []
        engine, _ = broker.Channel._engines[f"sqlite:///{tmp_path / 'broker.sqlite'}"]
        event.listen(
            engine,
            "before_cursor_execute",
            lambda *a: selects.append(1) if "FROM kombu_queue" in a[2] else None,
        )
        queue.app.producer_pool.acquire = counting_acquire  # type: ignore[method-assign]
        assert queue.dispatch(job_ids, "train") == job_ids
        assert (len(commits), len(selects), len(acquired)) == (1, 1, 1)
    finally:
        queue.close()
    assert _dispatched(settings, job_ids) == set(job_ids)
    stock = tmp_path / "stock.sqlite"
    with Connection(f"sqla+sqlite:///{stock}") as conn:
        assert type(conn.default_channel) is kombu_sqla.Channel
        for name, payload in puts:
            conn.default_channel._put(name, payload)
    assert len(puts) == 21
    assert _rows(tmp_path / "broker.sqlite") == _rows(stock)
    got = _read_back(settings.broker, "batch")
    assert got == [(TASK_NAME, [job_id]) for job_id in first + job_ids]


def test_a_failure_mid_batch_sends_none(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The broker refusing the 11th message of 20: none is written, none is marked
    dispatched (the reaper sends them), and the channel publishes the next batch whole."""
    settings = Settings(data_dir=tmp_path, queue="failing")
    job_ids = _queued_jobs(settings, 20)
    queue = JobQueue(settings)
    put, calls = broker.Channel._put, []

    def failing_put(self: broker.Channel, queue: str, payload: Any, **kw: Any) -> None:
        calls.append(1)
        if len(calls) == 11:
            raise OperationalError("INSERT", {}, sqlite3.OperationalError("disk I/O error"))
        put(self, queue, payload, **kw)

    monkeypatch.setattr(broker.Channel, "_put", failing_put)
    try:
        assert queue.dispatch(job_ids, "train") == []
        assert _dispatched(settings, job_ids) == set()
        with contextlib.closing(sqlite3.connect(tmp_path / "broker.sqlite")) as db:
            assert db.execute("SELECT count(*) FROM kombu_message").fetchone()[0] == 0
        assert queue.dispatch(job_ids, "train") == job_ids  # calls 21..40: none fails
    finally:
        queue.close()
    assert _dispatched(settings, job_ids) == set(job_ids)
    assert len(_read_back(settings.broker, "failing")) == 20


def test_outside_a_batch_the_channel_is_kombus(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A publish outside a batch commits at once, as kombu's does; a batch cannot nest."""
    settings = Settings(data_dir=tmp_path)
    app = make_celery(settings)
    try:
        with app.connection_for_write() as conn:
            channel = conn.default_channel
            assert isinstance(channel, broker.Channel)
            channel._put("plain", {"body": "x"})
            with channel.batch():
                channel._put("plain", {"body": "y"})
                with pytest.raises(RuntimeError), channel.batch():
                    pass
                assert len(_rows(tmp_path / "broker.sqlite")) == 1  # not yet written
            assert [row[1] for row in _rows(tmp_path / "broker.sqlite")] == [
                kombu_sqla.dumps({"body": "x"}),
                kombu_sqla.dumps({"body": "y"}),
            ]
            assert channel._size("plain") == 2 and channel._get("plain") == {"body": "x"}
    finally:
        app.close()


def test_a_batch_to_redis(tmp_path, redis_url, redis_prefix) -> None:  # type: ignore[no-untyped-def]
    """Redis through one producer too, each message pushed as it goes."""
    settings = Settings(
        data_dir=tmp_path, broker_url=redis_url, broker_prefix=redis_prefix, queue="rbatch"
    )
    job_ids = _queued_jobs(settings, 20)
    queue = JobQueue(settings)
    acquired: list[int] = []
    acquire = queue.app.producer_pool.acquire

    def counting_acquire(*args: Any, **kwargs: Any) -> Any:
        acquired.append(1)
        return acquire(*args, **kwargs)

    queue.app.producer_pool.acquire = counting_acquire  # type: ignore[method-assign]
    try:
        assert queue.dispatch(job_ids, "train") == job_ids
        assert len(acquired) == 1
        assert queue.pending_messages() == 20
    finally:
        queue.close()
    assert _dispatched(settings, job_ids) == set(job_ids)
    client = redis.Redis.from_url(redis_url)
    try:
        messages = [json.loads(m) for m in client.lrange(f"{redis_prefix}rbatch", 0, -1)]
    finally:
        client.close()
    import base64

    got = {(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[0][0]) for m in messages}
    assert len(messages) == 20 and got == {(TASK_NAME, job_id) for job_id in job_ids}


def test_a_batch_to_an_unreachable_broker_sends_none(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:1/0")
    job_ids = _queued_jobs(settings, 3)
    queue = JobQueue(settings)
    try:
        assert queue.dispatch(job_ids, "train") == []
    finally:
        queue.close()
    assert _dispatched(settings, job_ids) == set()
