"""jobs/disk.py: naming a data directory's fault, the cheap check behind /healthz and
POST /jobs, and noticing a removed job folder. The real full disk: test_disk_full.py."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from jobs import disk
from jobs.settings import Settings


def _raised_while_handling(first: BaseException, then: BaseException) -> BaseException:
    try:
        raise first
    except BaseException:
        try:
            raise then
        except BaseException as exc:
            return exc


def test_fault_of_names_full_and_unwritable_also_behind_another_error(tmp_path: Path) -> None:
    assert disk.fault_of(OSError(errno.ENOSPC, "No space left on device")) == "full"
    assert disk.fault_of(OSError(errno.EDQUOT, "Disk quota exceeded")) == "full"
    assert disk.fault_of(OSError(errno.EROFS, "Read-only file system")) == "unwritable"
    assert disk.fault_of(PermissionError(errno.EACCES, "Permission denied")) == "unwritable"
    hidden = _raised_while_handling(OSError(errno.ENOSPC, "x"), RuntimeError("unexpected pos"))
    assert disk.fault_of(hidden) == "full"
    chained = RuntimeError("write failed")
    chained.__cause__ = OSError(errno.EROFS, "Read-only file system")
    assert disk.fault_of(chained) == "unwritable"
    assert disk.fault_of(disk.DataDirFault("full")) == "full"
    assert disk.fault_of(ValueError("x")) is None
    assert disk.fault_of(FileNotFoundError(errno.ENOENT, "gone")) is None


def test_fault_of_ignores_files_outside_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    outside = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "cache" / "m.pt"))
    inside = OSError(errno.ENOSPC, "No space left on device", str(data / "jobs" / "x" / "a.pt"))
    assert disk.fault_of(outside, data) is None
    assert disk.fault_of(inside, data) == "full"


def test_free_space_below_the_minimum_is_full_and_is_never_cached(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    assert disk.DataDirCheck(jobs, min_free_bytes=0, probe_seconds=60).state() == "ok"
    assert jobs.is_dir() and list(jobs.iterdir()) == []  # the probe leaves nothing
    check = disk.DataDirCheck(jobs, min_free_bytes=1 << 60, probe_seconds=60)
    assert check.state() == "full"
    check.min_free_bytes = 0  # space freed
    assert check.state() == "ok"


def test_the_write_probe_is_trusted_for_probe_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    probes: list[Path] = []
    monkeypatch.setattr(disk.time, "monotonic", lambda: clock[0])
    check = disk.DataDirCheck(tmp_path, min_free_bytes=0, probe_seconds=5)
    assert check.state() == "ok"

    def read_only(directory: Path) -> None:
        probes.append(directory)
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(disk, "_write_probe", read_only)
    assert check.state() == "ok" and probes == []  # cached
    assert check.state(fresh=True) == "unwritable" and len(probes) == 1
    clock[0] += 5
    monkeypatch.setattr(disk, "_write_probe", lambda directory: None)
    assert check.state() == "ok"


def test_check_of_settings_creates_the_jobs_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", min_free_disk_mb=0)
    assert disk.check(settings) == "ok" and settings.jobs_dir.is_dir()
    assert disk.check(settings.model_copy(update={"min_free_disk_mb": 1e12})) == "full"


def test_a_job_folder_notices_its_removal_also_when_made_again(tmp_path: Path) -> None:
    root = tmp_path / "jobs" / "a"
    folder = disk.JobFolder(root)
    try:
        assert not folder.removed()
        (root / "samples").mkdir()
        assert not folder.removed()
        (root / "samples").rmdir()
        root.rmdir()
        assert folder.removed()
        root.mkdir()  # a later write makes the path again: still not the same folder
        assert folder.removed()
    finally:
        folder.close()
    assert not folder.removed()  # closed: nothing to tell
