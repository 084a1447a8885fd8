"""The worker claim protocol (leases, attempts as fencing tokens, the reaper) on SQLite and
PostgreSQL, through jobs.store with real databases."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import update

from jobs import leases, store
from jobs.db.models import Job, JobStatus
from jobs.db.session import session_scope
from nada.params import AdaptParams

PARAMS = AdaptParams("photo", "sketch", generator="random-64", steps=4)


def _new_job(url: str) -> str:
    with session_scope(url) as s:
        return store.create_job(s, params=PARAMS).id


def _claim(url: str, job_id: str, worker: str = "w1", max_attempts: int = 3) -> leases.Claim | None:
    with session_scope(url) as s:
        return leases.claim_job(
            s, job_id=job_id, worker_id=worker, lease_seconds=30, max_attempts=max_attempts
        )


def _expire_lease(url: str, job_id: str) -> None:
    with session_scope(url) as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(lease_expires_at=store.utcnow() - timedelta(hours=1))
        )


def _job(url: str, job_id: str) -> Job:
    with session_scope(url) as s:
        return store.get_job(s, job_id=job_id)


def _kinds(url: str, job_id: str) -> list[str]:
    with session_scope(url) as s:
        return [e.kind for e in store.events_after(s, job_id=job_id)]


def test_claim_is_exclusive_while_the_lease_lives(db_url: str) -> None:
    job_id = _new_job(db_url)
    claim = _claim(db_url, job_id)
    assert claim is not None and claim.attempt == 1 and claim.params["steps"] == 4
    assert _claim(db_url, job_id, "w2") is None  # a duplicate message does nothing
    job = _job(db_url, job_id)
    assert job.status == "running" and job.worker_id == "w1" and job.started_at is not None
    assert _kinds(db_url, job_id) == ["queued", "started"]


def test_concurrent_claims_have_one_winner(db_url: str) -> None:
    job_id = _new_job(db_url)
    results: list[leases.Claim | None] = []
    barrier = threading.Barrier(4)

    def claim(worker: str) -> None:
        barrier.wait()
        results.append(_claim(db_url, job_id, worker))

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1
    assert _job(db_url, job_id).attempt == 1


def test_writes_are_fenced_by_attempt(db_url: str) -> None:
    job_id = _new_job(db_url)
    first = _claim(db_url, job_id)
    assert first is not None
    _expire_lease(db_url, job_id)  # the first worker stalls...
    second = _claim(db_url, job_id, "w2")  # ...and a second one takes over
    assert second is not None and second.attempt == 2
    with session_scope(db_url) as s:
        stale = dict(job_id=job_id, attempt=first.attempt)
        assert leases.renew_lease(s, **stale, lease_seconds=30) is None
        assert leases.cancel_requested(s, **stale) is None
        assert not leases.record_progress(
            s, **stale, stage="training", step=3, total_steps=4, lease_seconds=30
        )
        assert not leases.record_sample(s, **stale, step=2)
        assert not leases.finish_job(s, **stale, status=JobStatus.succeeded)
    with session_scope(db_url) as s:
        live = dict(job_id=job_id, attempt=second.attempt)
        assert leases.renew_lease(s, **live, lease_seconds=30) is False
        assert leases.record_progress(
            s,
            **live,
            stage="training",
            step=1,
            total_steps=4,
            losses={"total": 0.5},
            seconds_per_step=2.0,
            lease_seconds=30,
        )
        assert leases.record_sample(s, **live, step=2)
        assert leases.record_sample(s, **live, step=2)  # a resumed attempt re-samples a step
        assert leases.finish_job(s, **live, status=JobStatus.succeeded, checkpoint_sha256="ab" * 32)
    job = _job(db_url, job_id)
    assert (job.status, job.step, job.sample_steps, job.losses) == (
        "succeeded",
        1,
        [2],
        {"total": 0.5},
    )
    assert job.finished_at is not None and job.lease_expires_at is None
    assert _kinds(db_url, job_id)[-1] == "succeeded"


def test_reaper_requeues_a_job_whose_worker_vanished(db_url: str) -> None:
    job_id = _new_job(db_url)
    assert _claim(db_url, job_id) is not None
    with session_scope(db_url) as s:
        assert leases.reap_expired(s, max_attempts=3, dispatch_grace_seconds=3600) == []
    _expire_lease(db_url, job_id)
    with session_scope(db_url) as s:
        assert leases.reap_expired(s, max_attempts=3, dispatch_grace_seconds=3600) == [job_id]
    job = _job(db_url, job_id)
    assert (job.status, job.attempt, job.worker_id, job.dispatched_at) == ("queued", 1, None, None)
    again = _claim(db_url, job_id, "w2")
    assert again is not None and again.attempt == 2
    assert _kinds(db_url, job_id) == ["queued", "started", "queued", "started"]


def test_reaper_fails_a_job_after_max_attempts(db_url: str) -> None:
    job_id = _new_job(db_url)
    for attempt in (1, 2):
        assert _claim(db_url, job_id, max_attempts=2).attempt == attempt
        _expire_lease(db_url, job_id)
        with session_scope(db_url) as s:
            requeued = leases.reap_expired(s, max_attempts=2, dispatch_grace_seconds=3600)
        assert requeued == ([job_id] if attempt == 1 else [])
    job = _job(db_url, job_id)
    assert (job.status, job.error_code) == ("failed", "worker_lost")
    assert "2 attempts" in job.error_message
    assert _claim(db_url, job_id, max_attempts=2) is None


def test_cancel_queued_running_and_finished(db_url: str) -> None:
    running, queued = _new_job(db_url), _new_job(db_url)  # a message takes the oldest
    claim = _claim(db_url, running)
    with session_scope(db_url) as s:
        assert store.request_cancel(s, job_id=queued).status == "canceled"
        job = store.request_cancel(s, job_id=running)
        assert job.status == "running" and job.cancel_requested
    assert _claim(db_url, queued) is None  # its message, delivered later, does nothing
    with session_scope(db_url) as s:
        assert leases.cancel_requested(s, job_id=running, attempt=claim.attempt) is True
        assert leases.finish_job(
            s, job_id=running, attempt=claim.attempt, status=JobStatus.canceled
        )
    with session_scope(db_url) as s:
        for job_id in (queued, running):
            try:
                store.request_cancel(s, job_id=job_id)
            except store.JobConflict as exc:
                assert "canceled" in str(exc)
            else:
                raise AssertionError("canceling a finished job must conflict")


def test_reaper_cancels_a_lost_job_with_a_pending_cancel(db_url: str) -> None:
    job_id = _new_job(db_url)
    _claim(db_url, job_id)
    with session_scope(db_url) as s:
        store.request_cancel(s, job_id=job_id)
    _expire_lease(db_url, job_id)
    with session_scope(db_url) as s:
        assert leases.reap_expired(s, max_attempts=3, dispatch_grace_seconds=3600) == []
    assert _job(db_url, job_id).status == "canceled"


def test_reaper_redispatches_queued_jobs_without_a_message(db_url: str) -> None:
    sent, unsent = _new_job(db_url), _new_job(db_url)
    with session_scope(db_url) as s:
        store.mark_dispatched(s, job_id=sent)
        assert leases.reap_expired(s, max_attempts=3, dispatch_grace_seconds=3600) == []
        s.execute(update(Job).values(queued_at=store.utcnow() - timedelta(hours=2)))
    with session_scope(db_url) as s:
        assert leases.reap_expired(s, max_attempts=3, dispatch_grace_seconds=3600) == [unsent]


def test_queue_position_and_eta(db_url: str) -> None:
    ids = [_new_job(db_url) for _ in range(3)]
    claim = _claim(db_url, ids[0])
    with session_scope(db_url) as s:
        leases.record_progress(
            s,
            job_id=ids[0],
            attempt=claim.attempt,
            stage="training",
            step=1,
            total_steps=4,
            seconds_per_step=2.0,
            lease_seconds=30,
        )
    with session_scope(db_url) as s:
        stats = store.queue_stats(s)
        assert (stats.running, stats.running_steps_left, stats.seconds_per_step) == (1, 3, 2.0)
        running = store.get_job(s, job_id=ids[0])
        assert store.estimate(s, job=running, stats=stats) == (None, 6.0)
        last = store.get_job(s, job_id=ids[2])
        # 3 steps left of the running job + 4 of the job ahead + its own 4, at 2 s a step
        assert store.estimate(s, job=last, stats=stats) == (2, 22.0)


def test_delete_only_finished_jobs(db_url: str) -> None:
    job_id = _new_job(db_url)
    with session_scope(db_url) as s:
        try:
            store.delete_job(s, job_id=job_id)
        except store.JobConflict:
            pass
        else:
            raise AssertionError("deleting a queued job must conflict")
        store.request_cancel(s, job_id=job_id)
    with session_scope(db_url) as s:
        store.delete_job(s, job_id=job_id)
    with session_scope(db_url) as s:
        assert store.events_after(s, job_id=job_id) == []
        try:
            store.get_job(s, job_id=job_id)
        except store.JobNotFound:
            pass
        else:
            raise AssertionError("the job must be gone")
