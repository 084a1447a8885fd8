"""The webhook outbox: deliveries made when a job's events happen, claimed and recorded by
the dispatcher (backend/webhook_dispatcher.py), and each owner's signing secret.

A delivery is written in the same transaction as the job event that causes it
(`jobs.store.add_event` calls `enqueue`), so an event that happened is never without its
delivery, whatever process wrote it and whatever crashes afterwards: delivery is at least
once, and the message id (`evt_...`) lets receivers de-duplicate.

Events (`webhook_events`): 'start' (a worker started it), 'progress' (a sample step: at
most one per sample step, never two within PROGRESS_GAP of each other, and one waiting
progress message is not joined by another: it will carry the newest state when it goes),
'completed' (succeeded, failed or canceled).
"""

from __future__ import annotations

import secrets as _secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from jobs.db.models import Job, WebhookAttempt, WebhookDelivery, WebhookSecret
from jobs.webhooks import delivery, signing

EVENTS = ("start", "progress", "completed")
DEFAULT_EVENTS = ("completed",)
EVENT_OF_KIND = {  # job_events.kind -> webhook event
    "started": "start",
    "sample": "progress",
    "succeeded": "completed",
    "failed": "completed",
    "canceled": "completed",
}
PROGRESS_GAP = timedelta(milliseconds=500)
PREVIOUS_SECRET_FOR = timedelta(hours=24)  # after a rotation the old secret signs too


def lease_for(timeout_s: float) -> timedelta:
    """How long a dispatcher holds a claimed delivery: its attempt's connect and read
    timeouts, and a margin; a crashed dispatcher's deliveries are taken again after it."""
    return timedelta(seconds=2 * timeout_s + 5)


PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def new_message_id() -> str:
    return "evt_" + _secrets.token_hex(16)


def enqueue(session: Session, *, job_id: str, kind: str, now: datetime) -> WebhookDelivery | None:
    """The delivery a job event of `kind` makes, if the job has a webhook for it."""
    event = EVENT_OF_KIND.get(kind)
    if event is None:
        return None
    row = session.execute(
        select(Job.webhook_url, Job.webhook_events).where(Job.id == job_id)
    ).first()
    if row is None or not row.webhook_url or event not in (row.webhook_events or DEFAULT_EVENTS):
        return None
    due = now
    if event == "progress":
        last = session.execute(
            select(WebhookDelivery.state, WebhookDelivery.attempts, WebhookDelivery.created_at)
            .where(WebhookDelivery.job_id == job_id, WebhookDelivery.event == "progress")
            .order_by(WebhookDelivery.created_at.desc())
            .limit(1)
        ).first()
        if last is not None:
            if last.state == PENDING and last.attempts == 0:
                return None  # the waiting one will carry this state too
            due = max(now, last.created_at + PROGRESS_GAP)
    item = WebhookDelivery(
        id=new_message_id(),
        job_id=job_id,
        event=event,
        url=row.webhook_url,
        state=PENDING,
        attempts=0,
        next_attempt_at=due,
        created_at=now,
    )
    session.add(item)
    return item


@dataclass(frozen=True)
class Claimed:
    """A delivery a dispatcher holds now: what it needs to send it."""

    id: str
    job_id: str
    event: str
    url: str
    attempts: int  # made before this one
    body: str | None  # fixed at the first attempt; None: build it now


def claim_due(
    session: Session, *, now: datetime, limit: int = 16, lease: timedelta | None = None
) -> list[Claimed]:
    """Take up to `limit` due deliveries for `lease` (another dispatcher, or this one after
    a crash, takes them again once it passes). Each is claimed by a conditional update, so
    two dispatchers never send the same attempt."""
    lease = lease or lease_for(delivery.TIMEOUT_S)
    free = or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now)
    rows = (
        session.execute(
            select(WebhookDelivery)
            .where(WebhookDelivery.state == PENDING, WebhookDelivery.next_attempt_at <= now, free)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    claimed: list[Claimed] = []
    for row in rows:
        taken = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == row.id,
                WebhookDelivery.state == PENDING,
                WebhookDelivery.attempts == row.attempts,
                free,
            )
            .values(lease_until=now + lease)
        )
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(Claimed(row.id, row.job_id, row.event, row.url, row.attempts, row.body))
    return claimed


def record(
    session: Session,
    item: Claimed,
    result: delivery.AttemptResult,
    *,
    now: datetime,
    body: str,
    delays: tuple[float, ...] = delivery.RETRY_DELAYS_S,
) -> str:
    """Record one attempt of a claimed delivery; return its state now (delivered, pending
    with the next try scheduled, or failed once the retries are spent)."""
    number = item.attempts + 1
    session.add(
        WebhookAttempt(
            delivery_id=item.id,
            number=number,
            status=result.status,
            latency_ms=result.latency_ms,
            error=result.error,
            at=now,
        )
    )
    values: dict[str, object] = {
        "attempts": number,
        "lease_until": None,
        "body": body,
        "last_status": result.status,
        "last_error": result.error,
    }
    if result.ok:
        values |= {"state": DELIVERED, "finished_at": now}
    else:
        wait = delivery.retry_delay(number, delays=delays)
        if wait is None:
            values |= {"state": FAILED, "finished_at": now}
        else:
            values["next_attempt_at"] = now + timedelta(seconds=wait)
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == item.id, WebhookDelivery.attempts == item.attempts)
        .values(**values)
    )
    return str(values.get("state", PENDING))


def release(session: Session, item: Claimed) -> None:
    """Give a claimed delivery back without an attempt (this dispatcher is stopping)."""
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == item.id, WebhookDelivery.attempts == item.attempts)
        .values(lease_until=None)
    )


def refuse(session: Session, item: Claimed, *, now: datetime, reason: str) -> None:
    """End a delivery that can no longer be made (its URL is now refused, the job is gone),
    recorded as one attempt without an answer."""
    record(session, item, delivery.AttemptResult(None, 0.0, reason), now=now, body=item.body or "")
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == item.id)
        .values(state=FAILED, finished_at=now, next_attempt_at=now)
    )


def secrets_for(session: Session, owner: str, *, now: datetime) -> list[str]:
    """The secrets that sign `owner`'s messages now: the current one (made on first use),
    and the previous one for PREVIOUS_SECRET_FOR after a rotation."""
    row = session.get(WebhookSecret, owner)
    if row is None:
        row = WebhookSecret(owner=owner, secret=signing.new_secret(), rotated_at=now)
        session.add(row)
        session.flush()
    out = [row.secret]
    if row.previous_secret and now - row.rotated_at < PREVIOUS_SECRET_FOR:
        out.append(row.previous_secret)
    return out


def rotate(session: Session, owner: str, *, now: datetime) -> WebhookSecret:
    """A new secret for `owner`; the old one keeps signing beside it for a while."""
    row = session.get(WebhookSecret, owner)
    if row is None:
        row = WebhookSecret(owner=owner, secret=signing.new_secret(), rotated_at=now)
        session.add(row)
    else:
        row.previous_secret, row.secret, row.rotated_at = row.secret, signing.new_secret(), now
    session.flush()
    return row


def deliveries_of(
    session: Session, job_id: str
) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
    """A job's deliveries, oldest first, each with its attempts."""
    items = (
        session.execute(
            select(WebhookDelivery)
            .where(WebhookDelivery.job_id == job_id)
            .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
        )
        .scalars()
        .all()
    )
    if not items:
        return []
    attempts = (
        session.execute(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_([d.id for d in items]))
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.number)
        )
        .scalars()
        .all()
    )
    by_delivery: dict[str, list[WebhookAttempt]] = {}
    for attempt in attempts:
        by_delivery.setdefault(attempt.delivery_id, []).append(attempt)
    return [(d, by_delivery.get(d.id, [])) for d in items]


def pending_count(session: Session) -> int:
    """Deliveries waiting to go (for /healthz and the tests)."""
    return int(
        session.execute(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.state == PENDING)
        ).scalar_one()
    )
