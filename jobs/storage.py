"""Where the service's files are: a job's at `<data_dir>/jobs/<job_id>/` (laid out as
`nada.rundir` says), uploads being received at `<data_dir>/uploads-incoming/`."""

from __future__ import annotations

from pathlib import Path

from nada.ids import is_id


def job_dir(jobs_dir: Path, job_id: str) -> Path:
    """The job's run directory; ValueError for anything but an id (never a path)."""
    if not is_id(job_id):
        raise ValueError(f"bad job id {job_id!r}")
    return jobs_dir / job_id


def incoming_dir(data_dir: Path) -> Path:
    """Where uploads are streamed to (`*.part`) before they are checked and stored."""
    return data_dir / "uploads-incoming"
