"""A job's downloadable steps (its snapshots and, once it succeeded, its final step) with
their scores, and the recommended one: what GET /jobs/{id}/snapshots lists and what the
job's own view sums up as `snapshots` + `recommended_step`. The rule is nada/recommend.py's."""

from __future__ import annotations

from pathlib import Path

from backend.schemas.jobs import job_url, snapshot_url
from backend.schemas.snapshots import RecommendedPublic, SnapshotPublic, SnapshotsPublic
from jobs.db.models import Job, JobStatus
from jobs.kinds import ADAPTED_KINDS
from nada import recommend as R
from nada import rundir


def job_snapshots(
    job: Job,
    root: Path,
    *,
    min_content: float = R.MIN_CONTENT,
    min_diversity: float = R.MIN_DIVERSITY,
) -> SnapshotsPublic:
    """Only steps whose file is there (a snapshot removed by retention or by hand must not
    list a link that 404s); the final step points at the job's checkpoint."""
    final = (
        job.total_steps if job.status == JobStatus.succeeded and job.kind in ADAPTED_KINDS else None
    )
    listed: list[SnapshotPublic] = []
    for step in sorted(set(job.snapshot_steps or [])):
        path = rundir.snapshot_path(root, step)
        if step != final and path.is_file():
            listed.append(_entry(job, step, path, snapshot_url(job.id, step)))
    adapted = rundir.adapted_path(root)
    if final is not None and adapted.is_file():
        listed.append(_entry(job, final, adapted, f"{job_url(job.id)}/checkpoint", final=True))
    rec = R.recommend(
        job.scores if isinstance(job.scores, dict) else {},
        [s.step for s in listed],
        min_content=min_content,
        min_diversity=min_diversity,
    )
    recommended = RecommendedPublic(
        step=rec.step,
        reason=rec.reason,
        min_content=rec.min_content,
        min_diversity=rec.min_diversity,
    )
    return SnapshotsPublic(snapshots=listed, recommended=recommended)


def _entry(job: Job, step: int, path: Path, url: str, *, final: bool = False) -> SnapshotPublic:
    values = (job.scores or {}).get(str(step)) if isinstance(job.scores, dict) else None
    scores = {
        k: v for k, v in (values or {}).items() if isinstance(v, int | float) and v == v
    }  # finite numbers only (NaN != NaN): JSON cannot carry the rest
    return SnapshotPublic(
        step=step, scores=scores, size_bytes=path.stat().st_size, url=url, final=final
    )
