"""The webhook dispatcher: sends the deliveries in the outbox (jobs/webhooks/outbox.py).

One per API process, started by the app's lifespan beside the event hub. Every
NADA_WEBHOOK_POLL_SECONDS it claims the due deliveries (a lease per delivery, so several API
processes share the work and a crashed one's deliveries are taken again once its leases
pass) and sends each in a thread of its own, at most CONCURRENCY at once: a slow receiver
never holds up a request, nor another receiver. Deliveries never run in a training worker.

A delivery's body is fixed at its first attempt: the job as GET /jobs/{id} shows it then,
inside a Standard Webhooks envelope ({"type": "job.completed", "timestamp", "data"}); every
attempt is signed anew (webhook-timestamp is the attempt's).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import anyio
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from backend.api.job_views import public_job
from jobs.db.models import Job
from jobs.db.session import get_sessionmaker
from jobs.settings import Settings
from jobs.webhooks import delivery, outbox, signing, targets

log = logging.getLogger(__name__)

CONCURRENCY = 8  # deliveries in flight per API process
BATCH = 16  # deliveries claimed per poll


def _now() -> datetime:
    return datetime.now(UTC)


class WebhookDispatcher:
    """Start it with `async with dispatcher.running():`; `poll_once` is one round (tests)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._limiter = anyio.CapacityLimiter(CONCURRENCY)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Send due deliveries until the block ends (nothing with NADA_WEBHOOK_DISPATCH off)."""
        if not self.settings.webhook_dispatch:
            yield
            return
        async with anyio.create_task_group() as group:
            group.start_soon(self._run)
            try:
                yield
            finally:
                group.cancel_scope.cancel()

    async def _run(self) -> None:
        while True:
            try:
                busy = await self.poll_once()
            except (OperationalError, InterfaceError) as exc:  # the database is away: wait
                log.warning("webhook dispatcher: database unavailable (%s)", type(exc).__name__)
                busy = 0
            except Exception:  # never let one bad row stop every later delivery
                log.exception("webhook dispatcher: a round failed")
                busy = 0
            if busy < BATCH:
                await anyio.sleep(self.settings.webhook_poll_seconds)

    async def poll_once(self) -> int:
        """Claim the due deliveries and send them; return how many were claimed."""
        claimed = await anyio.to_thread.run_sync(self._claim)
        if not claimed:
            return 0
        async with anyio.create_task_group() as group:
            for item in claimed:
                group.start_soon(self._send, item)
        return len(claimed)

    def _claim(self) -> list[outbox.Claimed]:
        with get_sessionmaker(self.settings.db_url)() as session, session.begin():
            lease = outbox.lease_for(self.settings.webhook_timeout_seconds)
            return outbox.claim_due(session, now=_now(), limit=BATCH, lease=lease)

    async def _send(self, item: outbox.Claimed) -> None:
        async with self._limiter:
            await anyio.to_thread.run_sync(self.deliver, item)

    def deliver(self, item: outbox.Claimed) -> str:
        """One attempt of a claimed delivery, recorded; returns the delivery's state."""
        maker = get_sessionmaker(self.settings.db_url)
        with maker() as session, session.begin():
            job = session.get(Job, item.job_id)
            if job is None:  # deleted meanwhile: its deliveries went with it
                return outbox.FAILED
            body = item.body or self._body(session, job, item)
            secrets = outbox.secrets_for(session, job.owner, now=_now())
        data = body.encode()
        try:
            target = targets.resolve(item.url, self.settings.webhook_allowance)
        except targets.TargetRefused as exc:  # DNS may recover: an attempt like any other
            result = delivery.AttemptResult(None, 0.0, f"not called: webhook {exc}")
        else:
            headers = signing.headers(secrets, item.id, data)
            result = delivery.post(
                target, data, headers, timeout_s=self.settings.webhook_timeout_seconds
            )
        with maker() as session, session.begin():
            state = outbox.record(
                session, item, result, now=_now(), body=body,
                delays=self.settings.webhook_retries,
            )  # fmt: skip
        log.info(
            "webhook %s of job %s (%s): %s", item.id, item.job_id, item.event,
            result.error or f"delivered ({result.status})",
        )  # fmt: skip
        return state

    def _body(self, session: Session, job: Job, item: outbox.Claimed) -> str:
        public = public_job(session, self.settings, job)
        envelope = {
            "type": f"job.{item.event}",
            "timestamp": _now().isoformat(),
            "data": public.model_dump(mode="json"),
        }
        return json.dumps(envelope, separators=(",", ":"))
