"""/directions: the latent edit directions renders and photo edits may name ("age=2"),
uploads of one's own, and the one check of a request's edits against them.

A direction is a registry entry (stylegan2/directions.py) or an upload (jobs/directions.py),
found in one base generator's W space. An edit is refused with 422 naming its field when
the name is neither (a path is never accepted here: the service opens only its own files),
when the job's base is another generator, or when a registry file is neither here nor
downloadable. The text itself (bounds, count) is checked by the declarations
(nada/edits.py). POST /directions streams the file like a generator upload
(backend/uploads.py, capped at MAX_FILE_BYTES) and checks it in a limited child
(backend/direction_validation.py) before it is published.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, status
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
from backend.direction_validation import DirectionRejected, store_direction
from backend.schemas.directions import DirectionPublic, DirectionsPublic
from backend.uploads import UploadRefused, receive_upload
from backend.validation_slots import ValidatorsBusy
from jobs import availability
from jobs.directions import (
    UploadedDirection,
    check_direction_upload_name,
    directions_dir,
    list_uploaded_directions,
    uploaded_direction,
)
from jobs.generators import check_generator_name, list_generators
from jobs.settings import Settings
from jobs.storage import incoming_dir
from nada.edits import MAX_EDITS, MAX_STRENGTH, parse_edits, parse_sweep
from nada.errors import ParamError
from stylegan2 import directions, registry

W_DIM = 512  # every generator this service draws has a W of 512 numbers
MAX_FILE_BYTES = directions.MAX_DIRECTION_BYTES

router = APIRouter(prefix="/directions", tags=["renders"])


def _public(info: directions.DirectionInfo) -> DirectionPublic:
    state = availability.of_file(directions.DIRECTIONS.status(info.name))
    return DirectionPublic(
        name=info.name, description=info.description, base=info.base,
        suggested=list(info.suggested), url=info.url, license=info.license,
        source=info.source, notes=info.notes, availability=state.availability,
        availability_note=state.note,
    )  # fmt: skip


def _uploaded_public(entry: UploadedDirection) -> DirectionPublic:
    return DirectionPublic(
        name=entry.name, description="uploaded" + (f" by {entry.owner}" if entry.owner else ""),
        base=entry.base, suggested=[], url=None, source="upload",
    )  # fmt: skip


@router.get("", response_model=DirectionsPublic)
def read_directions(settings: SettingsDep) -> DirectionsPublic:
    """Every edit direction, registered and uploaded: its base generator (edits apply to
    jobs on that base only), the strengths its authors use, and its `availability` here (an
    edit naming a manual one is refused)."""
    data = [_public(info) for info in directions.list_directions()]
    data += [_uploaded_public(e) for e in list_uploaded_directions(settings.data_dir)]
    return DirectionsPublic(data=data, count=len(data), max_edits=MAX_EDITS,
                            max_strength=MAX_STRENGTH)  # fmt: skip


def _num_ws(base: str, settings: Settings) -> int:
    """W+ entries of generator `base` (2 log2(size) - 2), which a direction may have rows."""
    size = registry.parse_random_name(base)
    if size is None:
        size = next(g.size for g in list_generators(settings.data_dir) if g.name == base)
    return 2 * (int(size).bit_length() - 1) - 2


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DirectionPublic)
async def upload_direction(
    request: Request, settings: SettingsDep, owner: CurrentOwner
) -> DirectionPublic:
    """Upload a latent edit direction: multipart form with `name`, `base` (the generator
    whose W it is in: GET /generators) and `file` (.pt: one tensor [512], [1, 512] or
    [num_ws, 512], read with weights_only=True in a separate, memory- and time-limited
    process and re-saved alone). 201: stored, and edits of jobs on `base` may name it;
    409: the name is taken; 413: over the direction cap; 422: a missing field, a bad name
    or base, a refused file (the message says why); 429: checks busy, as for generators."""
    check_upload_rate(request, settings, owner)
    incoming = incoming_dir(settings.data_dir)
    try:
        async with receive_upload(
            request.headers, request.stream(), incoming, max_bytes=MAX_FILE_BYTES,
            fields=("name", "base"), required=("name", "base"),
        ) as upload:  # fmt: skip
            name, base = upload.fields["name"], upload.fields["base"]
            try:
                check_direction_upload_name(name, settings.data_dir)
                check_generator_name(base, settings.data_dir)
            except ParamError as exc:
                raise unprocessable("base" if exc.field == "generator" else exc.field,
                                    exc.message) from None  # fmt: skip
            await run_in_threadpool(
                store_direction, Path(upload.path), directions_dir(settings.data_dir), name,
                base=base, w_dim=W_DIM, num_ws=_num_ws(base, settings), owner=owner,
                uploaded_at=datetime.now(UTC).isoformat(),
                max_validations=settings.max_concurrent_validations,
            )  # fmt: skip
    except FileExistsError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except ValidatorsBusy as exc:
        raise validators_busy(exc) from None
    except DirectionRejected as exc:
        raise unprocessable("file", f"refused: {exc}") from None
    except UploadRefused as exc:
        raise upload_refusal(exc, max_bytes=MAX_FILE_BYTES, what="a direction file",
                             setting="the direction cap") from None  # fmt: skip
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise disk_full("the upload was not stored") from None
    entry = uploaded_direction(name, settings.data_dir)
    assert entry is not None
    return _uploaded_public(entry)


def _check_name(name: str, field: str, generator: str | None, data_dir: Path) -> None:
    upload = uploaded_direction(name, data_dir)
    known = directions.direction_names()
    if name not in known and upload is None:
        raise ParamError(
            field,
            f"name an unknown edit direction {name!r}; known: {', '.join(known)}, or an uploaded "
            "name (GET /directions)",
        )
    base = upload.base if upload is not None else directions.get_direction_info(name).base
    if generator != base:
        raise ParamError(
            field,
            f"direction {name!r} is in the W space of {base!r}; this job's base generator "
            f"is {generator!r}",
        )
    if upload is None:
        state = availability.of_file(directions.DIRECTIONS.status(name))
        if state.availability == "manual":
            raise ParamError(field, f"direction {name!r} is not on this server: {state.note}")


def check_edits(edits: str, sweep: str, generator: str | None, data_dir: Path) -> None:
    """A request's `edits` (and a video's `edit_sweep`) against the registry, the uploads
    and the job's base generator.

    Raises:
        ParamError: field 'edits' / 'edit_sweep': an unknown name (or a path), a direction
            of another base, a registered one that is not on this server.
    """
    for edit in parse_edits(edits, paths=True):
        _check_name(edit.name, "edits", generator, data_dir)
    swept = parse_sweep(sweep, paths=True)
    if swept is not None:
        _check_name(swept.name, "edit_sweep", generator, data_dir)
