"""/jobs: submit, list, inspect, follow (SSE), cancel and delete adaptation jobs."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import (
    APIRouter,
    Depends,
    Header,
    HTTPException,
    Query,
    Request,
    Response,
    status,
)
from fastapi import (
    Path as PathParam,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, StreamingResponse
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.datastructures import State

from backend.api.deps import CurrentOwner, SessionDep, SettingsDep
from backend.api.job_files import OCTET, job_file
from backend.api.job_images import check_images, images_attached
from backend.api.job_views import (
    JobId,
    answer_cached,
    changed,
    job_root,
    public_job,
    queue_stats,
    read_cached_job_view,
)
from backend.api.responses import encoded
from backend.api.submission import (
    Submission,
    SubmissionDep,
    check_models,
    submission_responses,
)
from backend.api.view_cache import LIST, CachedView, ViewCache, list_key
from backend.schemas.jobs import JobCreate, JobPublic, JobsPublic, job_url
from backend.sse import job_event_stream
from jobs import store
from jobs.db.models import ACTIVE, Job, JobStatus
from jobs.db.session import get_sessionmaker
from jobs.generators import check_generator_name
from jobs.kinds import ADAPT
from jobs.settings import Settings
from nada import rundir
from nada.errors import ParamError

router = APIRouter(prefix="/jobs", tags=["jobs"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No job with this id (or not this token's)"},
    409: {"description": "The job's status does not allow this"},
}


_MAX_STEP = 10**6  # far above any job's steps; keeps file names and SQL integers sane
_MAX_EVENT_ID = 2**62  # BIGINT-safe
_MAX_ROW_ID = 2**31 - 1  # job_events.id is a 32-bit integer on PostgreSQL: beyond it, none
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,128}")  # visible ASCII, like HTTP tokens


async def _require_json(request: Request) -> None:
    """415 for a body that is not JSON (a form post, text/plain), before it is parsed."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "send the job as JSON (Content-Type: application/json)",
        )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobPublic,
    dependencies=[Depends(_require_json)],
    responses=submission_responses(
        "job",
        {
            413: "The body is larger than 64 KiB",
            415: "The body is not application/json",
            422: "Invalid parameters, or an Idempotency-Key reused for another body",
        },
        again="A repeated Idempotency-Key: the job it created",
    ),
)
def create_job(
    body: JobCreate,
    sub: SubmissionDep,
    idempotency_key: Annotated[
        str | None,
        Header(description="repeat a submission safely: same key, same body -> same job"),
    ] = None,
) -> JobPublic:
    """Queue an adaptation job. Only source_text and target_text are required."""
    session, settings, owner = sub.session, sub.settings, sub.owner
    try:
        params = body.to_params()
        check_generator_name(params.generator, settings.data_dir)
        check_models(params, settings.data_dir)
        check_images(params, settings, owner)
    except ParamError as exc:
        raise RequestValidationError(
            [{"type": "invalid_param", "loc": ("body", exc.field), "msg": str(exc), "input": None}]
        ) from None
    who = sub.who
    digest = None
    if idempotency_key is not None:
        if not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise _invalid_key("must be 1..128 visible ASCII characters")
        canonical = json.dumps(params.to_dict(), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        earlier = store.find_idempotent(session, owner=who, key=idempotency_key)
        if earlier is not None:
            return _replay(sub, earlier, digest)
    webhook, priority = sub.webhook(body), sub.priority(body)
    sub.admit()  # disk and per-token limits: a replay above needs neither
    try:
        with sub.writing():  # the row, its event and its dispatch mark: one transaction
            job = store.create_job(
                session, params=params, owner=who, idempotency_key=idempotency_key,
                request_sha256=digest, webhook=webhook, priority=priority, dispatched=True,
            )  # fmt: skip
            with images_attached(settings, job.id, params, owner):  # its own copies
                session.commit()
    except IntegrityError:  # a concurrent request with the same key won the insert
        session.rollback()
        earlier = store.find_idempotent(session, owner=who, key=idempotency_key or "")
        if earlier is None or digest is None:
            raise
        return _replay(sub, earlier, digest)
    sub.queued([job.id], ADAPT, job_url(job.id))
    # The row as committed is the object (expire_on_commit=False): no read back. The queue's
    # statistics as polls share them (a second old at most), not four aggregate queries per
    # submission; and a new job has no children.
    public = public_job(session, settings, job, queue_stats(sub.request, session), children=[])
    session.close()  # give the connection back before the dispatch needs one
    return public


def _invalid_key(why: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "idempotency_key", "loc": ("header", "idempotency-key"), "msg": why,
          "input": None}]
    )  # fmt: skip


def _replay(sub: Submission, job: Job, digest: str) -> JobPublic:
    """The job an earlier request with this Idempotency-Key created (200), or 422 if that
    request had other parameters."""
    if job.request_sha256 != digest:
        raise _invalid_key(
            f"was already used for job {job.id} with other parameters; use a new key"
        )
    sub.answered_before(job_url(job.id))
    return public_job(sub.session, sub.settings, job)


@router.get("", response_model=JobsPublic)
async def list_jobs(
    request: Request,
    settings: SettingsDep,
    owner: CurrentOwner,
    status: Annotated[list[JobStatus] | None, Query(description="repeat to allow several")] = None,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    kind: Annotated[
        Literal["adapt", "invert", "edit", "render", "domain"],
        Query(description="which kind of job: adaptations unless said (jobs/kinds.py)"),
    ] = "adapt",
) -> Response:
    """Jobs of one kind (adaptations unless said), newest first. With the ETag of an
    earlier answer in If-None-Match: 304 while nothing changed."""
    # async: an answer this process made less than a hub interval ago, with nothing changed
    # since, comes from its cache without a thread hop (backend/api/view_cache.py)
    statuses = [str(s) for s in status] if status else None
    key = list_key(owner, request.scope["query_string"])
    read = partial(
        _read_list, request.app.state, settings, owner, key, statuses, offset, limit, kind
    )
    return await answer_cached(request, LIST, key, owner, read)


def _read_list(
    state: State,
    settings: Settings,
    owner: str | None,
    key: str,
    statuses: list[str] | None,
    offset: int,
    limit: int,
    kind: str,
    views: ViewCache | None,
) -> tuple[bytes, str]:
    """(In a thread.) The list read from the database, kept in `views` (a live entry,
    renewed by this same read)."""
    ticket = views.begin() if views is not None else None
    with get_sessionmaker(settings.db_url)() as session:
        rows, count = store.list_jobs(
            session, statuses=statuses, offset=offset, limit=limit, owner=owner, kind=kind
        )
        active = any(j.status in ACTIVE for j in rows)
        stats = state.queue_stats.get(session) if active else None
        children = store.children_of(session, job_ids=[j.id for j in rows])  # one query
        data = [public_job(session, settings, j, stats, children[j.id]) for j in rows]
        body, etag = encoded(JobsPublic(data=data, count=count))
    if views is not None and ticket is not None:
        again = partial(_read_list, state, settings, owner, key, statuses, offset, limit, kind)
        entry = CachedView.of_list(body, etag, owner or "", ticket.started, refresh=again)
        views.store(ticket, LIST, key, entry)
    return body, etag


@router.get("/{job_id}", response_model=JobPublic, responses={404: _ERRORS[404]})
async def read_job(
    job_id: JobId, request: Request, settings: SettingsDep, owner: CurrentOwner
) -> Response:
    """The job. With the ETag of an earlier answer in If-None-Match: 304 while nothing
    changed (a poll that finds nothing new costs no body)."""
    # async: a finished job's view comes from this process's cache without a thread hop
    return await read_cached_job_view(request, settings, owner, job_id)


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"},
        404: _ERRORS[404],
    },
)
def job_events(
    job_id: JobId,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    owner: CurrentOwner,
    last_event_id: Annotated[int | None, Header(ge=0, le=_MAX_EVENT_ID)] = None,
    after: Annotated[
        int | None, Query(ge=0, le=_MAX_EVENT_ID, description="like Last-Event-ID")
    ] = None,
) -> StreamingResponse:
    """The job's events (queued, started, progress, sample, succeeded, failed, canceled),
    then heartbeats while nothing happens; the stream ends after the final event.
    Reconnect with Last-Event-ID (browsers do it for you) to continue where it broke off."""
    store.get_job(session, job_id=job_id, owner=owner)
    session.close()  # the stream reads with its own sessions; do not hold this one open
    stream = job_event_stream(
        hub=request.app.state.event_hub,  # started by the app's lifespan (backend/main.py)
        job_id=job_id,
        last_event_id=min(
            last_event_id if last_event_id is not None else (after or 0), _MAX_ROW_ID
        ),
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
def cancel_job(
    job_id: JobId,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    owner: CurrentOwner,
    response: Response,
) -> JobPublic:
    """Cancel a queued job (200, canceled now) or a running one (202: it stops at its next
    step; follow the events or poll for status 'canceled'). 409 for a finished job."""
    store.get_job(session, job_id=job_id, owner=owner)  # 404 for another token's job
    job = store.request_cancel(session, job_id=job_id)
    session.commit()
    changed(request, job_id)
    if job.status == JobStatus.canceled:
        response.status_code = status.HTTP_200_OK
    return public_job(session, settings, job)


@router.delete(
    "/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        **_ERRORS,
        409: {"description": "The job is queued or running, or a render or edit of it runs"},
        507: {"description": "The disk is full and the job's record could not be deleted"},
    },
)
def delete_job(
    job_id: JobId, request: Request, session: SessionDep, settings: SettingsDep,
    owner: CurrentOwner,
) -> Response:  # fmt: skip
    """Remove a finished job, its files and its queued renders and edits (canceled: they
    would need its files). 409 while it is queued or running, or while one of its renders
    or edits runs.

    The files go first: on a full disk (SQLite beside them) they are the room the
    database's write needs, so deleting works when it is needed most."""
    root = job_root(settings, job_id)
    parent_id = store.get_job(session, job_id=job_id, owner=owner).parent_id
    store.check_deletable(session, job_id=job_id)
    session.rollback()  # end the read before the files go (SQLite: no lock held meanwhile)
    had_files = root.exists()
    rundir.remove_tree(root)
    try:
        store.delete_job(session, job_id=job_id)
        session.commit()
        changed(request, job_id, parent_id)  # gone, and no longer its parent's child
    except OperationalError as exc:
        session.rollback()
        if not _disk_full(exc):
            raise  # the database is unreachable: 503 (backend/api/db_errors.py)
        done = "its files were removed, but " if had_files else ""
        raise HTTPException(
            status.HTTP_507_INSUFFICIENT_STORAGE,
            f"the disk is full: {done}the job's record could not be deleted; free some "
            "space and delete it again",
        ) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _disk_full(exc: OperationalError) -> bool:
    """SQLite's SQLITE_FULL, PostgreSQL's disk_full (SQLSTATE 53100)."""
    orig = exc.orig
    return (
        getattr(orig, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        or (getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)) == "53100"
    )


@router.get(
    "/{job_id}/samples/{step}.png",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}, 404: {"description": "No such sample"}},
)
def read_sample(
    job_id: JobId,
    step: Annotated[int, PathParam(ge=0, le=_MAX_STEP)],
    session: SessionDep,
    settings: SettingsDep,
    owner: CurrentOwner,
) -> Response:
    """A progress image: the source generator's row over the adapted generator's row."""
    return job_file(
        session, settings, owner, job_id, lambda root: rundir.sample_path(root, step),
        listed=lambda job: step in (job.sample_steps or []),
        missing=f"job {job_id} has no sample at step {step}",
    )  # fmt: skip


def checkpoint_filename(job: Job) -> str:
    def slug(text: str) -> str:
        return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "x"

    p = job.params
    if "domain" in p:  # a ready-made domain's job (jobs/kinds.py DOMAIN)
        return f"nada-{slug(p['domain'])}-{job.id[:8]}.pt"
    return f"nada-{slug(p['source_text'])}-to-{slug(p['target_text'])}-{job.id[:8]}.pt"


@router.get(
    "/{job_id}/checkpoint",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, **_ERRORS},
)
def read_checkpoint(
    job_id: JobId, session: SessionDep, settings: SettingsDep, owner: CurrentOwner
) -> Response:
    """The adapted generator (.pt: weights, latent average and the job's parameters)."""
    return job_file(
        session, settings, owner, job_id, rundir.adapted_path,
        after_success="the checkpoint",
        missing=f"the checkpoint file of job {job_id} is missing",
        media_type=OCTET, filename=checkpoint_filename,
    )  # fmt: skip


@router.get(
    "/{job_id}/domain",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, **_ERRORS},
)
def read_domain_file(
    job_id: JobId, session: SessionDep, settings: SettingsDep, owner: CurrentOwner
) -> Response:
    """A modulation job's domain (parametrization 'modulation'): its style vectors and its
    base generator's identity, a few tens of KB (docs/engine.md, "Compact domains"); the
    full generator is /checkpoint."""
    return job_file(
        session, settings, owner, job_id, rundir.domain_path,
        after_success="the domain file",
        missing=f"job {job_id} has no domain file (only a modulation job has one)",
        media_type=OCTET,
        filename=lambda job: checkpoint_filename(job).removesuffix(".pt") + "-domain.pt",
    )  # fmt: skip


@router.get(
    "/{job_id}/checkpoints/{step}.pt",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, 404: _ERRORS[404]},
)
def read_intermediate_checkpoint(
    job_id: JobId,
    step: Annotated[int, PathParam(ge=0, le=_MAX_STEP)],
    session: SessionDep,
    settings: SettingsDep,
    owner: CurrentOwner,
) -> Response:
    """An intermediate checkpoint of a job still in progress (listed in the job's
    `checkpoints` while it exists: the newest is kept for resuming, all go when the job ends)."""
    return job_file(
        session, settings, owner, job_id,
        lambda root: rundir.intermediate_checkpoint_path(root, step),
        missing=f"job {job_id} has no checkpoint at step {step}",
        media_type=OCTET,
        filename=lambda job: checkpoint_filename(job).removesuffix(".pt") + f"-step{step}.pt",
    )  # fmt: skip
