"""One retention pass over the database and the run directories: `nada gc` and the
reaper's periodic pass (jobs/retention.py decides what may go; this module does it).

The race it must win: a continuation, render or edit submitted while the pass runs must
not lose the files it reads. Both sides write first and read second: the pass marks the
job expired (one conditional UPDATE, committed, that loses to any queued or running job
that reads it), then looks again for such a job (and unmarks, keeping the files, if one
appeared) before removing anything; a submission commits its job, then reads the marks
of the jobs it reads (`expired_inputs`) and cancels itself with 410 if one is set. Of two
such interleaved transactions at least one sees the other's commit, so files are never
removed under a job that was admitted. A continuation does not even need that: it
hard-links its parent's resume.pt when it is made (backend/api/routes/continuations.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from jobs import storage
from jobs.db.models import ACTIVE, FINISHED, Job
from jobs.db.session import session_scope
from jobs.retention import Expiry, JobRecord, RetentionPolicy, disk_bytes, plan, remove

log = logging.getLogger(__name__)

# Where a job names the jobs whose files it reads when it runs (jobs/kinds.py): a
# continuation its parent (parent_id), a render or an edit its adaptation, an edit its
# inversion (params), a render the jobs it blends in (params['blend'], [{job_id, ...}]).
_READ_PARAMS = ("job_id", "inversion_id")
_READ_LISTS = ("blend",)


@dataclass(frozen=True)
class Removal:
    job_id: str
    what: str  # 'resumable' or 'results'
    bytes: int


@dataclass
class GcReport:
    """What one pass removed (or, with dry_run, would remove)."""

    dry_run: bool
    removals: list[Removal] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # planned, but needed when it came to it

    @property
    def freed(self) -> int:
        return sum(r.bytes for r in self.removals)


def reads_of(parent_id: str | None, params: dict[str, Any] | None) -> tuple[str, ...]:
    """The ids of the jobs a job reads the files of when it runs."""
    params = params or {}
    ids = [parent_id] + [params.get(key) for key in _READ_PARAMS]
    for key in _READ_LISTS:
        entries = params.get(key)
        if isinstance(entries, list):
            ids += [e.get("job_id") for e in entries if isinstance(e, dict)]
    return tuple(i for i in ids if isinstance(i, str) and i)


def _read_by_active(job_id: str) -> ColumnElement[bool]:
    """A queued or running job reads `job_id`'s files."""
    return exists().where(
        Job.status.in_(ACTIVE),
        or_(
            Job.parent_id == job_id,
            *(Job.params[key].as_string() == job_id for key in _READ_PARAMS),
            # The list as JSON text: an id (32 hex digits in quotes) matches only itself.
            *(Job.params[key].as_string().contains(f'"{job_id}"') for key in _READ_LISTS),
        ),
    )


def load_records(session: Session) -> list[JobRecord]:
    """Every active job (with what it reads) and every finished job with files left."""
    records = [
        JobRecord(row.id, row.status, None, needs=reads_of(row.parent_id, row.params))
        for row in session.execute(
            select(Job.id, Job.status, Job.parent_id, Job.params).where(Job.status.in_(ACTIVE))
        )
    ]
    finished = session.execute(
        select(Job.id, Job.status, Job.finished_at, Job.files_expired_at, Job.resumable_expired_at)
        .where(
            Job.status.in_(FINISHED),
            or_(Job.files_expired_at.is_(None), Job.resumable_expired_at.is_(None)),
        )
        .order_by(Job.finished_at, Job.id)
    )
    records += [
        JobRecord(
            row.id, row.status, row.finished_at,
            files_expired=row.files_expired_at is not None,
            resumable_expired=row.resumable_expired_at is not None,
        )
        for row in finished
    ]  # fmt: skip
    return records


def owner_disk_bytes(session: Session, owner: str) -> int:
    """What `owner`'s jobs hold on disk (the quota's measure: jobs.disk_bytes summed)."""
    total = session.scalar(select(func.sum(Job.disk_bytes)).where(Job.owner == owner))
    return int(total or 0)


class QuotaExceeded(Exception):
    """The owner's jobs hold its disk quota (NADA_DISK_QUOTA_MB): 403 `quota_exceeded`."""

    code = "quota_exceeded"

    def __init__(self, used: int, quota: int):
        self.used, self.quota = used, quota
        super().__init__(
            f"this token's jobs use {used / 1e6:.0f} MB of the {quota / 1e6:.0f} MB it may "
            "use (NADA_DISK_QUOTA_MB); delete jobs it no longer needs"
        )


def check_quota(session: Session, owner: str, quota: int | None) -> None:
    """QuotaExceeded once `owner`'s jobs hold `quota` bytes or more (None: no quota)."""
    if quota is None:
        return
    used = owner_disk_bytes(session, owner)
    if used >= quota:
        raise QuotaExceeded(used, quota)


def expired_inputs(session: Session, job_ids: tuple[str, ...]) -> list[str]:
    """Those of `job_ids` whose results expired (read fresh: after the caller's commit)."""
    if not job_ids:
        return []
    rows = session.scalars(
        select(Job.id).where(Job.id.in_(job_ids), Job.files_expired_at.is_not(None))
    )
    return list(rows)


def measure(session: Session, jobs_dir: Path, job_id: str) -> int:
    """Record what the job's run directory holds now (jobs.disk_bytes) and return it."""
    size = disk_bytes(storage.job_dir(jobs_dir, job_id))
    session.execute(update(Job).where(Job.id == job_id).values(disk_bytes=size))
    return size


def _mark(url: str, expiry: Expiry, now: datetime) -> dict[str, Any] | None:
    """Mark the job expired unless it is needed; the columns set, or None if not marked."""
    values: dict[str, Any] = {"resumable_expired_at": now}
    if expiry.what == "results":
        values = {"files_expired_at": now, "resumable_expired_at": now}
    unset = Job.files_expired_at if expiry.what == "results" else Job.resumable_expired_at
    with session_scope(url) as session:
        resumable_gone = session.scalar(
            select(Job.resumable_expired_at.is_not(None)).where(Job.id == expiry.job_id)
        )
        if resumable_gone and expiry.what == "results":
            values = {"files_expired_at": now}
        marked = session.execute(
            update(Job)
            .where(
                Job.id == expiry.job_id,
                Job.status.in_(FINISHED),
                unset.is_(None),
                ~_read_by_active(expiry.job_id),
            )
            .values(**values)
        ).rowcount  # type: ignore[attr-defined]
    if not marked:
        return None
    with session_scope(url) as session:  # again, after our commit: see the module's note
        if session.scalar(select(_read_by_active(expiry.job_id))):
            session.execute(
                update(Job).where(Job.id == expiry.job_id).values(**dict.fromkeys(values))
            )
            return None
    return values


def collect(
    url: str,
    jobs_dir: Path,
    policy: RetentionPolicy,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
) -> GcReport:
    """One pass at `now` (the settable clock; default: the time now): plan, then for each
    expiry mark the row, remove the files, record disk_bytes (and no snapshots left)."""
    now = now or datetime.now(UTC)
    report = GcReport(dry_run=dry_run)
    if policy.keeps_everything:
        return report
    with session_scope(url) as session:
        expiries = plan(load_records(session), policy, now)
    for expiry in expiries:
        root = storage.job_dir(jobs_dir, expiry.job_id)
        if dry_run:
            report.removals.append(
                Removal(expiry.job_id, expiry.what, remove(root, expiry.what, dry_run=True))
            )
            continue
        if _mark(url, expiry, now) is None:
            report.kept.append(expiry.job_id)
            continue
        freed = remove(root, expiry.what)
        with session_scope(url) as session:
            measure(session, jobs_dir, expiry.job_id)
            session.execute(update(Job).where(Job.id == expiry.job_id).values(snapshot_steps=[]))
        report.removals.append(Removal(expiry.job_id, expiry.what, freed))
    if report.removals and not dry_run:
        log.info("retention: %d removal(s), %d bytes freed", len(report.removals), report.freed)
    return report
