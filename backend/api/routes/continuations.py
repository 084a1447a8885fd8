"""POST /jobs/{id}/continue: a new adaptation job that trains a finished one on.

The child starts from its parent's adapted weights and Adam state (the parent's resume.pt,
linked into the child's folder as start.pt at creation, so that deleting the parent later
breaks no queued or re-tried child), numbers its steps after the parent's and keeps its
sample latents. Parent and child know each other: the job's `parent_id` and `children`.
Which parameters may change, and the steps' limit, are nada/continuation.py's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, status
from pydantic import ConfigDict, Field

from backend.api.job_views import JobId, job_root, public_job
from backend.api.submission import SubmissionDep, check_models, submission_responses
from backend.api.upload_errors import disk_full, is_disk_full, unprocessable
from backend.schemas.jobs import JobPublic, job_url
from backend.schemas.priority import PRIORITY_FIELDS, PriorityFields
from backend.schemas.webhooks import WEBHOOK_FIELDS, WebhookFields
from jobs import store
from jobs.db.models import JobStatus
from jobs.generators import check_generator_name
from jobs.kinds import ADAPT
from jobs.retention import FilesExpired
from nada import rundir
from nada.continuation import continued_params
from nada.errors import ParamError

router = APIRouter(prefix="/jobs", tags=["jobs"])


class ContinueCreate(WebhookFields, PriorityFields):
    """How long to train on, and what to train differently (unset: as the parent did)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"steps": 100}, {"steps": 200, "lr": 0.001}]},
    )

    steps: int = Field(
        strict=True,
        ge=1,
        description="steps to add (the new job's steps are the parent's plus these; the "
        "total stays within the steps parameter's maximum, GET /params)",
    )
    lr: float | None = Field(
        None, strict=True, allow_inf_nan=False, description="a new learning rate"
    )
    layers: int | None = Field(None, strict=True, description="a new k (layers trained per step)")
    from_step: int | None = Field(
        None,
        strict=True,
        description="continue from this snapshot step of the job (GET .../snapshots) "
        "instead of its last step; the new job's steps are from_step plus `steps`",
    )
    lambda_direction: float | None = Field(
        None, strict=True, allow_inf_nan=False, description="a new directional loss weight"
    )
    lambda_global: float | None = Field(
        None, strict=True, allow_inf_nan=False, description="a new global loss weight"
    )

    def changes(self) -> dict[str, Any]:
        skip = {"steps", "from_step", *WEBHOOK_FIELDS, *PRIORITY_FIELDS}
        return self.model_dump(exclude=skip, exclude_none=True)


# Why a job cannot be continued, by its status: "job X failed; only a job that succeeded ..."
_NOT_YET: dict[str, str] = {
    JobStatus.queued: "is still queued",
    JobStatus.running: "is still running",
    JobStatus.failed: "failed",
    JobStatus.canceled: "was canceled",
}


@router.post(
    "/{job_id}/continue",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobPublic,
    responses=submission_responses(
        "new job",
        {
            404: "No job with this id (or not this token's), or not an adaptation",
            409: "The job has not succeeded, or was made before continuations",
            410: "The job's resumable state expired (code resumable_expired)",
            422: "Invalid steps or parameters (the field is named)",
        },
    ),
)
def continue_job(job_id: JobId, body: ContinueCreate, sub: SubmissionDep) -> JobPublic:
    """Queue a new adaptation job that continues this finished one for `steps` more steps:
    from its weights and optimiser state, with the same sample latents, steps numbered
    after its own. Unchanged, it ends where one job of the summed steps would."""
    session, settings, owner = sub.session, sub.settings, sub.owner
    parent = store.get_job(session, job_id=job_id, owner=owner, kind=ADAPT.name)
    if parent.status != JobStatus.succeeded:
        raise store.JobConflict(
            f"job {job_id} {_NOT_YET[parent.status]}; only a job that succeeded can be continued"
        )
    if parent.resumable_expired_at is not None:
        raise FilesExpired(job_id, "resumable", parent.resumable_expired_at)
    parent_root = job_root(settings, job_id)
    start = parent_root / rundir.RESUME
    parent_params = parent.params
    if body.from_step is not None and body.from_step != parent.total_steps:
        start = _snapshot_start(parent_root, parent.snapshot_steps or [], body.from_step)
        parent_params = {**parent.params, "steps": body.from_step}
    if not start.is_file():
        raise store.JobConflict(
            f"job {job_id} has no optimiser state to continue from (it finished before "
            "continuations were kept); start a new job instead"
        )
    try:
        params = continued_params(parent_params, body.steps, body.changes())
    except ParamError as exc:
        raise unprocessable(exc.field, str(exc)) from None
    try:
        check_generator_name(params.generator, settings.data_dir)
    except ParamError as exc:
        raise store.JobConflict(f"job {job_id}'s base generator is gone: {exc}") from None
    try:
        check_models(params, settings.data_dir)
    except ParamError as exc:
        raise unprocessable(exc.field, str(exc)) from None
    webhook, priority = sub.webhook(body), sub.priority(body)
    sub.admit()
    with sub.writing():  # the row, its event and its dispatch mark: one transaction
        child = store.create_job(
            session, params=params, owner=sub.who, parent_id=job_id, webhook=webhook,
            priority=priority, dispatched=True,
        )  # fmt: skip
        root = job_root(settings, child.id)
        try:
            _link_inputs(parent_root, root, start)
            session.commit()
        except BaseException as exc:
            session.rollback()
            rundir.remove_tree(root)
            if isinstance(exc, FileNotFoundError):  # a retention pass took it meanwhile
                raise FilesExpired(job_id, "resumable") from None
            if is_disk_full(exc):
                raise disk_full("the job was not created") from None
            raise
    sub.queued([child.id], ADAPT, job_url(child.id))
    session.refresh(child)
    public = public_job(session, settings, child)
    session.close()  # give the connection back before the dispatch needs one
    return public


def _snapshot_start(parent_root: Path, steps: list[int], step: int) -> Path:
    """The parent's snapshot a continuation `from_step` starts from (same layout as
    resume.pt: worker.checkpoints.read_start_point reads both), or 422 naming from_step."""
    path = rundir.snapshot_path(parent_root, step)
    if step not in steps or not path.is_file():
        kept = ", ".join(map(str, sorted(steps))) or "none"
        raise unprocessable(
            "from_step", f"must be a snapshot step of the job or its last step (kept: {kept})"
        )
    return path


def _link_inputs(parent_root: Path, root: Path, start: Path) -> None:
    """The child's own links to what it starts from: the parent's resume.pt or snapshot
    (as start.pt) and the example images of an image-guided parent (hard links: no copy,
    and they outlive the parent's folder)."""
    root.mkdir(parents=True, exist_ok=True)
    rundir.publish(start, root / rundir.START)
    images = parent_root / rundir.DOMAIN_IMAGES_DIR
    if images.is_dir():
        for image in images.iterdir():
            if image.is_file() and not image.name.startswith("."):
                rundir.publish(image, root / rundir.DOMAIN_IMAGES_DIR / image.name)
