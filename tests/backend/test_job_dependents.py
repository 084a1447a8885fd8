"""DELETE /api/v1/jobs/{id} and the jobs that read its files (renders and edits of an
adaptation, edits of an inversion), through the TestClient on SQLite and PostgreSQL.

Pass criteria: a queued render or edit is canceled with the job it reads (its event says
why), instead of failing later without its files; while one of them runs, the delete is
refused with 409 naming it, and the job and its files stay; other jobs' work is untouched.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from jobs.db.models import Job, JobStatus
from jobs.db.session import session_scope
from jobs.settings import Settings
from tests.backend.test_inversions_api import _adapt, _finish, _invert, _png

API = "/api/v1"


def _status(settings: Settings, job_id: str) -> str:
    with session_scope(settings.db_url) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return str(job.status)


def _set_status(settings: Settings, job_id: str, status: JobStatus) -> None:
    with session_scope(settings.db_url) as session:
        session.execute(update(Job).where(Job.id == job_id).values(status=status))


def _finished_pair(client: Any, settings: Settings) -> tuple[str, str]:
    """A finished adaptation and a finished inversion of the same generator."""
    job = _adapt(client)
    _finish(settings, job, {"adapted.pt": b"x"})
    inversion = _invert(client, _png(), {"generator": "random-64"}).json()["id"]
    _finish(settings, inversion, {"latent.pt": b"x", "aligned.png": _png()})
    return job, inversion


def _render(client: Any, job: str, seeds: list[int]) -> str:
    r = client.post(f"{API}/jobs/{job}/renders", json={"seeds": seeds})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def _edit(client: Any, job: str, inversion: str) -> str:
    r = client.post(f"{API}/jobs/{job}/edits", json={"inversion_id": inversion})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def test_deleting_a_job_cancels_its_queued_renders_and_edits(
    client: Any, settings: Settings
) -> None:
    job, inversion = _finished_pair(client, settings)
    other = _adapt(client)
    _finish(settings, other, {"adapted.pt": b"y"})
    render, edit = _render(client, job, [1, 2]), _edit(client, job, inversion)
    done = _render(client, job, [3])
    _set_status(settings, done, JobStatus.succeeded)
    untouched = _render(client, other, [1])

    assert client.delete(f"{API}/jobs/{job}").status_code == 204
    assert client.get(f"{API}/jobs/{job}").status_code == 404
    assert not (settings.jobs_dir / job).exists()
    assert (_status(settings, render), _status(settings, edit)) == ("canceled", "canceled")
    assert _status(settings, done) == "succeeded"  # finished work stays (its own files)
    assert _status(settings, untouched) == "queued"
    events = client.get(f"{API}/jobs/{render}/events")  # a finished job: replayed, closed
    assert f"job {job} was deleted" in events.text, events.text


def test_deleting_an_inversion_cancels_its_queued_edits(client: Any, settings: Settings) -> None:
    job, inversion = _finished_pair(client, settings)
    edit = _edit(client, job, inversion)
    assert client.delete(f"{API}/jobs/{inversion}").status_code == 204
    assert _status(settings, edit) == "canceled"
    assert _status(settings, job) == "succeeded"


def test_a_job_whose_render_runs_is_not_deleted(client: Any, settings: Settings) -> None:
    job, _ = _finished_pair(client, settings)
    render = _render(client, job, [1])
    queued = _render(client, job, [2])
    _set_status(settings, render, JobStatus.running)

    r = client.delete(f"{API}/jobs/{job}")
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == (
        f"job {job} has a render running from its files ({render}); cancel it or wait "
        "until it finishes, then delete the job"
    )
    assert (settings.jobs_dir / job / "adapted.pt").is_file()  # nothing removed
    assert _status(settings, queued) == "queued"

    _set_status(settings, render, JobStatus.succeeded)
    assert client.delete(f"{API}/jobs/{job}").status_code == 204
    assert _status(settings, queued) == "canceled"
