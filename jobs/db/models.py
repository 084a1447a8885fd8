"""ORM models: a job and the events it emitted. The database is the source of truth.

Lease columns (issue #6): a running job is owned by `worker_id` while `lease_expires_at`
is in the future. `attempt` counts claims and is the fencing token: every write a worker
makes is conditional on `attempt` still being the one it claimed (see jobs/leases.py).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class JobStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"


ACTIVE = (JobStatus.queued, JobStatus.running)
FINISHED = (JobStatus.succeeded, JobStatus.failed, JobStatus.canceled)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in Python; timestamptz on PostgreSQL, naive UTC text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # uuid4 hex
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.queued)
    # What work this is (jobs/kinds.py); `params` is that kind's parameters as plain data.
    kind: Mapped[str] = mapped_column(String(32), default="adapt", server_default="adapt")
    params: Mapped[dict[str, Any]] = mapped_column(JSON)  # e.g. AdaptParams.to_dict()
    # Progress, as last reported by the worker.
    stage: Mapped[str | None] = mapped_column(String(32))
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int] = mapped_column(Integer)
    losses: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    selected_layers: Mapped[list[str]] = mapped_column(JSON, default=list)
    seconds_per_step: Mapped[float | None] = mapped_column(Float)
    # wall time of one sample pass (progress image + scores) beyond its step: the ETA's
    seconds_per_sample: Mapped[float | None] = mapped_column(Float)
    sample_steps: Mapped[list[int]] = mapped_column(JSON, default=list)  # files in samples/
    # Steps whose generator was kept (snapshot_every): files in snapshots/ (nada/rundir.py)
    snapshot_steps: Mapped[list[int] | None] = mapped_column(JSON, default=list)
    # Objective scores (worker/scores.py) by measured step: {"50": {"direction": 0.21, ...}}.
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    checkpoint_sha256: Mapped[str | None] = mapped_column(String(64))  # set when adapted.pt is
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)  # for the user: what to do
    # For the operator: the failure's own text (variables, commands; server paths hidden).
    error_details: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # Access (docs/security.md): the submitting token's name ('' without tokens) and the
    # client's Idempotency-Key with the hash of the body it came with.
    owner: Mapped[str] = mapped_column(String(64), default="", server_default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    request_sha256: Mapped[str | None] = mapped_column(String(64))
    # Work whose result depends only on its inputs (an edit: one photo's code through one
    # adapted generator) is done once: the key names those inputs (jobs/store.py).
    cache_key: Mapped[str | None] = mapped_column(String(64))
    # A job made by a sweep (jobs/sweeps.py): which one, and its place in the grid.
    sweep_id: Mapped[str | None] = mapped_column(String(32))
    sweep_index: Mapped[int | None] = mapped_column(Integer)
    # A continuation (POST /jobs/{id}/continue): the finished job it trains on from. No
    # foreign key: deleting the parent leaves its children (and this id) as they are.
    parent_id: Mapped[str | None] = mapped_column(String(32))
    # Where to POST this job's events (jobs/webhooks/), and which: start, progress, completed
    webhook_url: Mapped[str | None] = mapped_column(Text)
    webhook_events: Mapped[list[str] | None] = mapped_column(JSON)
    # Queue order: a higher priority is claimed first, then the oldest queued_at (issue 24).
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Retention (jobs/retention.py): when the resumable state (resume.pt, checkpoints/,
    # snapshots/) and when the results went; the row stays and says so. disk_bytes: what the
    # run directory holds (measured when the job finishes and after each removal): quotas.
    resumable_expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    files_expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disk_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # Lease and fencing (issue #6).
    attempt: Mapped[int] = mapped_column(Integer, default=0)  # claims so far; fencing token
    worker_id: Mapped[str | None] = mapped_column(String(255))  # holder of the current lease
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Timeline.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime)  # last (re)enqueue: queue order
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # broker took the task
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # first claim
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_jobs_created_at", "created_at"),
        Index("ix_jobs_status_created_at", "status", "created_at"),
        Index("ix_jobs_status_queued_at", "status", "queued_at"),
        Index("ix_jobs_status_priority_queued_at", "status", "priority", "queued_at"),
        Index("ix_jobs_status_lease", "status", "lease_expires_at"),
        Index("ix_jobs_status_dispatched_at", "status", "dispatched_at"),
        Index("ix_jobs_owner_created_at", "owner", "created_at"),
        Index("ux_jobs_owner_idempotency_key", "owner", "idempotency_key", unique=True),
        Index("ix_jobs_kind_created_at", "kind", "created_at"),
        Index("ix_jobs_cache_key", "cache_key"),
        Index("ix_jobs_sweep_id", "sweep_id", "sweep_index"),
        Index("ix_jobs_parent_id", "parent_id"),
    )


class Sweep(Base):
    """One job per combination of a grid of parameter values (jobs/sweeps.py)."""

    __tablename__ = "sweeps"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # uuid4 hex
    owner: Mapped[str] = mapped_column(String(64), default="", server_default="")
    base: Mapped[dict[str, Any]] = mapped_column(JSON)  # the parameters all jobs share
    grid: Mapped[dict[str, Any]] = mapped_column(JSON)  # name -> list of values
    count: Mapped[int] = mapped_column(Integer)  # jobs created
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_sweeps_owner_created_at", "owner", "created_at"),)


class JobEvent(Base):
    """One thing that happened to a job; `id` is the Server-Sent Events id (global, rising)."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # queued, started, progress, sample, ...
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_job_events_job_id_id", "job_id", "id"),)


class SignInSession(Base):
    """A page's sign-in (jobs/sessions.py): the cookie holds a random id; only its SHA-256 is
    stored, with the hash of the token it was made with (the token itself never is)."""

    __tablename__ = "sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)  # of the cookie value
    owner: Mapped[str] = mapped_column(String(64))  # the token's name at sign-in
    token_sha256: Mapped[str] = mapped_column(String(64))  # revoked once no token has it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_sessions_expires_at", "expires_at"),
        Index("ix_sessions_token_sha256", "token_sha256"),
    )


class WebhookSecret(Base):
    """An owner's signing secret (jobs/webhooks/signing.py); after a rotation the previous
    one signs too for a while, so receivers can switch without losing messages."""

    __tablename__ = "webhook_secrets"

    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret: Mapped[str] = mapped_column(String(80))
    previous_secret: Mapped[str | None] = mapped_column(String(80))
    rotated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    """One event of a job to deliver to its webhook: pending until a 2xx (delivered), or
    until the retries are spent (failed). `id` is the message id receivers de-duplicate by."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # 'evt_' + uuid4 hex
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(16))  # start, progress, completed
    url: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column("attempt_count", Integer, default=0)  # made so far
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a dispatcher holds it
    body: Mapped[str | None] = mapped_column(Text)  # fixed at the first attempt
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_job", "job_id", "created_at"),
    )


class WebhookAttempt(Base):
    """One POST of a delivery: what the receiver answered and how long it took."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ...
    status: Mapped[int | None] = mapped_column(Integer)  # HTTP status; None: no answer
    latency_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "number"),)
