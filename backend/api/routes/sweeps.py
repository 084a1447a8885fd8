"""/sweeps: one adaptation job per combination of a grid of parameter values, queued,
followed and canceled together (jobs/sweeps.py).

The whole grid is checked before anything is created: every combination must be a job that
POST /jobs would accept (the same strict request model), and the grid may not make more than
NADA_MAX_SWEEP_JOBS jobs. A refusal names the grid entry or base field at fault and the
combination; nothing is created.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backend.api.deps import CurrentOwner, SessionDep, SettingsDep
from backend.api.job_images import all_images_attached, check_images
from backend.api.job_views import changed, public_job, queue_stats
from backend.api.responses import json_response
from backend.api.submission import SubmissionDep, check_models, submission_responses
from backend.api.upload_errors import unprocessable
from backend.schemas import API_PREFIX
from backend.schemas.jobs import JobCreate, JobPublic
from backend.schemas.priority import PriorityFields
from backend.schemas.webhooks import WebhookFields
from jobs import store
from jobs.db.models import ACTIVE, Sweep
from jobs.generators import check_generator_name
from jobs.kinds import ADAPT
from jobs.settings import Settings
from jobs.sweeps import expand, varying
from nada.errors import ParamError
from nada.ids import is_id
from nada.params import AdaptParams

router = APIRouter(prefix="/sweeps", tags=["sweeps"])


class SweepCreate(WebhookFields, PriorityFields):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "base": {"source_text": "photo", "target_text": "sketch"},
                    "grid": {"layers": [3, 6, 9, 12], "steps": [150, 300]},
                }
            ]
        },
    )

    base: dict[str, Any] = Field(
        default_factory=dict, description="parameters every job shares (as POST /jobs takes)"
    )
    grid: dict[str, list[Any]] = Field(
        description="parameter name -> the values to try; one job per combination"
    )


class SweepPublic(BaseModel):
    id: str
    count: int = Field(description="the sweep's jobs (a deleted job leaves it)")
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    varying: list[str] = Field(description="the swept parameters with more than one value")
    status: dict[str, int] = Field(description="how many of its jobs are in each status")
    done: bool = Field(description="every job has finished (succeeded, failed or canceled)")
    jobs: list[JobPublic] = Field(description="in grid order (the last grid key fastest)")
    created_at: Any


class SweepsPublic(BaseModel):
    data: list[SweepPublic]
    count: int


def sweep_url(sweep_id: str) -> str:
    return f"{API_PREFIX}/sweeps/{sweep_id}"


def _job_params(settings: Settings, owner: str | None) -> Any:
    """A combination as POST /jobs would take it -> AdaptParams, or ParamError naming it."""

    def convert(data: dict[str, Any]) -> AdaptParams:
        try:
            params: AdaptParams = JobCreate.model_validate(data).to_params()
        except ValidationError as exc:
            first = exc.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else "params"
            message = str(first["msg"]).removeprefix(f"{field} ")  # our checks name it already
            raise ParamError(field, message) from None
        check_generator_name(params.generator, settings.data_dir)
        check_models(params, settings.data_dir)
        check_images(params, settings, owner)
        return params

    return convert


def _public(session: Any, settings: Settings, sweep: Sweep, stats: Any = None) -> SweepPublic:
    jobs = store.sweep_jobs(session, sweep_id=sweep.id)
    if stats is None and any(j.status in ACTIVE for j in jobs):
        stats = store.queue_stats(session)
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    children = store.children_of(session, job_ids=[j.id for j in jobs])  # one query for all
    return SweepPublic(
        id=sweep.id,
        count=len(jobs),
        base=sweep.base,
        grid=sweep.grid,
        varying=varying(sweep.grid),
        status=counts,
        done=not any(j.status in ACTIVE for j in jobs),
        jobs=[public_job(session, settings, j, stats, children[j.id]) for j in jobs],
        created_at=sweep.created_at,
    )


async def _valid_sweep_id(
    sweep_id: Annotated[str, PathParam(description="the sweep's id: 32 hex digits")],
) -> str:
    if not is_id(sweep_id):
        raise store.SweepNotFound(sweep_id[:64])
    return sweep_id


SweepId = Annotated[str, Depends(_valid_sweep_id)]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SweepPublic,
    responses=submission_responses(
        "sweep",
        {
            422: "A grid entry or base field that makes an invalid job, or too many",
            429: "More active jobs than this token may have, or too many submissions",
        },
    ),
)
def create_sweep(body: SweepCreate, sub: SubmissionDep) -> SweepPublic:
    """Queue one adaptation job per combination of `grid` over `base` (e.g. `{"layers":
    [3, 6, 9, 12], "steps": [150, 300]}`: eight jobs). All or nothing."""
    session, settings, owner = sub.session, sub.settings, sub.owner
    for name in ("webhook", "webhook_events", "priority"):
        if name in body.base or name in body.grid:
            raise unprocessable(name, f"{name} belongs to the sweep, beside base and grid")
    try:
        combos = expand(
            body.base,
            body.grid,
            to_params=_job_params(settings, owner),
            max_jobs=settings.max_sweep_jobs,
        )
    except ParamError as exc:
        where = exc.field.split(".")
        raise RequestValidationError(
            [{"type": "invalid_param", "loc": ("body", *where), "msg": str(exc), "input": None}]
        ) from None
    webhook = sub.webhook(body)  # every job of the sweep sends its own events there
    priority = sub.priority(body)  # and is queued at this priority
    sub.admit(count=len(combos))
    with sub.writing():
        sweep, jobs = store.create_sweep(
            session,
            base=body.base,
            grid=body.grid,
            params=[c.params for c in combos],
            owner=sub.who,
            webhook=webhook,
            priority=priority,
            dispatched=True,
        )
        made = [(job.id, combo.params) for job, combo in zip(jobs, combos, strict=True)]
        with all_images_attached(settings, made, owner):  # each job's own copies
            session.commit()
    sub.queued([j.id for j in jobs], ADAPT, sweep_url(sweep.id))
    public = _public(session, settings, sweep)
    session.close()
    return public


@router.get("", response_model=SweepsPublic)
def list_sweeps(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    owner: CurrentOwner,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Response:
    """This token's sweeps, newest first, each with its jobs."""
    rows, count = store.list_sweeps(session, owner=owner, offset=offset, limit=limit)
    stats = queue_stats(request, session)
    data = [_public(session, settings, s, stats) for s in rows]
    session.close()
    return json_response(request, SweepsPublic(data=data, count=count))


@router.get(
    "/{sweep_id}", response_model=SweepPublic, responses={404: {"description": "No such sweep"}}
)
def read_sweep(
    sweep_id: SweepId, request: Request, session: SessionDep, settings: SettingsDep,
    owner: CurrentOwner,
) -> Response:  # fmt: skip
    """The sweep: every job's status, parameters and final losses, in grid order."""
    sweep = store.get_sweep(session, sweep_id=sweep_id, owner=owner)
    public = _public(session, settings, sweep, queue_stats(request, session))
    session.close()
    return json_response(request, public)


@router.post(
    "/{sweep_id}/cancel",
    response_model=SweepPublic,
    responses={404: {"description": "No such sweep"}},
)
def cancel_sweep(
    sweep_id: SweepId,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    owner: CurrentOwner,
) -> SweepPublic:
    """Cancel every queued or running job of the sweep (running ones stop at their next
    step); finished jobs stay as they are."""
    sweep = store.get_sweep(session, sweep_id=sweep_id, owner=owner)
    store.cancel_sweep(session, sweep_id=sweep.id)
    session.commit()
    changed(request)  # the jobs it canceled were queued or running: live views
    public = _public(session, settings, sweep)
    session.close()
    return public
