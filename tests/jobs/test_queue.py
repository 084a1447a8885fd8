"""The producer side against the real brokers: Redis (key prefix per session) and the
embedded SQLite transport; and the reliability settings the workers share."""

from __future__ import annotations

import json

import pytest
import redis

from jobs.queue import TASK_NAME, JobQueue, celery_config, prune_embedded_broker
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
    assert embedded["broker_url"] == f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"


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
