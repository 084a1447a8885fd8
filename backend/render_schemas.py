"""Request and response bodies of the render routes (POST /jobs/{id}/renders, /renders).

A render is a job (jobs/kinds.py: kind 'render'), so its public view is a job's view plus
the links to its pictures. The request's fields, defaults and help are
`nada.render_params.RenderParams`'s; its ranges are checked there (one place), so a refusal
names the field whether the CLI, the API or the page sent it.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from backend.schemas import API_PREFIX, JobPublic
from jobs.db.models import JobStatus
from nada import rundir
from nada.render_params import RENDER_HELP, RenderParams

_D = RenderParams()
Mode = Literal["seeds", "mix", "video"]  # nada.render_params.MODES
Format = Literal["mp4", "gif"]  # nada.render_params.VIDEO_FORMATS


def render_url(render_id: str) -> str:
    return f"{API_PREFIX}/renders/{render_id}"


def _seeds(name: str) -> Any:
    default = list(getattr(_D, name))
    return Field(default_factory=lambda: list(default), description=RENDER_HELP[name])


class RenderCreate(BaseModel):
    """What to draw through the job's base and adapted generators (docs/explore.md)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    mode: Mode = Field(cast(Mode, _D.mode), description=RENDER_HELP["mode"])
    seeds: list[int] = _seeds("seeds")
    truncation: float = Field(_D.truncation, description=RENDER_HELP["truncation"])
    row_seeds: list[int] = _seeds("row_seeds")
    column_seeds: list[int] = _seeds("column_seeds")
    crossover: int = Field(_D.crossover, description=RENDER_HELP["crossover"])
    keyframes: list[int] = _seeds("keyframes")
    frames: int = Field(_D.frames, description=RENDER_HELP["frames"])
    fps: int = Field(_D.fps, description=RENDER_HELP["fps"])
    format: Format = Field(cast(Format, _D.format), description=RENDER_HELP["format"])
    max_tile: int = Field(_D.max_tile, description=RENDER_HELP["max_tile"])


class RenderPublic(JobPublic):
    """A render job: its parameters, and its picture and video once done."""

    job_id: str = Field(description="the adaptation job whose generators draw")
    mode: str
    image_url: str | None = Field(
        description="render.png: the grid, or a video's keyframes (source over adapted)"
    )
    video_url: str | None = Field(description="render.mp4 or render.gif (mode 'video')")


class RenderParamsPublic(BaseModel):
    """What POST /jobs/{id}/renders accepts: name, type, default, min, max, choices, help
    per field (for seed lists min and max count seeds)."""

    fields: list[dict[str, Any]]
    max_seed: int


def render_public(job: JobPublic) -> RenderPublic:
    done = job.status == JobStatus.succeeded
    base = render_url(job.id)
    params = RenderParams.from_dict(job.params)
    video = f"{base}/{params.file_name}" if params.mode == "video" else None
    return RenderPublic(
        **job.model_dump(),
        job_id=params.job_id or "",
        mode=params.mode,
        image_url=f"{base}/{rundir.RENDER_PNG}" if done else None,
        video_url=video if done else None,
    )
