"""/images: example images for image-guided jobs ("make it look like these").

Upload first (POST /images, 1..MAX_EXAMPLE_IMAGES files), then name the ids in POST /jobs'
`target_images` / `source_images`. Each file is decoded with the photo checks, turned
upright, shrunk to at most 1024 px a side and stored as PNG under the sha256 of those bytes
(invert/example_images.py). All or nothing: one refused file and none of the request's
files is kept. A job gets its own copies, served by GET /jobs/{id}/images/{id}.png.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from backend.api.deps import CurrentOwner, SessionDep, SettingsDep
from backend.api.job_files import job_file
from backend.api.job_views import JobId, check_disk
from backend.api.upload_errors import (
    check_upload_rate,
    disk_full,
    is_disk_full,
    unprocessable,
    upload_refusal,
    validators_busy,
)
from backend.schemas.images import ImagePublic, ImagesPublic, image_url
from backend.uploads import ReceivedFile, UploadRefused, UploadTooLarge, receive_files
from backend.validation_slots import DECODES, VALIDATIONS, ValidatorsBusy
from invert.example_images import ExampleImage, normalize_example
from invert.photos import PhotoRejected
from jobs import image_pool
from jobs.settings import Settings
from jobs.storage import incoming_dir
from nada import rundir
from nada.params import IMAGE_FIELDS, MAX_EXAMPLE_IMAGES

router = APIRouter(tags=["images"])

_NAME = re.compile(r"[0-9a-f]{64}")
_PNG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}},
    404: {"description": "No such image"},
}
ImageId = Annotated[str, PathParam(description="the image's id: 64 hex digits (sha256)")]


def _too_large(exc: UploadTooLarge, max_bytes: int) -> str:
    """413's message: which file passed the cap per image, or what the body did."""
    if exc.part is None:
        return str(exc)
    mib = max_bytes / (1 << 20)
    return (
        f"{exc.part.describe()} is larger than the {mib:g} MiB limit per image (NADA_MAX_PHOTO_MB)"
    )


def _normalize_all(
    files: list[ReceivedFile], settings: Settings, owner: str | None
) -> list[ExampleImage]:
    """Every file decoded and normalised, or a 422 naming the first refused one. One
    validation slot (this token's) for all; each image's pixels from the budget while it
    is decoded."""
    examples = []
    with VALIDATIONS.take(settings.max_concurrent_validations, owner=owner):
        for received in files:
            try:
                with DECODES.hold(settings.decode_pixel_budget) as admit:
                    examples.append(
                        normalize_example(
                            received.path, max_pixels=settings.max_photo_pixels, admit=admit
                        )
                    )
            except PhotoRejected as exc:
                raise unprocessable(
                    "file", f"{received.describe()} refused: the image {exc}"
                ) from None
    return examples


def _store_all(examples: list[ExampleImage], settings: Settings, owner: str | None) -> None:
    """Into the pool, all or none: a failure part-way withdraws what this request added."""
    check_disk(settings)
    added: list[tuple[str, bool]] = []
    try:
        for example in examples:
            written = image_pool.add(settings.data_dir, example.sha256, example.png, owner=owner)
            added.append((example.sha256, written))
    except BaseException:
        for name, written in added:
            image_pool.withdraw(settings.data_dir, name, owner=owner, file_too=written)
        raise


@router.post(
    "/images",
    status_code=status.HTTP_201_CREATED,
    response_model=ImagesPublic,
    responses={
        400: {"description": "A malformed multipart body"},
        413: {"description": "A file larger than NADA_MAX_PHOTO_MB (the message names it)"},
        415: {"description": "Not multipart/form-data"},
        422: {"description": "A refused file (named by its place and filename), or too many"},
        429: {"description": "Too many uploads (this token's, or being checked at once)"},
        507: {"description": "The data directory is full or not writable"},
    },
)
async def upload_images(
    request: Request, settings: SettingsDep, owner: CurrentOwner
) -> ImagesPublic:
    """Upload 1 to 16 example images: multipart with one `file` part each (JPEG, PNG or
    WebP, each at most NADA_MAX_PHOTO_MB and NADA_MAX_PHOTO_PIXELS). Answers their ids, in
    order; the same picture always gets the same id."""
    check_upload_rate(request, settings, owner)
    max_bytes = int(settings.max_photo_mb * (1 << 20))
    try:
        async with receive_files(
            request.headers,
            request.stream(),
            incoming_dir(settings.data_dir),
            max_files=MAX_EXAMPLE_IMAGES,
            max_bytes=max_bytes,
        ) as files:
            examples = await run_in_threadpool(_normalize_all, files, settings, owner)
            await run_in_threadpool(_store_all, examples, settings, owner)
    except UploadTooLarge as exc:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, _too_large(exc, max_bytes)) from None
    except UploadRefused as exc:
        raise upload_refusal(
            exc, max_bytes=max_bytes, what="an image", setting="NADA_MAX_PHOTO_MB"
        ) from None
    except ValidatorsBusy as exc:
        busy = f"{exc.limit} uploads are being checked already; try again in {exc.retry_after_s} s"
        raise validators_busy(exc, busy) from None
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise disk_full("no image was stored") from None
    data = [
        ImagePublic(id=e.sha256, width=e.width, height=e.height, url=image_url(e.sha256))
        for e in examples
    ]
    return ImagesPublic(data=data, count=len(data))


def _checked_name(image_id: str) -> str:
    if not _NAME.fullmatch(image_id):
        raise RequestValidationError(
            [{"type": "image_id", "loc": ("path", "image_id"),
              "msg": "image_id must be 64 lowercase hex digits (an id from POST /images)",
              "input": image_id[:80]}]
        )  # fmt: skip
    return image_id


@router.get("/images/{image_id}.png", response_class=FileResponse, responses=_PNG)
def read_image(image_id: ImageId, settings: SettingsDep, owner: CurrentOwner) -> Response:
    """An uploaded image as stored (upright PNG); only for the token that uploaded it."""
    name = _checked_name(image_id)
    try:
        path = image_pool.find(settings.data_dir, name, owner=owner)
    except image_pool.PoolImageMissing as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return FileResponse(path, media_type="image/png")


@router.get("/jobs/{job_id}/images/{image_id}.png", response_class=FileResponse, responses=_PNG)
def read_job_image(
    job_id: JobId, image_id: ImageId, session: SessionDep, settings: SettingsDep,
    owner: CurrentOwner,
) -> Response:  # fmt: skip
    """One of the job's example images (its `target_images` or `source_images`): the job's
    own copy, there as long as the job is."""
    name = _checked_name(image_id)
    return job_file(
        session, settings, owner, job_id, lambda root: rundir.domain_image_path(root, name),
        listed=lambda job: any(name in (job.params.get(f) or ()) for f in IMAGE_FIELDS),
        unlisted=f"job {job_id} has no example image {name}",
        missing=f"the example image {name} of job {job_id} is missing",
    )  # fmt: skip
