"""Request and response bodies of the render routes (POST /jobs/{id}/renders, /renders).

A render is a job (jobs/kinds.py: kind 'render'), so its public view is a job's view plus
the links to its pictures. The request body is generated from
`nada.render_params.RenderParams`'s declarations (backend/schemas/declared.py), checked by
their own checks, so a refusal names the field whether the CLI, the API or the page sent it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.schemas import API_PREFIX
from backend.schemas.declared import request_model
from backend.schemas.jobs import JobPublic
from backend.schemas.priority import PriorityFields
from backend.schemas.webhooks import WebhookFields
from jobs.db.models import JobStatus
from nada import rundir
from nada.ids import ID_PATTERN
from nada.render_params import (
    MAX_DOMAIN_STRENGTH,
    MODES,
    VIDEO_FORMATS,
    VIDEO_MODES,
    RenderParams,
)

Mode = Literal[MODES]  # type: ignore[valid-type]
Format = Literal[VIDEO_FORMATS]  # type: ignore[valid-type]


def render_url(render_id: str) -> str:
    return f"{API_PREFIX}/renders/{render_id}"


class _RenderCreateBase(WebhookFields, PriorityFields):
    model_config = ConfigDict(extra="forbid", strict=True)


class BlendJob(BaseModel):
    """Another finished job of this token on the same base generator, blended in."""

    model_config = ConfigDict(extra="forbid", strict=True)

    job_id: str = Field(pattern=f"^{ID_PATTERN}$", description="the finished job (its id)")
    strength: float = Field(
        1.0, ge=0, le=MAX_DOMAIN_STRENGTH, allow_inf_nan=False,
        description="its domain's strength: the share of its difference from the base",
    )  # fmt: skip


RenderCreate = request_model(
    "RenderCreate",
    RenderParams,
    base=_RenderCreateBase,
    doc="What to draw through the job's base and adapted generators (docs/explore.md).",
    annotations={"blend": list[BlendJob]},
    checks={"blend": []},  # each entry is checked by BlendJob, the list by RenderParams
)


class RenderPublic(JobPublic):
    """A render job: its parameters, and its picture and video once done."""

    job_id: str = Field(description="the adaptation job whose generators draw")
    mode: str
    image_url: str | None = Field(
        description="render.png: the grid, or a video's keyframes (source over adapted)"
    )
    video_url: str | None = Field(
        description="render.mp4 or render.gif (modes 'video' and 'domains')"
    )


class RenderParamsPublic(BaseModel):
    """What POST /jobs/{id}/renders accepts, as nada/render_params.py declares it."""

    fields: list[dict[str, Any]] = Field(
        description="name, type, required, default, min, max (a seed list's: how many seeds), "
        "items (each seed's min, max), choices, unit, help, label, group (the mode whose "
        "field it is, or 'render'), flags (GET /params/render lists the same)"
    )
    max_seed: int = Field(description="the largest seed")


def render_public(job: JobPublic) -> RenderPublic:
    done = job.status == JobStatus.succeeded
    base = render_url(job.id)
    params = RenderParams.from_dict(job.params)
    video = f"{base}/{params.file_name}" if params.mode in VIDEO_MODES else None
    return RenderPublic(
        **job.model_dump(),
        job_id=params.job_id or "",
        mode=params.mode,
        image_url=f"{base}/{rundir.RENDER_PNG}" if done else None,
        video_url=video if done else None,
    )
