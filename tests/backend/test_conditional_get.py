"""Conditional GET: a poll that finds nothing new costs a 304 with no body (issue 13)."""

from __future__ import annotations

from jobs import leases
from jobs.db.session import session_scope

API = "/api/v1"
SMALL = {"source_text": "photo", "target_text": "sketch", "generator": "random-64", "steps": 4}


def test_job_detail_etag_and_304(client, settings) -> None:  # type: ignore[no-untyped-def]
    job_id = client.post(f"{API}/jobs", json=SMALL).json()["id"]
    first = client.get(f"{API}/jobs/{job_id}")
    etag = first.headers["etag"]
    assert first.status_code == 200 and etag.startswith('"')

    again = client.get(f"{API}/jobs/{job_id}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    for header in (f"W/{etag}", f'"other", {etag}', "*"):
        assert (
            client.get(f"{API}/jobs/{job_id}", headers={"If-None-Match": header}).status_code == 304
        )
    head = client.head(f"{API}/jobs/{job_id}", headers={"If-None-Match": etag})
    assert head.status_code == 304

    # The job moves on: the old tag no longer matches, the body is sent with a new one.
    with session_scope(settings.db_url) as s:
        claim = leases.claim_job(s, job_id=job_id, worker_id="t", lease_seconds=30, max_attempts=3)
        assert claim is not None
        leases.record_progress(
            s, job_id=job_id, attempt=claim.attempt, stage="training", step=1, total_steps=4,
            lease_seconds=30,
        )  # fmt: skip
    moved = client.get(f"{API}/jobs/{job_id}", headers={"If-None-Match": etag})
    assert moved.status_code == 200 and moved.json()["step"] == 1
    assert moved.headers["etag"] != etag
    stale = client.get(f"{API}/jobs/{job_id}", headers={"If-None-Match": '"stale"'})
    assert stale.status_code == 200 and stale.json() == moved.json()


def test_job_list_etag_and_304(client) -> None:  # type: ignore[no-untyped-def]
    client.post(f"{API}/jobs", json=SMALL)
    first = client.get(f"{API}/jobs")
    etag = first.headers["etag"]
    assert client.get(f"{API}/jobs", headers={"If-None-Match": etag}).status_code == 304
    client.post(f"{API}/jobs", json={**SMALL, "seed": 1})
    changed = client.get(f"{API}/jobs", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.json()["count"] == 2


def test_only_reads_are_conditional(client) -> None:  # type: ignore[no-untyped-def]
    job = client.post(f"{API}/jobs", json=SMALL)
    etag = client.get(f"{API}/jobs/{job.json()['id']}").headers["etag"]
    canceled = client.post(f"{API}/jobs/{job.json()['id']}/cancel", headers={"If-None-Match": etag})
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
