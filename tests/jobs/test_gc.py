"""One retention pass on a real database (jobs/gc.py) with a settable clock: old finished
jobs lose their files but keep their rows (flags set, disk_bytes measured again); a running
job and the files a queued continuation, render or edit reads survive, also when one is
submitted while the pass runs; --dry-run removes nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from jobs import gc, storage, store
from jobs.db.models import Job
from jobs.db.session import session_scope
from jobs.retention import RetentionPolicy
from nada import rundir
from nada.params import AdaptParams

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
DAY = timedelta(days=1)
POLICY = RetentionPolicy(resumable=DAY, results=7 * DAY)
PARAMS = AdaptParams("photo", "sketch", generator="random-64", steps=4)
FILES = {
    rundir.ADAPTED: 1000, rundir.RESUME: 2000, rundir.PARAMS: 10, rundir.METRICS: 20,
    f"{rundir.CHECKPOINTS_DIR}/step_000002.pt": 300, f"{rundir.SNAPSHOTS_DIR}/step_000002.pt": 400,
    f"{rundir.SAMPLES_DIR}/step_000002.png": 30,
}  # fmt: skip


def _job(url: str, jobs_dir: Path, status: str, age: timedelta | None = None, **values: Any) -> str:
    """A job row of `status` (finished `age` before NOW) with a full run directory."""
    with session_scope(url) as s:
        job_id = store.create_job(s, params=PARAMS).id
        params = {**PARAMS.to_dict(), **values.pop("params", {})}
        finished = NOW - age if age is not None else None
        s.execute(
            update(Job).where(Job.id == job_id)
            .values(status=status, finished_at=finished, params=params, snapshot_steps=[2], **values)
        )  # fmt: skip
    root = storage.job_dir(jobs_dir, job_id)
    for name, size in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x" * size)
    return job_id


def _row(url: str, job_id: str) -> Job:
    with session_scope(url) as s:
        return store.get_job(s, job_id=job_id)


def _names(jobs_dir: Path, job_id: str) -> set[str]:
    root = storage.job_dir(jobs_dir, job_id)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_a_pass_expires_old_jobs_and_spares_what_is_needed(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = tmp_path / "jobs"
    old = 30 * DAY
    free = _job(db_url, jobs, "succeeded", old)
    mid = _job(db_url, jobs, "failed", 2 * DAY)
    recent = _job(db_url, jobs, "succeeded", DAY / 2)
    parent = _job(db_url, jobs, "succeeded", old)
    child = _job(db_url, jobs, "queued", parent_id=parent)
    adaptation = _job(db_url, jobs, "succeeded", old)
    blended = _job(db_url, jobs, "succeeded", old)  # a queued render blends it in
    render = _job(db_url, jobs, "queued", kind="render",
                  params={"job_id": adaptation, "blend": [{"job_id": blended, "strength": 0.5}]})  # fmt: skip
    inversion = _job(db_url, jobs, "succeeded", old, kind="invert")
    edit = _job(db_url, jobs, "running", kind="edit",
                params={"job_id": parent, "inversion_id": inversion})  # fmt: skip
    running = _job(db_url, jobs, "running")
    late = _job(db_url, jobs, "succeeded", old)  # a continuation arrives as it is planned
    everything = set(FILES)

    # Nothing is set: nothing goes (the embedded default)
    assert gc.collect(db_url, jobs, RetentionPolicy(), now=NOW).removals == []

    dry = gc.collect(db_url, jobs, POLICY, now=NOW, dry_run=True)
    assert {(r.job_id, r.what, r.bytes) for r in dry.removals} == {
        (free, "results", 3730),
        (late, "results", 3730),
        (mid, "resumable", 2700),
    }
    assert all(_names(jobs, j) == everything for j in (free, mid, late))
    assert _row(db_url, free).files_expired_at is None

    planned = gc.plan

    def plan_then_a_continuation(*args: Any, **kwargs: Any) -> Any:
        expiries = planned(*args, **kwargs)
        with session_scope(db_url) as s:
            s.execute(update(Job).where(Job.id == child).values(parent_id=late))
        return expiries

    monkeypatch.setattr(gc, "plan", plan_then_a_continuation)
    report = gc.collect(db_url, jobs, POLICY, now=NOW)
    monkeypatch.setattr(gc, "plan", planned)
    assert {(r.job_id, r.what) for r in report.removals} == {(free, "results"), (mid, "resumable")}
    assert report.kept == [late] and report.freed == 3730 + 2700

    kept_records = {rundir.PARAMS, rundir.METRICS}
    assert _names(jobs, free) == kept_records
    row = _row(db_url, free)
    assert row.files_expired_at == NOW and row.resumable_expired_at == NOW
    assert row.disk_bytes == 30 and row.snapshot_steps == [] and row.status == "succeeded"
    assert _names(jobs, mid) == everything - {
        rundir.RESUME, f"{rundir.CHECKPOINTS_DIR}/step_000002.pt",
        f"{rundir.SNAPSHOTS_DIR}/step_000002.pt",
    }  # fmt: skip
    row = _row(db_url, mid)
    assert row.resumable_expired_at == NOW and row.files_expired_at is None
    assert row.disk_bytes == 1060
    for needed in (recent, parent, child, adaptation, blended, render, inversion, edit, running,
                   late):  # fmt: skip
        assert _names(jobs, needed) == everything, needed
        assert _row(db_url, needed).files_expired_at is None, needed
        assert _row(db_url, needed).resumable_expired_at is None, needed

    # Again at the same time: nothing more to do
    assert gc.collect(db_url, jobs, POLICY, now=NOW).removals == []

    # The render and the continuation finish; a week later their inputs may go, they too
    with session_scope(db_url) as s:
        s.execute(
            update(Job).where(Job.id.in_((render, child)))
            .values(status="succeeded", finished_at=NOW)
        )  # fmt: skip
    later = gc.collect(db_url, jobs, POLICY, now=NOW + 8 * DAY)
    gone = {r.job_id for r in later.removals if r.what == "results"}
    assert {adaptation, blended, late, render, child, mid, recent} <= gone
    assert parent not in gone and inversion not in gone  # the edit still runs
    assert _names(jobs, adaptation) == kept_records
    assert _names(jobs, parent) == everything


def test_the_quota_counts_the_owners_measured_bytes(db_url: str, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    job_id = _job(db_url, jobs, "succeeded", DAY, owner="alice")
    _job(db_url, jobs, "succeeded", DAY, owner="bob", disk_bytes=10**9)
    with session_scope(db_url) as s:
        assert gc.measure(s, jobs, job_id) == sum(FILES.values())
    with session_scope(db_url) as s:
        assert gc.owner_disk_bytes(s, "alice") == sum(FILES.values())
        gc.check_quota(s, "alice", sum(FILES.values()) + 1)
        gc.check_quota(s, "alice", None)
        with pytest.raises(gc.QuotaExceeded, match="0 MB of the 0 MB"):
            gc.check_quota(s, "alice", sum(FILES.values()))
        with pytest.raises(gc.QuotaExceeded, match="1000 MB of the 500 MB"):
            gc.check_quota(s, "bob", 500 * 10**6)


def test_the_reaper_makes_the_pass_when_a_retention_is_set(settings: Any, queue: Any) -> None:
    from jobs.queue import Reaper

    configured = settings.model_copy(
        update={"retain_results_hours": 1, "reap_interval": 0.05, "gc_interval_seconds": 3600}
    )
    url, jobs = configured.db_url, configured.jobs_dir
    old = _job(url, jobs, "succeeded", age=NOW - datetime.now(UTC) + 2 * DAY)
    reaper = Reaper(configured, queue)
    reaper.start()
    try:
        for _ in range(200):  # up to 20 s on a loaded machine; one pass takes milliseconds
            if _row(url, old).files_expired_at is not None:
                break
            time.sleep(0.1)
    finally:
        reaper.stop()
        reaper.join(10)
    assert _row(url, old).files_expired_at is not None
    assert _names(jobs, old) == {rundir.PARAMS, rundir.METRICS}
