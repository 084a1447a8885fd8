"""Temporary files a crash left behind are removed by housekeeping; live ones are not."""

from __future__ import annotations

import os
import time
from pathlib import Path

from jobs import queue, temp_files
from jobs.settings import Settings


def _file(path: Path, age_s: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * 1024)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_housekeeping_removes_stale_parts_and_tmps_only(settings: Settings) -> None:
    data = settings.data_dir
    stale = [
        _file(data / "uploads-incoming" / "0123abcd.part", age_s=3600),
        _file(data / "generators" / ".mine.1234.deadbeef.pt.tmp", age_s=3600),
        _file(data / "generators" / ".mine.k2j3h4.tmp.pt", age_s=3600),  # the atomic writer's
    ]
    live = [
        _file(data / "uploads-incoming" / "fresh.part", age_s=5),  # an upload in progress
        _file(data / "generators" / ".other.99.cafe.pt.tmp", age_s=30),  # a check running
        _file(data / "generators" / "mine.pt", age_s=3600),  # a stored generator
        _file(data / "generators" / "mine.json", age_s=3600),
    ]
    queue.housekeeping(settings)
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in live)


def test_the_age_is_what_makes_a_file_stale(tmp_path: Path) -> None:
    part = _file(tmp_path / "uploads-incoming" / "a.part", age_s=60)
    assert temp_files.remove_stale(tmp_path) == []
    assert temp_files.remove_stale(tmp_path, now=time.time() + temp_files.STALE_AFTER_S) == [part]
    assert not part.exists()
