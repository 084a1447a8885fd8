"""The webhook routes: each owner's signing secret, and a job's deliveries.

GET /webhook-secret shows the secret that signs the caller's webhook messages (made on
first use); POST /webhook-secret/rotate replaces it, and the previous one signs beside it
for 24 h so that receivers can switch. GET /jobs/{id}/deliveries lists every delivery of the
job with each attempt (status, latency, error). docs/api.md#webhooks.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from backend.api.deps import CurrentOwner, SessionDep
from backend.api.job_views import JobId
from backend.schemas.webhooks import (
    DeliveriesPublic,
    DeliveryAttemptPublic,
    DeliveryPublic,
    WebhookSecretPublic,
)
from jobs import store
from jobs.db.models import WebhookSecret
from jobs.webhooks import outbox

router = APIRouter(tags=["webhooks"])


def _secret_public(row: WebhookSecret) -> WebhookSecretPublic:
    return WebhookSecretPublic(
        secret=row.secret, previous_secret=row.previous_secret, rotated_at=row.rotated_at
    )


@router.get("/webhook-secret", response_model=WebhookSecretPublic)
def read_webhook_secret(session: SessionDep, owner: CurrentOwner) -> WebhookSecretPublic:
    """The secret that signs your webhook messages (HMAC-SHA256, Standard Webhooks)."""
    now = datetime.now(UTC)
    outbox.secrets_for(session, owner or "", now=now)  # made on first use
    row = session.get(WebhookSecret, owner or "")
    assert row is not None
    public = _secret_public(row)
    session.commit()
    return public


@router.post("/webhook-secret/rotate", response_model=WebhookSecretPublic)
def rotate_webhook_secret(session: SessionDep, owner: CurrentOwner) -> WebhookSecretPublic:
    """A new secret; the previous one keeps signing beside it for 24 hours."""
    row = outbox.rotate(session, owner or "", now=datetime.now(UTC))
    public = _secret_public(row)
    session.commit()
    return public


@router.get("/jobs/{job_id}/deliveries", response_model=DeliveriesPublic)
def list_deliveries(job_id: JobId, session: SessionDep, owner: CurrentOwner) -> DeliveriesPublic:
    """Every webhook delivery of the job, oldest first, with its attempts."""
    store.get_job(session, job_id=job_id, owner=owner)  # 404 for another owner's job
    data = [
        DeliveryPublic(
            id=item.id,
            event=item.event,
            url=item.url,
            state=item.state,
            attempts=[
                DeliveryAttemptPublic(
                    number=a.number,
                    status=a.status,
                    latency_ms=a.latency_ms,
                    error=a.error,
                    at=a.at,
                )  # fmt: skip
                for a in attempts
            ],
            next_attempt_at=item.next_attempt_at if item.state == outbox.PENDING else None,
            created_at=item.created_at,
            finished_at=item.finished_at,
        )
        for item, attempts in outbox.deliveries_of(session, job_id)
    ]
    return DeliveriesPublic(data=data, count=len(data))
