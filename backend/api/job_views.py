"""What every kind of job's routes share: the id check, the public view with its queue
estimate and its GET (`read_job_view`; `read_cached_job_view` for GET /jobs/{id}, from
backend/api/view_cache.py's cache of finished jobs), and admission (the disk, the
per-token limits) of a new job. Their files are served by backend/api/job_files.py.

Adaptations (/jobs), inversions (/inversions) and edits (/jobs/{id}/edits, /edits) are all
rows of the jobs table (jobs/kinds.py); their routes differ only in what they accept and
which files they serve.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import Depends, HTTPException, Request, Response, status
from fastapi import Path as PathParam
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State

from backend.api.job_snapshots import job_snapshots
from backend.api.responses import QueueStatsCache, encoded, encoded_response, json_response
from backend.api.view_cache import DETAIL, CachedView, ViewCache, fingerprint, job_stamp
from backend.schemas.jobs import JobPublic, SamplePublic, job_public
from jobs import disk, storage, store
from jobs.db.models import ACTIVE, FINISHED, Job
from jobs.db.session import get_sessionmaker
from jobs.settings import Settings
from nada import rundir
from nada.ids import is_id


async def _valid_job_id(
    job_id: Annotated[str, PathParam(description="the job's id: 32 hex digits (uuid4)")],
) -> str:
    """Ids are uuid4 hex: anything else is a job that does not exist (404) and never
    reaches a query or a file path."""
    if not is_id(job_id):
        raise store.JobNotFound(job_id[:64])
    return job_id


JobId = Annotated[str, Depends(_valid_job_id)]


def too_many(detail: str, retry_after: float) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        detail,
        headers={"Retry-After": str(max(1, math.ceil(retry_after)))},
    )


def job_root(settings: Settings, job_id: str) -> Path:
    try:
        return storage.job_dir(settings.jobs_dir, job_id)
    except ValueError:
        raise store.JobNotFound(job_id) from None


def queue_stats(request: Request, session: Session) -> store.QueueStats:
    """The queue's load and speed, shared by this process's requests for a second."""
    cache: QueueStatsCache = request.app.state.queue_stats
    return cache.get(session)


def public_job(
    session: Session,
    settings: Settings,
    job: Job,
    stats: store.QueueStats | None = None,
    children: list[str] | None = None,
) -> JobPublic:
    """The job as the API shows it. `children`: the ids of the jobs continued from it, when
    the caller fetched them for many jobs at once (store.children_of); else one query."""
    if stats is None and job.status in ACTIVE:
        stats = store.queue_stats(session)
    position, eta = store.estimate(session, job=job, stats=stats)
    root = job_root(settings, job.id)
    checkpoints = rundir.intermediate_checkpoint_steps(root)
    public = job_public(
        job,
        queue_position=position,
        eta_seconds=eta,
        checkpoint_steps=checkpoints,
        stalled_after_seconds=settings.lease_seconds,
    )
    if children is None:  # only adaptations continue
        children = (
            store.children_of(session, job_ids=[job.id])[job.id] if job.kind == "adapt" else []
        )
    public.children = children
    # Only samples whose file is there: a job folder removed (or cleaned up) by hand must
    # not list links that 404.
    public.samples = [
        sample for sample in public.samples if rundir.sample_path(root, sample.step).is_file()
    ]
    if job.snapshot_steps:  # without snapshots, the final step is the only choice
        kept = job_snapshots(job, root)
        public.snapshots = [
            SamplePublic(step=s.step, url=s.url) for s in kept.snapshots if not s.final
        ]
        public.recommended_step = kept.recommended.step
    return public


def read_job_view(
    request: Request,
    session: Session,
    settings: Settings,
    owner: str | None,
    job_id: str,
    *,
    kind: str | None = None,
    view: Callable[[Session, Settings, Job, store.QueueStats | None], BaseModel] = public_job,
) -> Response:
    """GET of one job as `view` shows it (`kind`: the kind it must be, else 404): JSON with
    an ETag, 304 while nothing changed since the If-None-Match the client sent."""
    job = store.get_job(session, job_id=job_id, owner=owner, kind=kind)
    stats = queue_stats(request, session) if job.status in ACTIVE else None
    public = view(session, settings, job, stats)
    session.close()  # in this thread, not on the event loop
    return json_response(request, public)


def view_cache(request: Request) -> ViewCache | None:
    """This process's cache of job views and lists, kept by its event hub (None before the
    app's lifespan started it)."""
    hub = getattr(request.app.state, "event_hub", None)
    return hub.views if hub is not None else None


def changed(request: Request, *job_ids: str | None) -> None:
    """This process's cached views of `job_ids`, and its live ones, are out of date (its
    own write: at once; other processes' caches notice within their hub's interval)."""
    views = view_cache(request)
    if views is not None:
        views.invalidate(job_id for job_id in job_ids if job_id)


async def answer_cached(
    request: Request,
    view: str,
    key: str,
    owner: str | None,
    read: Callable[[ViewCache | None], tuple[bytes, str]],
) -> Response:
    """The answer `views` holds for (`view`, `key`) when it is fresh and `owner` may see it
    (on the event loop: no thread, no query; backend/api/view_cache.py says what keeps it
    true), else `read(views)` in a thread, which reads the database, stores the entry and
    gives its body and ETag.

    backend/api/cached_reads.py answers most hits before FastAPI; this serves the rest (a
    sign-in cookie's caller) and every miss."""
    views = view_cache(request)
    if views is None:
        return encoded_response(request, *await run_in_threadpool(read, None))
    hit = views.lookup(view, key, owner)
    if hit is not None:
        views.refresh_ahead(view, key, hit)
        return encoded_response(request, hit.body, hit.etag)
    # Not cached, or aged out (a live entry's interval passed, the hub was late): one
    # request reads it, the polls that come meanwhile wait for its entry instead of all
    # taking the thread pool (fifty pollers of a list that is not cached yet made fifty
    # reads at once: 400 ms on PostgreSQL). On this loop only: `reading` needs no lock.
    entry_key = (view, key)
    reading = views.reading.get(entry_key)
    if reading is None:
        views.reading[entry_key] = reading = anyio.Event()
        try:
            return encoded_response(request, *await run_in_threadpool(read, views))
        finally:
            del views.reading[entry_key]
            reading.set()
    with anyio.move_on_after(views.max_age):
        await reading.wait()
    hit = views.lookup(view, key, owner)
    if hit is not None:
        return encoded_response(request, hit.body, hit.etag)
    return encoded_response(request, *await run_in_threadpool(read, views))


async def read_cached_job_view(
    request: Request, settings: Settings, owner: str | None, job_id: str
) -> Response:
    """read_job_view of public_job, from this process's cache when it has the job."""
    read = partial(_read_view, request.app.state, settings, owner, job_id)
    return await answer_cached(request, DETAIL, job_id, owner, read)


def _read_view(
    state: State, settings: Settings, owner: str | None, job_id: str, views: ViewCache | None
) -> tuple[bytes, str]:
    """(In a thread.) The job's view read from the database, kept in `views`."""
    ticket = views.begin() if views is not None else None
    root = job_root(settings, job_id)
    files, settled = fingerprint(root)  # before the view looks at the files
    with get_sessionmaker(settings.db_url)() as session:
        job = store.get_job(session, job_id=job_id, owner=owner)
        stats = state.queue_stats.get(session) if job.status in ACTIVE else None
        public = public_job(session, settings, job, stats)
        body, etag = encoded(public)
        # A finished job's entry lives while the hub finds it true, once its folders
        # settled; a queued or running one's for one hub interval, its folders checked at
        # each hit all the same, and renewed by this same read (backend/api/view_cache.py).
        live = job.status not in FINISHED
        if views is not None and ticket is not None and (live or settled):
            entry = CachedView(
                body=body, etag=etag, owner=job.owner, kind=job.kind, stamp=job_stamp(job),
                children=tuple(public.children), root=root, files=files,
                confirmed_at=ticket.started, live=live,
                refresh=partial(_read_view, state, settings, owner, job_id) if live else None,
            )  # fmt: skip
            views.store(ticket, DETAIL, job_id, entry)
    return body, etag


def check_disk(settings: Settings) -> None:
    """507 while the data directory cannot take a new job's files."""
    state = disk.check(settings)
    if state != "ok":
        raise HTTPException(
            status.HTTP_507_INSUFFICIENT_STORAGE,
            f"{disk.REASONS[state]}; no new jobs are accepted until that is fixed "
            "(try again later)",
        )


def admit(
    request: Request, session: Session, settings: Settings, owner: str | None, count: int = 1
) -> None:
    """The per-token limits on `count` new jobs of any kind, made by one submission
    (docs/security.md); 429 past them."""
    if owner is None:
        return
    if settings.max_active_jobs:
        active = store.active_jobs(session, owner=owner)
        if active + count > settings.max_active_jobs:
            what = f"these {count} jobs and " if count > 1 else ""
            raise too_many(
                f"{what}this token's {active} queued or running jobs would pass the "
                f"{settings.max_active_jobs} it may have (NADA_MAX_ACTIVE_JOBS); wait for "
                "one to finish or cancel one",
                60,
            )
    wait = request.app.state.submission_limiter.acquire(owner)
    if wait:
        raise too_many(
            f"more than {settings.submissions_per_minute} submissions in a minute "
            "(NADA_SUBMISSIONS_PER_MINUTE)",
            wait,
        )
