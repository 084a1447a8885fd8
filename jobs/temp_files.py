"""Temporary files that a crash leaves behind, and their removal.

A killed API process leaves its half-received uploads (`uploads-incoming/*.part`); a killed
validator child leaves its half-written re-save (`generators/.<name>.*.tmp`, and the one
atomic writer's `.<stem>.*.tmp<suffix>` names). Nothing else ever opens them again, so the
reaper's housekeeping (at start-up, then every few minutes, in the API and every worker)
deletes those that have not been written to for a while. The age keeps it safe beside work
in progress in another process: an upload being received or a file being written is touched
continuously, and a validation ends within its time limit (180 s), well under the age.
"""

from __future__ import annotations

import time
from pathlib import Path

from jobs.generators import uploads_dir
from jobs.storage import incoming_dir

STALE_AFTER_S = 15 * 60  # untouched this long: no live writer has it


def _candidates(data_dir: Path) -> list[Path]:
    found = list(incoming_dir(data_dir).glob("*.part"))
    found += uploads_dir(data_dir).glob(".*.tmp*")
    return found


def remove_stale(
    data_dir: Path, *, older_than_s: float = STALE_AFTER_S, now: float | None = None
) -> list[Path]:
    """Delete the temporary files under `data_dir` untouched for `older_than_s`; the removed
    paths. A file that vanishes meanwhile (its writer finished) is skipped."""
    cutoff = (time.time() if now is None else now) - older_than_s
    removed = []
    for path in _candidates(data_dir):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            continue
    return removed
