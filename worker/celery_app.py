"""The Celery app of the GPU workers: `celery -A worker.celery_app worker` or `nada worker`.

Its settings come from jobs.queue.celery_config (shared with the API's producer): late
acks, prefetch 1, one task at a time, a broker visibility timeout beyond the longest job.
Each worker also runs the lease reaper, so jobs of a vanished worker are re-queued even
while no API process is up.
"""

from __future__ import annotations

import logging

from celery import signals

from jobs.db.session import migrate
from jobs.queue import JobQueue, Reaper, make_celery, prepare_embedded_broker
from jobs.settings import get_settings

log = logging.getLogger(__name__)

settings = get_settings()
app = make_celery(settings)
app.conf.include = ["worker.tasks"]

_reaper: Reaper | None = None


@signals.worker_init.connect
def _prepare(**_: object) -> None:
    migrate(settings.db_url)  # a worker may start before any API process
    prepare_embedded_broker(settings)
    settings.jobs_dir.mkdir(parents=True, exist_ok=True)
    try:  # pay torch's import before taking a job, not during the first one
        import worker.engine  # noqa: F401
        from stylegan2.device import prepare
    except ImportError as exc:
        log.error("the engine cannot be imported (%s): install the 'ml' extra", exc)
        return
    # The engines call prepare() on entry too; the thread count is the worker's own. No CUDA
    # call here: a prefork pool forks from this process.
    prepare(threads=settings.worker_threads)
    if settings.worker_threads:
        log.info("worker: %d CPU threads", settings.worker_threads)


@signals.worker_ready.connect
def _start_reaper(**_: object) -> None:
    global _reaper
    _reaper = Reaper(settings, JobQueue(settings, app))
    _reaper.start()
    log.info(
        "worker ready: queue %r, device %s, data %s",
        settings.queue,
        settings.device,
        settings.data_dir,
    )


@signals.worker_shutdown.connect
def _stop_reaper(**_: object) -> None:
    if _reaper is not None:
        _reaper.stop()
