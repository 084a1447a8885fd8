"""GET /jobs/{id}/events: Server-Sent Events from the job_events table (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
import threading
import time

from jobs import leases
from jobs.db.models import JobStatus
from jobs.db.session import session_scope
from jobs.settings import Settings

API = "/api/v1"
SMALL = {"source_text": "photo", "target_text": "sketch", "generator": "random-64", "steps": 3}


def read_sse(response) -> list[dict]:  # type: ignore[no-untyped-def]
    """Parse a whole SSE response into [{id, event, data}] (comments/retry skipped)."""
    events, current = [], {}
    for line in response.iter_lines():
        if not line:
            if "event" in current:
                events.append(current)
            current = {}
            continue
        key, _, value = line.partition(": ")
        if key in ("id", "event"):
            current[key] = value
        elif key == "data":
            current["data"] = json.loads(value)
    return events


def play_worker(settings: Settings, job_id: str, delay: float = 0.0) -> None:
    time.sleep(delay)
    with session_scope(settings.db_url) as s:
        claim = leases.claim_job(s, job_id=job_id, worker_id="t", lease_seconds=30, max_attempts=3)
    kw = dict(job_id=job_id, attempt=claim.attempt)
    for step in (1, 2, 3):
        with session_scope(settings.db_url) as s:
            leases.record_progress(
                s,
                **kw,
                stage="training",
                step=step,
                total_steps=3,
                losses={"total": 1.0 / step},
                seconds_per_step=0.5,
                lease_seconds=30,
            )
            if step == 2:
                leases.record_sample(s, **kw, step=2)
        time.sleep(delay / 3)
    with session_scope(settings.db_url) as s:
        leases.finish_job(s, **kw, status=JobStatus.succeeded)


def test_stream_delivers_progress_and_ends_with_the_final_event(client, settings) -> None:  # type: ignore[no-untyped-def]
    job_id = client.post(f"{API}/jobs", json=SMALL).json()["id"]
    worker = threading.Thread(target=play_worker, args=(settings, job_id, 0.6))
    worker.start()
    with client.stream("GET", f"{API}/jobs/{job_id}/events") as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = read_sse(r)
    worker.join()
    kinds = [e["event"] for e in events if e["event"] != "heartbeat"]
    assert kinds == ["queued", "started", "progress", "progress", "sample", "progress", "succeeded"]
    assert "heartbeat" in {e["event"] for e in events}  # heartbeat every 0.3 s while waiting
    ids = [int(e["id"]) for e in events if "id" in e]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    progress = [e["data"] for e in events if e["event"] == "progress"]
    assert progress[-1]["step"] == 3 and progress[-1]["losses"] == {"total": 1 / 3}
    assert progress[0]["eta_seconds"] == 1.0
    sample = next(e["data"] for e in events if e["event"] == "sample")
    assert sample["url"] == f"{API}/jobs/{job_id}/samples/2.png"


def test_stream_resumes_after_last_event_id(client, settings) -> None:  # type: ignore[no-untyped-def]
    job_id = client.post(f"{API}/jobs", json=SMALL).json()["id"]
    play_worker(settings, job_id)
    with client.stream("GET", f"{API}/jobs/{job_id}/events") as r:
        everything = read_sse(r)
    cut = everything[3]["id"]
    with client.stream("GET", f"{API}/jobs/{job_id}/events", headers={"Last-Event-ID": cut}) as r:
        rest = read_sse(r)
    assert [e["id"] for e in rest] == [e["id"] for e in everything[4:]]
    with client.stream("GET", f"{API}/jobs/{job_id}/events?after={cut}") as r:
        assert [e["id"] for e in read_sse(r)] == [e["id"] for e in everything[4:]]
    # After the final event there is nothing more: the stream closes at once.
    with client.stream(
        "GET", f"{API}/jobs/{job_id}/events", headers={"Last-Event-ID": everything[-1]["id"]}
    ) as r:
        assert read_sse(r) == []


def test_stream_of_a_canceled_queued_job(client) -> None:  # type: ignore[no-untyped-def]
    job_id = client.post(f"{API}/jobs", json=SMALL).json()["id"]
    client.post(f"{API}/jobs/{job_id}/cancel")
    with client.stream("GET", f"{API}/jobs/{job_id}/events") as r:
        assert [e["event"] for e in read_sse(r)] == ["queued", "canceled"]
