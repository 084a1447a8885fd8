"""The job files under the data directory, and how they are written (atomically).

    <data_dir>/jobs/<job_id>/
        samples/step_000050.png      progress images, one per sampled step
        checkpoints/step_000100.pt   intermediate checkpoints (resume after a lost worker)
        adapted.pt                   the result
        attempts/<n>/                the engine's working directory of claim n (temporary)

Every published file appears by rename, so a reader (the API, a resuming worker) sees a
whole file or none, and a re-run of the same step replaces a file instead of adding one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

_STEP_FILE = re.compile(r"step_(\d+)\.(png|pt)$")


def job_dir(jobs_dir: Path, job_id: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{32}", job_id):  # ids are uuid4 hex; never a path
        raise ValueError(f"bad job id {job_id!r}")
    return jobs_dir / job_id


def sample_path(job_root: Path, step: int) -> Path:
    return job_root / "samples" / f"step_{step:06d}.png"


def intermediate_checkpoint_path(job_root: Path, step: int) -> Path:
    return job_root / "checkpoints" / f"step_{step:06d}.pt"


def checkpoint_path(job_root: Path) -> Path:
    return job_root / "adapted.pt"


def resume_metrics_path(job_root: Path) -> Path:
    """metrics.jsonl as of the newest intermediate checkpoint (a resumed run continues it)."""
    return job_root / "checkpoints" / "metrics.jsonl"


def attempt_dir(job_root: Path, attempt: int) -> Path:
    return job_root / "attempts" / str(attempt)


def step_of(path: Path) -> int | None:
    match = _STEP_FILE.search(path.name)
    return int(match.group(1)) if match else None


def intermediate_checkpoint_steps(job_root: Path) -> list[int]:
    """Steps of the intermediate checkpoints present now, oldest first."""
    found = (step_of(p) for p in (job_root / "checkpoints").glob("step_*.pt"))
    return sorted(s for s in found if s is not None)


def latest_intermediate_checkpoint(job_root: Path) -> Path | None:
    found = [(step_of(p), p) for p in (job_root / "checkpoints").glob("step_*.pt")]
    found = [(s, p) for s, p in found if s is not None]
    return max(found)[1] if found else None


@contextlib.contextmanager
def _temp_beside(dst: Path) -> Iterator[Path]:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def publish(src: Path, dst: Path, *, copy: bool = False) -> Path:
    """Make `dst` a copy of `src` atomically: a hard link when possible (src is never
    written again), else -- or with `copy`, for a file still growing -- copy and fsync."""
    with _temp_beside(dst) as tmp:
        tmp.unlink()
        try:
            if copy:
                raise OSError("copy requested")
            os.link(src, tmp)
        except OSError:  # asked to, another filesystem, or no hard links (some mounts)
            shutil.copyfile(src, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, dst)
    return dst


def write_bytes(dst: Path, data: bytes) -> Path:
    """Write `dst` atomically (temp file in the same directory, fsync, rename)."""
    with _temp_beside(dst) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    return dst


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
