"""Request and response bodies of the REST API (the ORM models live in jobs/db/models.py).

`JobCreate` is generated from `nada.params.AdaptParams`: the same fields, defaults and
ranges (shown in OpenAPI as minimum/maximum), checked by the same functions, so the API
cannot drift from the engine. The last word is AdaptParams itself (`JobCreate.to_params`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model
from pydantic_core import PydanticCustomError

from backend.clip_tokens import CONTEXT_TOKENS, longest_template_tokens
from jobs.db.models import Job, JobStatus
from nada import params as P
from nada.catalog import check_clip_name
from nada.errors import ParamError

API_PREFIX = "/api/v1"


def _checked(check: typing.Callable[[Any], Any]) -> AfterValidator:
    """An AfterValidator that runs a nada.params-style check and keeps its message."""

    def validate(value: Any) -> Any:
        try:
            check(value)
        except ParamError as exc:
            # No context: the message is used verbatim, braces and all.
            raise PydanticCustomError("invalid_param", str(exc)) from None
        return value

    return AfterValidator(validate)


class ClipModel(BaseModel):
    """One CLIP model guiding the loss (see GET /clip-models for names)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, _checked(_check_clip_name)] = Field(
        description="'ViT-B-32', 'ViT-B-32:openai', 'ViT-B-32:random' (seeded random weights)",
        strict=True,
    )
    weight: float = Field(
        1.0, ge=0, le=100, strict=True, allow_inf_nan=False, description="this model's share"
    )


def _check_prompt(name: str, text: Any) -> None:
    """nada.params' checks, then CLIP's context, counted as the engine counts it: the
    longest template of the prompt must fit (backend/clip_tokens.py). An empty prompt is
    AdaptParams' to judge: target images may stand in for it."""
    if text == "":
        return
    P.check_prompt(name, text)
    longest = longest_template_tokens(text)
    if longest > CONTEXT_TOKENS:
        raise ParamError(
            name,
            f"is too long for CLIP: {longest} tokens in the longest prompt template, "
            f"{CONTEXT_TOKENS} fit",
        )


def _check_clip_name(name: str) -> None:
    P.check_text("clip_models", name)
    check_clip_name(name)


def _field_checks(name: str) -> list[Any]:
    if name in ("source_text", "target_text"):
        return [_checked(functools.partial(_check_prompt, name))]
    if name == "generator":
        return [_checked(functools.partial(P.check_text, "generator"))]
    if name in P.RANGES:
        return [_checked(functools.partial(P.check_range, name))]
    return []


def _description(meta: Any) -> str:
    """The declaration's help text, with its unit when it has one."""
    unit = f" ({meta['unit']})" if meta["unit"] else ""
    return f"{meta['help']}{unit}"


def _clip_models_factory(specs: list[tuple[str, float]]) -> typing.Callable[[], list[ClipModel]]:
    return lambda: [ClipModel(name=n, weight=w) for n, w in specs]


def _job_create_fields() -> dict[str, Any]:
    hints = typing.get_type_hints(P.AdaptParams)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(P.AdaptParams):
        annotation: Any = hints[f.name]
        default: Any = ...  # required
        factory: Any = None
        extra: dict[str, Any] = {}
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        if f.name == "clip_models":
            annotation = list[ClipModel]
            specs = [(c.name, c.weight) for c in default]
            default, factory = dataclasses.MISSING, _clip_models_factory(specs)
            extra = {"default": [{"name": n, "weight": w} for n, w in specs]}
        elif f.metadata["choices"]:
            annotation = Literal[f.metadata["choices"]]  # type: ignore[valid-type]
        if f.name in P.RANGES:
            lo, hi = P.RANGES[f.name]
            extra = {k: v for k, v in (("minimum", lo), ("maximum", hi)) if v is not None}
        if hints[f.name] is float:
            extra_kwargs: dict[str, Any] = {"allow_inf_nan": False}
        else:
            extra_kwargs = {}
        checks = _field_checks(f.name)
        if checks:
            annotation = Annotated[annotation, *checks]
        kwargs: dict[str, Any] = {
            "title": f.metadata["label"],
            "description": _description(f.metadata),
            "json_schema_extra": extra or None,
        }
        # Strict: true is not 1 and "5" is not 5; a float field takes an integer, never
        # NaN or an infinity (JSON's NaN/Infinity, or 1e309).
        if hints[f.name] in (int, float, bool, str) and not f.metadata["choices"]:
            kwargs["strict"] = True
        kwargs.update(extra_kwargs)
        if factory is not None:
            kwargs["default_factory"] = factory
        else:
            kwargs["default"] = default
        fields[f.name] = (annotation, Field(**kwargs))
    return fields


class _JobCreateBase(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"source_text": "photo", "target_text": "sketch"}]},
    )

    def to_params(self) -> P.AdaptParams:
        """The engine's parameters; raises ParamError for what only the whole can tell."""
        return P.AdaptParams.from_dict(self.model_dump())


JobCreate = create_model(  # type: ignore[call-overload]
    "JobCreate",
    __base__=_JobCreateBase,
    __doc__="A new adaptation job: only the two texts are required (GET /params describes every field).",
    **_job_create_fields(),
)


class ErrorPublic(BaseModel):
    code: str = Field(
        description="worker_lost, invalid_params, invalid_input (e.g. no face in the photo), "
        "out_of_memory, timeout, io, engine_error, ..."
    )
    message: str


class SamplePublic(BaseModel):
    step: int
    url: str


class ScoresPublic(BaseModel):
    step: int
    values: dict[str, float | None] = Field(
        description="direction, target, content, diversity (means over the CLIP models), "
        "the same per model ('direction/ViT-B-32:openai'), and loss (its moving average); "
        "null: not a finite number. docs/engine.md says how to read them"
    )


class JobPublic(BaseModel):
    id: str
    kind: str = Field(
        "adapt", description="the kind of work: 'adapt', 'invert' (a photo), 'edit' or 'render'"
    )
    status: JobStatus
    stage: str | None = Field(
        description="adapt: loading, selecting, training, saving; invert: loading, aligning, "
        "encoding, refining, saving; edit: loading, rendering"
    )
    step: int
    total_steps: int
    queue_position: int | None = Field(description="1 = next to start; null unless queued")
    eta_seconds: float | None = Field(description="rough estimate from recent speed")
    params: dict[str, Any]
    selected_layers: list[str]
    losses: dict[str, float | None] = Field(description="null: not a finite number")
    samples: list[SamplePublic]
    scores: list[ScoresPublic] = Field(
        default_factory=list, description="objective scores by measured step, in step order"
    )
    checkpoint_url: str | None
    checkpoints: list[SamplePublic] = Field(
        default_factory=list, description="intermediate checkpoints present now ({step, url})"
    )
    error: ErrorPublic | None
    attempt: int = Field(description="claims by a worker so far (> 1 after a lost worker)")
    cancel_requested: bool
    events_url: str
    sweep_id: str | None = Field(
        None, description="the sweep that made this job (GET /sweeps/{id}); null: none"
    )
    parent_id: str | None = Field(
        None,
        description="the finished job this one continues (POST /jobs/{id}/continue); null: "
        "none. Kept when that job is deleted",
    )
    children: list[str] = Field(
        default_factory=list, description="ids of the jobs continued from this one, oldest first"
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int


def job_url(job_id: str) -> str:
    return f"{API_PREFIX}/jobs/{job_id}"


def sample_url(job_id: str, step: int) -> str:
    return f"{job_url(job_id)}/samples/{step}.png"


def jsonable(value: Any) -> Any:
    """A stored value as JSON can carry it, whatever an earlier version let into the row:
    lone surrogates escaped ('\\ud800' as text), non-finite numbers as null."""
    if isinstance(value, str):
        return value if P.is_unicode(value) else value.encode("utf-8", "backslashreplace").decode()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {jsonable(str(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _scores(history: Any) -> list[ScoresPublic]:
    """The stored {"<step>": {name: value}} as a list in step order (a row an older version
    wrote, or damaged, gives none rather than an error)."""
    if not isinstance(history, dict):
        return []
    out = []
    for step, values in history.items():
        if str(step).isdigit() and isinstance(values, dict):
            out.append(ScoresPublic(step=int(step), values=jsonable(values)))
    return sorted(out, key=lambda s: s.step)


def job_public(
    job: Job,
    *,
    queue_position: int | None,
    eta_seconds: float | None,
    checkpoint_steps: list[int] | None = None,
) -> JobPublic:
    succeeded = job.status == JobStatus.succeeded
    return JobPublic(
        id=job.id,
        kind=job.kind,
        status=JobStatus(job.status),
        stage=job.stage,
        step=job.step,
        total_steps=job.total_steps,
        queue_position=queue_position,
        eta_seconds=eta_seconds,
        params=jsonable(job.params),
        selected_layers=jsonable(job.selected_layers or []),
        losses=jsonable(job.losses or {}),
        samples=[SamplePublic(step=s, url=sample_url(job.id, s)) for s in job.sample_steps or []],
        scores=_scores(job.scores),
        checkpoint_url=f"{job_url(job.id)}/checkpoint"
        if succeeded and job.kind == "adapt"
        else None,
        checkpoints=[
            SamplePublic(step=s, url=f"{job_url(job.id)}/checkpoints/{s}.pt")
            for s in checkpoint_steps or []
        ],
        error=ErrorPublic(code=job.error_code, message=jsonable(job.error_message or ""))
        if job.error_code
        else None,
        attempt=job.attempt,
        cancel_requested=job.cancel_requested,
        events_url=f"{job_url(job.id)}/events",
        sweep_id=job.sweep_id,
        parent_id=job.parent_id,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


class GeneratorPublic(BaseModel):
    name: str
    size: int = Field(description="image resolution in pixels")
    description: str
    url: str | None
    sha256: str | None
    source: Literal["registry", "upload"] = Field(
        "registry", description="'upload': stored by POST /generators"
    )


class GeneratorsPublic(BaseModel):
    data: list[GeneratorPublic]
    count: int
    random_sizes: list[int] = Field(description="sizes accepted as 'random-<size>'")


class ClipModelPublic(BaseModel):
    name: str = Field(description="what to pass in clip_models[].name")
    architecture: str
    pretrained: str
    default: bool = Field(description="the weights a bare architecture name selects")


class ClipModelsPublic(BaseModel):
    data: list[ClipModelPublic]
    count: int


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unavailable"]
    broker: Literal["ok", "unavailable"]
    version: str
    data_dir: Literal["full", "unwritable"] | None = Field(
        None, description="the data directory's fault (new jobs get 507); absent while it is ok"
    )
    reason: str | None = Field(None, description="what data_dir means, in words")


class ParamGroupPublic(BaseModel):
    name: str
    title: str


class ParamsPublic(BaseModel):
    """Every job parameter as `nada.params.describe()` declares it (the page's form)."""

    fields: list[dict[str, Any]] = Field(
        description="name, type, required, default, min, max, unit, choices, help, label, "
        "group, flag: in declaration order"
    )
    groups: list[ParamGroupPublic]
