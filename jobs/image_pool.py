"""The pool of uploaded example images, and their copies in the jobs that use them.

POST /images stores each upload (already normalised by invert/example_images.py) as
`<data_dir>/images/<sha256>.png`: content-addressed, so the same picture sent twice, by
anyone, is one file. Who may *use* a name is recorded apart from the bytes, as an empty
marker `images/owners/<digest of the token's name>/<sha256>` per uploader: a token can
neither fetch nor reference an image it did not upload, even if it knows (or guesses the
picture behind) the hash.

A job never reads the pool. When a job is created its images are hard-linked (copied
where links cannot be made) into the job's own `domain_images/`, so a retried or resumed
job sees the very bytes it was created with, and the pool can be swept without looking at
any job: `remove_stale` drops images and markers nobody uploaded for a while (a day is
plenty for a page that uploads, then submits). Deleting a job deletes its links only.

Torch-free and HTTP-free: the API calls it, a cleanup job could.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from nada import rundir

POOL_DIR = "images"
OWNERS_DIR = "owners"
STALE_AFTER_S = 24 * 3600  # an upload not used (nor sent again) for this long may go
_NAME = re.compile(r"[0-9a-f]{64}")


class PoolImageMissing(LookupError):
    """A named image is not in the pool (or not this token's); `name` says which."""

    def __init__(self, name: str):
        super().__init__(f"no uploaded image {name!r} (POST /images first; uploads expire)")
        self.name = name


def is_image_name(name: str) -> bool:
    return bool(_NAME.fullmatch(name))


def pool_dir(data_dir: Path) -> Path:
    return data_dir / POOL_DIR


def pool_path(data_dir: Path, name: str) -> Path:
    """The pool's file of an image; ValueError for anything but a name (never a path)."""
    if not is_image_name(name):
        raise ValueError(f"bad image name {name!r}")
    return pool_dir(data_dir) / f"{name}.png"


def _owner_dir(data_dir: Path, owner: str | None) -> Path:
    # A digest: token names are free text, folder names are not.
    digest = hashlib.sha256((owner or "").encode()).hexdigest()[:32]
    return pool_dir(data_dir) / OWNERS_DIR / digest


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()  # an existing file gets a new mtime: used again, not stale


def add(data_dir: Path, name: str, png: bytes, *, owner: str | None) -> bool:
    """Put an image into the pool for `owner`; True if its file was written now (False: the
    same bytes were there already). Atomic: a reader sees the whole file or none."""
    path = pool_path(data_dir, name)
    written = False
    if path.is_file():
        _touch(path)
    else:
        rundir.write_bytes(path, png)
        written = True
    _touch(_owner_dir(data_dir, owner) / name)
    return written


def withdraw(data_dir: Path, name: str, *, owner: str | None, file_too: bool) -> None:
    """Undo an `add` of a request that failed part-way (`file_too`: the add wrote the file)."""
    (_owner_dir(data_dir, owner) / name).unlink(missing_ok=True)
    if file_too:
        pool_path(data_dir, name).unlink(missing_ok=True)


def find(data_dir: Path, name: str, *, owner: str | None) -> Path:
    """The pool's file of an image `owner` uploaded; PoolImageMissing otherwise."""
    if not is_image_name(name):
        raise PoolImageMissing(name)
    path = pool_path(data_dir, name)
    if not (path.is_file() and (_owner_dir(data_dir, owner) / name).is_file()):
        raise PoolImageMissing(name)
    return path


def copy_into_job(data_dir: Path, root: Path, names: Iterable[str], *, owner: str | None) -> None:
    """Link (or copy) each named pool image to `rundir.domain_image_path(root, name)`.

    Raises PoolImageMissing (a sweep took it since it was checked) or OSError; either way
    the images linked so far stay, and the caller removes the job's folder."""
    for name in dict.fromkeys(names):  # target and source may share an image
        src = find(data_dir, name, owner=owner)
        dst = rundir.domain_image_path(root, name)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except FileExistsError:
            continue
        except FileNotFoundError:
            raise PoolImageMissing(name) from None
        except OSError:  # another file system, or links not allowed: a copy, by rename
            with rundir.atomic_open(dst) as out, src.open("rb") as data:
                shutil.copyfileobj(data, out)


def remove_stale(data_dir: Path, *, older_than_s: float = STALE_AFTER_S) -> list[str]:
    """Remove pool images and owner markers untouched for `older_than_s`; the names of the
    images removed. Safe at any time: jobs hold their own links."""
    cutoff = time.time() - older_than_s
    root = pool_dir(data_dir)
    for marker in (root / OWNERS_DIR).glob("*/*"):
        with contextlib.suppress(FileNotFoundError):
            if marker.stat().st_mtime < cutoff:
                marker.unlink()
    removed = []
    for path in root.glob("*.png"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path.stem)
    return removed
