"""A job's snapshots (`snapshot_every`): the list with their scores and the recommended
step (nada/recommend.py), and one snapshot's download. Continuing from one is
POST /jobs/{id}/continue with `from_step` (continuations.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from backend.api.deps import CurrentOwner, SessionDep, SettingsDep
from backend.api.job_files import OCTET, job_file
from backend.api.job_snapshots import job_snapshots
from backend.api.job_views import JobId, job_root
from backend.api.routes.jobs import checkpoint_filename
from backend.schemas.snapshots import SnapshotsPublic
from jobs import store
from nada import recommend as R
from nada import rundir

router = APIRouter(prefix="/jobs", tags=["jobs"])

_MAX_STEP = 10**6  # as routes/jobs.py: far above any job's steps


@router.get("/{job_id}/snapshots", response_model=SnapshotsPublic)
def list_snapshots(
    job_id: JobId,
    session: SessionDep,
    settings: SettingsDep,
    owner: CurrentOwner,
    min_content: Annotated[float, Query(ge=-1.0, le=1.0)] = R.MIN_CONTENT,
    min_diversity: Annotated[float, Query(ge=0.0, le=10.0)] = R.MIN_DIVERSITY,
) -> SnapshotsPublic:
    """The job's snapshots (step, scores, size, download) with its final step, and the
    recommended one: the best direction among the steps whose content and diversity are
    at least min_content and min_diversity (docs/api.md)."""
    job = store.get_job(session, job_id=job_id, owner=owner)
    listed = job_snapshots(
        job, job_root(settings, job_id), min_content=min_content, min_diversity=min_diversity
    )
    session.close()
    return listed


@router.get(
    "/{job_id}/snapshots/{step}.pt",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        404: {"description": "No such snapshot"},
    },
)
def read_snapshot(
    job_id: JobId,
    step: Annotated[int, PathParam(ge=0, le=_MAX_STEP)],
    session: SessionDep,
    settings: SettingsDep,
    owner: CurrentOwner,
) -> Response:
    """One snapshot: a generator file (loads like the checkpoint) with the resume point a
    continuation from this step needs."""
    return job_file(
        session, settings, owner, job_id, lambda root: rundir.snapshot_path(root, step),
        listed=lambda job: step in (job.snapshot_steps or []),
        missing=f"job {job_id} has no snapshot at step {step}",
        media_type=OCTET,
        filename=lambda job: checkpoint_filename(job).removesuffix(".pt") + f"-step{step}.pt",
    )  # fmt: skip
