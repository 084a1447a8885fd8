"""Data access for jobs on the workers' side: claims, leases and fencing (issue #6).

Keyword-only functions over a Session, like jobs/store.py. The protocol, in the order a
job meets it:

1. claim_job: `UPDATE ... SET status='running', attempt=attempt+1, lease_expires_at=now+L
   WHERE id=:id AND NOT cancel_requested AND (status='queued' OR (status='running' AND
   lease expired))`. The returned attempt number is the worker's *fencing token*.
2. While it runs, the worker renews the lease (renew_lease) and records progress; each of
   these writes carries `WHERE attempt=:attempt AND status='running'`, so a worker that lost
   its lease (it stalled, another worker took over, the job was reaped) writes nothing and
   learns that it should stop (the functions return False).
3. finish_job: the final state, fenced the same way (a success first reconciles the
   samples list with the run directory: reconcile_samples).
4. reap_expired, run periodically by the API and by every worker: a running job whose lease
   expired is re-queued (its worker vanished), or failed with `worker_lost` once it used
   max_attempts claims, or marked canceled if a cancel was pending. Queued jobs that no
   broker message is known to carry (the API died between commit and send, or the broker
   refused) are returned for re-dispatch too. Duplicate messages are harmless: the claim
   of a job that is not claimable is a no-op.
5. dispatched_queued: queued jobs whose message the broker accepted a while ago; the
   reaper re-sends them when the broker holds fewer messages than there are queued jobs
   (the broker lost messages: Redis flushed, or restarted without persistence).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, literal, or_, select, update
from sqlalchemy.orm import Session

from jobs.db.models import FINISHED, Job, JobStatus, UTCDateTime
from jobs.kinds import kinds_never_on, lane_of
from jobs.store import add_event, seconds_left, stored_passes_left, utcnow

WORKER_LOST = "worker_lost"


@dataclass(frozen=True)
class Claim:
    """A worker's hold on a job: `attempt` fences all of its writes."""

    job_id: str
    attempt: int
    params: dict[str, Any]
    kind: str = "adapt"  # jobs/kinds.py
    step: int = 0  # steps an earlier attempt recorded (0: none, or a fresh job)


def _now(session: Session) -> Any:
    """'now' for lease arithmetic: the database's clock where it has one we can use in SQL
    (PostgreSQL, shared by all workers), else this process's clock (SQLite: one machine)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.now()
    return utcnow()


def _sql_time(now: Any) -> Any:
    """`now` usable inside SQL functions (a Python datetime needs the column's type)."""
    return literal(now, UTCDateTime()) if isinstance(now, datetime) else now


_CANDIDATES = 50  # queued jobs read per claim, in start order (then the lane decides)


def claim_job(
    session: Session, *, job_id: str, worker_id: str, lease_seconds: float, max_attempts: int
) -> Claim | None:
    """Take a job for this worker on the broker message of `job_id`, or None if there is
    nothing for it to take.

    Priority (jobs/priority.py) is honoured here, the same on both transports (the embedded
    SQLite one has no message priorities): a message is a place in its lane's queue, not a
    ticket for one job. Whatever job it names, the worker takes the first claimable queued
    job of that job's lane in start order (the highest priority, then the oldest), the
    order store.queue_position counts in; when that is another job, its 'started' event
    says whose message it came on (`in_place_of`). Each queued job still has a message of
    its lane in the broker (every take uses up one message and one queued job of the lane;
    a message that finds its lane empty goes unused), so nothing waits for the reaper, and
    the start order does not depend on the order the broker delivers in. Every take is one
    conditional UPDATE: of two workers racing for a job one wins, the other tries the next.

    The message's own job is taken, too, when it is running with an expired lease (its
    worker vanished: a re-delivered message). None: the lane has nothing claimable (a
    duplicate message, or one of a done or canceled job), or the job's row is gone.
    """
    own = session.execute(select(Job.status, Job.kind, Job.params).where(Job.id == job_id)).first()
    if own is None:
        return None
    if own.status == JobStatus.running:
        claim = _take(
            session, job_id=job_id, worker_id=worker_id, lease_seconds=lease_seconds,
            max_attempts=max_attempts,
        )  # fmt: skip
        if claim is not None:  # a running job whose lease expired: its worker vanished
            return claim
    lane = lane_of(own.kind, own.params)
    for _ in range(3):  # every candidate lost to racing workers: read the queue again
        candidates = _start_order(session, lane=lane, max_attempts=max_attempts)
        if own.status == JobStatus.queued and job_id not in candidates:
            candidates.append(job_id)  # past the candidates read: its own place still holds
        if not candidates:
            return None
        for candidate in candidates:
            claim = _take(
                session, job_id=candidate, worker_id=worker_id, lease_seconds=lease_seconds,
                max_attempts=max_attempts, in_place_of=None if candidate == job_id else job_id,
            )  # fmt: skip
            if claim is not None:
                return claim
    return None


def _start_order(session: Session, *, lane: str, max_attempts: int) -> list[str]:
    """The first claimable queued jobs of `lane`, in the order they start (priority, then
    queue time, then id: the index on status, priority, queued_at)."""
    rows = session.execute(
        select(Job.id, Job.kind, Job.params)
        .where(
            Job.status == JobStatus.queued,
            Job.cancel_requested.is_(False),
            Job.attempt < max_attempts,
            Job.kind.not_in(kinds_never_on(lane)),
        )
        .order_by(Job.priority.desc(), Job.queued_at, Job.id)
        .limit(_CANDIDATES)
    ).all()
    return [row.id for row in rows if lane_of(row.kind, row.params) == lane]


def _take(
    session: Session,
    *,
    job_id: str,
    worker_id: str,
    lease_seconds: float,
    max_attempts: int,
    in_place_of: str | None = None,
) -> Claim | None:
    """The one conditional claim of one job: queued, or running with an expired lease
    (unless it is taken `in_place_of` another job: queued only)."""
    now = _now(session)
    expired = and_(Job.status == JobStatus.running, Job.lease_expires_at < now)
    claimable = (
        Job.status == JobStatus.queued
        if in_place_of
        else or_(Job.status == JobStatus.queued, expired)
    )
    row = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.cancel_requested.is_(False),
            Job.attempt < max_attempts,
            claimable,
        )
        .values(
            status=JobStatus.running,
            attempt=Job.attempt + 1,
            worker_id=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            heartbeat_at=now,
            started_at=func.coalesce(Job.started_at, _sql_time(now)),
            stage=None,
        )
        .returning(Job.attempt, Job.params, Job.kind, Job.step)
    ).first()
    if row is None:
        return None
    data: dict[str, Any] = {"status": "running", "attempt": row.attempt, "worker": worker_id}
    if in_place_of:
        data["in_place_of"] = in_place_of
    add_event(session, job_id=job_id, kind="started", attempt=row.attempt, data=data)
    return Claim(
        job_id=job_id, attempt=row.attempt, params=row.params, kind=row.kind, step=row.step
    )


def _fence(job_id: str, attempt: int) -> Any:
    return and_(Job.id == job_id, Job.attempt == attempt, Job.status == JobStatus.running)


def renew_lease(
    session: Session, *, job_id: str, attempt: int, lease_seconds: float
) -> bool | None:
    """Extend the lease. Returns cancel_requested, or None when the lease is lost."""
    now = _now(session)
    row = session.execute(
        update(Job)
        .where(_fence(job_id, attempt))
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds), heartbeat_at=now)
        .returning(Job.cancel_requested)
    ).first()
    return None if row is None else bool(row.cancel_requested)


def cancel_requested(session: Session, *, job_id: str, attempt: int) -> bool | None:
    """Whether the job should stop: True/False, or None when the lease is lost."""
    row = session.execute(select(Job.cancel_requested).where(_fence(job_id, attempt))).first()
    return None if row is None else bool(row.cancel_requested)


def record_progress(
    session: Session,
    *,
    job_id: str,
    attempt: int,
    stage: str,
    step: int,
    total_steps: int,
    losses: dict[str, float] | None = None,
    selected_layers: list[str] | None = None,
    seconds_per_step: float | None = None,
    seconds_per_sample: float | None = None,
    lease_seconds: float,
) -> bool:
    """Record a stage change or a finished step (and renew the lease); False = lease lost.
    The event's eta_seconds counts the sample passes left at seconds_per_sample (this one or
    the job's last), as store.estimate does."""
    now = _now(session)
    values: dict[str, Any] = {
        "stage": stage,
        "step": step,
        "total_steps": total_steps,
        "lease_expires_at": now + timedelta(seconds=lease_seconds),
        "heartbeat_at": now,
    }
    if losses is not None:
        values["losses"] = losses
    if selected_layers is not None:
        values["selected_layers"] = selected_layers
    if seconds_per_step is not None:
        values["seconds_per_step"] = seconds_per_step
    if seconds_per_sample is not None:
        values["seconds_per_sample"] = seconds_per_sample
    row = session.execute(
        update(Job)
        .where(_fence(job_id, attempt))
        .values(**values)
        .returning(Job.id, Job.params, Job.sample_steps, Job.seconds_per_sample)
    ).first()
    if row is None:
        return False
    data: dict[str, Any] = {"stage": stage, "step": step, "total_steps": total_steps}
    if losses is not None:
        data["losses"] = losses
    if selected_layers is not None:
        data["selected_layers"] = selected_layers
    if seconds_per_step is not None:
        data["eta_seconds"] = seconds_left(
            steps_left=total_steps - step,
            passes_left=stored_passes_left(
                row.params, step=step, total_steps=total_steps, sample_steps=row.sample_steps
            ),
            seconds_per_step=seconds_per_step,
            seconds_per_sample=row.seconds_per_sample,
        )
        if row.seconds_per_sample is not None:
            data["seconds_per_sample"] = row.seconds_per_sample
    add_event(session, job_id=job_id, kind="progress", attempt=attempt, data=data)
    return True


def record_sample(session: Session, *, job_id: str, attempt: int, step: int) -> bool:
    """Record that samples/step_<step>.png was published; False = lease lost."""
    row = session.execute(
        update(Job)
        .where(_fence(job_id, attempt))
        .values(heartbeat_at=utcnow())
        .returning(Job.sample_steps)
    ).first()
    if row is None:
        return False
    steps = sorted({*row.sample_steps, step})  # a resumed attempt may sample a step again
    session.execute(update(Job).where(Job.id == job_id).values(sample_steps=steps))
    add_event(session, job_id=job_id, kind="sample", attempt=attempt, data={"step": step})
    return True


def record_snapshot(session: Session, *, job_id: str, attempt: int, step: int) -> bool:
    """Record that snapshots/step_<step>.pt was published (worker/attempt_recorder.py);
    False = lease lost. A resumed attempt keeps the earlier attempts' steps."""
    row = session.execute(
        update(Job)
        .where(_fence(job_id, attempt))
        .values(heartbeat_at=utcnow())
        .returning(Job.snapshot_steps)
    ).first()
    if row is None:
        return False
    steps = sorted({*(row.snapshot_steps or []), step})
    session.execute(update(Job).where(Job.id == job_id).values(snapshot_steps=steps))
    add_event(session, job_id=job_id, kind="snapshot", attempt=attempt, data={"step": step})
    return True


def reconcile_samples(session: Session, *, job_id: str, attempt: int, steps: list[int]) -> bool:
    """Make the job's samples list hold every step in `steps` (the samples on disk, before
    the final state): a step whose record was lost (a database outage outlived the worker
    that published it) is added with its `sample` event. False = lease lost."""
    row = session.execute(select(Job.sample_steps).where(_fence(job_id, attempt))).first()
    if row is None:
        return False
    missing = sorted(set(steps) - set(row.sample_steps or []))
    if missing:
        merged = sorted({*(row.sample_steps or []), *missing})
        session.execute(update(Job).where(Job.id == job_id).values(sample_steps=merged))
    for step in missing:
        add_event(
            session,
            job_id=job_id,
            kind="sample",
            attempt=attempt,
            data={"step": step, "reconciled": True},
        )
    return True


def record_scores(
    session: Session, *, job_id: str, attempt: int, step: int, scores: dict[str, float]
) -> bool:
    """Record the objective scores measured at `step` (a resumed attempt may measure a step
    again: the newer values win); False = lease lost."""
    row = session.execute(
        update(Job)
        .where(_fence(job_id, attempt))
        .values(heartbeat_at=utcnow())
        .returning(Job.scores)
    ).first()
    if row is None:
        return False
    history = {**(row.scores or {}), str(step): scores}
    session.execute(update(Job).where(Job.id == job_id).values(scores=history))
    add_event(
        session,
        job_id=job_id,
        kind="scores",
        attempt=attempt,
        data={"step": step, "scores": scores},
    )
    return True


def finish_job(
    session: Session,
    *,
    job_id: str,
    attempt: int,
    status: JobStatus,
    error_code: str | None = None,
    error_message: str | None = None,
    error_details: str | None = None,
    checkpoint_sha256: str | None = None,
) -> bool:
    """Record the outcome of the attempt; False if the attempt no longer holds the job."""
    assert status in FINISHED
    values: dict[str, Any] = {
        "status": status,
        "finished_at": utcnow(),
        "lease_expires_at": None,
        "error_code": error_code,
        "error_message": error_message,
        "error_details": error_details,
    }
    if status == JobStatus.succeeded:
        values.update(checkpoint_sha256=checkpoint_sha256, stage=None)
    row = session.execute(
        update(Job).where(_fence(job_id, attempt)).values(**values).returning(Job.step)
    ).first()
    if row is None:
        return False
    data: dict[str, Any] = {"status": str(status), "step": row.step}
    if error_code:
        data["error"] = {"code": error_code, "message": error_message, "details": error_details}
    add_event(session, job_id=job_id, kind=str(status), attempt=attempt, data=data)
    return True


def reap_expired(
    session: Session, *, max_attempts: int, dispatch_grace_seconds: float = 30.0
) -> list[str]:
    """Settle running jobs whose worker vanished; return the ids to (re-)dispatch.

    Those are the jobs re-queued here, plus queued jobs that no broker message is known
    to carry `dispatch_grace_seconds` after they were queued.
    """
    now = _now(session)
    expired = and_(Job.status == JobStatus.running, Job.lease_expires_at < now)
    done = {"finished_at": utcnow(), "lease_expires_at": None}

    rows = session.execute(
        update(Job)
        .where(expired, Job.cancel_requested.is_(True))
        .values(status=JobStatus.canceled, **done)
        .returning(Job.id, Job.attempt)
    ).all()
    for job_id, attempt in rows:
        add_event(
            session, job_id=job_id, kind="canceled", attempt=attempt, data={"status": "canceled"}
        )

    message = (
        f"the worker running this job stopped responding; gave up after {max_attempts} attempts"
    )
    rows = session.execute(
        update(Job)
        .where(expired, Job.attempt >= max_attempts)
        .values(status=JobStatus.failed, error_code=WORKER_LOST, error_message=message, **done)
        .returning(Job.id, Job.attempt)
    ).all()
    for job_id, attempt in rows:
        error = {"code": WORKER_LOST, "message": message}
        add_event(
            session,
            job_id=job_id,
            kind="failed",
            attempt=attempt,
            data={"status": "failed", "error": error},
        )

    requeued = session.execute(
        update(Job)
        .where(expired)
        .values(
            status=JobStatus.queued,
            queued_at=utcnow(),
            dispatched_at=None,
            worker_id=None,
            lease_expires_at=None,
        )
        .returning(Job.id, Job.attempt)
    ).all()
    for job_id, attempt in requeued:
        add_event(
            session,
            job_id=job_id,
            kind="queued",
            attempt=attempt,
            data={"status": "queued", "reason": WORKER_LOST, "attempts_used": attempt},
        )

    stale = utcnow() - timedelta(seconds=dispatch_grace_seconds)
    undispatched = session.scalars(
        select(Job.id).where(
            Job.status == JobStatus.queued, Job.dispatched_at.is_(None), Job.queued_at < stale
        )
    ).all()
    return sorted({*(r.id for r in requeued), *undispatched})


def dispatched_queued(session: Session, *, older_than_seconds: float) -> tuple[int, list[str]]:
    """(queued jobs with a dispatched message, those dispatched over `older_than_seconds`
    ago, oldest first): the reaper compares the first with the broker's queue depth."""
    rows = session.execute(
        select(Job.id, Job.dispatched_at)
        .where(Job.status == JobStatus.queued, Job.dispatched_at.is_not(None))
        .order_by(Job.queued_at)
    ).all()
    stale = utcnow() - timedelta(seconds=older_than_seconds)
    return len(rows), [r.id for r in rows if r.dispatched_at < stale]
