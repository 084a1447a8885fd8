"""Serving a job's files: the one way every "GET .../<file>" route of a job answers.

A job's pictures, checkpoints, codes and videos live in its run directory (nada/rundir.py
names them). Their routes differ only in which file, of which kind of job, sent how; the
order of the checks is the same for all: the job exists and is this token's (404), it has
succeeded if the file only exists then (409 saying so), the job names the file where it
lists its files (a sample's step, an example image: else 404), and the file is there (404
saying it is missing, not a 500). A job whose files retention removed answers 410 with the
code `files_expired` (`resumable_expired` for a checkpoint or snapshot that went: jobs/gc.py).
Starlette's FileResponse then sends it with its Last-Modified / ETag.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import HTTPException, status
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from backend.api.job_views import job_root
from jobs import store
from jobs.db.models import Job, JobStatus
from jobs.retention import FilesExpired
from jobs.settings import Settings

PNG = "image/png"
OCTET = "application/octet-stream"

# How a conflict names a job of each kind ("inversion 1f2e... is running; ...").
_NOUN = {"invert": "inversion", "edit": "edit", "render": "render"}


def job_file(
    session: Session,
    settings: Settings,
    owner: str | None,
    job_id: str,
    name: str | Callable[[Path], Path],
    *,
    missing: str,
    kind: str | None = None,
    after_success: str | None = None,
    listed: Callable[[Job], bool] | None = None,
    unlisted: str | None = None,
    media_type: str = PNG,
    filename: str | Callable[[Job], str] | None = None,
    inline: bool = False,
) -> FileResponse:
    """The file `name` of this token's job `job_id` (a name in its run directory, or a
    function of the run directory giving the path: `rundir.adapted_path`), or the HTTP
    error that says why not.

    `kind`: the job must be of this kind (else 404, as for another token's job).
    `after_success`: what exists only once the job succeeded, as the 409 says it ("the
    checkpoint"); None: served whatever the status. `listed`: whether the job names this
    file (else 404 `unlisted`, by default `missing`). `missing`: the 404's detail when the
    file is not there. `filename` (str or a function of the job): the download's name;
    `inline`: shown by the page rather than downloaded.
    """
    job = store.get_job(session, job_id=job_id, owner=owner, kind=kind)
    if job.files_expired_at is not None:
        raise FilesExpired(job_id, "results", job.files_expired_at)
    resumable_expired = job.resumable_expired_at
    if after_success is not None and job.status != JobStatus.succeeded:
        noun = _NOUN.get(kind or "", "job")
        raise store.JobConflict(
            f"{noun} {job_id} is {job.status}; {after_success} exists once it succeeded"
        )
    if listed is not None and not listed(job):
        raise HTTPException(status.HTTP_404_NOT_FOUND, unlisted or missing)
    root = job_root(settings, job_id)
    path = name(root) if callable(name) else root / name
    download = filename(job) if callable(filename) else filename
    session.close()  # nothing more to ask the database; the file may take a while to send
    if not path.is_file():
        if resumable_expired is not None:  # an intermediate checkpoint or a snapshot
            raise FilesExpired(job_id, "resumable", resumable_expired)
        raise HTTPException(status.HTTP_404_NOT_FOUND, missing)
    return FileResponse(
        path,
        media_type=media_type,
        filename=download,
        content_disposition_type="inline" if inline else "attachment",
    )
