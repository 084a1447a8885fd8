"""The job queue's producer side: Celery settings shared with the workers, dispatch by task
name (the API never imports `worker`), and the reaper that settles jobs of vanished workers.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from celery import Celery
from kombu import Exchange, Queue
from sqlalchemy.exc import SQLAlchemyError

from jobs import broker, gc, image_pool, leases, sessions, store, temp_files
from jobs.db.session import session_scope
from jobs.kinds import TRAIN
from jobs.settings import Settings

log = logging.getLogger(__name__)

# The one task every job goes through, whatever its kind: `nada.run_job(job_id)`; the worker
# reads the kind from the job's row (worker/tasks.py registers it). Messages of the name
# used before job kinds existed are still run, so an upgrade loses no queued job.
TASK_NAME = "nada.run_job"
LEGACY_TASK_NAMES = ("nada.adapt",)
_PRUNE_EVERY_S = 600.0  # how often a reaper clears delivered embedded-broker messages
_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5}


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings for minutes-long, one-per-GPU tasks (used by API and workers alike)."""
    if settings.embedded_broker:
        # kombu's SQLAlchemy transport passes its options to create_engine(). It never
        # re-delivers a message whose worker died; the reaper below re-dispatches instead.
        transport_options: dict[str, Any] = {
            "creator": _broker_connection(settings.data_dir / "broker.sqlite")
        }
    else:
        # Redis re-delivers an unacknowledged message after visibility_timeout, which must
        # outlast the longest job or a healthy job would be delivered twice (harmless, the
        # claim is conditional, but wasteful). Dead workers are found sooner by the leases.
        transport_options = {"visibility_timeout": settings.job_time_limit + 3600}
        if settings.broker_prefix:
            transport_options["global_keyprefix"] = settings.broker_prefix
    return {
        # The embedded broker's URL goes without kombu's 'sqla+' prefix, which would pick
        # kombu's transport class over ours (jobs/broker.py: a batch is one transaction).
        "broker_url": settings.broker.removeprefix("sqla+")
        if settings.embedded_broker
        else settings.broker,
        "broker_transport": broker.TRANSPORT if settings.embedded_broker else None,
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        "task_default_queue": settings.queue,
        # The default; JobQueue.send names the queue of each job's lane (jobs/kinds.py).
        "task_routes": {
            name: {"queue": settings.queue} for name in (TASK_NAME, *LEGACY_TASK_NAMES)
        },
        "task_acks_late": True,  # ack after the task ran, so a crash leaves it un-acked
        "task_reject_on_worker_lost": True,  # a killed pool child re-queues its message
        "task_acks_on_failure_or_timeout": True,  # failures are recorded in the job row
        "worker_prefetch_multiplier": 1,  # hold no message another worker could run
        "worker_concurrency": 1,  # one job per GPU
        "task_ignore_result": True,  # state lives in the job database, not a result backend
        "result_backend": None,
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "broker_pool_limit": 16,
    }


def _broker_connection(path: Path) -> Callable[[], sqlite3.Connection]:
    """Connections to the embedded broker's file in WAL mode with synchronous=NORMAL: a
    publish costs no fsync of its own (the WAL is synced at checkpoints), where SQLite's
    default FULL made every submission wait for the disk. What NORMAL risks is the newest
    messages on a power loss (not a crash of the process); the reaper re-sends a queued job
    whose message the broker no longer holds (`lost_messages`)."""

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    return connect


def prepare_embedded_broker(settings: Settings) -> None:
    """Put the embedded broker's SQLite file in WAL mode (a property of the file, kept).

    kombu opens it in rollback-journal mode, where each publish costs several fsyncs
    (~20 ms here); WAL needs one and lets the worker poll while the API publishes.
    """
    if not settings.embedded_broker:
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(settings.data_dir / "broker.sqlite", timeout=30)) as db:
        db.execute("PRAGMA journal_mode=WAL")


def prune_embedded_broker(settings: Settings, older_than_s: float = 3600.0) -> int:
    """Delete delivered messages from the embedded broker (kombu keeps them, invisible)."""
    path = settings.data_dir / "broker.sqlite"
    if not settings.embedded_broker or not path.is_file():
        return 0
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        try:
            cursor = db.execute(
                "DELETE FROM kombu_message WHERE visible = 0 AND timestamp < datetime('now', ?)",
                (f"-{int(older_than_s)} seconds",),
            )
        except sqlite3.OperationalError:  # no table yet
            return 0
        db.commit()
        return cursor.rowcount


def make_celery(settings: Settings, name: str = "nada") -> Celery:
    app = Celery(name, set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


class JobQueue:
    """Sends `nada.run_job(job_id)` messages; a message is a hint, the job row is the truth."""

    def __init__(self, settings: Settings, app: Celery | None = None):
        self.settings = settings
        self.app = app or make_celery(settings, name="nada-api")
        prepare_embedded_broker(settings)

    def send(self, job_id: str, lane: str = TRAIN) -> bool:
        """Publish one task message to its lane's queue; False (logged) if the broker
        refused."""
        return bool(self.publish([job_id], {job_id: lane}))

    def dispatch(
        self, job_ids: Iterable[str], lane: str | None = None, *, marked: bool = False
    ) -> list[str]:
        """Send each job to its lane's queue and record it as dispatched; return the ids
        sent. `lane`: what the caller knows all of them are (else looked up by kind).
        `marked`: their rows say dispatched already (store.create_job(dispatched=True), the
        API's submissions: no second write); those the broker refused are unmarked."""
        job_ids = list(job_ids)
        if lane is not None:
            lanes = dict.fromkeys(job_ids, lane)
        else:
            with session_scope(self.settings.db_url) as session:
                lanes = store.lanes_of(session, job_ids=job_ids)
            lanes = {job_id: lanes.get(job_id, TRAIN) for job_id in job_ids}
        sent = self.publish(job_ids, lanes)
        if marked:
            refused = [job_id for job_id in job_ids if job_id not in set(sent)]
            if refused:
                with session_scope(self.settings.db_url) as session:
                    store.clear_dispatched(session, job_ids=refused)
        elif sent:
            with session_scope(self.settings.db_url) as session:
                store.mark_dispatched(session, job_ids=sent)
        return sent

    def publish(self, job_ids: list[str], lanes: dict[str, str]) -> list[str]:
        """The broker's part of `send` and `dispatch` (what a test's queue replaces): the
        jobs' messages through one producer taken from the pool once; returns the ids the
        broker took. On the embedded broker they are one transaction of its file
        (jobs/broker.py), so a failure sends none; on Redis each message is pushed (with
        Celery's retries) as it goes, and a failure stops the rest. Either way the jobs not
        sent keep dispatched_at unset and the reaper sends them later."""
        if not job_ids:
            return []
        published: list[str] = []
        batched = False
        try:
            with (
                self.app.producer_or_acquire() as producer,
                broker.publishing(producer) as batched,
            ):
                for job_id in job_ids:
                    # Not retried within a batch: a retry revives the producer on a new
                    # channel, outside the batch's transaction. The reaper retries.
                    self.app.send_task(
                        TASK_NAME,
                        args=[job_id],
                        queue=self.settings.queue_of(lanes[job_id]),
                        task_id=f"{job_id}-{uuid.uuid4().hex[:8]}",
                        producer=producer,
                        retry=not batched,
                        retry_policy=_RETRY_POLICY,
                    )
                    published.append(job_id)
        except Exception as exc:  # the broker is down: the reaper re-dispatches later
            lost = job_ids if batched else job_ids[len(published) :]
            log.warning("could not enqueue %d job(s) (%s): %s", len(lost), ", ".join(lost[:5]), exc)
            return [] if batched else published
        return published

    def pending_messages(self) -> int | None:
        """Messages waiting in both lanes' queues (not those held by workers), or None if
        the broker cannot tell now.

        Declares the queue, its exchange and binding on the way (idempotent): a flushed
        Redis lost the binding too, and kombu would route new messages to its dead-letter
        queue until a worker reconnects and declares it again.
        """
        total = 0
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2.0)
                for name in (self.settings.queue, self.settings.fast_queue):
                    queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
                    bound = queue.bind(conn.default_channel)
                    bound.declare()
                    _, count, _ = bound.queue_declare()
                    total += int(count)
                return total
        except Exception as exc:
            log.debug("could not read the depth of the queues: %s", exc)
            return None

    def broker_ok(self, timeout: float = 2.0) -> bool:
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=timeout)
                return True
        except Exception:
            return False

    def close(self) -> None:
        self.app.close()


def lost_messages(settings: Settings, queue: JobQueue, grace_seconds: float) -> list[str]:
    """Queued jobs whose broker message may have vanished (Redis flushed, or restarted
    without its append-only file): when the queue holds fewer messages than there are
    dispatched, queued jobs, the ones dispatched over `grace_seconds` ago are re-sent.
    Which message is missing cannot be told, so some may be duplicates (harmless: the
    claim is conditional); a re-send renews dispatched_at, so each job gets at most one
    extra message per grace period, and none while the broker holds enough."""
    with session_scope(settings.db_url) as session:
        queued, stale = leases.dispatched_queued(session, older_than_seconds=grace_seconds)
    if not stale:
        return []
    depth = queue.pending_messages()
    if depth is None or depth >= queued:
        return []
    log.warning(
        "the broker holds %d message(s) for %d queued job(s): re-sending %d",
        depth,
        queued,
        len(stale),
    )
    return stale


def sweep(settings: Settings, queue: JobQueue) -> list[str]:
    """One reaper pass: settle expired leases, then (re-)dispatch what needs a message."""
    grace = max(settings.reap_every * 2, 5.0)
    with session_scope(settings.db_url) as session:
        job_ids = leases.reap_expired(
            session, max_attempts=settings.max_attempts, dispatch_grace_seconds=grace
        )
    job_ids = sorted({*job_ids, *lost_messages(settings, queue, grace)})
    if job_ids:
        log.info("re-dispatching %d job(s): %s", len(job_ids), ", ".join(job_ids))
        queue.dispatch(job_ids)
    return job_ids


def housekeeping(settings: Settings) -> None:
    """What the reaper does at start-up and every few minutes besides leases: clear the
    embedded broker's delivered messages, sweep example images nobody has sent for a day
    from the upload pool (safe at any time: every job holds its own copies,
    jobs/image_pool.py), delete the temporary files crashed processes left
    (jobs/temp_files.py), and delete sign-in sessions that expired or whose token is no
    longer configured (jobs/sessions.py)."""
    prune_embedded_broker(settings)
    removed = image_pool.remove_stale(settings.data_dir)
    if removed:
        log.info("removed %d unused example image(s) from the upload pool", len(removed))
    leftovers = temp_files.remove_stale(settings.data_dir)
    if leftovers:
        log.info("removed %d temporary file(s) left by a crash", len(leftovers))
    ended = 0
    try:
        with session_scope(settings.db_url) as session:
            live = [token.sha256 for token in settings.tokens]
            ended = sessions.prune(session, live_token_hashes=live)
    except SQLAlchemyError as exc:  # an outage, or a database not migrated yet: next pass
        log.warning("sign-in sessions not pruned this pass: %s", type(exc).__name__)
    if ended:
        log.info("deleted %d expired or revoked sign-in session(s)", ended)


class Reaper(threading.Thread):
    """Runs `sweep` every settings.reap_every seconds until stop() (daemon thread), and
    the retention pass (jobs/gc.py) every NADA_GC_INTERVAL_SECONDS when one is set."""

    def __init__(self, settings: Settings, queue: JobQueue):
        super().__init__(name="nada-reaper", daemon=True)
        self.settings = settings
        self.queue = queue
        self._stop_event = threading.Event()

    def run(self) -> None:
        last_prune = float("-inf")  # the first pass, at start-up, does the housekeeping too
        last_gc = float("-inf")  # and the retention pass, when a retention is set
        while not self._stop_event.wait(self.settings.reap_every):
            try:
                sweep(self.settings, self.queue)
                if time.monotonic() - last_prune > _PRUNE_EVERY_S:
                    last_prune = time.monotonic()
                    housekeeping(self.settings)
                policy = self.settings.retention
                if not policy.keeps_everything and (
                    time.monotonic() - last_gc > self.settings.gc_interval_seconds
                ):
                    last_gc = time.monotonic()
                    gc.collect(self.settings.db_url, self.settings.jobs_dir, policy)
            except Exception:  # a database hiccup must not end the reaper
                log.exception("reaper pass failed")

    def stop(self) -> None:
        self._stop_event.set()
