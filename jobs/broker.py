"""The embedded broker's transport: kombu's SQLAlchemy transport over the SQLite file, with a
batch mode for publishing many messages in one transaction.

Why: kombu's `Channel._put` looks up its queue's row (a SELECT) and commits a transaction of
its own for every message, ~2 ms a message on the broker file, the larger part of what a
submission costs the API under load. `JobQueue.dispatch` publishes a batch of submissions
inside `Channel.batch()`: each queue's row is looked up once, and the batch's messages are
committed together at its end; on a failure all of them are rolled back and the caller
reports none sent (the reaper re-sends them). The rows are still built by kombu's own
`_put`, only its commit waits, so workers read them as any other. Outside a batch the
channel is kombu's, unchanged: the workers consume and acknowledge through it.

API and workers name this class as Celery's `broker_transport`, with the broker URL given
without kombu's 'sqla+' prefix, which would pick kombu's own class (jobs/queue.py
celery_config).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from kombu import Producer
from kombu.transport import sqlalchemy as kombu_sqla
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

TRANSPORT = "jobs.broker:Transport"  # the `broker_transport` setting that picks this module


class _BatchSession(Session):
    """A session whose commit() waits while its channel has a batch open: kombu's `_put`
    (and its queue creation) commit through `channel.session`, and the batch commits once."""

    deferring = False

    def commit(self) -> None:
        if not self.deferring:
            super().commit()


class Channel(kombu_sqla.Channel):
    """kombu's SQLAlchemy channel with `batch()`; anything outside a batch is kombu's."""

    _session: _BatchSession | None = None  # type: ignore[assignment]  # kombu's: None
    _queues: dict[str, Any] | None = None  # queue rows of the open batch, by name

    @property
    def session(self) -> _BatchSession:
        if self._session is None:
            engine, _ = self._open()  # type: ignore[no-untyped-call]  # kombu's engine cache
            self._session = _BatchSession(bind=engine)
        return self._session

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Publish in one transaction: messages published inside are written when the block
        ends, all or none (an exception rolls them all back and propagates). For publishing
        only; a channel holds one batch at a time.

        Nothing is flushed before the end (no autoflush), so the batch holds no write lock
        of the file while it is built, and a queue created on the way is committed at once
        in a session of its own, as kombu does, not deferred with the messages."""
        if self._queues is not None:
            raise RuntimeError("this channel has a batch open already")
        session = self.session
        self._queues = {}
        session.deferring = True
        try:
            with session.no_autoflush:
                yield
            session.deferring = False
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.deferring = False
            self._queues = None

    def _get_or_create(self, queue: str) -> Any:
        """kombu's lookup of the queue's row; within a batch, once per queue."""
        if self._queues is None:
            return super()._get_or_create(queue)  # type: ignore[no-untyped-call]
        if queue not in self._queues:
            obj = self._find_queue(queue)
            if obj is None:
                self._create_queue(queue)
                obj = self._find_queue(queue)
            self._queues[queue] = obj
        return self._queues[queue]

    def _find_queue(self, queue: str) -> Any:
        return self.session.query(self.queue_cls).filter(self.queue_cls.name == queue).first()

    def _create_queue(self, queue: str) -> None:
        """kombu's creation of a queue's row (a rival's insert wins), committed now."""
        _, make_session = self._open()  # type: ignore[no-untyped-call]
        with make_session() as session, kombu_sqla._MUTEX:
            if session.query(self.queue_cls).filter(self.queue_cls.name == queue).first():
                return
            session.add(self.queue_cls(queue))
            try:
                session.commit()
            except (OperationalError, IntegrityError):
                session.rollback()


class Transport(kombu_sqla.Transport):
    """kombu's SQLAlchemy transport with the batching channel."""

    Channel = Channel


@contextlib.contextmanager
def publishing(producer: Producer) -> Iterator[bool]:
    """A batch on the producer's channel where it is this transport's, else nothing (Redis
    writes each message as it is published). Yields whether messages are batched."""
    if not issubclass(producer.connection.get_transport_cls(), Transport):
        yield False
        return
    channel = producer.channel  # connects: a pooled producer's channel is made on first use
    with channel.batch():
        yield True
