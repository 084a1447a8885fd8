"""Job files removed behind the service's back: the job's `samples` list only steps whose
image is there, so the page never shows links that 404."""

from __future__ import annotations

from jobs import leases, storage
from jobs.db.models import JobStatus
from jobs.db.session import session_scope
from jobs.settings import Settings
from nada import rundir

API = "/api/v1"
SMALL = {"source_text": "photo", "target_text": "sketch", "generator": "random-64", "steps": 4}


def _run_with_samples(settings: Settings, job_id: str, steps: list[int]) -> None:
    """Play a worker that publishes and records a sample at each of `steps`, then succeeds."""
    with session_scope(settings.db_url) as s:
        claim = leases.claim_job(s, job_id=job_id, worker_id="t", lease_seconds=30, max_attempts=3)
    assert claim is not None
    root = storage.job_dir(settings.jobs_dir, job_id)
    rundir.write_bytes(rundir.adapted_path(root), b"weights")
    with session_scope(settings.db_url) as s:
        for step in steps:
            rundir.write_bytes(rundir.sample_path(root, step), b"\x89PNG fake")
            leases.record_sample(s, job_id=job_id, attempt=claim.attempt, step=step)
        leases.finish_job(s, job_id=job_id, attempt=claim.attempt, status=JobStatus.succeeded)


def test_samples_whose_files_are_gone_are_not_listed(client, settings) -> None:  # type: ignore[no-untyped-def]
    job_id = client.post(f"{API}/jobs", json=SMALL).json()["id"]
    _run_with_samples(settings, job_id, [2, 4])
    root = storage.job_dir(settings.jobs_dir, job_id)
    rundir.sample_path(root, 2).unlink()
    job = client.get(f"{API}/jobs/{job_id}").json()
    assert job["samples"] == [{"step": 4, "url": f"{API}/jobs/{job_id}/samples/4.png"}]
    assert client.get(f"{API}/jobs").json()["data"][0]["samples"] == job["samples"]
    assert client.get(f"{API}/jobs/{job_id}/samples/2.png").status_code == 404
    rundir.remove_tree(root)  # the whole folder
    assert client.get(f"{API}/jobs/{job_id}").json()["samples"] == []
