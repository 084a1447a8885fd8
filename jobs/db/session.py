"""Engines, sessions and schema migrations for the job database (SQLite or PostgreSQL)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent.parent  # jobs/
# Connections kept per process: as many as the API's 40 request threads plus the reaper and
# the event hub use at once, so a busy API neither waits for a connection nor opens and
# closes one per request (a new SQLite connection costs its PRAGMAs, a PostgreSQL one a
# round of authentication); the overflow covers bursts.
# PostgreSQL's default max_connections is 100, shared by every API process and worker.
_POOL_SIZE, _POOL_OVERFLOW = 48, 16  # SQLite
_PG_POOL_SIZE, _PG_POOL_OVERFLOW = 20, 20
_CONNECT_TIMEOUT_S = 5  # PostgreSQL: seconds to establish a connection
_MIGRATE_LOCK_ID = 0x4E414441  # 'NADA': pg_advisory_lock key serialising migrations


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the API read while a worker writes; busy_timeout makes writers queue up
    # instead of failing with 'database is locked'.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One pooled engine per URL and process (workers and the API each build their own)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=_POOL_SIZE,
            max_overflow=_POOL_OVERFLOW,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # pool_pre_ping replaces connections a database restart killed, so the service recovers
    # by itself; connect_timeout turns an unreachable server into a prompt error (the API
    # answers 503, backend/api/db_errors.py) instead of a request hanging on the OS's timeout.
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=_PG_POOL_SIZE,
        max_overflow=_PG_POOL_OVERFLOW,
        connect_args={"connect_timeout": _CONNECT_TIMEOUT_S},
    )


@lru_cache(maxsize=8)
def get_sessionmaker(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


_WRITERS: dict[str, threading.Lock] = {}


@lru_cache(maxsize=8)
def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


_WRITERS_LOCK = threading.Lock()


@contextlib.contextmanager
def one_writer(url: str) -> Iterator[None]:
    """Around a write transaction (from its first INSERT to its commit): on SQLite, this
    process's threads take turns here instead of in SQLite's lock.

    SQLite has one writer at a time; a connection that finds the write lock taken waits in
    its busy handler, which sleeps in growing steps (1, 2, 5, 10 ... 100 ms) and checks
    again, so under 50 concurrent submissions most of a submission's time was sleeping
    past the moment the lock came free (the API's CPU was idle 40% of the time, p99 ~1 s).
    A Python lock wakes the next thread as the commit ends. Other processes (workers)
    still meet in SQLite's lock, rarely. PostgreSQL's writers do not exclude each other:
    there this is a no-op."""
    if not _is_sqlite(url):
        yield
        return
    with _WRITERS_LOCK:
        lock = _WRITERS.setdefault(url, threading.Lock())
    with lock:
        yield


@contextlib.contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with get_sessionmaker(url).begin() as session:
        yield session


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config(str(_HERE / "alembic.ini"))
    config.set_main_option("script_location", str(_HERE / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@contextlib.contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    """Serialise migrations of one database between processes starting at the same time."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        with get_engine(url).connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATE_LOCK_ID})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATE_LOCK_ID})
                conn.commit()
    elif parsed.database and parsed.database != ":memory:":
        lock_path = Path(parsed.database + ".migrate-lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    else:
        yield


def migrate(url: str) -> None:
    """Bring the database to the newest schema (alembic upgrade head); safe to repeat."""
    from alembic import command

    alembic_log = logging.getLogger("alembic")
    if alembic_log.level == logging.NOTSET:
        alembic_log.setLevel(logging.WARNING)  # its INFO lines are noise at every start
    with _migration_lock(url):
        command.upgrade(alembic_config(url), "head")
    log.debug("database %s at head", make_url(url).render_as_string(hide_password=True))
