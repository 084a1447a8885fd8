"""The service's configuration: one pydantic-settings class read from NADA_* variables."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobs import priority
from jobs.retention import RetentionPolicy
from jobs.tokens import ApiToken, parse_tokens
from jobs.webhooks.delivery import RETRY_DELAYS_S, parse_delays
from jobs.webhooks.targets import Allowance

_REPO_FRONTEND = Path(__file__).resolve().parent.parent / "frontend"


class Settings(BaseSettings):
    """Everything the API, the embedded worker and `nada worker` read from the environment.

    Unset URLs mean the embedded, serverless setup: SQLite for jobs and a SQLite-backed
    Celery transport, both under `data_dir`. Scale-out sets NADA_DATABASE_URL
    (postgresql+psycopg://...) and NADA_BROKER_URL (redis://...) on every process.
    """

    model_config = SettingsConfigDict(env_prefix="NADA_", extra="ignore")

    data_dir: Path = Field(Path("nada-data"), description="job files, SQLite files")
    database_url: str | None = Field(None, description="SQLAlchemy URL; None = SQLite in data_dir")
    broker_url: str | None = Field(None, description="Celery broker; None = SQLite transport")
    broker_prefix: str = Field("", description="key prefix in a shared Redis (tests, tenants)")
    queue: str = Field("nada", description="Celery queue of long jobs (adaptations)")
    host: str = "127.0.0.1"
    api_workers: int = Field(1, ge=1, le=64, description="API processes of `nada serve`")
    port: int = 8000
    device: str = Field("auto", description="torch device of this worker: auto, cpu, cuda:N")
    # CPU share of a worker (docs/deploy.md). `nada serve` starts its local worker niced and
    # with one core fewer than the machine has, so the API stays responsive while it trains.
    worker_threads: int | None = Field(
        None, ge=1, description="torch CPU threads of a worker; None = torch's default"
    )
    local_worker_nice: int = Field(
        10, ge=0, le=19, description="niceness of `nada serve`'s local worker (0 = as the API)"
    )
    local_fast_worker: bool = Field(
        True, description="`nada serve` also starts a worker for the fast lane (photos, edits)"
    )

    # Worker leases (see jobs/leases.py): a running job belongs to the worker whose lease
    # has not expired; a worker renews it every lease_seconds / 4.
    lease_seconds: float = Field(60.0, gt=0, description="how long a silent worker keeps a job")
    max_attempts: int = Field(3, ge=1, description="claims before a job fails with worker_lost")
    reap_interval: float | None = Field(None, description="seconds between lease sweeps")
    job_time_limit: int = Field(6 * 3600, gt=0, description="longest job, seconds")
    cancel_poll_seconds: float = Field(1.0, ge=0, description="throttle of the cancel check")

    # The data directory's health (jobs/disk.py): below min_free_disk_mb the API refuses new
    # jobs with 507 and /healthz says 'degraded'; a write probe's answer is trusted this long.
    min_free_disk_mb: float = Field(64.0, ge=0, description="free MiB below which it is full")
    disk_check_seconds: float = Field(5.0, ge=0, description="cache of the write probe, s")

    # Retention and quotas (jobs/retention.py, jobs/gc.py, docs/deploy.md): unset or 0 keeps
    # everything for ever, as the embedded single-user service always did.
    retain_resumable_hours: float | None = Field(
        None,
        ge=0,
        le=10**6,
        allow_inf_nan=False,
        description="hours a finished job keeps resume.pt, checkpoints/, snapshots/",
    )
    retain_results_hours: float | None = Field(
        None,
        ge=0,
        le=10**6,
        allow_inf_nan=False,
        description="hours a finished job keeps its results (the row stays)",
    )
    disk_quota_mb: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="MB of job files per token; over it submissions are refused",
    )
    gc_interval_seconds: float = Field(
        3600.0, gt=0, description="seconds between the reaper's retention passes"
    )

    # Server-Sent Events.
    sse_poll_seconds: float = Field(0.5, gt=0)
    sse_heartbeat_seconds: float = Field(15.0, gt=0)

    frontend_dir: Path | None = Field(_REPO_FRONTEND, description="static page served at /")
    migrate_on_start: bool = True

    # Access (docs/security.md). No tokens: the API is open and `nada serve` binds to a
    # loopback address only, unless allow_insecure_bind says otherwise.
    api_tokens: SecretStr | None = Field(None, description="'tok1,alice:tok2'; None = no auth")
    allow_insecure_bind: bool = Field(False, description="serve without tokens on any address")
    cors_origins: str | None = Field(None, description="comma-separated origins; None = no CORS")
    trusted_origins: str | None = Field(
        None, description="origins besides the request's own that may send cookie writes (proxy)"
    )
    max_active_jobs: int = Field(4, ge=0, description="queued+running jobs per token; 0 = no cap")
    submissions_per_minute: int = Field(30, ge=0, description="POST /jobs per token; 0 = no cap")
    max_upload_mb: float = Field(1024, gt=0, description="largest POST /generators file, MiB")
    max_concurrent_validations: int = Field(2, ge=1, description="validations at once, per process")
    uploads_per_minute: int = Field(
        30, ge=0, description="uploads (3 routes) per token a minute; 0 = no cap"
    )
    decode_pixel_budget: int = Field(
        40_000_000, ge=1, description="pixels of uploaded images decoded at once, per process"
    )
    max_sweep_jobs: int = Field(32, ge=1, le=1024, description="jobs one sweep may create")
    # Queue priority (jobs/priority.py): what a token may ask for, 0 (normal) to the cap.
    max_priority: int = Field(
        priority.MAX_PRIORITY,
        ge=priority.MIN_PRIORITY,
        le=priority.MAX_PRIORITY,
        description="the highest priority any token may give a job",
    )
    token_max_priority: str = Field(
        "", description="per-token caps by token name, 'alice:9,bob:2' (else max_priority)"
    )
    max_photo_mb: float = Field(
        20, gt=0, description="largest uploaded photo (POST /inversions), MiB"
    )
    max_photo_pixels: int = Field(
        40_000_000,
        ge=1,
        description="largest photo in pixels (width x height): decompression bombs",
    )

    # Webhooks (jobs/webhooks/, docs/api.md#webhooks). Receivers must be public https
    # servers unless listed here (SSRF: docs/security.md).
    webhook_allowed_hosts: str = Field(
        "", description="hosts, addresses or CIDRs a webhook may reach although not public"
    )
    webhook_allow_http: bool = Field(False, description="plain http to the allowed hosts")
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=60, description="per delivery try")
    webhook_poll_seconds: float = Field(1.0, gt=0, description="how often due deliveries go")
    webhook_dispatch: bool = Field(
        True, description="this API process sends due deliveries (false: another one does)"
    )
    webhook_retry_seconds: str = Field(
        ",".join(str(d) for d in RETRY_DELAYS_S),
        description="waits before each retry, comma-separated seconds (then it gives up)",
    )

    @field_validator("webhook_allowed_hosts")
    @classmethod
    def _webhook_hosts_parse(cls, value: str) -> str:
        Allowance.parse(value)  # raises ValueError naming the entry
        return value

    @field_validator("token_max_priority")
    @classmethod
    def _priority_caps_parse(cls, value: str) -> str:
        priority.parse_caps(value)  # raises ValueError naming the entry
        return value

    def priority_cap(self, owner: str | None) -> int:
        """The highest priority `owner` (a token's name) may give a job."""
        caps = priority.parse_caps(self.token_max_priority)
        return priority.cap_of(owner, default_cap=self.max_priority, caps=caps)

    @field_validator("webhook_retry_seconds")
    @classmethod
    def _webhook_retries_parse(cls, value: str) -> str:
        parse_delays(value)  # raises ValueError saying what is wrong
        return value

    @property
    def webhook_retries(self) -> tuple[float, ...]:
        return parse_delays(self.webhook_retry_seconds)

    @property
    def webhook_allowance(self) -> Allowance:
        """NADA_WEBHOOK_ALLOWED_HOSTS / NADA_WEBHOOK_ALLOW_HTTP as a targets.Allowance."""
        return Allowance.parse(self.webhook_allowed_hosts, allow_http=self.webhook_allow_http)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("api_tokens")
    @classmethod
    def _tokens_parse(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_tokens(value.get_secret_value())  # raises ValueError naming the entry
        return value

    @field_validator(
        "frontend_dir", "database_url", "broker_url", "api_tokens", "cors_origins",
        "retain_resumable_hours", "retain_results_hours", "disk_quota_mb", mode="before",
    )  # fmt: skip
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value  # NADA_FRONTEND_DIR= turns the page off

    @property
    def db_url(self) -> str:
        url = self.database_url or f"sqlite:///{self.data_dir / 'nada.sqlite'}"
        # 'postgresql://' would pick psycopg2; we ship psycopg 3.
        for plain in ("postgres://", "postgresql://"):
            if url.startswith(plain):
                return "postgresql+psycopg://" + url[len(plain) :]
        return url

    @property
    def broker(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{self.data_dir / 'broker.sqlite'}"

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url is None

    @property
    def tokens(self) -> tuple[ApiToken, ...]:
        """The configured API tokens, hashed; empty = no authentication."""
        return parse_tokens(self.api_tokens.get_secret_value() if self.api_tokens else None)

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in (self.cors_origins or "").split(",") if o.strip()]

    @property
    def trusted_origin_list(self) -> list[str]:
        """NADA_TRUSTED_ORIGINS as browsers write an Origin: 'https://host[:port]', lower case."""
        return [
            o.strip().rstrip("/").lower()
            for o in (self.trusted_origins or "").split(",")
            if o.strip()
        ]

    @property
    def fast_queue(self) -> str:
        """The queue of short jobs (photos, edits): '<queue>-fast'."""
        return f"{self.queue}-fast"

    def queue_of(self, lane: str) -> str:
        return self.fast_queue if lane == "fast" else self.queue

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def retention(self) -> RetentionPolicy:
        """NADA_RETAIN_*_HOURS as a policy (0 or unset: kept for ever)."""

        def hours(value: float | None) -> timedelta | None:
            return timedelta(hours=value) if value else None

        return RetentionPolicy(
            resumable=hours(self.retain_resumable_hours),
            results=hours(self.retain_results_hours),
        )

    @property
    def disk_quota_bytes(self) -> int | None:
        """NADA_DISK_QUOTA_MB in bytes (MB = 10**6); None: no quota."""
        return int(self.disk_quota_mb * 1_000_000) if self.disk_quota_mb else None

    @property
    def reap_every(self) -> float:
        return self.reap_interval or max(self.lease_seconds / 2, 0.5)


class SettingsError(ValueError):
    """A setting read from the environment is invalid. The message names each variable and
    what is wrong with it, and never repeats a value: NADA_API_TOKENS holds other users'
    secrets, and pydantic's own message would quote the whole input (docs/security.md)."""


def describe_errors(exc: ValidationError) -> str:
    """`exc` as one line per invalid setting (`NADA_FIELD: what is wrong`), without inputs."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False, include_context=False):
        field = ".".join(str(part) for part in error["loc"]) or "settings"
        message = str(error["msg"]).removeprefix("Value error, ")
        prefix = f"NADA_{field.upper()}"
        lines.append(message if message.startswith(prefix) else f"{prefix}: {message}")
    return "; ".join(lines)


@lru_cache
def get_settings() -> Settings:
    """The process's settings from the environment; SettingsError (no values quoted) if any
    is invalid."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(describe_errors(exc)) from None
