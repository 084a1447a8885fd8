"""Where a job's files are: `<data_dir>/jobs/<job_id>/`, laid out as `nada.rundir` says."""

from __future__ import annotations

import re
from pathlib import Path

_JOB_ID = re.compile(r"[0-9a-f]{32}")  # uuid4 hex


def job_dir(jobs_dir: Path, job_id: str) -> Path:
    """The job's run directory; ValueError for anything but an id (never a path)."""
    if not _JOB_ID.fullmatch(job_id):
        raise ValueError(f"bad job id {job_id!r}")
    return jobs_dir / job_id
