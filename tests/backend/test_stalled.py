"""A running job whose worker went silent shows `stalled` (issue 22, item 8): a full disk
under SQLite and the embedded broker leaves the worker unable to write anything, the page
showed `running` for minutes. The API derives it from the lease's last heartbeat.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from jobs import leases, store
from jobs.db.models import Job
from jobs.db.session import session_scope
from jobs.settings import Settings

API = "/api/v1"
SMALL = {"source_text": "photo", "target_text": "sketch", "generator": "random-64", "steps": 4}


def _running(client, settings: Settings) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    r = client.post(f"{API}/jobs", json=SMALL)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    assert r.json()["stalled"] is False  # queued: no worker to hear from
    with session_scope(settings.db_url) as s:
        claim = leases.claim_job(
            s, job_id=job_id, worker_id="w", lease_seconds=settings.lease_seconds, max_attempts=3
        )
    assert claim is not None
    return job_id, claim.attempt


def _silent_for(settings: Settings, job_id: str, seconds: float) -> None:
    """The worker's last heartbeat `seconds` ago (its lease not yet reaped: the reaper
    cannot write either on a full disk)."""
    with session_scope(settings.db_url) as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(heartbeat_at=store.utcnow() - timedelta(seconds=seconds))
        )


def test_a_running_job_with_a_fresh_heartbeat_is_not_stalled(client, settings) -> None:  # type: ignore[no-untyped-def]
    job_id, _ = _running(client, settings)
    job = client.get(f"{API}/jobs/{job_id}").json()
    assert job["status"] == "running"
    assert job["stalled"] is False
    assert job["heartbeat_at"] is not None


def test_a_running_job_whose_worker_went_silent_is_stalled(client, settings) -> None:  # type: ignore[no-untyped-def]
    job_id, attempt = _running(client, settings)
    _silent_for(settings, job_id, 3 * settings.lease_seconds)
    job = client.get(f"{API}/jobs/{job_id}").json()
    assert (job["status"], job["stalled"]) == ("running", True)
    listed = {j["id"]: j for j in client.get(f"{API}/jobs").json()["data"]}
    assert listed[job_id]["stalled"] is True

    with session_scope(settings.db_url) as s:  # the worker speaks again
        assert (
            leases.renew_lease(
                s, job_id=job_id, attempt=attempt, lease_seconds=settings.lease_seconds
            )
            is False
        )
    assert client.get(f"{API}/jobs/{job_id}").json()["stalled"] is False


def test_a_finished_job_is_never_stalled(client, settings) -> None:  # type: ignore[no-untyped-def]
    job_id, attempt = _running(client, settings)
    _silent_for(settings, job_id, 3 * settings.lease_seconds)
    with session_scope(settings.db_url) as s:
        assert leases.finish_job(s, job_id=job_id, attempt=attempt, status="canceled")
    job = client.get(f"{API}/jobs/{job_id}").json()
    assert (job["status"], job["stalled"]) == ("canceled", False)
