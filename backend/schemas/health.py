"""Response body of GET /health: the database, the broker and the data directory."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unavailable"]
    broker: Literal["ok", "unavailable"]
    version: str
    data_dir: Literal["full", "unwritable"] | None = Field(
        None, description="the data directory's fault (new jobs get 507); absent while it is ok"
    )
    reason: str | None = Field(None, description="what data_dir means, in words")
