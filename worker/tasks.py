"""The Celery tasks of a GPU worker, and nothing else: each takes a job id and calls
`worker.attempts.run_job`, which claims the job, runs its kind's engine and records the
outcome (the whole protocol is described there).

Celery's own advice: a task is a thin shell around a plain function, which tests call
directly (tests/worker/test_tasks.py); the tasks themselves run in a real worker.
"""

from __future__ import annotations

import os
from typing import Any

from jobs.queue import LEGACY_TASK_NAMES, TASK_NAME
from jobs.settings import get_settings
from worker.attempts import run_job
from worker.celery_app import app


def _run_task(task: Any, job_id: str) -> str:
    worker_id = f"{task.request.hostname or 'worker'}:{os.getpid()}"
    return str(run_job(job_id, settings=get_settings(), worker_id=worker_id))


@app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True)
def run_job_task(self: Any, job_id: str) -> str:
    """Celery entry point: run job `job_id` (its kind and everything else are in its row)."""
    return _run_task(self, job_id)


@app.task(name=LEGACY_TASK_NAMES[0], bind=True, acks_late=True, reject_on_worker_lost=True)
def adapt(self: Any, job_id: str) -> str:
    """Messages queued before job kinds existed (`nada.adapt`): the same thing."""
    return _run_task(self, job_id)
