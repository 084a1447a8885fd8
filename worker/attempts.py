"""`run_job(job_id)`: claim a job, run its kind's engine (worker/runners.py) with a progress
callback, publish its files and record the outcome. Plain Python, no Celery: the Celery task
(worker/tasks.py) only calls it, and tests call it directly.

The same for every kind of job (see jobs/leases.py for the lease protocol):
- Idempotent by job id: the claim is a conditional UPDATE, so a duplicate or re-delivered
  message for a job that is done, canceled or held by a live worker does nothing.
- Fenced: every write carries the claimed attempt number; a worker that lost its lease
  writes nothing more and stops at the next step (worker/attempt_recorder.py).
- No second copy of files after a crash: the engine writes into attempts/<n>/; samples and
  intermediate checkpoints are published under fixed names by rename, and a new attempt
  resumes from the latest published checkpoint. Success publishes adapted.pt the same way
  and removes the attempts' working directories.
- Bounded: an attempt that runs past NADA_JOB_TIME_LIMIT is stopped at its next step and
  fails with `timeout`; CUDA out-of-memory fails with `out_of_memory` and frees the cached
  blocks before the next job; a full disk fails with `io`, and the attempt's files go.
- Faults of the data directory are named (jobs/disk.py, worker/failures.py): a job that
  could not write its files fails with `io` and "the data directory is full" (or "... is
  not writable"), not with whatever the writer said; a job folder removed while the job ran
  is noticed at its next publish. The final state is written before the intermediate
  checkpoints are dropped, and depends on no file operation: when even that write fails,
  the reaper re-queues the job and the next attempt resumes from the checkpoint.
- A database outage loses no progress: the records it refused are written, in order, with
  the next write that goes in, at the latest with the final state, which also adds the
  samples on disk that no record names (worker/attempt_recorder.py).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs import disk, gc, leases, storage
from jobs.db.models import JobStatus
from jobs.db.session import session_scope
from jobs.kinds import get_kind
from jobs.settings import Settings
from nada import rundir
from worker.attempt_recorder import AttemptRecorder, LeaseKeeper
from worker.events import Canceled
from worker.failures import (
    IO,
    OUT_OF_MEMORY,
    SELF_EXPLAINED,
    TIMEOUT,
    describe_failure,
    error_code,
    io_fault,
    release_accelerator_memory,
)
from worker.runners import EngineCall, Runner, published_samples, runner_for

if TYPE_CHECKING:
    from worker.model_cache import ModelCache

log = logging.getLogger(__name__)

# Seconds between the tries of the final state's write (a database that blinked, SQLite
# waiting for the space the attempt's working directory gave back).
_FINAL_WRITE_RETRIES = (0.5, 2.0)

_models: ModelCache | None = None  # the engines' model cache, kept between jobs of this process


def _model_cache() -> ModelCache:
    """The engines' model cache (one per worker process; torch is imported on first use)."""
    global _models
    if _models is None:
        from worker.model_cache import ModelCache

        _models = ModelCache()
    return _models


class Outcome(enum.StrEnum):
    """How one delivery of a job's message ended (the task's return value, and logged)."""

    succeeded = "succeeded"
    failed = "failed"  # recorded with an error code (invalid_params, timeout, io, ...)
    canceled = "canceled"
    skipped = "skipped"  # not claimable: done, canceled, or held by a live worker
    lost = "lost"  # the attempt lost its lease midway; another attempt owns the job
    unrecorded = "unrecorded"  # the final state could not be written; the reaper re-queues


class Attempt:
    """One claimed attempt at a job, from the claim to its final state.

    `run` goes through the phases in order: prepare the working directory (and the resume
    point), run the kind's engine, publish its files, record the final state. Every way
    out has a method of its own: `_stopped` (cancel or time limit), `_failed` (an
    exception: invalid parameters, out of memory, a full disk, an engine error), `_succeed`.
    Each returns an Outcome; a write that finds the lease gone makes it Outcome.lost, one
    that cannot be made at all Outcome.unrecorded.
    """

    def __init__(
        self,
        settings: Settings,
        claim: leases.Claim,
        *,
        engine: EngineCall | None = None,
        models: Any = None,
    ):
        self.settings = settings
        self.claim = claim
        self.root = storage.job_dir(settings.jobs_dir, claim.job_id)
        self.work = rundir.attempt_dir(self.root, claim.attempt)
        self.recorder = AttemptRecorder(settings, claim, self.root, self.work)
        self.keeper = LeaseKeeper(settings, self.recorder)
        self._engine = engine
        self._models = models
        self.result_files: tuple[str, ...] = ()

    # -- the phases --------------------------------------------------------------------

    def run(self) -> Outcome:
        self.keeper.start()
        try:
            result, runner = self._run_engine()
        except Canceled:
            return self._stopped()
        except Exception as exc:
            return self._failed(exc)
        if self.recorder.lost:
            return Outcome.lost
        return self._succeed(result, runner)

    def _prepare(self) -> Path | None:
        """A clean working directory, seeded with the metrics of the newest intermediate
        checkpoint when there is one to resume from (returned)."""
        state = disk.check(self.settings, fresh=True)
        if state != "ok":  # full or not writable: `io` now, before the models load
            raise disk.DataDirFault(state)
        rundir.remove_tree(self.work)
        self.work.mkdir(parents=True)
        self.recorder.folder = disk.JobFolder(self.root)
        resume_from = rundir.latest_intermediate_checkpoint(self.root)
        metrics = rundir.resume_metrics_path(self.root)
        if resume_from is not None and metrics.is_file():
            rundir.publish(metrics, rundir.metrics_path(self.work), copy=True)
        if resume_from is None and self.claim.step:
            log.warning(
                "job %s: attempt %d starts over: an earlier attempt reached step %d and left "
                "no intermediate checkpoint",
                self.claim.job_id,
                self.claim.attempt,
                self.claim.step,
            )
        return resume_from

    def _run_engine(self) -> tuple[Any, Runner]:
        resume_from = self._prepare()
        kind = get_kind(self.claim.kind)
        self.result_files = kind.result_files
        params = kind.parse(self.claim.params)
        runner = runner_for(kind.name)
        engine = self._engine or runner.engine()
        kwargs: dict[str, Any] = dict(
            device=self.settings.device,
            on_progress=self.recorder.on_progress,
            should_cancel=self.recorder.should_cancel,
            models=self._models if self._models is not None else _model_cache(),
            **runner.extra_kwargs(params, self.settings, self.root),
        )
        try:
            return engine(params, self.work, resume_from=resume_from, **kwargs), runner
        except Exception as exc:
            if not self._may_start_over(exc, resume_from):
                raise
            # An intermediate checkpoint this engine cannot resume (damaged, another
            # version) must not fail the job: start over, as if there were none.
            log.warning(
                "job %s: cannot resume from %s (%s); starting over",
                self.claim.job_id,
                resume_from,
                exc,
            )
            rundir.remove_tree(rundir.checkpoints_dir(self.root))
            rundir.remove_tree(self.work)
            self.work.mkdir(parents=True)
            return engine(params, self.work, resume_from=None, **kwargs), runner

    def _may_start_over(self, exc: Exception, resume_from: Path | None) -> bool:
        """Whether a failure is the resume point's fault: it came before any step ran, and
        not from the data directory (a full disk says nothing about the checkpoint)."""
        r = self.recorder
        if resume_from is None or r.steps or r.lost or isinstance(exc, Canceled):
            return False
        return self._io_fault(exc) is None

    def _publish(self, result: Any) -> bool:
        """Move the final files into place; False if the lease was lost meanwhile."""
        self.recorder.require_folder()
        for sample in published_samples(result):  # normally all published already
            step = rundir.step_of(sample)
            if step is None or rundir.sample_path(self.root, step).exists():
                continue
            if self.recorder.publish_sample(step, sample) is False:
                return False
        first, *others = self.result_files
        rundir.publish(self.work / first, self.root / first)  # the result must exist
        for name in others:
            if (self.work / name).is_file():
                rundir.publish(self.work / name, self.root / name)
        return True

    # -- the ways out ------------------------------------------------------------------

    def _succeed(self, result: Any, runner: Runner) -> Outcome:
        try:
            published = self._publish(result)
        except OSError as exc:  # a full disk while publishing: no half-published result
            for name in self.result_files:
                (self.root / name).unlink(missing_ok=True)
            return self._failed(exc)
        if not published or not self._settle_files():
            return Outcome.lost
        digest = runner.digest(result)
        return self._finish(JobStatus.succeeded, Outcome.succeeded, checkpoint_sha256=digest)

    def _stopped(self) -> Outcome:
        """The engine stopped at a step boundary: canceled, time limit, or lost lease."""
        if self.recorder.lost:
            return Outcome.lost
        if self.recorder.timed_out:
            return self._timed_out()
        return self._finish(JobStatus.canceled, Outcome.canceled)

    def _timed_out(self) -> Outcome:
        limit = self.settings.job_time_limit
        message = f"the job ran longer than NADA_JOB_TIME_LIMIT ({limit} s)"
        return self._record_failure(TIMEOUT, message)

    def _failed(self, exc: Exception) -> Outcome:
        """Record `exc` as the attempt's failure (unless the attempt lost the job)."""
        r = self.recorder
        if r.lost:
            return Outcome.lost
        log.error("job %s: attempt %d failed", r.job_id, r.attempt, exc_info=exc)
        code = error_code(exc)
        r.out_of_memory = code == OUT_OF_MEMORY
        text = describe_failure(exc)  # no server paths (the log above has them)
        message, details = text.message, text.details
        if code not in SELF_EXPLAINED:
            fault = self._io_fault(exc)
            if fault is not None:
                code, message, details = IO, fault, None
        del exc  # its traceback holds the engine's frames, and with them its tensors
        return self._record_failure(code, message, details)

    def _io_fault(self, exc: BaseException) -> str | None:
        return io_fault(exc, self.settings, folder_removed=self.recorder.folder_removed())

    def _record_failure(self, code: str, message: str, details: str | None = None) -> Outcome:
        return self._finish(
            JobStatus.failed,
            Outcome.failed,
            error_code=code,
            error_message=message,
            error_details=details,
        )

    # -- database and files ------------------------------------------------------------

    def _finish(self, status: JobStatus, outcome: Outcome, **values: Any) -> Outcome:
        """Write the final state, then drop the files a finished job no longer needs.

        Outcome.lost if the attempt no longer holds the job, Outcome.unrecorded if the
        write failed every try. The write depends on no file operation: only this
        attempt's working directory goes before it (nothing needs it again, and on a full
        disk its space may be what the database needs to write); the intermediate
        checkpoints stay until the write is made, for the attempt the reaper starts next.
        """
        rundir.remove_tree(self.work)
        held = self._write_final(status, values)
        if held is None:
            return Outcome.unrecorded
        if not held:
            return Outcome.lost
        self._drop_intermediate_files()
        # A continuation's copy of its parent's resume.pt: needed by every attempt until the
        # final state is written (a re-queued attempt starts from it again), then never.
        (self.root / rundir.START).unlink(missing_ok=True)
        self._record_size()
        return outcome

    def _record_size(self) -> None:
        """jobs.disk_bytes of the finished job's folder (the quota's measure, jobs/gc.py);
        best effort: a missed measure only leaves the job uncounted until the next gc."""
        try:
            with session_scope(self.settings.db_url) as session:
                gc.measure(session, self.settings.jobs_dir, self.claim.job_id)
        except Exception:
            log.warning("job %s: its disk use was not recorded", self.claim.job_id)

    def _write_final(self, status: JobStatus, values: dict[str, Any]) -> bool | None:
        """leases.finish_job, tried again after a database error; None if it never went in.

        First the records an outage held back (the recorder's pending ones), then, in the
        final state's transaction, for a success the samples on disk that no record names
        (an earlier attempt published them while the database was unreachable): a finished
        job lists every sample it has, and its events have no gap."""
        job_id, attempt = self.claim.job_id, self.claim.attempt
        on_disk = rundir.sample_steps(self.root) if status == JobStatus.succeeded else []
        for delay in (*_FINAL_WRITE_RETRIES, None):
            try:
                if not self.recorder.flush():
                    return False
                with session_scope(self.settings.db_url) as session:
                    return leases.reconcile_samples(
                        session, job_id=job_id, attempt=attempt, steps=on_disk
                    ) and leases.finish_job(
                        session, job_id=job_id, attempt=attempt, status=status, **values
                    )
            except Exception:
                if delay is None:
                    log.exception(
                        "job %s: could not record %s; the reaper re-queues it once its lease "
                        "expires",
                        self.claim.job_id,
                        status,
                    )
                    return None
                log.warning("job %s: recording %s failed, retrying", self.claim.job_id, status)
                time.sleep(delay)
        return None

    def _drop_intermediate_files(self) -> None:
        """Intermediate checkpoints and every attempt's work dir; the whole folder if it
        was removed while the attempt ran (what is there now, this attempt made again)."""
        rundir.remove_tree(rundir.checkpoints_dir(self.root))
        rundir.remove_tree(rundir.attempts_dir(self.root))
        if self.recorder.folder_removed():
            rundir.remove_tree(self.root)

    def _settle_files(self) -> bool:
        """Before a success is written (so that a job reported succeeded has its final
        files only): drop intermediate checkpoints and every attempt's work dir, if this
        attempt still holds the job. False (and nothing removed) when it does not."""
        if self.recorder.lost:
            return False
        with session_scope(self.settings.db_url) as session:
            held = leases.renew_lease(
                session,
                job_id=self.claim.job_id,
                attempt=self.claim.attempt,
                lease_seconds=self.settings.lease_seconds,
            )
        if held is None:
            return False
        self._drop_intermediate_files()
        return True

    def close(self) -> None:
        self.keeper.stop()
        rundir.remove_tree(self.work)
        attempts = self.work.parent
        with contextlib.suppress(OSError):  # another attempt may be making its own
            if attempts.is_dir() and not any(attempts.iterdir()):
                attempts.rmdir()
        if self.recorder.folder is not None:
            self.recorder.folder.close()
        if self.recorder.out_of_memory:
            release_accelerator_memory()


def run_job(
    job_id: str,
    *,
    settings: Settings,
    worker_id: str,
    engine: EngineCall | None = None,
    models: Any = None,
) -> Outcome:
    """Run one job to its end, whatever its kind, and say how it ended.

    `engine` replaces the kind's engine call (tests); `models` the model cache."""
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
        return Outcome.skipped
    if claim.job_id != job_id:  # a message is a place in its lane's queue (leases.claim_job)
        log.info("job %s: its message runs job %s, first in its lane's queue", job_id, claim.job_id)
    log.info("job %s (%s): attempt %d on %s", claim.job_id, claim.kind, claim.attempt, worker_id)
    attempt = Attempt(settings, claim, engine=engine, models=models)
    try:
        outcome = attempt.run()
    finally:
        attempt.close()
    log.info("job %s: %s", claim.job_id, outcome)
    return outcome
