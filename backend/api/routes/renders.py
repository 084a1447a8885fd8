"""/jobs/{id}/renders, /renders: a finished adaptation explored (kind 'render'): seeds drawn
by the base and the adapted generator side by side, style mixing, interpolation videos.

A render is a job on the fast lane (jobs/kinds.py): it queues on a queue of its own, which
`nada serve`'s second worker and every `nada worker --lanes ...,fast` take, so it never
waits behind a long adaptation (docs/deploy.md). It is canceled, followed (GET
/jobs/{id}/events) and deleted like any job. The same parameters for the same job are drawn
once: asking again answers 200 with the existing render (jobs.cache_key). A render may blend
in other finished jobs of the same token on the same base (`blend`): each is checked here,
and each is a job the render reads (jobs/gc.py keeps its files while the render waits).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from backend.api.deps import CurrentOwner, SessionDep, SettingsDep
from backend.api.job_files import job_file
from backend.api.job_views import JobId, public_job, read_job_view
from backend.api.routes.directions import check_edits
from backend.api.submission import SubmissionDep, submission_responses
from backend.api.upload_errors import unprocessable
from backend.schemas.priority import PRIORITY_FIELDS
from backend.schemas.renders import (
    RenderCreate,
    RenderParamsPublic,
    RenderPublic,
    render_public,
    render_url,
)
from backend.schemas.webhooks import WEBHOOK_FIELDS
from jobs import store
from jobs.db.models import Job, JobStatus
from jobs.generators import list_generators
from jobs.kinds import ADAPTED_KINDS, RENDER
from jobs.settings import Settings
from nada import rundir
from nada.declare import describe
from nada.errors import ParamError
from nada.render_params import MAX_SEED, RenderParams
from stylegan2 import registry

router = APIRouter(tags=["renders"])

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"description": "No such job (or not this token's)"},
    409: {"description": "The job has not succeeded (yet)"},
}
_MEDIA = {
    rundir.RENDER_PNG: "image/png",
    rundir.RENDER_MP4: "video/mp4",
    rundir.RENDER_GIF: "image/gif",
}


def _w_plus_entries(generator: str, settings: Settings) -> int | None:
    """The base generator's number of W+ entries (2 log2(size) - 2), when its size is known
    here; None leaves the check to the worker."""
    try:
        size = registry.parse_random_name(generator)
    except ValueError:
        return None
    if size is None:
        sizes = {g.name: g.size for g in list_generators(settings.data_dir)}
        size = sizes.get(generator)
    return None if size is None else 2 * (int(size).bit_length() - 1) - 2


def _check_crossover(params: RenderParams, settings: Settings) -> None:
    entries = _w_plus_entries(params.generator or "", settings)
    if params.mode == "mix" and entries is not None and params.crossover >= entries:
        raise ParamError(
            "crossover",
            f"must be below the {entries} W+ entries of generator {params.generator!r} "
            f"(got {params.crossover})",
        )


def _check_blend(session: Session, owner: str | None, job: Job, params: RenderParams) -> None:
    """Every blended job is this token's, finished, another than `job`, on its base."""
    base = job.params.get("generator")
    for part in params.blend:
        if part.job_id is None:
            raise ParamError("blend", "each entry needs a job_id")
        if part.job_id == job.id:
            raise ParamError("blend", f"names job {job.id} itself; set its strength instead")
        try:
            other = store.get_job(session, job_id=part.job_id, owner=owner, kind=ADAPTED_KINDS)
        except store.JobNotFound:
            raise ParamError("blend", f"names job {part.job_id}: no such adaptation") from None
        if other.status != JobStatus.succeeded:
            raise ParamError(
                "blend", f"names job {other.id}, which is {other.status}; blends need finished jobs"
            )
        if other.params.get("generator") != base:
            raise ParamError(
                "blend",
                f"names job {other.id}, which adapted {other.params.get('generator')!r}; this "
                f"job adapted {base!r}: a blend needs jobs on the same base generator",
            )


@router.get("/renders/params", response_model=RenderParamsPublic)
def read_render_params() -> RenderParamsPublic:
    """The fields of POST /jobs/{id}/renders with their ranges (the page's form reads them)."""
    fields = describe(RenderParams, sent_only=True)
    return RenderParamsPublic(fields=fields, max_seed=MAX_SEED)


@router.post(
    "/jobs/{job_id}/renders",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RenderPublic,
    responses=submission_responses(
        "render",
        {**_ERRORS, 422: "A parameter out of range; the error names it"},
        again="The same render of this job was asked for before: that render",
    ),
)
def create_render(job_id: JobId, body: RenderCreate, sub: SubmissionDep) -> RenderPublic:
    """Draw seeds (mode 'seeds'), style mixing grids ('mix') or an interpolation video
    ('video', MP4 or GIF) through this finished job's base generator and its adapted one,
    side by side, or a video on fixed seeds through the domains ('domains'). `strength`
    dials the domain, `blend` adds other finished jobs on the same base. Runs on the fast
    lane; the same request again answers 200 with the existing render."""
    session, settings = sub.session, sub.settings
    job = store.get_job(session, job_id=job_id, owner=sub.owner, kind=ADAPTED_KINDS)
    try:
        params = RenderParams.from_dict(
            {
                **body.model_dump(exclude={*WEBHOOK_FIELDS, *PRIORITY_FIELDS}),
                "job_id": job.id,
                "generator": job.params.get("generator"),
            }
        )
        _check_crossover(params, settings)
        _check_blend(session, sub.owner, job, params)
        sweep = params.edit_sweep if params.mode == "video" else ""
        check_edits(params.edits, sweep, params.generator, settings.data_dir)
    except ParamError as exc:
        raise unprocessable(exc.field, str(exc)) from None
    if job.status != JobStatus.succeeded:
        raise store.JobConflict(f"job {job_id} is {job.status}; renders need a finished job")
    render = sub.cached_or_new(
        RENDER, params, params.cache_key(), render_url, sub.webhook(body), sub.priority(body)
    )
    public = render_public(public_job(session, settings, render))
    session.close()
    return public


@router.get("/renders/{job_id}", response_model=RenderPublic, responses={404: _ERRORS[404]})
def read_render(
    job_id: JobId, request: Request, session: SessionDep, settings: SettingsDep,
    owner: CurrentOwner,
) -> Response:  # fmt: skip
    """The render: status, progress (pictures drawn), and its picture and video once done."""
    return read_job_view(
        request, session, settings, owner, job_id, kind=RENDER.name,
        view=lambda *job: render_public(public_job(*job)),
    )  # fmt: skip


def _file(
    session: Session, settings: Settings, owner: str | None, job_id: str, name: str
) -> Response:
    return job_file(
        session, settings, owner, job_id, name,
        kind=RENDER.name, after_success=name,
        missing=f"render {job_id} has no {name} (another mode or format)",
        media_type=_MEDIA[name], filename=f"render-{job_id[:8]}{Path(name).suffix}",
        inline=True,  # shown by the page; the link's download names it
    )  # fmt: skip


def _media(name: str) -> dict[int | str, dict[str, object]]:
    return {200: {"content": {_MEDIA[name]: {}}}, **_ERRORS}


@router.get("/renders/{job_id}/render.png", response_class=FileResponse,
            responses=_media(rundir.RENDER_PNG))  # fmt: skip
def read_render_png(
    job_id: JobId, session: SessionDep, settings: SettingsDep, owner: CurrentOwner
) -> Response:
    """The grid (source over adapted), or a video's keyframes."""
    return _file(session, settings, owner, job_id, rundir.RENDER_PNG)


@router.get("/renders/{job_id}/render.mp4", response_class=FileResponse,
            responses=_media(rundir.RENDER_MP4))  # fmt: skip
def read_render_mp4(
    job_id: JobId, session: SessionDep, settings: SettingsDep, owner: CurrentOwner
) -> Response:
    """The interpolation video, H.264: each frame source | adapted."""
    return _file(session, settings, owner, job_id, rundir.RENDER_MP4)


@router.get("/renders/{job_id}/render.gif", response_class=FileResponse,
            responses=_media(rundir.RENDER_GIF))  # fmt: skip
def read_render_gif(
    job_id: JobId, session: SessionDep, settings: SettingsDep, owner: CurrentOwner
) -> Response:
    """The interpolation video as an animated GIF."""
    return _file(session, settings, owner, job_id, rundir.RENDER_GIF)
