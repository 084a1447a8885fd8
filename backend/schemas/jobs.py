"""Request and response bodies of the job routes (POST/GET /jobs, GET /params); every kind's
public view starts from `JobPublic` (the ORM models live in jobs/db/models.py).

`JobCreate` is generated from `nada.params.AdaptParams`: the same fields, defaults and
ranges (shown in OpenAPI as minimum/maximum), checked by the same functions, so the API
cannot drift from the engine. The last word is AdaptParams itself (`JobCreate.to_params`).
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from backend.clip_tokens import CONTEXT_TOKENS, longest_template_tokens
from backend.schemas import API_PREFIX
from backend.schemas.declared import checked, request_model
from backend.schemas.priority import PRIORITY_FIELDS, PriorityFields
from backend.schemas.webhooks import WEBHOOK_FIELDS, WebhookFields, WebhookPublic
from jobs.db.models import Job, JobStatus
from jobs.kinds import ADAPT, ADAPTED_KINDS
from nada import params as P
from nada.catalog import check_clip_name
from nada.declare import spec_of
from nada.errors import ParamError


def _check_clip_name(name: str) -> None:
    P.check_text("clip_models", name)
    check_clip_name(name)


class ClipModel(BaseModel):
    """One CLIP model guiding the loss (see GET /clip-models for names)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, checked(_check_clip_name)] = Field(
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


def _default_clip_models() -> list[ClipModel]:
    default = spec_of(P.AdaptParams, "clip_models").default
    return [ClipModel(name=c.name, weight=c.weight) for c in default]


class _JobCreateBase(WebhookFields, PriorityFields):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"source_text": "photo", "target_text": "sketch"}]},
    )

    def to_params(self) -> P.AdaptParams:
        """The engine's parameters; raises ParamError for what only the whole can tell."""
        return P.AdaptParams.from_dict(self.model_dump(exclude={*WEBHOOK_FIELDS, *PRIORITY_FIELDS}))


JobCreate = request_model(
    "JobCreate",
    P.AdaptParams,
    base=_JobCreateBase,
    doc="A new adaptation job: only the two texts are required (GET /params describes every "
    "field).",
    annotations={"clip_models": list[ClipModel]},
    checks={
        "source_text": [checked(functools.partial(_check_prompt, "source_text"))],
        "target_text": [checked(functools.partial(_check_prompt, "target_text"))],
        "clip_models": [],  # each entry is checked by ClipModel, the list by AdaptParams
    },
    default_factories={"clip_models": _default_clip_models},
)


class ErrorPublic(BaseModel):
    code: str = Field(
        description="worker_lost, invalid_params, invalid_input (e.g. no face in the photo), "
        "out_of_memory, timeout, io, engine_error, ..."
    )
    message: str = Field(description="for the user: what went wrong and what to change")
    details: str | None = Field(
        None,
        description="for the operator, where there is more to say (model_unavailable: the "
        "variables and commands that install the file); null otherwise",
    )


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
    priority: int = Field(
        0, description="queue priority, 0 = normal: higher starts first (docs/api.md#priority)"
    )
    queue_position: int | None = Field(
        description="1 = next to start (in priority order, then submission order, among "
        "the queued jobs of its lane); null unless queued"
    )
    eta_seconds: float | None = Field(
        description="rough estimate from recent speed: the steps left and the sample "
        "passes left (progress images and scores), queued jobs' too"
    )
    params: dict[str, Any]
    selected_layers: list[str]
    losses: dict[str, float | None] = Field(description="null: not a finite number")
    samples: list[SamplePublic]
    scores: list[ScoresPublic] = Field(
        default_factory=list, description="objective scores by measured step, in step order"
    )
    checkpoint_url: str | None
    domain_url: str | None = Field(
        default=None,
        description="a finished modulation job's domain file (parametrization 'modulation'); "
        "null for a weights job",
    )
    checkpoints: list[SamplePublic] = Field(
        default_factory=list, description="intermediate checkpoints present now ({step, url})"
    )
    snapshots: list[SamplePublic] = Field(
        default_factory=list,
        description="snapshots kept (snapshot_every; {step, url}); GET .../snapshots has "
        "their scores and sizes",
    )
    recommended_step: int | None = Field(
        None,
        description="the recommended step with the default thresholds (GET .../snapshots "
        "says why, and takes others); null: none passes, or no scores",
    )
    error: ErrorPublic | None
    attempt: int = Field(description="claims by a worker so far (> 1 after a lost worker)")
    cancel_requested: bool
    heartbeat_at: datetime | None = Field(
        None, description="the worker's last word on this attempt (a step, a lease renewal)"
    )
    stalled: bool = Field(
        False,
        description="running, and no word from its worker for longer than a lease "
        "(NADA_LEASE_SECONDS): the worker may be stuck, or unable to write to the database "
        "(a full disk); the reaper re-queues the job once it can",
    )
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
    webhook: WebhookPublic | None = Field(
        None, description="where its events go (GET /jobs/{id}/deliveries: each delivery)"
    )
    files_expired: bool = Field(
        False,
        description="its files went under the service's retention (docs/deploy.md): the "
        "record stays, its file routes answer 410 with code files_expired",
    )
    resumable_expired: bool = Field(
        False,
        description="its resumable state (resume.pt, intermediate checkpoints, snapshots) "
        "went: it cannot be continued (410 resumable_expired)",
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


def snapshot_url(job_id: str, step: int) -> str:
    return f"{job_url(job_id)}/snapshots/{step}.pt"


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


def is_stalled(job: Job, *, after_seconds: float, now: datetime | None = None) -> bool:
    """Running, and its worker silent (no heartbeat, no step) for over `after_seconds`."""
    last = job.heartbeat_at or job.started_at
    if job.status != JobStatus.running or last is None:
        return False
    return ((now or datetime.now(UTC)) - last).total_seconds() > after_seconds


def job_public(
    job: Job,
    *,
    queue_position: int | None,
    eta_seconds: float | None,
    checkpoint_steps: list[int] | None = None,
    stalled_after_seconds: float | None = None,
) -> JobPublic:
    """`stalled_after_seconds`: how long a running job's worker may stay silent before the
    job shows `stalled` (the lease; None: never)."""
    succeeded = job.status == JobStatus.succeeded
    return JobPublic(
        id=job.id,
        kind=job.kind,
        status=JobStatus(job.status),
        stage=job.stage,
        step=job.step,
        total_steps=job.total_steps,
        priority=job.priority or 0,
        queue_position=queue_position,
        eta_seconds=eta_seconds,
        params=jsonable(job.params),
        selected_layers=jsonable(job.selected_layers or []),
        losses=jsonable(job.losses or {}),
        samples=[SamplePublic(step=s, url=sample_url(job.id, s)) for s in job.sample_steps or []],
        scores=_scores(job.scores),
        checkpoint_url=f"{job_url(job.id)}/checkpoint"
        if succeeded and job.kind in ADAPTED_KINDS and job.files_expired_at is None
        else None,
        domain_url=f"{job_url(job.id)}/domain"
        if succeeded
        and job.kind == ADAPT.name
        and (job.params or {}).get("parametrization") == "modulation"
        and job.files_expired_at is None
        else None,
        checkpoints=[
            SamplePublic(step=s, url=f"{job_url(job.id)}/checkpoints/{s}.pt")
            for s in checkpoint_steps or []
        ],
        error=ErrorPublic(
            code=job.error_code,
            message=jsonable(job.error_message or ""),
            details=jsonable(job.error_details) if job.error_details else None,
        )
        if job.error_code
        else None,
        attempt=job.attempt,
        cancel_requested=job.cancel_requested,
        heartbeat_at=job.heartbeat_at,
        stalled=stalled_after_seconds is not None
        and is_stalled(job, after_seconds=stalled_after_seconds),
        events_url=f"{job_url(job.id)}/events",
        sweep_id=job.sweep_id,
        parent_id=job.parent_id,
        webhook=WebhookPublic(url=job.webhook_url, events=list(job.webhook_events or []))
        if job.webhook_url
        else None,
        files_expired=job.files_expired_at is not None,
        resumable_expired=job.resumable_expired_at is not None,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


class ParamGroupPublic(BaseModel):
    name: str
    title: str


class ScorePublic(BaseModel):
    """One objective score a job's `scores` carry (nada/scores.py)."""

    name: str = Field(description="its key in ScoresPublic.values ('direction')")
    label: str = Field(description="how the page titles it")
    help: str = Field(description="how to read it")
    higher_is_better: bool = Field(description="which end a comparison ranks first")


class ParamsPublic(BaseModel):
    """Every adaptation parameter as `nada.params.describe()` declares it (the page's form),
    and the scores a job reports."""

    fields: list[dict[str, Any]] = Field(
        description="name, type, required, default, min, max, unit, choices, help, label, "
        "group, flag: in declaration order"
    )
    groups: list[ParamGroupPublic]
    scores: list[ScorePublic] = Field(
        description="the objective scores (ScoresPublic.values' names), in the order a "
        "comparison reads them"
    )


class KindParamsPublic(BaseModel):
    """One kind's parameters as its class declares them (nada/declare.py)."""

    kind: str = Field(description="'adapt', 'invert', 'edit' or 'render'")
    fields: list[dict[str, Any]] = Field(
        description="every field, in declaration order: name, type, required, default, min, "
        "max (a list's: its length), items, choices, pattern, unit, help, label, group, flag "
        "(or flags: {command: flag}); server: true where the service sets it itself"
    )
    groups: list[ParamGroupPublic]
