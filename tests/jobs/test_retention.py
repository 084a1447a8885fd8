"""Retention planning and removal (jobs/retention.py) with a settable clock: what expires
when, and that unfinished jobs and the files queued or running jobs read always stay."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobs.retention import Expiry, JobRecord, RetentionPolicy, plan, remove
from nada import rundir

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def job(id: str, status: str = "succeeded", age: timedelta = 10 * DAY, **kw) -> JobRecord:
    return JobRecord(
        id, status, NOW - age if status in ("succeeded", "failed", "canceled") else None, **kw
    )


def test_nothing_expires_by_default() -> None:
    assert plan([job("a", age=1000 * DAY)], RetentionPolicy(), NOW) == []


def test_resumable_state_expires_before_results() -> None:
    policy = RetentionPolicy(resumable=DAY, results=7 * DAY)
    jobs = [job("new", age=DAY / 2), job("mid", age=2 * DAY), job("old", age=8 * DAY),
            job("gone", age=30 * DAY, files_expired=True), job("failed", "failed", age=3 * DAY)]  # fmt: skip
    assert plan(jobs, policy, NOW) == [
        Expiry("mid", "resumable"),
        Expiry("old", "results"),
        Expiry("gone", "resumable"),  # results went already; leftovers of its state may not
        Expiry("failed", "resumable"),
    ]
    # the clock moves on: the same jobs, a week later
    later = plan(jobs, policy, NOW + 7 * DAY)
    assert Expiry("mid", "results") in later and Expiry("new", "results") in later


def test_running_jobs_and_what_they_read_stay() -> None:
    policy = RetentionPolicy(resumable=DAY, results=DAY)
    jobs = [
        job("parent", age=30 * DAY),  # a queued continuation reads its resume.pt
        job("child", "queued", needs=("parent",)),
        job("adaptation", age=30 * DAY),
        job("render", "running", needs=("adaptation",)),
        job("inversion", age=30 * DAY),
        job("edit", "queued", needs=("adaptation", "inversion")),
        job("free", age=30 * DAY),
        job("running", "running"),
    ]
    assert plan(jobs, policy, NOW) == [Expiry("free", "results")]


def _job_dir(tmp_path: Path) -> Path:
    d = tmp_path / "job"
    (d / rundir.CHECKPOINTS_DIR).mkdir(parents=True)
    (d / rundir.SAMPLES_DIR).mkdir()
    for name, size in [(rundir.ADAPTED, 1000), (rundir.RESUME, 2000), (rundir.PARAMS, 10),
                       (rundir.METRICS, 20), ("checkpoints/step_000001.pt", 500),
                       ("samples/step_000001.png", 30)]:  # fmt: skip
        (d / name).write_bytes(b"x" * size)
    return d


def test_removal_frees_what_the_plan_says_and_keeps_the_records(tmp_path: Path) -> None:
    d = _job_dir(tmp_path)
    assert remove(d, "resumable", dry_run=True) == 2500 and (d / rundir.RESUME).exists()
    assert remove(d, "resumable") == 2500
    assert not (d / rundir.RESUME).exists() and not (d / rundir.CHECKPOINTS_DIR).exists()
    assert (d / rundir.ADAPTED).exists()
    assert remove(d, "results") == 1030
    assert sorted(p.name for p in d.iterdir()) == [rundir.METRICS, rundir.PARAMS]
    assert remove(d, "results") == 0  # again: nothing left to remove
    assert remove(tmp_path / "missing", "results") == 0


def test_links_are_removed_not_followed(tmp_path: Path) -> None:
    d = _job_dir(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_bytes(b"keep")
    os.symlink(outside, d / "samples-link")
    os.symlink(outside / "precious", d / rundir.START)
    remove(d, "resumable")
    remove(d, "results")
    assert (outside / "precious").read_bytes() == b"keep"
    assert not (d / "samples-link").is_symlink()


def test_a_non_positive_lifetime_is_refused() -> None:
    with pytest.raises(ValueError, match="resumable"):
        RetentionPolicy(resumable=timedelta(0))
