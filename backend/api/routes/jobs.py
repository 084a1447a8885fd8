"""/jobs: submit, list, inspect, follow (SSE), cancel and delete adaptation jobs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from fastapi import (
    APIRouter,
    BackgroundTasks,
    Header,
    HTTPException,
    Query,
    Request,
    Response,
    status,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, StreamingResponse
from sqlalchemy.orm import Session

from backend import jobs, storage
from backend.api.deps import QueueDep, SessionDep, SettingsDep
from backend.db.models import Job, JobStatus
from backend.events import job_event_stream
from backend.schemas import JobCreate, JobPublic, JobsPublic, job_public, job_url
from backend.settings import Settings
from nada.params import ParamError

router = APIRouter(prefix="/jobs", tags=["jobs"])

_ERRORS = {
    404: {"description": "No job with this id"},
    409: {"description": "The job's status does not allow this"},
}


def _public(session: Session, job: Job, stats: jobs.QueueStats | None = None) -> JobPublic:
    if stats is None and job.status in (JobStatus.queued, JobStatus.running):
        stats = jobs.queue_stats(session)
    position, eta = jobs.estimate(session, job=job, stats=stats)
    return job_public(job, queue_position=position, eta_seconds=eta)


def _job_root(settings: Settings, job_id: str) -> Path:
    try:
        return storage.job_dir(settings.jobs_dir, job_id)
    except ValueError:
        raise jobs.JobNotFound(job_id) from None


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobPublic,
    responses={202: {"headers": {"Location": {"description": "the job's URL"}}}},
)
def create_job(
    body: JobCreate,
    session: SessionDep,
    queue: QueueDep,
    response: Response,
    background: BackgroundTasks,
) -> JobPublic:
    """Queue an adaptation job. Only source_text and target_text are required."""
    try:
        params = body.to_params()
    except ParamError as exc:
        raise RequestValidationError(
            [{"type": "invalid_param", "loc": ("body", exc.field), "msg": str(exc), "input": None}]
        ) from None
    job = jobs.create_job(session, params=params)
    session.commit()
    # Publish after the commit (a worker must find the row) and after the response: the
    # client need not wait for the broker. A publish that fails or never happens (the
    # process dies first) is retried by the reaper, which re-dispatches undispatched jobs.
    background.add_task(queue.dispatch, [job.id])
    response.headers["Location"] = job_url(job.id)
    session.refresh(job)
    public = _public(session, job)
    session.close()  # give the connection back before the dispatch needs one
    return public


@router.get("", response_model=JobsPublic)
def list_jobs(
    session: SessionDep,
    status: Annotated[list[JobStatus] | None, Query(description="repeat to allow several")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JobsPublic:
    """Jobs, newest first."""
    rows, count = jobs.list_jobs(
        session, statuses=[str(s) for s in status] if status else None, offset=offset, limit=limit
    )
    active = any(j.status in (JobStatus.queued, JobStatus.running) for j in rows)
    stats = jobs.queue_stats(session) if active else None
    return JobsPublic(data=[_public(session, j, stats) for j in rows], count=count)


@router.get("/{job_id}", response_model=JobPublic, responses={404: _ERRORS[404]})
def read_job(job_id: str, session: SessionDep) -> JobPublic:
    return _public(session, jobs.get_job(session, job_id=job_id))


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"},
        404: _ERRORS[404],
    },
)
def job_events(
    job_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    last_event_id: Annotated[int | None, Header(ge=0)] = None,
    after: Annotated[int | None, Query(ge=0, description="like Last-Event-ID")] = None,
) -> StreamingResponse:
    """The job's events (queued, started, progress, sample, succeeded, failed, canceled),
    then heartbeats while nothing happens; the stream ends after the final event.
    Reconnect with Last-Event-ID (browsers do it for you) to continue where it broke off."""
    jobs.get_job(session, job_id=job_id)
    session.close()  # the stream polls with its own sessions; do not hold this one open
    stream = job_event_stream(
        db_url=settings.db_url,
        job_id=job_id,
        last_event_id=last_event_id if last_event_id is not None else (after or 0),
        poll_seconds=settings.sse_poll_seconds,
        heartbeat_seconds=settings.sse_heartbeat_seconds,
        is_disconnected=request.is_disconnected,
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post(
    "/{job_id}/cancel",
    response_model=JobPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses={200: {"description": "A queued job, canceled now"}, **_ERRORS},
)
def cancel_job(job_id: str, session: SessionDep, response: Response) -> JobPublic:
    """Cancel a queued job (200, canceled now) or a running one (202: it stops at its next
    step; follow the events or poll for status 'canceled'). 409 for a finished job."""
    job = jobs.request_cancel(session, job_id=job_id)
    session.commit()
    if job.status == JobStatus.canceled:
        response.status_code = status.HTTP_200_OK
    return _public(session, job)


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ERRORS)
def delete_job(job_id: str, session: SessionDep, settings: SettingsDep) -> Response:
    """Remove a finished job and its files (409 while it is queued or running)."""
    root = _job_root(settings, job_id)
    jobs.delete_job(session, job_id=job_id)
    session.commit()
    storage.remove_tree(root)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{job_id}/samples/{step}.png",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}, 404: {"description": "No such sample"}},
)
def read_sample(job_id: str, step: int, session: SessionDep, settings: SettingsDep) -> Response:
    """A progress image: the source generator's row over the adapted generator's row."""
    job = jobs.get_job(session, job_id=job_id)
    path = storage.sample_path(_job_root(settings, job_id), step)
    if step not in (job.sample_steps or []) or not path.is_file():
        raise HTTPException(404, f"job {job_id} has no sample at step {step}")
    return FileResponse(path, media_type="image/png")


def _checkpoint_filename(job: Job) -> str:
    def slug(text: str) -> str:
        return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "x"

    p = job.params
    return f"nada-{slug(p['source_text'])}-to-{slug(p['target_text'])}-{job.id[:8]}.pt"


@router.get(
    "/{job_id}/checkpoint",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, **_ERRORS},
)
def read_checkpoint(job_id: str, session: SessionDep, settings: SettingsDep) -> Response:
    """The adapted generator (.pt: weights, latent average and the job's parameters)."""
    job = jobs.get_job(session, job_id=job_id)
    path = storage.checkpoint_path(_job_root(settings, job_id))
    if job.status != JobStatus.succeeded:
        raise jobs.JobConflict(
            f"job {job_id} is {job.status}; the checkpoint exists once it succeeded"
        )
    if not path.is_file():
        raise HTTPException(404, f"the checkpoint file of job {job_id} is missing")
    return FileResponse(
        path, media_type="application/octet-stream", filename=_checkpoint_filename(job)
    )
