"""What a running attempt tells the database (jobs/leases.py), and what it learns from it.

`AttemptRecorder` is the engine's progress callback and cancel check: it records stages,
steps and scores, publishes samples and intermediate checkpoints under their fixed names (by
rename, so a crash never leaves a second copy), and stops the engine on a cancel, the time
limit (NADA_JOB_TIME_LIMIT) or a lost lease. `LeaseKeeper` renews the lease from its own
thread, also while models load. Every write carries the attempt number (fencing): a write
that finds the lease gone marks the attempt lost, and it writes nothing more.

A record an outage kept from the database (PostgreSQL away, SQLite locked or on a full disk)
is kept, in order, and written before the next one that goes in (the final state's write
flushes too: `flush`), so an outage leaves no gap in the job's samples, steps and events.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import exc as sa_exc

from jobs import disk, leases
from jobs.db.session import session_scope
from jobs.settings import Settings
from nada import rundir
from worker.events import Progress, SamplePassTimer
from worker.failures import JobFilesRemoved

log = logging.getLogger(__name__)

# What an outage raises (as backend/api/db_errors.py reads it): PostgreSQL away (refused,
# closed), no pooled connection in time, SQLite locked or its disk full. A record refused
# with one of these is kept and written later.
OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
)


class AttemptRecorder:
    """What one claimed attempt tells the database: progress, samples, the cancel check.

    A write that finds the lease gone sets `lost`; `should_cancel` then stops the engine.
    Database errors while recording progress are logged, not raised: an outage must not
    fail a GPU job (the lease tells whether the attempt still holds the job). The record
    is kept in `pending` and written, in order, with the next write that goes in.
    """

    def __init__(self, settings: Settings, claim: leases.Claim, root: Path, work: Path):
        self.settings = settings
        self.job_id = claim.job_id
        self.attempt = claim.attempt
        self.root = root  # the job's published files
        self.work = work  # this attempt's engine output directory
        self.folder: disk.JobFolder | None = None  # `root` as the attempt found it
        self.lost = False
        self.cancel = False
        self.steps = 0  # training steps this attempt ran
        self.timed_out = False
        self.out_of_memory = False  # the attempt failed for lack of GPU memory
        self.deadline = time.monotonic() + settings.job_time_limit  # NADA_JOB_TIME_LIMIT
        self._last_cancel_check = 0.0
        # Records an outage kept from the database, oldest first: (leases function, kwargs).
        self.pending: deque[tuple[Callable[..., bool], dict[str, Any]]] = deque()
        self._pending_lock = threading.Lock()
        self.sample_timer = SamplePassTimer()  # seconds_per_sample, for the ETA

    def _write(self, fn: Callable[..., bool], **kwargs: Any) -> Any:
        """Write the pending records, then this one. During an outage all of them stay
        pending (True: the lease keeper decides whether we still hold the job); False when
        the lease is gone."""
        with self._pending_lock:
            self.pending.append((fn, kwargs))
            try:
                return self._flush()
            except OUTAGE_ERRORS:
                log.warning(
                    "job %s: could not record %s; %d records kept for the next write",
                    self.job_id,
                    fn.__name__,
                    len(self.pending),
                    exc_info=True,
                )
                return True

    def _flush(self) -> bool:
        """The pending records, oldest first, each in its own transaction; an outage's
        error stops the flush and is raised (the rest stay pending). Any other error is
        the record's own (a bug, a value the database refuses): logged, and the record
        dropped, so one bad record never holds back the others. False: lease lost."""
        written = 0
        while self.pending:
            fn, kwargs = self.pending[0]
            try:
                with session_scope(self.settings.db_url) as session:
                    held = fn(session, job_id=self.job_id, attempt=self.attempt, **kwargs)
            except OUTAGE_ERRORS:
                raise
            except Exception:
                log.warning("job %s: could not record %s", self.job_id, fn.__name__, exc_info=True)
                held = True
            self.pending.popleft()
            written += 1
            if held is False:
                self.pending.clear()  # fenced: this attempt writes nothing more
                return False
        if written > 1:
            log.info("job %s: recorded %d records an outage held back", self.job_id, written - 1)
        return True

    def flush(self) -> bool:
        """Write the pending records now (before the final state); raises the outage's
        error if the database is still away. False: the lease is gone."""
        with self._pending_lock:
            return self._flush()

    def on_progress(self, event: Progress) -> None:
        if self.lost:
            return
        ok: Any = True
        self.steps += event.kind == "step"
        seconds_per_sample = self.sample_timer.observe(event)
        if event.kind in ("stage", "step"):
            ok = self._write(
                leases.record_progress,
                stage=event.stage,
                step=event.step,
                total_steps=event.total_steps,
                losses=dict(event.losses) if event.kind == "step" else None,
                selected_layers=list(event.selected_layers) if event.kind == "step" else None,
                seconds_per_step=event.seconds_per_step,
                seconds_per_sample=seconds_per_sample,
                lease_seconds=self.settings.lease_seconds,
            )
        elif event.kind == "sample" and event.path is not None:
            ok = self.publish_sample(event.step, Path(event.path))
        elif event.kind == "checkpoint" and event.path is not None:
            self.publish_checkpoint(event.step, Path(event.path))
        elif event.kind == "snapshot" and event.path is not None:
            ok = self.publish_snapshot(event.step, Path(event.path))
        elif event.kind == "scores" and event.scores:
            ok = self._write(leases.record_scores, step=event.step, scores=dict(event.scores))
        if ok is False:
            self.lost = True

    def folder_removed(self) -> bool:
        return self.folder is not None and self.folder.removed()

    def require_folder(self) -> None:
        """Before a publish (which would make the folder again, half empty): JobFilesRemoved
        if the job's run directory was removed meanwhile."""
        if self.folder_removed():
            raise JobFilesRemoved(disk.FOLDER_REMOVED)

    def publish_sample(self, step: int, path: Path) -> Any:
        self.require_folder()
        rundir.publish(path, rundir.sample_path(self.root, step))
        return self._write(leases.record_sample, step=step)

    def publish_checkpoint(self, step: int, path: Path) -> None:
        """Keep the newest intermediate checkpoint where a later attempt resumes from it,
        with the metrics log so far (copied: the engine keeps appending to its own)."""
        self.require_folder()
        published = rundir.publish(path, rundir.intermediate_checkpoint_path(self.root, step))
        metrics = rundir.metrics_path(self.work)
        if metrics.is_file():
            rundir.publish(metrics, rundir.resume_metrics_path(self.root), copy=True)
        for older in published.parent.glob("step_*.pt"):
            if older != published and (rundir.step_of(older) or 0) < step:
                older.unlink(missing_ok=True)

    def publish_snapshot(self, step: int, path: Path) -> Any:
        """Keep snapshots/step_N.pt for good (unlike checkpoints/, nothing older is removed:
        every snapshot stays downloadable and continuable after the job) and list its step."""
        self.require_folder()
        rundir.publish(path, rundir.snapshot_path(self.root, step))
        return self._write(leases.record_snapshot, step=step)

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
