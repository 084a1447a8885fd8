"""/healthz: is the database reachable, is the broker reachable, can the data dir be written."""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import text

from backend.api.deps import QueueDep, SessionDep, SettingsDep
from backend.schemas.health import HealthPublic, RetentionPublic
from jobs import disk
from nada import __version__

router = APIRouter(tags=["health"])

_BROKER_CHECK_SECONDS = 10.0  # a broker probe opens a connection: do it this often at most


def _broker_ok(request: Request, queue: QueueDep) -> bool:
    cached = getattr(request.app.state, "broker_health", None)
    if cached and time.monotonic() - cached[0] < _BROKER_CHECK_SECONDS:
        return cached[1]
    ok = queue.broker_ok(timeout=2.0)
    request.app.state.broker_health = (time.monotonic(), ok)
    return ok


@router.get(
    "/healthz",
    response_model=HealthPublic,
    response_model_exclude_none=True,
    responses={503: {"model": HealthPublic}},
)
def healthz(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    queue: QueueDep,
    response: Response,
) -> HealthPublic:
    """200 while the database answers; 'degraded' if the broker does not (jobs still queue
    and are dispatched once it is back), or if the data directory is full or not writable
    (`data_dir` and `reason` say which; new jobs are refused with 507 meanwhile).
    `retention` states what the operator keeps (nulls: everything, for ever)."""
    try:
        session.execute(text("SELECT 1"))
        database: Literal["ok", "unavailable"] = "ok"
    except Exception:
        database = "unavailable"
    broker: Literal["ok", "unavailable"] = "ok" if _broker_ok(request, queue) else "unavailable"
    data_dir = disk.check(settings)
    if database != "ok":
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return HealthPublic(
        status="ok" if database == broker == data_dir == "ok" else "degraded",
        database=database,
        broker=broker,
        version=__version__,
        data_dir=None if data_dir == "ok" else data_dir,
        reason=disk.REASONS.get(data_dir),
        retention=RetentionPublic(
            resumable_hours=settings.retain_resumable_hours or None,
            results_hours=settings.retain_results_hours or None,
            disk_quota_mb=settings.disk_quota_mb or None,
        ),
    )
