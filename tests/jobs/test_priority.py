"""Queue priority (jobs/priority.py): the order claims take jobs in and the queue
positions, on SQLite and PostgreSQL, with the worker's claim played by leases.claim_job
(each call: one broker message delivered)."""

from __future__ import annotations

import pytest

from jobs import leases, priority, store
from jobs.db.session import session_scope
from jobs.kinds import EDIT
from jobs.settings import Settings
from nada.params import AdaptParams
from nada.photo_params import EditParams

PARAMS = AdaptParams("photo", "sketch", generator="random-64", steps=4)


def _new(url: str, prio: int = 0, *, edit: bool = False) -> str:
    with session_scope(url) as s:
        if edit:  # the fast lane
            params = EditParams(inversion_id="1" * 32, job_id="2" * 32)
            return store.create_job(s, params=params, kind=EDIT, priority=prio).id
        return store.create_job(s, params=PARAMS, priority=prio).id


def _claim(url: str, message_of: str) -> str | None:
    """Deliver the message of `message_of`: the id of the job it was claimed for."""
    with session_scope(url) as s:
        claim = leases.claim_job(
            s, job_id=message_of, worker_id="w", lease_seconds=30, max_attempts=3
        )
    return claim.job_id if claim else None


def _positions(url: str, *job_ids: str) -> list[int | None]:
    with session_scope(url) as s:
        jobs = [store.get_job(s, job_id=j) for j in job_ids]
        return [store.estimate(s, job=job, stats=None)[0] for job in jobs]


def _send(url: str, *job_ids: str) -> None:
    """The broker accepted messages for these jobs, in this order (JobQueue.dispatch)."""
    for job_id in job_ids:
        with session_scope(url) as s:
            store.mark_dispatched(s, job_id=job_id)


def _unsent(url: str) -> list[str]:
    """What the reaper would send a message to now (queued jobs holding none)."""
    with session_scope(url) as s:
        return leases.reap_expired(s, max_attempts=3, dispatch_grace_seconds=0)


def test_claims_take_the_highest_priority_then_the_oldest_of_the_lane(db_url: str) -> None:
    a, b, c = _new(db_url), _new(db_url), _new(db_url)
    high, high2 = _new(db_url, 5), _new(db_url, 5)
    fast = _new(db_url, 9, edit=True)  # another lane: never taken on a train message
    canceled = _new(db_url, 9)
    _send(db_url, a, b, c, high, high2, fast, canceled)
    with session_scope(db_url) as s:
        store.request_cancel(s, job_id=canceled)
    # Positions: priority first, then submission order, within the lane.
    assert _positions(db_url, high, high2, a, b, c, fast) == [1, 2, 3, 4, 5, 1]
    with session_scope(db_url) as s:
        assert store.get_job(s, job_id=high).priority == 5
    assert _unsent(db_url) == []
    # The normal jobs' messages come first (a FIFO broker): each message is a place in its
    # lane's queue, so whatever job it names, it takes the first in start order.
    assert _claim(db_url, a) == high
    assert _claim(db_url, b) == high2
    assert _positions(db_url, a, b, c) == [1, 2, 3]
    assert _unsent(db_url) == []  # every queued job still has a message of its lane
    assert _claim(db_url, c) == a
    assert _claim(db_url, high) == b  # its job runs already: the message takes the next
    assert _claim(db_url, high2) == c
    assert _claim(db_url, high2) is None  # a duplicate finds the lane empty
    assert _claim(db_url, fast) == fast
    assert _claim(db_url, canceled) is None  # a canceled job's message: nothing left
    with session_scope(db_url) as s:
        started = [e for e in store.events_after(s, job_id=high) if e.kind == "started"]
        assert started[0].data["in_place_of"] == a
        assert all(store.get_job(s, job_id=j).status == "running" for j in (a, b, c, fast))
    assert _unsent(db_url) == []


def test_a_canceled_jobs_message_starts_the_next_and_the_last_waits_for_no_reaper(
    db_url: str,
) -> None:
    """Passed-over jobs are never left without a message: a high-priority job queued
    behind twelve normal ones starts first, the rest in order, every message used once."""
    normal = [_new(db_url) for _ in range(12)]
    high = _new(db_url, 5)
    _send(db_url, *normal, high)
    order = [_claim(db_url, message) for message in [*normal, high]]
    assert order == [high, *normal]
    with session_scope(db_url) as s:
        assert all(store.get_job(s, job_id=j).status == "running" for j in normal)


def test_a_message_takes_its_lanes_first_job_whatever_it_names(db_url: str) -> None:
    """Never marked sent (claims made by id, as the protocol's tests make them) or sent:
    the message of the newest job takes the highest priority, then the oldest."""
    older, newer, high = _new(db_url), _new(db_url), _new(db_url, 1)
    assert _claim(db_url, newer) == high
    assert _claim(db_url, newer) == older
    assert _positions(db_url, older, newer, high) == [None, 1, None]
    assert _claim(db_url, newer) == newer


def test_priority_caps_per_token() -> None:
    assert priority.parse_caps(" alice:9, bob:0 ,") == {"alice": 9, "bob": 0}
    for spec, says in [
        ("alice", "name:cap"),
        ("alice:10", "0..9"),
        ("alice:-1", "0..9"),
        ("alice:1,alice:2", "twice"),
    ]:
        with pytest.raises(ValueError, match=says):
            priority.parse_caps(spec)
    with pytest.raises(ValueError, match="NADA_TOKEN_MAX_PRIORITY"):
        Settings(token_max_priority="x:y")
    settings = Settings(max_priority=2, token_max_priority="alice:7")
    assert (settings.priority_cap("alice"), settings.priority_cap("bob")) == (7, 2)
    assert settings.priority_cap(None) == 2
