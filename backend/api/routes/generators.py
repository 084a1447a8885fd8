"""/generators: the base generators a job may start from, and uploads of custom ones.

POST /generators streams the multipart body into a temporary file under
`<data_dir>/uploads-incoming` (`backend.uploads.receive_upload`: python-multipart's streaming
parser, cut off with 413 as soon as it passes NADA_MAX_UPLOAD_MB). The file is then checked
in a limited child process (backend/generator_validation.py) (this process never imports torch nor unpickles the upload) and
published atomically as `<data_dir>/generators/<name>.pt` plus a JSON sidecar. At most
NADA_MAX_CONCURRENT_VALIDATIONS checks run at once in this process; beyond that, 429.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from backend.api.deps import CurrentOwner, SettingsDep
from backend.api.upload_errors import (
    check_upload_rate,
    disk_full,
    is_disk_full,
    unprocessable,
    upload_refusal,
    validators_busy,
)
from backend.generator_validation import GeneratorRejected, store_generator
from backend.schemas.catalog import GeneratorPublic, GeneratorsPublic
from backend.uploads import UploadRefused, receive_upload
from backend.validation_slots import ValidatorsBusy
from jobs import availability
from jobs.generators import (
    RANDOM_SIZES,
    GeneratorEntry,
    check_upload_name,
    list_generators,
    list_uploaded,
    name_taken,
    uploads_dir,
)
from jobs.settings import Settings
from jobs.storage import incoming_dir
from nada.errors import ParamError

router = APIRouter(prefix="/generators", tags=["generators"])


def _public(entry: GeneratorEntry, settings: Settings) -> GeneratorPublic:
    state = availability.generator(entry.name, settings.data_dir)
    return GeneratorPublic(
        **vars(entry), availability=state.availability, availability_note=state.note
    )


@router.get("", response_model=GeneratorsPublic)
def read_generators(settings: SettingsDep) -> GeneratorsPublic:
    """Registered and uploaded generators, each with its `availability` on this server
    (cached, downloadable, manual: a job naming a manual one is refused);
    'random-<size>' (seeded random weights, always cached) too."""
    data = [_public(g, settings) for g in list_generators(settings.data_dir)]
    return GeneratorsPublic(data=data, count=len(data), random_sizes=list(RANDOM_SIZES))


def _taken(name: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, f"generator {name!r} already exists")


def _refusal(
    exc: UploadRefused | GeneratorRejected, max_bytes: int
) -> HTTPException | RequestValidationError:
    """The answer to a refused upload."""
    if isinstance(exc, GeneratorRejected):
        return unprocessable("file", f"refused: {exc}")
    return upload_refusal(exc, max_bytes=max_bytes, what="the upload", setting="NADA_MAX_UPLOAD_MB")


def _new_name(raw: str, settings: Settings) -> str:
    """`raw` if an upload may take it; else 422 (syntax) or 409 (taken)."""
    if raw != raw.strip():  # said outright: a trimmed name would not be the one sent
        raise unprocessable("name", "must not begin or end with spaces or other white space")
    try:
        name = check_upload_name(raw)
    except ParamError as exc:
        raise unprocessable("name", str(exc)) from None
    if name_taken(name, settings.data_dir):
        raise _taken(name)
    return name


@router.post("", status_code=status.HTTP_201_CREATED, response_model=GeneratorPublic)
async def upload_generator(
    request: Request, settings: SettingsDep, owner: CurrentOwner
) -> GeneratorPublic:
    """Upload a custom base generator: multipart form with `name` and `file` (.pt).

    The file must be a StyleGAN2 generator state dict (tensors only; loaded with
    weights_only=True in a separate, memory- and time-limited process). 201: stored and
    usable as a job's `generator`; 400: a malformed multipart body; 409: the name is taken;
    413: over NADA_MAX_UPLOAD_MB; 415: not multipart/form-data; 422: a missing field, a bad
    name or a refused file (the message says why); 429 (with Retry-After): as many uploads
    as NADA_MAX_CONCURRENT_VALIDATIONS are being checked (or this token's share of them,
    or its NADA_UPLOADS_PER_MINUTE); 507: the server's disk is full."""
    check_upload_rate(request, settings, owner)
    max_bytes = int(settings.max_upload_mb * (1 << 20))
    incoming = incoming_dir(settings.data_dir)
    try:
        async with receive_upload(
            request.headers, request.stream(), incoming, max_bytes=max_bytes
        ) as upload:
            name = _new_name(upload.name, settings)
            uploaded_at = datetime.now(UTC).isoformat()
            try:
                await run_in_threadpool(
                    store_generator,
                    upload.path,
                    uploads_dir(settings.data_dir),
                    name,
                    owner=owner,
                    uploaded_at=uploaded_at,
                    max_validations=settings.max_concurrent_validations,
                )
            except FileExistsError:  # taken since _new_name looked
                raise _taken(name) from None
            except ValidatorsBusy as exc:
                raise validators_busy(exc) from None
    except (UploadRefused, GeneratorRejected) as exc:
        raise _refusal(exc, max_bytes) from None
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise disk_full("the upload was not stored") from None
    entry = next(g for g in list_uploaded(settings.data_dir) if g.name == name)
    return _public(entry, settings)
