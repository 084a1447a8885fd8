"""Webhook fields of every submission, and the answers of the webhook routes
(docs/api.md#webhooks)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

WebhookEvent = Literal["start", "progress", "completed"]


class WebhookFields(BaseModel):
    """`webhook` and `webhook_events`, on every POST that makes jobs."""

    webhook: str | None = Field(
        None,
        max_length=2048,
        description="an https URL the service POSTs this job's events to, signed as Standard "
        "Webhooks specify (GET /webhook-secret); loopback, private and link-local "
        "addresses are refused unless the operator allows them",
    )
    webhook_events: list[WebhookEvent] | None = Field(
        None,
        min_length=1,
        max_length=3,
        description="which events: start, progress (at most once per sample step, 500 ms "
        "apart), completed (succeeded, failed or canceled); default: completed",
    )

    @model_validator(mode="after")
    def _events_need_a_webhook(self) -> WebhookFields:
        if self.webhook_events is not None:
            if self.webhook is None:
                raise ValueError("webhook_events needs a webhook")
            if len(set(self.webhook_events)) != len(self.webhook_events):
                raise ValueError("webhook_events names an event twice")
        return self


WEBHOOK_FIELDS = frozenset(WebhookFields.model_fields)


class WebhookPublic(BaseModel):
    url: str
    events: list[str] = Field(description="start, progress, completed")


class DeliveryAttemptPublic(BaseModel):
    number: int
    status: int | None = Field(description="the receiver's HTTP status; null: no answer")
    latency_ms: float
    error: str | None
    at: datetime


class DeliveryPublic(BaseModel):
    id: str = Field(description="the message id (webhook-id): the same for every attempt")
    event: str = Field(description="start, progress or completed")
    url: str
    state: str = Field(description="pending, delivered, or failed (its retries spent)")
    attempts: list[DeliveryAttemptPublic]
    next_attempt_at: datetime | None = Field(description="when it is tried again (pending)")
    created_at: datetime
    finished_at: datetime | None


class DeliveriesPublic(BaseModel):
    data: list[DeliveryPublic]
    count: int


class WebhookSecretPublic(BaseModel):
    secret: str = Field(description="'whsec_...': the HMAC-SHA256 key, base64 after the prefix")
    previous_secret: str | None = Field(
        description="the secret before the last rotation, which still signs beside it for 24 h"
    )
    rotated_at: datetime
