"""A new adaptation job's example images: checked against the upload pool, then linked into
the job's folder before its row is committed (POST /jobs, POST /sweeps).

The job keeps its own copies (jobs/image_pool.py) so that a retry, a resume or a worker on
another machine sees the images it was created with, whatever happens to the pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager

from fastapi.exceptions import RequestValidationError

from backend.api.job_views import job_root
from jobs import image_pool
from jobs.settings import Settings
from nada import rundir
from nada.errors import ParamError
from nada.params import IMAGE_FIELDS, AdaptParams


def check_images(params: AdaptParams, settings: Settings, owner: str | None) -> None:
    """ParamError naming the field and the first image this token has not uploaded."""
    for field in IMAGE_FIELDS:
        for name in getattr(params, field):
            try:
                image_pool.find(settings.data_dir, name, owner=owner)
            except image_pool.PoolImageMissing as exc:
                raise ParamError(field, str(exc)) from None


@contextmanager
def images_attached(
    settings: Settings, job_id: str, params: AdaptParams, owner: str | None
) -> Iterator[None]:
    """Link the job's images into its folder, then run the block (the commit); if either
    fails, the folder goes and the error propagates (a vanished pool image as a 422)."""
    names = [name for field in IMAGE_FIELDS for name in getattr(params, field)]
    if not names:
        yield
        return
    root = job_root(settings, job_id)
    try:
        try:
            image_pool.copy_into_job(settings.data_dir, root, names, owner=owner)
        except image_pool.PoolImageMissing as exc:
            field = next(f for f in IMAGE_FIELDS if exc.name in getattr(params, f))
            raise RequestValidationError(
                [{"type": "invalid_param", "loc": ("body", field), "msg": f"{field} {exc}",
                  "input": None}]
            ) from None  # fmt: skip
        yield
    except BaseException:
        rundir.remove_tree(root)
        raise


@contextmanager
def all_images_attached(
    settings: Settings, jobs: Iterable[tuple[str, AdaptParams]], owner: str | None
) -> Iterator[None]:
    """`images_attached` for several new jobs (a sweep's): all linked, or no folder left."""
    with ExitStack() as stack:
        for job_id, params in jobs:
            stack.enter_context(images_attached(settings, job_id, params, owner))
        yield
