"""Request and response bodies of the photo routes: inversions and edits.

Both are jobs (jobs/kinds.py: kinds 'invert' and 'edit'), so their public views are a job's
view plus the links to what they produce. The inversion's parameters are
`nada.photo_params.InvertParams`, sent as one JSON text field beside the photo
(`InversionParams` documents that object; `INVERSION_BODY` the multipart body); the edit's
body is generated from `EditParams` (backend/schemas/declared.py).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backend.schemas import API_PREFIX
from backend.schemas.declared import request_model
from backend.schemas.jobs import JobPublic
from backend.schemas.priority import PRIORITY_FIELDS, PriorityFields
from backend.schemas.webhooks import WEBHOOK_FIELDS, WebhookFields
from jobs.db.models import JobStatus
from nada.errors import ParamError
from nada.photo_params import SERVER_SET, EditParams, InvertParams


def inversion_url(inversion_id: str) -> str:
    return f"{API_PREFIX}/inversions/{inversion_id}"


def edit_url(edit_id: str) -> str:
    return f"{API_PREFIX}/edits/{edit_id}"


MAX_FORM_JSON_DEPTH = 32  # a parameters object is 2 deep; the JSON routes refuse far less


def _nesting(text: str) -> int:
    """How deep `text`'s arrays and objects nest (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_form_json(text: str, field: str) -> Any:
    """A form field holding JSON, parsed under the same bounds as a JSON body: its size is
    the receiver's field cap; nesting past MAX_FORM_JSON_DEPTH is refused before parsing
    (Python's parser would recurse once per level). ParamError names `field`."""
    if _nesting(text) > MAX_FORM_JSON_DEPTH:
        raise ParamError(field, f"nests deeper than {MAX_FORM_JSON_DEPTH} levels")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParamError(field, f"is not valid JSON ({exc.msg} at {exc.pos})") from None
    except RecursionError:  # cannot happen under the depth bound; kept as the last word
        raise ParamError(field, "nests too deeply") from None


class PhotoSubmission(WebhookFields, PriorityFields):
    """What an inversion's `params` object says besides its parameters."""


def parse_invert_params(
    text: str | None, *, photo_sha256: str
) -> tuple[InvertParams, PhotoSubmission]:
    """The `params` form field (a JSON object, optional) -> validated InvertParams, and the
    webhook and priority it names (`webhook`, `webhook_events`, `priority` in the same
    object).

    Raises ParamError naming the field ('params' for JSON that is not an object)."""
    data: Any = {}
    if text is not None and text.strip():
        data = parse_form_json(text, "params")
    if not isinstance(data, dict):
        raise ParamError("params", "must be a JSON object of the inversion's parameters")
    for name in SERVER_SET:
        if name in data:
            raise ParamError(name, "is set by the server from the uploaded file")
    hook = {k: data.pop(k) for k in list(data) if k in WEBHOOK_FIELDS | PRIORITY_FIELDS}
    try:
        webhook = PhotoSubmission.model_validate(hook)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "webhook"
        raise ParamError(field, error["msg"].removeprefix("Value error, ")) from None
    return InvertParams.from_dict({**data, "photo_sha256": photo_sha256}), webhook


class InversionPublic(JobPublic):
    """An inversion job: status and progress like any job, and its pictures."""

    photo_url: str = Field(description="the uploaded photo, upright, as PNG")
    aligned_url: str | None = Field(description="the aligned crop (once succeeded)")
    reconstruction_url: str | None = Field(description="the code through the base generator")
    latent_url: str | None = Field(
        description="latent.pt: {'w_plus': [1, n_latent, 512], 'metadata'}; load with "
        "torch.load(weights_only=True)"
    )
    note: str | None = Field(
        None,
        description="what the user should know about the result, e.g. 'several faces found; "
        "used the largest' or 'perceptual loss unavailable: pixel loss only'",
    )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


InversionParams = request_model(
    "InversionParams",
    InvertParams,
    base=_Strict,
    doc="The `params` field of POST /inversions: a JSON object of these, each optional "
    "(GET /inversions/params lists them with this service's photo limits).",
)

# POST /inversions' body as OpenAPI tells it (the route reads the stream itself).
INVERSION_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "the photo: JPEG, PNG or WebP",
                    },
                    "params": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": InversionParams.model_json_schema(),
                        "description": "a JSON object of the inversion's parameters "
                        "(InversionParams); absent: every default",
                    },
                },
            }
        }
    },
}


class InversionParamsPublic(BaseModel):
    """What POST /inversions accepts: its `params` fields and the photo's limits."""

    fields: list[dict[str, Any]] = Field(
        description="nada/photo_params.py's declarations: name, type, required, default, min, "
        "max, unit, help, label, group, flag (GET /params/invert lists the same)"
    )
    max_photo_mb: float = Field(description="NADA_MAX_PHOTO_MB")
    max_photo_pixels: int = Field(description="NADA_MAX_PHOTO_PIXELS")
    formats: list[str] = Field(description="the accepted image types")


class InversionsPublic(BaseModel):
    data: list[InversionPublic]
    count: int


class _EditCreateBase(WebhookFields, PriorityFields):
    model_config = ConfigDict(extra="forbid", strict=True)


EditCreate = request_model(
    "EditCreate",
    EditParams,
    base=_EditCreateBase,
    doc="An edit of this job (the path's): which finished inversion it draws, and the "
    "latent edits (age, smile, ...) applied to its code first.",
)


class EditPublic(JobPublic):
    """An edit job: one inversion rendered through one adapted generator."""

    job_id: str = Field(description="the adaptation job whose generator renders")
    inversion_id: str
    edits: str = Field("", description="the latent edits applied, canonical ('age=2')")
    image_url: str | None = Field(description="the edited photo (once succeeded)")


def inversion_public(job: JobPublic, info: dict[str, Any] | None = None) -> InversionPublic:
    """`info`: the finished inversion's inversion.json (its note), when there is one."""
    done = job.status == JobStatus.succeeded
    base = inversion_url(job.id)
    note = (info or {}).get("note")
    return InversionPublic(
        **job.model_dump(),
        note=note if isinstance(note, str) else None,
        photo_url=f"{base}/photo.png",
        aligned_url=f"{base}/aligned.png" if done else None,
        reconstruction_url=f"{base}/reconstruction.png" if done else None,
        latent_url=f"{base}/latent.pt" if done else None,
    )


def edit_public(job: JobPublic) -> EditPublic:
    done = job.status == JobStatus.succeeded
    return EditPublic(
        **job.model_dump(),
        job_id=str(job.params.get("job_id", "")),
        inversion_id=str(job.params.get("inversion_id", "")),
        edits=str(job.params.get("edits", "")),
        image_url=f"{edit_url(job.id)}/image.png" if done else None,
    )


__all__ = [
    "EditCreate",
    "EditPublic",
    "InversionParamsPublic",
    "InversionPublic",
    "InversionsPublic",
    "edit_public",
    "edit_url",
    "inversion_public",
    "inversion_url",
    "parse_invert_params",
]
