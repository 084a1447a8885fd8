"""The API's answer while the job database is unreachable: 503 + Retry-After, not 500.

A PostgreSQL restart, failover or network cut surfaces as SQLAlchemy's OperationalError
(connection refused, server closed the connection), InterfaceError (a connection already
closed) or TimeoutError (no pooled connection within the pool timeout). SQLite reports
a lock that outlasted its busy timeout as OperationalError too; that is also worth a retry.
The API recovers by itself once the database is back: the PostgreSQL engine pings each
pooled connection before use (`pool_pre_ping`, jobs/db/session.py) and replaces the
dead ones. Other database errors (integrity, programming) stay 500: they are bugs.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5  # what the client is told to wait before trying again
UNAVAILABLE_DETAIL = "database unavailable, retry"
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
)


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # One line, no traceback: an outage makes every request fail the same way.
    log.warning(
        "%s %s: database unavailable (%s)",
        request.method,
        request.url.path,
        str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
    )
    return JSONResponse(
        {"detail": UNAVAILABLE_DETAIL},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def install_db_error_handlers(app: FastAPI) -> None:
    """Answer 503 {"detail": "database unavailable, retry"} with a Retry-After header when
    a request fails because the database cannot be reached."""
    for error in UNAVAILABLE_ERRORS:
        app.add_exception_handler(error, _database_unavailable)
