"""/inversions: a user's photo put into a generator's W+ (kind 'invert'), and
/jobs/{id}/edits, /edits: that code rendered through a finished job's adapted generator
(kind 'edit').

Both are jobs: they queue, run on the GPU workers, report progress, and are canceled
(POST /jobs/{id}/cancel), followed (GET /jobs/{id}/events) and deleted (DELETE /jobs/{id})
like adaptations. Here is only what differs: the photo upload and the pictures.

The photo arrives as multipart (`file`, plus an optional `params` text field holding a JSON
object of InvertParams). It is streamed to a temporary file (413 past NADA_MAX_PHOTO_MB),
decoded once with Pillow in this process with the pixel count checked before any pixel is
decoded (invert/photos.py: 422 for a refused file), and stored upright as PNG in the new
job's folder. Nothing is kept when the request is refused. An edit of the same photo and
job is done once: asking again answers with the existing edit (200).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from backend.api.deps import CurrentOwner, SessionDep, SettingsDep
from backend.api.job_files import OCTET, job_file
from backend.api.job_views import JobId, job_root, public_job, queue_stats, read_job_view
from backend.api.responses import json_response
from backend.api.routes.directions import check_edits
from backend.api.submission import (
    Submission,
    SubmissionDep,
    check_models,
    submission_responses,
)
from backend.api.upload_errors import (
    check_upload_rate,
    disk_full,
    is_disk_full,
    unprocessable,
    upload_refusal,
    validators_busy,
)
from backend.schemas.photos import (
    INVERSION_BODY,
    EditCreate,
    EditPublic,
    InversionParamsPublic,
    InversionPublic,
    InversionsPublic,
    edit_public,
    edit_url,
    inversion_public,
    inversion_url,
    parse_invert_params,
)
from backend.uploads import UploadRefused, receive_upload
from backend.validation_slots import DECODES, VALIDATIONS, ValidatorsBusy
from invert import weights
from invert.photos import PhotoRejected, decode_photo, encode_png
from jobs import store
from jobs.db.models import ACTIVE, Job, JobStatus
from jobs.generators import check_generator_name, family_of
from jobs.kinds import ADAPTED_KINDS, EDIT, INVERT
from jobs.settings import Settings
from jobs.storage import incoming_dir
from nada import rundir
from nada.declare import describe
from nada.errors import ParamError
from nada.photo_params import EditParams, InvertParams, check_encoder, check_photo_family

router = APIRouter(tags=["photos"])

_MAX_PARAMS_BYTES = 4096  # the `params` text field
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such job (or not this token's)"},
    409: {"description": "The jobs' states do not allow this"},
}


def _check_encoder(params: InvertParams) -> None:
    """The API takes registered encoders only (a path is the CLI's)."""
    check_encoder(params.encoder, set(weights.ENCODER_FOR_GENERATOR.values()))


def _create_inversion(sub: Submission, photo: Path, params_text: str | None) -> Job:
    """Check everything, then create the job and store its photo in one go (thread pool)."""
    session, settings = sub.session, sub.settings
    try:
        with (
            VALIDATIONS.take(settings.max_concurrent_validations, owner=sub.owner),
            DECODES.hold(settings.decode_pixel_budget) as admit,
        ):
            image, _ = decode_photo(photo, max_pixels=settings.max_photo_pixels, admit=admit)
            png = encode_png(image)
            del image  # its pixels are freed with their budget
    except PhotoRejected as exc:
        raise unprocessable("file", f"refused: the photo {exc}") from None
    try:
        params, hook = parse_invert_params(
            params_text, photo_sha256=hashlib.sha256(png).hexdigest()
        )
        check_generator_name(params.generator, settings.data_dir)
        check_photo_family(family_of(params.generator, settings.data_dir))
        _check_encoder(params)
        check_models(params, settings.data_dir)
    except ParamError as exc:
        raise unprocessable(exc.field, str(exc)) from None
    webhook, priority = sub.webhook(hook), sub.priority(hook)
    sub.admit()
    with sub.writing():  # the row, its event and its dispatch mark: one transaction
        job = store.create_job(
            session, params=params, kind=INVERT, owner=sub.who, webhook=webhook,
            priority=priority, dispatched=True,
        )  # fmt: skip
        root = job_root(settings, job.id)
        try:
            root.mkdir(parents=True, exist_ok=True)
            rundir.write_bytes(root / rundir.PHOTO, png)
            session.commit()
        except BaseException:
            session.rollback()
            rundir.remove_tree(root)
            raise
    session.refresh(job)
    return job


@router.post(
    "/inversions",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=InversionPublic,
    responses=submission_responses(
        "inversion",
        {
            400: "A malformed multipart body",
            413: "The photo is larger than NADA_MAX_PHOTO_MB",
            415: "Not multipart/form-data",
            422: "A refused photo (the message says why) or invalid params",
            429: "Too many photos being checked, uploads, jobs or submissions",
        },
    ),
    openapi_extra={"requestBody": INVERSION_BODY},
)
async def create_inversion(sub: SubmissionDep) -> InversionPublic:
    """Put a photo into a generator's W+: multipart with `file` (JPEG, PNG or WebP) and an
    optional `params` text field, a JSON object of the inversion's parameters
    (`generator`, `encoder`, `align`, `refine_steps`, ...; docs/api.md). The face is
    aligned as FFHQ was, encoded with e4e where the generator has an encoder, and refined
    by optimisation. Follow it like a job; then POST /jobs/{id}/edits."""
    request, settings = sub.request, sub.settings
    check_upload_rate(request, settings, sub.owner)
    max_bytes = int(settings.max_photo_mb * (1 << 20))
    try:
        async with receive_upload(
            request.headers,
            request.stream(),
            incoming_dir(settings.data_dir),
            max_bytes=max_bytes,
            fields=("params",),
            required=(),
            max_field_bytes=_MAX_PARAMS_BYTES,
        ) as upload:
            job = await run_in_threadpool(
                _create_inversion, sub, upload.path, upload.fields.get("params")
            )
    except UploadRefused as exc:
        raise upload_refusal(
            exc, max_bytes=max_bytes, what="the photo", setting="NADA_MAX_PHOTO_MB"
        ) from None
    except ValidatorsBusy as exc:
        busy = (
            f"{exc.limit} photo(s) or generator(s) are being checked already; try again "
            f"in {exc.retry_after_s} s"
        )
        raise validators_busy(exc, busy) from None
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise disk_full("the photo was not stored") from None
    sub.queued([job.id], INVERT, inversion_url(job.id))
    return await run_in_threadpool(_inversion_view, sub.session, settings, job)


def _inversion(
    session: Session, settings: Settings, job: Job, stats: store.QueueStats | None = None
) -> InversionPublic:
    """The public view, with the note of a finished inversion (its inversion.json)."""
    info = None
    if job.status == JobStatus.succeeded:
        try:
            info = json.loads((job_root(settings, job.id) / rundir.INVERSION_INFO).read_text())
        except (OSError, ValueError):
            info = None  # an older or damaged folder: the note is optional
    return inversion_public(public_job(session, settings, job, stats), info)


def _inversion_view(session: Session, settings: Settings, job: Job) -> InversionPublic:
    public = _inversion(session, settings, job)
    session.close()
    return public


@router.get("/inversions/params", response_model=InversionParamsPublic)
def read_inversion_params(settings: SettingsDep) -> InversionParamsPublic:
    """The fields of POST /inversions' `params` and this service's photo limits (the
    page's form reads them from here)."""
    fields = describe(InvertParams, sent_only=True)
    return InversionParamsPublic(
        fields=fields,
        max_photo_mb=settings.max_photo_mb,
        max_photo_pixels=settings.max_photo_pixels,
        formats=["image/jpeg", "image/png", "image/webp"],
    )


@router.get("/inversions", response_model=InversionsPublic)
def list_inversions(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    owner: CurrentOwner,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """This token's inversions, newest first (ETag / 304 like GET /jobs)."""
    rows, count = store.list_jobs(
        session, offset=offset, limit=limit, owner=owner, kind=INVERT.name
    )
    stats = queue_stats(request, session) if any(j.status in ACTIVE for j in rows) else None
    data = [_inversion(session, settings, j, stats) for j in rows]
    session.close()
    return json_response(request, InversionsPublic(data=data, count=count))


@router.get("/inversions/{job_id}", response_model=InversionPublic, responses={404: _ERRORS[404]})
def read_inversion(
    job_id: JobId, request: Request, session: SessionDep, settings: SettingsDep,
    owner: CurrentOwner,
) -> Response:  # fmt: skip
    """The inversion: status, progress (refinement steps), and its pictures once done."""
    return read_job_view(
        request, session, settings, owner, job_id, kind=INVERT.name, view=_inversion
    )


def _inversion_file(
    session: Session, settings: Settings, owner: str | None, job_id: str, name: str,
    *, needs_success: bool = True, **send: Any,
) -> Response:  # fmt: skip
    return job_file(
        session, settings, owner, job_id, name, kind=INVERT.name,
        after_success=name if needs_success else None,
        missing=f"the file {name} of inversion {job_id} is missing", **send,
    )  # fmt: skip


_PNG = {200: {"content": {"image/png": {}}}, **_ERRORS}


@router.get("/inversions/{job_id}/photo.png", response_class=FileResponse, responses=_PNG)
def read_photo(
    job_id: JobId, session: SessionDep, settings: SettingsDep, owner: CurrentOwner
) -> Response:
    """The uploaded photo, upright (EXIF orientation applied), as PNG."""
    return _inversion_file(session, settings, owner, job_id, rundir.PHOTO, needs_success=False)


@router.get("/inversions/{job_id}/aligned.png", response_class=FileResponse, responses=_PNG)
def read_aligned(
    job_id: JobId, session: SessionDep, settings: SettingsDep, owner: CurrentOwner
) -> Response:
    """The aligned crop the encoder and the refinement saw (generator resolution)."""
    return _inversion_file(session, settings, owner, job_id, rundir.ALIGNED)


@router.get("/inversions/{job_id}/reconstruction.png", response_class=FileResponse, responses=_PNG)
def read_reconstruction(
    job_id: JobId, session: SessionDep, settings: SettingsDep, owner: CurrentOwner
) -> Response:
    """The code rendered by the base generator: how close the inversion came."""
    return _inversion_file(session, settings, owner, job_id, rundir.RECONSTRUCTION)


@router.get(
    "/inversions/{job_id}/latent.pt",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, **_ERRORS},
)
def read_latent(
    job_id: JobId, session: SessionDep, settings: SettingsDep, owner: CurrentOwner
) -> Response:
    """The code: {'w_plus': [1, n_latent, 512], 'metadata': {...}}, for `nada generate
    --latent` or torch.load(weights_only=True) with any adapted checkpoint."""
    return _inversion_file(
        session, settings, owner, job_id, rundir.LATENT,
        media_type=OCTET, filename=f"latent-{job_id[:8]}.pt",
    )  # fmt: skip


# -- edits ---------------------------------------------------------------------------------


def edit_cache_key(inversion_id: str, job_id: str, edits: str = "") -> str:
    """The same photo through the same job with the same (canonical) edits is one edit; no
    edits keep the key edits had before they existed."""
    text = f"edit:{inversion_id}:{job_id}" + (f":{edits}" if edits else "")
    return hashlib.sha256(text.encode()).hexdigest()


@router.post(
    "/jobs/{job_id}/edits",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=EditPublic,
    responses=submission_responses(
        "edit",
        _ERRORS,
        again="This photo through this job was asked for before: that edit",
    ),
)
def create_edit(job_id: JobId, body: EditCreate, sub: SubmissionDep) -> EditPublic:
    """Render a finished inversion through this finished job's adapted generator (the
    photo in the new domain). Done once per photo and job: the same request again answers
    200 with the existing edit."""
    session, settings, owner = sub.session, sub.settings, sub.owner
    job = store.get_job(session, job_id=job_id, owner=owner, kind=ADAPTED_KINDS)
    inversion = store.get_job(session, job_id=body.inversion_id, owner=owner, kind=INVERT.name)
    if job.status != JobStatus.succeeded:
        raise store.JobConflict(f"job {job_id} is {job.status}; edits need a finished job")
    if inversion.status != JobStatus.succeeded:
        raise store.JobConflict(
            f"inversion {inversion.id} is {inversion.status}; edits need a finished inversion"
        )
    made_for, adapted_from = inversion.params.get("generator"), job.params.get("generator")
    if made_for != adapted_from:
        raise store.JobConflict(
            f"inversion {inversion.id} is a code for generator {made_for!r}, but job {job_id} "
            f"adapted {adapted_from!r}; invert the photo for {adapted_from!r}"
        )
    try:
        params = EditParams(inversion_id=inversion.id, job_id=job_id, edits=body.edits)
        check_edits(params.edits, "", adapted_from, settings.data_dir)
    except ParamError as exc:
        raise unprocessable(exc.field, str(exc)) from None
    key = edit_cache_key(inversion.id, job_id, params.edits)
    edit = sub.cached_or_new(EDIT, params, key, edit_url, sub.webhook(body), sub.priority(body))
    public = edit_public(public_job(session, settings, edit))
    session.close()
    return public


@router.get("/edits/{job_id}", response_model=EditPublic, responses={404: _ERRORS[404]})
def read_edit(
    job_id: JobId, request: Request, session: SessionDep, settings: SettingsDep,
    owner: CurrentOwner,
) -> Response:  # fmt: skip
    """The edit: status, and its image once done."""
    return read_job_view(
        request, session, settings, owner, job_id, kind=EDIT.name,
        view=lambda *job: edit_public(public_job(*job)),
    )  # fmt: skip


@router.get("/edits/{job_id}/image.png", response_class=FileResponse, responses=_PNG)
def read_edit_image(
    job_id: JobId, session: SessionDep, settings: SettingsDep, owner: CurrentOwner
) -> Response:
    """The photo in the adapted generator's domain."""
    return job_file(
        session, settings, owner, job_id, rundir.EDIT, kind=EDIT.name,
        after_success="its image", missing=f"the image of edit {job_id} is missing",
    )  # fmt: skip
