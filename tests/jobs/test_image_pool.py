"""jobs/image_pool.py on its own: the per-token markers, a job's copies when links cannot be
made, and the sweep that keeps what was used recently."""

from __future__ import annotations

import errno
import hashlib
import os
import time
from pathlib import Path

import pytest

from jobs import image_pool
from nada import rundir

PNG = b"\x89PNG\r\n\x1a\n not really, but bytes with a name"
NAME = hashlib.sha256(PNG).hexdigest()


def test_a_job_gets_a_copy_where_links_cannot_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, root = tmp_path / "data", tmp_path / "data" / "jobs" / ("a" * 32)
    assert image_pool.add(data, NAME, PNG, owner="alice") is True
    assert image_pool.add(data, NAME, PNG, owner="alice") is False  # already there

    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    image_pool.copy_into_job(data, root, [NAME, NAME], owner="alice")
    copy = rundir.domain_image_path(root, NAME)
    assert copy.read_bytes() == PNG
    assert copy.stat().st_ino != image_pool.pool_path(data, NAME).stat().st_ino
    with pytest.raises(image_pool.PoolImageMissing):  # bob never uploaded it
        image_pool.copy_into_job(data, tmp_path / "other", [NAME], owner="bob")


def test_the_sweep_keeps_what_was_uploaded_again_recently(tmp_path: Path) -> None:
    old = b"old picture"
    old_name = hashlib.sha256(old).hexdigest()
    image_pool.add(tmp_path, NAME, PNG, owner=None)
    image_pool.add(tmp_path, old_name, old, owner=None)
    day_ago = time.time() - 2 * image_pool.STALE_AFTER_S
    pool = image_pool.pool_dir(tmp_path)
    for path in [image_pool.pool_path(tmp_path, old_name), *pool.glob(f"owners/*/{old_name}")]:
        os.utime(path, (day_ago, day_ago))
    assert image_pool.remove_stale(tmp_path) == [old_name]
    assert image_pool.find(tmp_path, NAME, owner=None).read_bytes() == PNG
    with pytest.raises(image_pool.PoolImageMissing):
        image_pool.find(tmp_path, old_name, owner=None)
    assert list(pool.glob(f"owners/*/{old_name}")) == []
    with pytest.raises(ValueError):
        image_pool.pool_path(tmp_path, "../../etc/passwd")
