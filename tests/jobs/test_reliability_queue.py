"""The reaper re-sends queued jobs whose broker message vanished (Redis flushed or
restarted empty), and only then: a broker that still holds enough messages gets none.

The end-to-end version with a real worker and redis-server is test_reliability_broker.py.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from jobs import store
from jobs.db.models import Job
from jobs.db.session import session_scope
from jobs.queue import sweep
from jobs.settings import Settings
from nada.params import AdaptParams
from tests.conftest import RecordingQueue


class CountingQueue(RecordingQueue):
    """A RecordingQueue whose broker reports `depth` waiting messages."""

    def __init__(self, settings: Settings, depth: int | None):
        super().__init__(settings)
        self.depth = depth

    def pending_messages(self) -> int | None:
        return self.depth


def _dispatched_jobs(settings: Settings, n: int, age_s: float) -> list[str]:
    ids = []
    with session_scope(settings.db_url) as s:
        for seed in range(n):
            params = AdaptParams("photo", "sketch", generator="random-8", seed=seed)
            ids.append(store.create_job(s, params=params).id)
    with session_scope(settings.db_url) as s:
        ago = store.utcnow() - timedelta(seconds=age_s)
        s.execute(update(Job).values(queued_at=ago, dispatched_at=ago))
    return ids


def test_lost_messages_of_dispatched_queued_jobs_are_resent(settings: Settings) -> None:
    ids = _dispatched_jobs(settings, 3, age_s=60)
    queue = CountingQueue(settings, depth=0)  # flushed: nothing left
    assert sweep(settings, queue) == sorted(ids) and sorted(queue.sent) == sorted(ids)
    queue.sent.clear()
    assert sweep(settings, queue) == []  # just re-sent: not stale again for a grace period


def test_nothing_is_resent_while_the_broker_holds_the_messages(settings: Settings) -> None:
    _dispatched_jobs(settings, 3, age_s=60)
    for depth in (3, 5, None):  # enough messages, or the broker cannot tell
        queue = CountingQueue(settings, depth=depth)
        assert sweep(settings, queue) == [] and queue.sent == []


def test_recently_dispatched_jobs_are_not_resent(settings: Settings) -> None:
    _dispatched_jobs(settings, 2, age_s=0)
    queue = CountingQueue(settings, depth=0)  # a worker may be taking them right now
    assert sweep(settings, queue) == [] and queue.sent == []
