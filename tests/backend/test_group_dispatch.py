"""Submissions' dispatch (backend/api/submission.py GroupDispatch, store.create_job with
dispatched=True): the row, its event and its dispatch mark are one transaction; concurrent
submissions' messages go out together, every job's exactly once, and a submission whose
dispatch a leader is already making does not wait for it; a refused publish unmarks."""

from __future__ import annotations

import threading
import time
from typing import Any

from backend.api.submission import GroupDispatch
from jobs import store
from jobs.db.models import Job
from jobs.db.session import session_scope
from jobs.settings import Settings

API = "/api/v1"
SMALL = {"source_text": "photo", "target_text": "sketch", "generator": "random-64", "steps": 4}


class _SlowQueue:
    """A queue whose first dispatch waits for `release`; records each call's ids."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str, bool]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_next = False

    def dispatch(self, job_ids: list[str], lane: str, *, marked: bool = False) -> list[str]:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("the database is down")
        self.calls.append((list(job_ids), lane, marked))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(10)
        return list(job_ids)


def test_followers_leave_their_jobs_to_the_leader_and_every_job_goes_once() -> None:
    queue = _SlowQueue()
    group = GroupDispatch(queue)  # type: ignore[arg-type]
    leader = threading.Thread(target=group.dispatch, args=(["a"], "train"))
    leader.start()
    assert queue.entered.wait(10)  # the leader is sending "a"
    started = time.monotonic()
    group.dispatch(["b"], "train")  # returns at once: the leader takes it next
    group.dispatch(["c"], "fast")
    group.dispatch(["d"], "train")
    assert time.monotonic() - started < 1.0
    assert queue.calls == [(["a"], "train", True)]
    queue.release.set()
    leader.join(10)
    assert sorted(queue.calls) == [(["a"], "train", True), (["b", "d"], "train", True),
                                   (["c"], "fast", True)]  # fmt: skip
    group.dispatch(["e"], "train")  # nobody leads now: this caller sends its own
    assert queue.calls[-1] == (["e"], "train", True)


def test_a_leader_that_fails_hands_the_lead_on() -> None:
    queue = _SlowQueue()
    queue.release.set()
    group = GroupDispatch(queue)  # type: ignore[arg-type]
    queue.fail_next = True
    try:
        group.dispatch(["a"], "train")
    except RuntimeError:
        pass
    else:
        raise AssertionError("the failure was swallowed")
    group.dispatch(["b"], "train")  # leads, and sends
    assert queue.calls == [(["b"], "train", True)]


def test_a_submission_is_marked_dispatched_in_its_own_transaction(
    client: Any, queue: Any, settings: Settings
) -> None:
    """The mark is the row's queued_at to the microsecond: set at the insert, not by a
    later write; a publish the broker refuses takes it back (the reaper then sends it)."""
    job_id = client.post(f"{API}/jobs", json=SMALL).json()["id"]
    with session_scope(settings.db_url) as s:
        job = s.get(Job, job_id)
        assert job is not None and job.dispatched_at == job.queued_at
    assert queue.sent == [job_id]
    queue.refuse = True
    refused = client.post(f"{API}/jobs", json={**SMALL, "seed": 2}).json()["id"]
    with session_scope(settings.db_url) as s:
        job = s.get(Job, refused)
        assert job is not None and job.dispatched_at is None
    with session_scope(settings.db_url) as s:
        made = store.create_job(s, params=_params(), dispatched=False)
    with session_scope(settings.db_url) as s:
        assert s.get(Job, made.id).dispatched_at is None  # type: ignore[union-attr]


def _params() -> Any:
    from nada.params import AdaptParams

    return AdaptParams("photo", "sketch", generator="random-64", steps=4)
