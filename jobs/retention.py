"""Which finished jobs' files may go, and removing them: the rules behind `nada gc` and the
reaper's periodic pass (issue 24's retention).

Two lifetimes, each an operator setting (None: kept for ever, the embedded single-user
default):
- **resumable state** (`resume.pt`, a continuation's `start.pt`, intermediate
  `checkpoints/`, left-over `attempts/`): what *continue* needs, the largest files of a
  job after adapted.pt; it may expire first, and the job then still downloads and renders;
- **results** (everything else but the small records: params.json, metrics.jsonl,
  inversion.json): the job keeps its row and says its files expired.

Never touched: a job that is not finished, and any file that a queued or running job reads
when it runs (a continuation's parent, the adaptation of a render or an edit, the inversion
of an edit): `JobRecord.needs` names them. Pure planning (`plan`) is apart from the file
system (`remove`) so that `--dry-run` and the tests see exactly what would go.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from nada import rundir

RESUMABLE = (
    rundir.RESUME, rundir.START, rundir.CHECKPOINTS_DIR, rundir.SNAPSHOTS_DIR, rundir.ATTEMPTS_DIR,
)  # fmt: skip
KEPT_RECORDS = (rundir.PARAMS, rundir.METRICS, rundir.INVERSION_INFO)
FINISHED = ("succeeded", "failed", "canceled")


class FilesExpired(LookupError):
    """A job's results (`what` 'results') or resumable state ('resumable') went by
    retention: the API answers 410 with `code`, not 404, and the row still says so."""

    def __init__(self, job_id: str, what: str = "results", since: datetime | None = None):
        self.job_id, self.what = job_id, what
        self.code = "files_expired" if what == "results" else "resumable_expired"
        noun = "files" if what == "results" else "resumable state (resume.pt, checkpoints)"
        when = f" on {since:%Y-%m-%d %H:%M} UTC" if since else ""
        super().__init__(
            f"job {job_id}'s {noun} expired{when} under the service's retention and were "
            "removed; the job's record stays"
        )


@dataclass(frozen=True)
class RetentionPolicy:
    """How long a finished job's files stay (None: for ever)."""

    resumable: timedelta | None = None
    results: timedelta | None = None

    def __post_init__(self) -> None:
        for name in ("resumable", "results"):
            value = getattr(self, name)
            if value is not None and value <= timedelta(0):
                raise ValueError(f"retention of {name} must be positive (got {value})")

    @property
    def keeps_everything(self) -> bool:
        return self.resumable is None and self.results is None


@dataclass(frozen=True)
class JobRecord:
    """What planning needs of one job."""

    id: str
    status: str
    finished_at: datetime | None
    needs: tuple[str, ...] = ()  # ids of the jobs whose files this one reads when it runs
    files_expired: bool = False  # its results went already
    resumable_expired: bool = False  # its resumable state went already


@dataclass(frozen=True)
class Expiry:
    """Files of one job that may go: `what` is 'resumable' or 'results'."""

    job_id: str
    what: str


def protected(jobs: Iterable[JobRecord]) -> set[str]:
    """Jobs whose files must stay: every unfinished job, and what those read."""
    keep: set[str] = set()
    for job in jobs:
        if job.status not in FINISHED:
            keep.add(job.id)
            keep.update(job.needs)
    return keep


def plan(jobs: Iterable[JobRecord], policy: RetentionPolicy, now: datetime) -> list[Expiry]:
    """What `policy` lets go at `now`, job by job in the given order (results include the
    resumable state, so a job whose results expire gets one 'results' entry)."""
    records = list(jobs)
    if policy.keeps_everything:
        return []
    keep = protected(records)
    out: list[Expiry] = []
    for job in records:
        if job.id in keep or job.status not in FINISHED or job.finished_at is None:
            continue
        age = now - job.finished_at
        if policy.results is not None and age >= policy.results and not job.files_expired:
            out.append(Expiry(job.id, "results"))
        elif policy.resumable is not None and age >= policy.resumable and not job.resumable_expired:
            out.append(Expiry(job.id, "resumable"))
    return out


def doomed(job_dir: Path, what: str) -> list[Path]:
    """The entries of `job_dir` an expiry of `what` removes (those that exist)."""
    if not job_dir.is_dir():
        return []
    if what == "resumable":
        names = RESUMABLE
        return [job_dir / n for n in names if (job_dir / n).exists() or (job_dir / n).is_symlink()]
    if what == "results":
        return sorted(p for p in job_dir.iterdir() if p.name not in KEPT_RECORDS)
    raise ValueError(f"unknown expiry {what!r}")


def size_of(path: Path) -> int:
    """Bytes under `path` (a file, or a folder walked without following links)."""
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        return info.st_size
    total = 0
    for root, dirs, files in os.walk(path, followlinks=False):
        for name in files + [d for d in dirs if (Path(root) / d).is_symlink()]:
            total += (Path(root) / name).lstat().st_size
    return total


def disk_bytes(job_dir: Path) -> int:
    """What a job's run directory holds (0 when it has none): jobs.disk_bytes, the quota's
    measure, taken when the job finishes and after each removal. A hard link (a
    continuation's start.pt) counts in each folder that has it."""
    try:
        return size_of(job_dir)
    except FileNotFoundError:
        return 0


def remove(job_dir: Path, what: str, *, dry_run: bool = False) -> int:
    """Remove what an expiry of `what` lets go from `job_dir`; return the bytes freed (or,
    with `dry_run`, that would be). Links are removed, never followed."""
    freed = 0
    for path in doomed(job_dir, what):
        freed += size_of(path)
        if dry_run:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    return freed
