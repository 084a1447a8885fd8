"""Response body of GET /health: the database, the broker, the data directory and the
retention the operator set (docs/deploy.md#retention-and-quotas)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer


class RetentionPublic(BaseModel):
    """NADA_RETAIN_*_HOURS and NADA_DISK_QUOTA_MB; null: kept for ever, no quota."""

    resumable_hours: float | None = Field(
        description="hours a finished job keeps resume.pt, checkpoints/, snapshots/"
    )
    results_hours: float | None = Field(
        description="hours a finished job keeps its files (its record stays: files_expired)"
    )
    disk_quota_mb: float | None = Field(description="MB of job files each token may hold")

    @model_serializer(mode="wrap")
    def _nulls_stated(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Its nulls say "for ever": kept under /healthz's response_model_exclude_none."""
        return {**dict.fromkeys(type(self).model_fields), **handler(self)}


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unavailable"]
    broker: Literal["ok", "unavailable"]
    version: str
    data_dir: Literal["full", "unwritable"] | None = Field(
        None, description="the data directory's fault (new jobs get 507); absent while it is ok"
    )
    reason: str | None = Field(None, description="what data_dir means, in words")
    retention: RetentionPublic | None = Field(
        None, description="how long finished jobs' files stay, and the per-token disk quota"
    )
