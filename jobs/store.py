"""Data access for jobs on the API's side: create, list, inspect, cancel, delete, events.

Small keyword-only functions over a Session; the caller owns the transaction. Every state
change is one conditional UPDATE, so the API and a worker racing for the same job cannot
both win. What workers do (claims, leases, fenced progress, the reaper) is jobs/leases.py.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, Select, String, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from jobs.db.models import ACTIVE, FINISHED, Job, JobEvent, JobStatus, Sweep, UTCDateTime
from jobs.kinds import ADAPT, EDIT, RENDER, JobKind, KindParams, kinds_never_on, lane_of
from jobs.webhooks import outbox
from nada.ids import new_id

TERMINAL_EVENTS = ("succeeded", "failed", "canceled")


class JobNotFound(LookupError):
    def __init__(self, job_id: str):
        super().__init__(f"job {job_id!r} not found")


class SweepNotFound(JobNotFound):
    def __init__(self, sweep_id: str):
        LookupError.__init__(self, f"sweep {sweep_id!r} not found")


class JobConflict(Exception):
    """The job's status does not allow the operation (cancel a finished job, ...)."""


@dataclass(frozen=True)
class QueueStats:
    running: int  # jobs being worked on (~ busy workers)
    running_steps_left: int
    seconds_per_step: float | None  # recent average, None before any job reported one
    running_passes_left: int = 0  # sample steps (progress image + scores) still ahead
    seconds_per_sample: float | None = None  # recent average wall time of one sample pass


def sample_passes_left(
    *,
    step: int,
    total_steps: int,
    sample_every: int | None,
    sampled_yet: bool,
    snapshot_every: int = 0,
) -> int:
    """Sample passes (a progress image and, with score_latents, the scores) an adaptation at
    `step` of `total_steps` still makes: the engine samples every `sample_every` steps, every
    `snapshot_every` step (a snapshot is scored too) and the last step, and once before its
    first step (`sampled_yet` False: not made yet). A kind without sample steps
    (sample_every None) makes none."""
    if not sample_every or sample_every < 1:
        return 0

    def multiples(every: int) -> int:  # multiples of `every` in (step, total_steps]
        return max(total_steps // every - step // every, 0)

    ahead = multiples(sample_every)
    on_either = sample_every
    if snapshot_every > 0:
        on_either = math.lcm(sample_every, snapshot_every)
        ahead += multiples(snapshot_every) - multiples(on_either)
    if (
        total_steps > step
        and total_steps % sample_every
        and (snapshot_every < 1 or total_steps % snapshot_every)
    ):
        ahead += 1  # the last step always samples
    return ahead + (0 if sampled_yet else 1)


def seconds_left(
    *,
    steps_left: int,
    passes_left: int,
    seconds_per_step: float,
    seconds_per_sample: float | None,
) -> float:
    """The ETA's one formula: the training steps at their speed plus the sample passes (a
    scoring pass is about 30 s on a CPU with 32 latents: a short job's larger part), at
    theirs when measured."""
    return round(steps_left * seconds_per_step + passes_left * (seconds_per_sample or 0.0), 1)


def stored_passes_left(
    params: dict[str, Any] | None, *, step: int, total_steps: int, sample_steps: list[int] | None
) -> int:
    """sample_passes_left of a job as its row stores it (its params say sample_every, if
    its kind samples; sample_steps, the samples made so far)."""
    every = (params or {}).get("sample_every")
    snapshots = (params or {}).get("snapshot_every")
    return sample_passes_left(
        step=step,
        total_steps=total_steps,
        sample_every=every if isinstance(every, int) else None,
        sampled_yet=bool(sample_steps),
        snapshot_every=snapshots if isinstance(snapshots, int) else 0,
    )


def job_passes_left(job: Job) -> int:
    return stored_passes_left(
        job.params,
        step=job.step or 0,
        total_steps=job.total_steps or 0,
        sample_steps=job.sample_steps,
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


def add_event(
    session: Session, *, job_id: str, kind: str, attempt: int, data: dict[str, Any]
) -> None:
    """Append to the job's event log (its row id is the SSE event id), and, in the same
    transaction, the webhook delivery it makes (jobs/webhooks/outbox.py)."""
    now = utcnow()
    session.add(JobEvent(job_id=job_id, kind=kind, attempt=attempt, data=data, created_at=now))
    if kind in outbox.EVENT_OF_KIND:
        outbox.enqueue(session, job_id=job_id, kind=kind, now=now)


@dataclass(frozen=True)
class Webhook:
    """A job's receiver (an https URL the submission checked) and the events it wants."""

    url: str
    events: tuple[str, ...] = outbox.DEFAULT_EVENTS


def create_job(
    session: Session,
    *,
    params: KindParams,
    kind: JobKind = ADAPT,
    owner: str = "",
    idempotency_key: str | None = None,
    request_sha256: str | None = None,
    cache_key: str | None = None,
    sweep_id: str | None = None,
    sweep_index: int | None = None,
    parent_id: str | None = None,
    webhook: Webhook | None = None,
    priority: int = 0,
    dispatched: bool = False,
) -> Job:
    """A queued job of `kind` (adaptation unless said) of queue `priority` (jobs/priority.py,
    checked by the caller). With an idempotency key, a concurrent twin raises IntegrityError
    at flush (unique owner+key); the caller rolls back and reads the winner. `webhook`: where
    its events go (checked by the caller: jobs/webhooks/targets.py).

    `dispatched`: the caller publishes the job's message right after the commit
    (JobQueue.dispatch with marked=True), so the row says so in the same transaction
    instead of a second write afterwards. A publish that fails clears the mark
    (`clear_dispatched`: the reaper then re-sends after its grace); a process that dies
    between the commit and the publish leaves the mark with no message, which the reaper's
    lost-message check finds (jobs/queue.py lost_messages: fewer messages than dispatched
    queued jobs) and re-sends."""
    now = utcnow()
    job = Job(
        id=new_id(),
        status=JobStatus.queued,
        kind=kind.name,
        params=params.to_dict(),
        owner=owner,
        idempotency_key=idempotency_key,
        request_sha256=request_sha256,
        cache_key=cache_key,
        sweep_id=sweep_id,
        sweep_index=sweep_index,
        parent_id=parent_id,
        webhook_url=webhook.url if webhook else None,
        webhook_events=list(webhook.events) if webhook else None,
        priority=priority,
        stage=None,
        step=0,
        total_steps=kind.total_steps(params),
        losses={},
        selected_layers=[],
        sample_steps=[],
        scores={},
        cancel_requested=False,
        attempt=0,
        created_at=now,
        queued_at=now,
        dispatched_at=now if dispatched else None,
    )
    session.add(job)
    session.flush()
    add_event(session, job_id=job.id, kind="queued", attempt=0, data={"status": "queued"})
    return job


def children_of(session: Session, *, job_ids: list[str]) -> dict[str, list[str]]:
    """{job id: the ids of the jobs continued from it, oldest first} for `job_ids`, each
    listed (empty when none): one query on the parent_id index."""
    children: dict[str, list[str]] = {job_id: [] for job_id in job_ids}
    if not job_ids:
        return children
    rows = session.execute(
        select(Job.parent_id, Job.id)
        .where(Job.parent_id.in_(job_ids))
        .order_by(Job.created_at, Job.id)
    ).all()
    for row in rows:
        children[row.parent_id].append(row.id)
    return children


def clear_dispatched(session: Session, *, job_ids: list[str]) -> None:
    """The broker refused these jobs' messages after create_job(dispatched=True) marked
    them: unmarked, the reaper sends them after its grace period."""
    if job_ids:
        session.execute(
            update(Job)
            .where(Job.id.in_(job_ids), Job.status == JobStatus.queued)
            .values(dispatched_at=None)
        )


def mark_dispatched(
    session: Session, *, job_id: str | None = None, job_ids: list[str] | None = None
) -> None:
    """Record that the broker accepted a task message for the job (or each of `job_ids`:
    one UPDATE for a batch)."""
    ids = [*(job_ids or ()), *([job_id] if job_id else [])]
    if ids:
        session.execute(
            update(Job)
            .where(Job.id.in_(ids), Job.status == JobStatus.queued)
            .values(dispatched_at=utcnow())
        )


def get_job(
    session: Session,
    *,
    job_id: str,
    owner: str | None = None,
    kind: str | tuple[str, ...] | None = None,
) -> Job:
    """The job; JobNotFound also when `owner` is given and the job is someone else's (a
    token cannot even learn that another token's job exists), or `kind` is given and the
    job is of another kind (a tuple: of none of them)."""
    job = session.get(Job, job_id)
    if job is None or (owner is not None and job.owner != owner):
        raise JobNotFound(job_id)
    kinds = (kind,) if isinstance(kind, str) else kind
    if kinds is not None and job.kind not in kinds:
        raise JobNotFound(job_id)
    return job


def find_idempotent(session: Session, *, owner: str, key: str) -> Job | None:
    return session.scalar(select(Job).where(Job.owner == owner, Job.idempotency_key == key))


def lanes_of(session: Session, *, job_ids: list[str]) -> dict[str, str]:
    """{job id: its lane} for the ids that exist (one query; jobs/kinds.py: by kind, and
    for a render by its size)."""
    if not job_ids:
        return {}
    rows = session.execute(select(Job.id, Job.kind, Job.params).where(Job.id.in_(job_ids)))
    return {row.id: lane_of(row.kind, row.params) for row in rows}


def find_cached(session: Session, *, owner: str, kind: str, cache_key: str) -> Job | None:
    """The newest job of `owner` that did (or is doing) the work `cache_key` names; failed
    and canceled ones do not count (asking again runs it again)."""
    return session.scalar(
        select(Job)
        .where(
            Job.cache_key == cache_key,
            Job.owner == owner,
            Job.kind == kind,
            Job.status.in_((*ACTIVE, JobStatus.succeeded)),
        )
        .order_by(Job.created_at.desc())
        .limit(1)
    )


def active_jobs(session: Session, *, owner: str) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(Job).where(Job.owner == owner, Job.status.in_(ACTIVE))
        )
        or 0
    )


def list_jobs(
    session: Session,
    *,
    statuses: list[str] | None = None,
    offset: int = 0,
    limit: int = 20,
    owner: str | None = None,
    kind: str | None = None,
) -> tuple[list[Job], int]:
    """Newest first, and the number of jobs that match in all (of `owner` and `kind`, if
    given)."""
    where: list[ColumnElement[bool]] = [Job.status.in_(statuses)] if statuses else []
    if kind is not None:
        where.append(Job.kind == kind)
    if owner is not None:
        where.append(Job.owner == owner)
    count = session.scalar(select(func.count()).select_from(Job).where(*where)) or 0
    rows = session.scalars(
        select(Job)
        .where(*where)
        .order_by(Job.created_at.desc(), Job.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), count


def _recent_average(session: Session, column: Any) -> float | None:
    """The average of `column` over the last 20 succeeded jobs that reported it."""
    recent = (
        select(column.label("value"))
        .where(Job.status == JobStatus.succeeded, column.is_not(None))
        .order_by(Job.finished_at.desc())
        .limit(20)
        .subquery()
    )
    value = session.scalar(select(func.avg(recent.c.value)))
    return float(value) if value is not None else None


def queue_stats(session: Session) -> QueueStats:
    running, steps_left, sps, per_sample = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(Job.total_steps - Job.step), 0),
            func.avg(Job.seconds_per_step),
            func.avg(Job.seconds_per_sample),
        ).where(Job.status == JobStatus.running)
    ).one()
    # The running jobs are a few (one per busy worker): their passes are counted in Python.
    passes = sum(
        job_passes_left(job)
        for job in session.scalars(select(Job).where(Job.status == JobStatus.running))
    )
    return QueueStats(
        running=int(running),
        running_steps_left=int(steps_left),
        seconds_per_step=float(sps)
        if sps is not None
        else _recent_average(session, Job.seconds_per_step),
        running_passes_left=passes,
        seconds_per_sample=float(per_sample)
        if per_sample is not None
        else _recent_average(session, Job.seconds_per_sample),
    )


def _queued_ahead_of(never: tuple[str, ...]) -> ColumnElement[bool]:
    """The queued jobs that start before a job (given as the bound parameters
    `_ahead_params`): those of its lane (jobs/kinds.py; `never`: the kinds never on it; a
    kind that decides per job counts on both) with a higher priority, then those of its
    priority queued before it: the order jobs.leases.claim_job takes them in."""
    priority = bindparam("ahead_priority", type_=Integer)
    queued_at = bindparam("ahead_queued_at", type_=UTCDateTime)
    job_id = bindparam("ahead_id", type_=String)
    return and_(
        Job.status == JobStatus.queued,
        Job.kind.not_in(never),
        or_(
            Job.priority > priority,
            and_(
                Job.priority == priority,
                or_(
                    Job.queued_at < queued_at,
                    and_(Job.queued_at == queued_at, Job.id < job_id),
                ),
            ),
        ),
    )


def _ahead_params(job: Job) -> tuple[tuple[str, ...], dict[str, Any]]:
    never = tuple(kinds_never_on(lane_of(job.kind, job.params)))
    return never, {
        "ahead_priority": job.priority or 0,
        "ahead_queued_at": job.queued_at,
        "ahead_id": job.id,
    }


# Built once per lane (kinds excluded) and run with the job's values bound: every poll of a
# queued job and every submission asks for its place, and building the statement cost as
# much as running it.
@lru_cache(maxsize=16)
def _position_query(never: tuple[str, ...]) -> Select[int, int]:
    return select(func.count(), func.coalesce(func.sum(Job.total_steps), 0)).where(
        _queued_ahead_of(never)
    )


@lru_cache(maxsize=16)
def _passes_query(never: tuple[str, ...]) -> Select[int]:
    every = Job.params["sample_every"].as_integer()
    return select(func.coalesce(func.sum(Job.total_steps // every + 2), 0)).where(
        _queued_ahead_of(never), every > 0
    )


def _queued_passes_ahead(session: Session, *, job: Job) -> int:
    """Sample passes of the queued jobs ahead of `job`, each about steps / sample_every + 2
    (its first and last samples); a kind without sample_every counts none."""
    never, params = _ahead_params(job)
    passes = session.scalar(_passes_query(never), params)
    return int(passes or 0)


def queue_position(session: Session, *, job: Job) -> tuple[int, int]:
    """(1-based place among the queued jobs of its lane in the order they start: priority,
    then queue time; steps of the queued jobs ahead)."""
    never, params = _ahead_params(job)
    ahead, steps = session.execute(_position_query(never), params).one()
    return int(ahead) + 1, int(steps)


def estimate(
    session: Session, *, job: Job, stats: QueueStats | None
) -> tuple[int | None, float | None]:
    """(queue_position, eta_seconds) of a job; eta is a rough estimate from recent speed:
    the steps left and the sample passes left (seconds_left), of this job and, for a queued
    one, of the running jobs and the queued ones ahead, shared by the busy workers."""
    if job.status == JobStatus.running:
        sps = job.seconds_per_step or (stats.seconds_per_step if stats else None)
        if sps is None:
            return None, None
        per_sample = job.seconds_per_sample or (stats.seconds_per_sample if stats else None)
        return None, seconds_left(
            steps_left=job.total_steps - job.step,
            passes_left=job_passes_left(job),
            seconds_per_step=sps,
            seconds_per_sample=per_sample,
        )
    if job.status != JobStatus.queued:
        return None, None
    position, steps_ahead = queue_position(session, job=job)
    if stats is None or stats.seconds_per_step is None:
        return position, None
    workers = max(stats.running, 1)
    passes = stats.running_passes_left + job_passes_left(job)
    if stats.seconds_per_sample:
        passes += _queued_passes_ahead(session, job=job)
    total = seconds_left(
        steps_left=stats.running_steps_left + steps_ahead + job.total_steps,
        passes_left=passes,
        seconds_per_step=stats.seconds_per_step,
        seconds_per_sample=stats.seconds_per_sample,
    )
    return position, round(total / workers, 1)


def request_cancel(session: Session, *, job_id: str) -> Job:
    """Cancel a queued job now, or ask the worker of a running job to stop at its next step.

    Raises JobNotFound, or JobConflict for a finished job.
    """
    now = utcnow()
    row = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.queued)
        .values(status=JobStatus.canceled, cancel_requested=True, finished_at=now)
        .returning(Job.attempt)
    ).first()
    if row is not None:
        add_event(session, job_id=job_id, kind="canceled", attempt=row.attempt, data={})
        return get_job(session, job_id=job_id)
    asked = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.running)
        .values(cancel_requested=True)
        .returning(Job.id)
    ).first()
    job = get_job(session, job_id=job_id)
    if asked is None:
        raise JobConflict(
            f"job {job_id} is {job.status}; only queued and running jobs can be canceled"
        )
    session.refresh(job)
    return job


def _dependents_of(job_id: str) -> ColumnElement[bool]:
    """The jobs that read `job_id`'s files when they run: the renders and edits of an
    adaptation (params.job_id), the edits of an inversion (params.inversion_id)."""
    return and_(
        Job.kind.in_((RENDER.name, EDIT.name)),
        or_(
            Job.params["job_id"].as_string() == job_id,
            Job.params["inversion_id"].as_string() == job_id,
        ),
    )


def check_deletable(session: Session, *, job_id: str) -> None:
    """Raise JobConflict unless the job may be deleted now: it is finished and none of its
    renders or edits is running (those read its files; a queued one is canceled with it).
    Read before any of its files go."""
    job = get_job(session, job_id=job_id)
    if job.status not in FINISHED:
        raise JobConflict(f"job {job_id} is {job.status}; cancel it and wait until it stops")
    running = session.execute(
        select(Job.id, Job.kind)
        .where(_dependents_of(job_id), Job.status == JobStatus.running)
        .order_by(Job.created_at, Job.id)
    ).first()
    if running is not None:
        raise JobConflict(
            f"job {job_id} has a {running.kind} running from its files ({running.id}); "
            "cancel it or wait until it finishes, then delete the job"
        )


def delete_job(session: Session, *, job_id: str) -> list[str]:
    """Delete a finished job's row and events, and cancel its queued renders and edits
    (they would fail without its files); return their ids. Raises JobNotFound, or
    JobConflict for a job that is not finished. (A render a worker claims between
    `check_deletable` and this write fails by itself: its runner finds no adapted.pt.)"""
    deleted = session.execute(
        delete(Job).where(Job.id == job_id, Job.status.in_(FINISHED)).returning(Job.id)
    ).first()
    if deleted is None:
        job = get_job(session, job_id=job_id)
        raise JobConflict(f"job {job_id} is {job.status}; cancel it and wait until it stops")
    # SQLite enforces ON DELETE CASCADE only with foreign_keys=ON; be explicit either way.
    session.execute(delete(JobEvent).where(JobEvent.job_id == job_id))
    now = utcnow()
    canceled = session.execute(
        update(Job)
        .where(_dependents_of(job_id), Job.status == JobStatus.queued)
        .values(status=JobStatus.canceled, cancel_requested=True, finished_at=now)
        .returning(Job.id, Job.attempt)
    ).all()
    for row in canceled:
        add_event(
            session, job_id=row.id, kind="canceled", attempt=row.attempt,
            data={"status": "canceled", "reason": f"job {job_id} was deleted"},
        )  # fmt: skip
    return [row.id for row in canceled]


def events_after(
    session: Session, *, job_id: str, after_id: int = 0, limit: int = 500
) -> list[JobEvent]:
    return list(
        session.scalars(
            select(JobEvent)
            .where(JobEvent.job_id == job_id, JobEvent.id > after_id)
            .order_by(JobEvent.id)
            .limit(limit)
        )
    )


def events_since(
    session: Session, *, after_id: int, also_ids: tuple[int, ...] = (), limit: int = 500
) -> list[JobEvent]:
    """Events of every job with id > after_id or id in also_ids, and the newest event of
    all (it sorts last, so a full page may leave it out), oldest first, at most `limit`:
    one query on the primary key.

    For the API's one shared follower of the table (backend/sse.py): `also_ids` are ids it
    has not seen below ones it has (transactions that commit out of id order), and the
    newest row tells it when the newest events were deleted (SQLite then reuses their ids).
    """
    newest = select(func.max(JobEvent.id)).scalar_subquery()
    wanted = [JobEvent.id > after_id, JobEvent.id == newest]
    if also_ids:
        wanted.append(JobEvent.id.in_(also_ids))
    return list(
        session.scalars(select(JobEvent).where(or_(*wanted)).order_by(JobEvent.id).limit(limit))
    )


# -- sweeps --------------------------------------------------------------------------------


def create_sweep(
    session: Session,
    *,
    base: dict[str, Any],
    grid: dict[str, list[Any]],
    params: list[KindParams],
    owner: str = "",
    webhook: Webhook | None = None,
    priority: int = 0,
    dispatched: bool = False,
) -> tuple[Sweep, list[Job]]:
    """A sweep and its queued adaptation jobs, one per combination, in grid order (the
    caller validated them: jobs.sweeps.expand); `dispatched` as create_job's."""
    sweep = Sweep(
        id=new_id(), owner=owner, base=base, grid=grid, count=len(params), created_at=utcnow()
    )
    session.add(sweep)
    jobs = [
        create_job(
            session,
            params=p,
            owner=owner,
            sweep_id=sweep.id,
            sweep_index=i,
            webhook=webhook,
            priority=priority,
            dispatched=dispatched,
        )  # fmt: skip
        for i, p in enumerate(params)
    ]
    return sweep, jobs


def get_sweep(session: Session, *, sweep_id: str, owner: str | None = None) -> Sweep:
    sweep = session.get(Sweep, sweep_id)
    if sweep is None or (owner is not None and sweep.owner != owner):
        raise SweepNotFound(sweep_id)
    return sweep


def sweep_jobs(session: Session, *, sweep_id: str) -> list[Job]:
    """The sweep's jobs in grid order (a deleted job is simply missing)."""
    return list(
        session.scalars(select(Job).where(Job.sweep_id == sweep_id).order_by(Job.sweep_index))
    )


def list_sweeps(
    session: Session, *, owner: str | None = None, offset: int = 0, limit: int = 20
) -> tuple[list[Sweep], int]:
    where = [Sweep.owner == owner] if owner is not None else []
    count = session.scalar(select(func.count()).select_from(Sweep).where(*where)) or 0
    rows = session.scalars(
        select(Sweep)
        .where(*where)
        .order_by(Sweep.created_at.desc(), Sweep.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), count


def cancel_sweep(session: Session, *, sweep_id: str) -> list[Job]:
    """Cancel every queued or running job of the sweep (finished ones stay as they are)."""
    for job in sweep_jobs(session, sweep_id=sweep_id):
        if job.status in ACTIVE:
            with contextlib.suppress(JobConflict):  # it finished meanwhile
                request_cancel(session, job_id=job.id)
    return sweep_jobs(session, sweep_id=sweep_id)
