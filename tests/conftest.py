"""Fixtures for every test that talks to the job system: real SQLite and PostgreSQL
databases, Redis, settings, a recording queue (the job-system, service and CLI tests).

PostgreSQL (127.0.0.1:5432, trust auth) and Redis (127.0.0.1:6379) run on developer
machines and in CI. Each test session creates its own PostgreSQL database
`nada_test_<random>` (dropped at the end) and uses a random Redis key prefix, so parallel
sessions of teammates do not collide.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from jobs.db.session import get_engine, migrate
from jobs.queue import JobQueue
from jobs.settings import Settings

PG_ADMIN_URL = os.environ.get(
    "NADA_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("NADA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def create_pg_database(name: str) -> str:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    get_engine(url).dispose()
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A migrated PostgreSQL database for this test session."""
    url = create_pg_database(f"nada_test_{uuid.uuid4().hex[:12]}")
    migrate(url)
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture(scope="session")
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix for this session; its keys are deleted at the end."""
    import redis

    prefix = f"nada_test_{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty job database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'nada.sqlite'}"
        migrate(url)
        yield url
        get_engine(url).dispose()
    else:
        url = request.getfixturevalue("pg_url")
        with get_engine(url).begin() as conn:
            conn.execute(
                # Every table a test may fill: a sign-in session another test left made
                # the sessions tests count two rows.
                text(
                    "TRUNCATE jobs, job_events, sweeps, sessions, webhook_secrets "
                    "RESTART IDENTITY CASCADE"
                )
            )
        yield url


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        lease_seconds=30,
        sse_poll_seconds=0.05,
        sse_heartbeat_seconds=0.3,
        cancel_poll_seconds=0,
        migrate_on_start=False,
        frontend_dir=None,
    )


class RecordingQueue(JobQueue):
    """A JobQueue whose broker is a list (the real brokers have their own tests)."""

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.sent: list[str] = []
        self.lanes: dict[str, str] = {}  # job id -> the lane it was sent to
        self.refuse = False

    def publish(self, job_ids: list[str], lanes: dict[str, str]) -> list[str]:
        if self.refuse:
            return []
        self.sent.extend(job_ids)
        self.lanes.update({job_id: lanes[job_id] for job_id in job_ids})
        return list(job_ids)

    def broker_ok(self, timeout: float = 2.0) -> bool:
        return not self.refuse


@pytest.fixture
def queue(settings: Settings) -> RecordingQueue:
    return RecordingQueue(settings)


@pytest.fixture
def proxied_pg(pg_url: str) -> Iterator[tuple[str, Any]]:
    """(URL, proxy): the session's PostgreSQL behind a TCP proxy the test can cut and
    restore (tests/backend/test_reliability_db.py's TcpProxy), for database outages."""
    from tests.backend.test_reliability_db import TcpProxy

    url = make_url(pg_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        yield proxied, proxy
    finally:
        get_engine(proxied).dispose()
        proxy.close()
