"""Progress recorded through a database outage (issue 22, item 7): a job that succeeds
lists every sample on disk, and its events have no gap.

The outage is the TCP proxy of tests/backend/test_reliability_db.py, cut and restored in
front of the shared PostgreSQL while a scripted engine trains (the worker's own attempt
machinery, run_job, records its progress through the proxy).
"""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from jobs import leases, storage, store
from jobs.db.models import Job, JobEvent
from jobs.db.session import session_scope
from jobs.settings import Settings
from nada import rundir
from nada.params import AdaptParams
from tests.backend.test_reliability_db import TcpProxy
from tests.worker.test_tasks import ScriptedEngine
from worker.events import Progress

pytestmark = pytest.mark.services


def _events(db_url: str, job_id: str) -> list[tuple[str, dict]]:
    with session_scope(db_url) as s:
        rows = s.execute(
            select(JobEvent.kind, JobEvent.data)
            .where(JobEvent.job_id == job_id)
            .order_by(JobEvent.id)
        ).all()
        return [(kind, dict(data or {})) for kind, data in rows]


def _run(settings: Settings, job_id: str, engine: ScriptedEngine) -> str:
    from worker.attempts import run_job

    return run_job(job_id, settings=settings, worker_id="w1", engine=engine, models=object())


def test_records_refused_during_a_postgres_outage_are_written_after_it(
    pg_url: str, proxied_pg: tuple[str, TcpProxy], tmp_path: Path
) -> None:
    url, proxy = proxied_pg
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=url,
        lease_seconds=600,  # no lease question during the outage: only the records
        cancel_poll_seconds=0,
        migrate_on_start=False,
        frontend_dir=None,
    )
    params = AdaptParams(
        "photo", "sketch", generator="random-64", steps=8, sample_every=1, checkpoint_every=4
    )
    with session_scope(pg_url) as s:
        job_id = store.create_job(s, params=params).id

    def outage(step: int) -> None:  # after step 2's records: steps 3-5 meet no database
        if step == 2:
            proxy.cut()
        elif step == 5:
            proxy.restore()

    assert _run(settings, job_id, ScriptedEngine(hook=outage)) == "succeeded"

    root = storage.job_dir(settings.jobs_dir, job_id)
    on_disk = rundir.sample_steps(root)
    assert on_disk == list(range(1, 9))
    with session_scope(pg_url) as s:
        job = store.get_job(s, job_id=job_id)
        assert job.status == "succeeded"
        assert job.sample_steps == on_disk
        assert job.step == 8
    events = _events(pg_url, job_id)
    steps = [d["step"] for k, d in events if k == "progress" and "losses" in d]
    assert steps == list(range(1, 9))  # every step, in order
    assert sorted(d["step"] for k, d in events if k == "sample") == on_disk
    assert [k for k, _ in events][-1] == "succeeded"


def test_a_record_the_database_refuses_holds_back_none_of_the_others(
    pg_url: str, proxied_pg: tuple[str, TcpProxy], tmp_path: Path
) -> None:
    """Step 3 reports a NaN loss, which PostgreSQL's JSON refuses (DataError, not an
    outage), while the outage holds it back: when the database returns, that one record
    is dropped (logged) and every other goes in."""
    url, proxy = proxied_pg
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=url,
        lease_seconds=600,
        cancel_poll_seconds=0,
        migrate_on_start=False,
        frontend_dir=None,
    )
    params = AdaptParams(
        "photo", "sketch", generator="random-64", steps=6, sample_every=1, checkpoint_every=0
    )
    with session_scope(pg_url) as s:
        job_id = store.create_job(s, params=params).id

    def outage(step: int) -> None:
        if step == 2:
            proxy.cut()
        elif step == 4:
            proxy.restore()

    scripted = ScriptedEngine(hook=outage)

    def engine(params, out_dir, *, on_progress, **kwargs):  # type: ignore[no-untyped-def]
        def report(event: Progress) -> None:
            if event.kind == "step" and event.step == 3:
                event = dataclasses.replace(event, losses={"total": math.nan})
            on_progress(event)

        return scripted(params, out_dir, on_progress=report, **kwargs)

    assert _run(settings, job_id, engine) == "succeeded"  # type: ignore[arg-type]
    root = storage.job_dir(settings.jobs_dir, job_id)
    with session_scope(pg_url) as s:
        assert store.get_job(s, job_id=job_id).sample_steps == rundir.sample_steps(root)
    events = _events(pg_url, job_id)
    steps = [d["step"] for k, d in events if k == "progress" and "losses" in d]
    assert steps == [1, 2, 4, 5, 6]
    assert sorted(d["step"] for k, d in events if k == "sample") == list(range(1, 7))


def test_a_success_lists_the_samples_an_earlier_attempt_published_unrecorded(
    settings: Settings,
) -> None:
    """Attempt 1 published step 2's sample and checkpoint while the database was away,
    then vanished: its records died with it. Attempt 2 resumes from step 2; at its
    success the samples list holds every sample on disk, each with its event."""
    params = AdaptParams(
        "photo", "sketch", generator="random-64", steps=4, sample_every=2, checkpoint_every=2
    )
    with session_scope(settings.db_url) as s:
        job_id = store.create_job(s, params=params).id
        claim = leases.claim_job(
            s, job_id=job_id, worker_id="dead", lease_seconds=30, max_attempts=3
        )
        assert claim is not None
    root = storage.job_dir(settings.jobs_dir, job_id)
    rundir.write_bytes(rundir.sample_path(root, 2), b"png 2")
    rundir.write_bytes(rundir.intermediate_checkpoint_path(root, 2), b"ckpt 2")
    with session_scope(settings.db_url) as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(lease_expires_at=store.utcnow() - timedelta(seconds=5))
        )

    engine = ScriptedEngine()
    assert _run(settings, job_id, engine) == "succeeded"
    assert engine.calls[0]["resume_from"] == rundir.intermediate_checkpoint_path(root, 2)

    assert rundir.sample_steps(root) == [2, 4]
    with session_scope(settings.db_url) as s:
        assert store.get_job(s, job_id=job_id).sample_steps == [2, 4]
    events = _events(settings.db_url, job_id)
    assert sorted(d["step"] for k, d in events if k == "sample") == [2, 4]
    assert [k for k, _ in events][-1] == "succeeded"
