"""The Celery task `nada.adapt(job_id)`: a thin shell around `run_job`, which claims the job,
runs the engine with a progress callback and records the outcome.

Reliability (see jobs/leases.py for the lease protocol):
- Idempotent by job id: the claim is a conditional UPDATE, so a duplicate or re-delivered
  message for a job that is done, canceled or held by a live worker does nothing.
- Fenced: every write carries the claimed attempt number; a worker that lost its lease
  writes nothing more and stops at the next step.
- No second copy of files after a crash: the engine writes into attempts/<n>/; samples and
  intermediate checkpoints are published under fixed names by rename, and a new attempt
  resumes from the latest published checkpoint. Success publishes adapted.pt the same way
  and removes the attempts' working directories.
- Bounded: an attempt that runs past NADA_JOB_TIME_LIMIT is stopped at its next step and
  fails with `timeout`; CUDA out-of-memory fails with `out_of_memory` and frees the cached
  blocks before the next job; a full disk fails with `io`, and the attempt's files go.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobs import leases, storage
from jobs.db.models import JobStatus
from jobs.db.session import session_scope
from jobs.generators import uploaded_path
from jobs.queue import TASK_NAME
from jobs.settings import Settings, get_settings
from nada import rundir
from nada.params import AdaptParams, ParamError
from stylegan2 import registry
from worker.celery_app import app
from worker.events import AdaptResult, Canceled, Progress

log = logging.getLogger(__name__)

_models: Any = None  # the engine's model cache, kept between jobs of this process


def _model_cache() -> Any:
    """The engine's model cache (one per worker process), or None if it offers none."""
    global _models
    if _models is None:
        from worker import engine

        cache_cls = getattr(engine, "ModelCache", None)
        _models = cache_cls() if cache_cls is not None else False
    return _models or None


def _engine_run() -> Callable[..., AdaptResult]:
    from worker.engine import run_adaptation  # torch: imported on the first job only

    return run_adaptation


TIMEOUT = "timeout"
OUT_OF_MEMORY = "out_of_memory"
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def error_code(exc: BaseException) -> str:
    """The job's error code for an exception out of the engine or the file publishing."""
    name = type(exc).__name__
    if isinstance(exc, ParamError):
        return "invalid_params"
    # torch.cuda.OutOfMemoryError, or a RuntimeError from older torch / other allocators
    if "OutOfMemory" in name or "out of memory" in str(exc).lower():
        return OUT_OF_MEMORY
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        return "io"
    if isinstance(exc, FileNotFoundError):
        return "missing_file"
    return "engine_error"


def release_accelerator_memory() -> None:
    """After an out-of-memory failure: collect the failed attempt's tensors (its frames
    are gone once the exception is handled) and give cached CUDA blocks back, so the next
    job on this worker starts from a clean allocator."""
    gc.collect()
    torch = sys.modules.get("torch")  # never import torch here (tests, CPU-only API)
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


class AttemptRecorder:
    """What one claimed attempt tells the database: progress, samples, the cancel check.

    A write that finds the lease gone sets `lost`; `should_cancel` then stops the engine.
    Database errors while recording progress are logged, not raised: losing a progress
    row must not fail a GPU job (the lease tells whether the attempt still holds the job).
    """

    def __init__(self, settings: Settings, claim: leases.Claim, root: Path, work: Path):
        self.settings = settings
        self.job_id = claim.job_id
        self.attempt = claim.attempt
        self.root = root  # the job's published files
        self.work = work  # this attempt's engine output directory
        self.lost = False
        self.cancel = False
        self.steps = 0  # training steps this attempt ran
        self.timed_out = False
        self.out_of_memory = False  # the attempt failed for lack of GPU memory
        self.deadline = time.monotonic() + settings.job_time_limit  # NADA_JOB_TIME_LIMIT
        self._last_cancel_check = 0.0

    def _write(self, fn: Callable[..., bool | None], **kwargs: Any) -> Any:
        try:
            with session_scope(self.settings.db_url) as session:
                return fn(session, job_id=self.job_id, attempt=self.attempt, **kwargs)
        except Exception:
            log.warning("job %s: could not record %s", self.job_id, fn.__name__, exc_info=True)
            return True  # unknown; the lease keeper decides whether we still hold the job

    def on_progress(self, event: Progress) -> None:
        if self.lost:
            return
        ok: Any = True
        self.steps += event.kind == "step"
        if event.kind in ("stage", "step"):
            ok = self._write(
                leases.record_progress,
                stage=event.stage,
                step=event.step,
                total_steps=event.total_steps,
                losses=dict(event.losses) if event.kind == "step" else None,
                selected_layers=list(event.selected_layers) if event.kind == "step" else None,
                seconds_per_step=event.seconds_per_step,
                lease_seconds=self.settings.lease_seconds,
            )
        elif event.kind == "sample" and event.path is not None:
            ok = self.publish_sample(event.step, Path(event.path))
        elif event.kind == "checkpoint" and event.path is not None:
            self.publish_checkpoint(event.step, Path(event.path))
        if ok is False:
            self.lost = True

    def publish_sample(self, step: int, path: Path) -> Any:
        rundir.publish(path, rundir.sample_path(self.root, step))
        return self._write(leases.record_sample, step=step)

    def publish_checkpoint(self, step: int, path: Path) -> None:
        """Keep the newest intermediate checkpoint where a later attempt resumes from it,
        with the metrics log so far (copied: the engine keeps appending to its own)."""
        published = rundir.publish(path, rundir.intermediate_checkpoint_path(self.root, step))
        metrics = self.work / "metrics.jsonl"
        if metrics.is_file():
            rundir.publish(metrics, rundir.resume_metrics_path(self.root), copy=True)
        for older in published.parent.glob("step_*.pt"):
            if older != published and (rundir.step_of(older) or 0) < step:
                older.unlink(missing_ok=True)

    def should_cancel(self) -> bool:
        """Polled by the engine before every step: stop on a lost lease, a cancel, or the
        time limit (`timed_out` tells the task to record `timeout`, not `canceled`)."""
        if self.lost or self.cancel or self.timed_out:
            return True
        now = time.monotonic()
        if now >= self.deadline:
            log.warning("job %s: past its time limit, stopping", self.job_id)
            self.timed_out = True
            return True
        if now - self._last_cancel_check < self.settings.cancel_poll_seconds:
            return False
        self._last_cancel_check = now
        try:
            with session_scope(self.settings.db_url) as session:
                state = leases.cancel_requested(session, job_id=self.job_id, attempt=self.attempt)
        except Exception:
            log.warning("job %s: cancel check failed", self.job_id, exc_info=True)
            return False
        if state is None:
            self.lost = True
        self.cancel = bool(state)
        return self.lost or self.cancel


class LeaseKeeper(threading.Thread):
    """Renews the attempt's lease every lease_seconds / 4, also while models load."""

    def __init__(self, settings: Settings, recorder: AttemptRecorder):
        super().__init__(name=f"lease-{recorder.job_id[:8]}", daemon=True)
        self.settings = settings
        self.recorder = recorder
        self._stop_event = threading.Event()

    def run(self) -> None:
        r = self.recorder
        while not self._stop_event.wait(self.settings.lease_seconds / 4):
            try:
                with session_scope(self.settings.db_url) as session:
                    state = leases.renew_lease(
                        session,
                        job_id=r.job_id,
                        attempt=r.attempt,
                        lease_seconds=self.settings.lease_seconds,
                    )
            except Exception:
                log.warning("job %s: lease renewal failed", r.job_id, exc_info=True)
                continue
            if state is None:
                log.warning("job %s: attempt %d lost its lease", r.job_id, r.attempt)
                r.lost = True
                return
            r.cancel = r.cancel or state

    def stop(self) -> None:
        self._stop_event.set()


def _finish(settings: Settings, recorder: AttemptRecorder, status: JobStatus, **kw: Any) -> bool:
    with session_scope(settings.db_url) as session:
        return leases.finish_job(
            session, job_id=recorder.job_id, attempt=recorder.attempt, status=status, **kw
        )


def _settle_files(settings: Settings, recorder: AttemptRecorder) -> bool:
    """Before the final state is written (so that a job reported finished has its final
    files): drop intermediate checkpoints and every attempt's work dir, if this attempt
    still holds the job. False (and nothing removed) when it does not."""
    if recorder.lost:
        return False
    with session_scope(settings.db_url) as session:
        held = leases.renew_lease(
            session,
            job_id=recorder.job_id,
            attempt=recorder.attempt,
            lease_seconds=settings.lease_seconds,
        )
    if held is None:
        return False
    rundir.remove_tree(recorder.root / "checkpoints")
    rundir.remove_tree(recorder.root / "attempts")
    return True


def _fail(settings: Settings, recorder: AttemptRecorder, code: str, message: str) -> str:
    failed = _finish(settings, recorder, JobStatus.failed, error_code=code, error_message=message)
    return "failed" if failed else "lost"


def _fail_on(settings: Settings, recorder: AttemptRecorder, exc: Exception) -> str:
    """Record `exc` as the attempt's failure (unless the attempt lost the job)."""
    if recorder.lost:
        return "lost"
    log.error("job %s: attempt %d failed", recorder.job_id, recorder.attempt, exc_info=exc)
    code = error_code(exc)
    recorder.out_of_memory = code == OUT_OF_MEMORY
    message = str(exc) or type(exc).__name__
    del exc  # its traceback holds the engine's frames, and with them its tensors
    if not _settle_files(settings, recorder):
        return "lost"
    return _fail(settings, recorder, code, message)


def _publish_result(recorder: AttemptRecorder, result: AdaptResult) -> bool:
    """Move the final files into place; False if the lease was lost meanwhile."""
    root = recorder.root
    for sample in result.samples:  # normally all published already, via events
        step = rundir.step_of(sample)
        missing = step is not None and not rundir.sample_path(root, step).exists()
        if missing and recorder.publish_sample(step, sample) is False:
            return False
    rundir.publish(result.checkpoint, rundir.adapted_path(root))
    if result.metrics.is_file():
        rundir.publish(result.metrics, root / "metrics.jsonl")
    return True


def run_job(
    job_id: str,
    *,
    settings: Settings,
    worker_id: str,
    run_adaptation: Callable[..., AdaptResult] | None = None,
    models: Any = None,
) -> str:
    """Run one job to its end; return what happened: succeeded, failed, canceled, skipped
    (not claimable: done, canceled, or held by a live worker) or lost (lease lost midway)."""
    with session_scope(settings.db_url) as session:
        claim = leases.claim_job(
            session,
            job_id=job_id,
            worker_id=worker_id,
            lease_seconds=settings.lease_seconds,
            max_attempts=settings.max_attempts,
        )
    if claim is None:
        log.info("job %s: not claimable, skipping this message", job_id)
        return "skipped"
    log.info("job %s: attempt %d on %s", job_id, claim.attempt, worker_id)

    root = storage.job_dir(settings.jobs_dir, job_id)
    work = rundir.attempt_dir(root, claim.attempt)
    recorder = AttemptRecorder(settings, claim, root, work)
    keeper = LeaseKeeper(settings, recorder)
    keeper.start()
    try:
        try:
            rundir.remove_tree(work)
            work.mkdir(parents=True)  # a full disk fails here already: `io`, not a retry
            resume_from = rundir.latest_intermediate_checkpoint(root)
            if resume_from is not None and rundir.resume_metrics_path(root).is_file():
                metrics = rundir.resume_metrics_path(root)
                rundir.publish(metrics, work / "metrics.jsonl", copy=True)
            params = AdaptParams.from_dict(claim.params)
            run = run_adaptation or _engine_run()
            engine_kwargs: dict[str, Any] = dict(
                device=settings.device,
                on_progress=recorder.on_progress,
                should_cancel=recorder.should_cancel,
                models=models if models is not None else _model_cache(),
            )
            uploaded = uploaded_path(params.generator, settings.data_dir)
            if uploaded is not None and params.generator not in registry.generator_names():
                engine_kwargs["generator_path"] = uploaded  # POST /generators (data dir)
            try:
                result = run(params, work, resume_from=resume_from, **engine_kwargs)
            except Exception as exc:
                if (
                    resume_from is None
                    or recorder.steps
                    or recorder.lost
                    or isinstance(exc, Canceled)
                ):
                    raise
                # An intermediate checkpoint this engine cannot resume (damaged, another
                # version) must not fail the job: start over, as if there were none.
                log.warning(
                    "job %s: cannot resume from %s (%s); starting over", job_id, resume_from, exc
                )
                rundir.remove_tree(root / "checkpoints")
                rundir.remove_tree(work)
                work.mkdir(parents=True)
                result = run(params, work, resume_from=None, **engine_kwargs)
        except Canceled:
            if not _settle_files(settings, recorder):
                return "lost"
            if recorder.timed_out:
                limit = settings.job_time_limit
                message = f"the job ran longer than NADA_JOB_TIME_LIMIT ({limit} s)"
                return _fail(settings, recorder, TIMEOUT, message)
            return "canceled" if _finish(settings, recorder, JobStatus.canceled) else "lost"
        except Exception as exc:
            return _fail_on(settings, recorder, exc)
        if recorder.lost:
            return "lost"
        try:
            published = _publish_result(recorder, result)
        except OSError as exc:  # a full disk while publishing: no half-written file remains
            rundir.adapted_path(root).unlink(missing_ok=True)
            return _fail_on(settings, recorder, exc)
        if not published or not _settle_files(settings, recorder):
            return "lost"
        if not _finish(
            settings, recorder, JobStatus.succeeded, checkpoint_sha256=result.checkpoint_sha256
        ):
            return "lost"
        return "succeeded"
    finally:
        keeper.stop()
        rundir.remove_tree(work)
        attempts = work.parent
        if attempts.is_dir() and not any(attempts.iterdir()):
            attempts.rmdir()
        if recorder.out_of_memory:
            release_accelerator_memory()


@app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True)
def adapt(self: Any, job_id: str) -> str:
    """Celery entry point: run job `job_id` (everything else is in the job's row)."""
    worker_id = f"{self.request.hostname or 'worker'}:{os.getpid()}"
    return run_job(job_id, settings=get_settings(), worker_id=worker_id)
