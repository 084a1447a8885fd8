"""The FastAPI application: wiring only (routes live in backend/api/routes/)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from backend.api.cached_reads import CachedReads
from backend.api.db_errors import install_db_error_handlers
from backend.api.deps import get_owner
from backend.api.middleware import BodyLimitMiddleware, HeadMiddleware
from backend.api.responses import QueueStatsCache
from backend.api.routes import (
    clip_models,
    continuations,
    directions,
    domains,
    generators,
    health,
    images,
    inversions,
    jobs,
    params,
    renders,
    session,
    snapshots,
    sweeps,
    webhooks,
    weights,
)
from backend.api.validation_errors import install_validation_error_handler
from backend.api_docs import install_api_docs
from backend.schemas import API_PREFIX
from backend.security import SubmissionLimiter
from backend.sse import EventHub
from backend.webhook_dispatcher import WebhookDispatcher
from jobs.db.session import migrate
from jobs.gc import QuotaExceeded
from jobs.queue import JobQueue, Reaper
from jobs.retention import FilesExpired
from jobs.settings import Settings, get_settings
from jobs.store import JobConflict, JobNotFound
from nada import __version__

REQUEST_THREADS = 12
MAX_JSON_BYTES = 64 << 10  # a job request is well under 2 KiB; the upload has its own cap


_STREAMED = tuple(
    f"{API_PREFIX}/{name}" for name in ("generators", "inversions", "images", "directions")
)


def _streamed_upload(method: str, path: str) -> bool:
    """POST /generators, /inversions, /images and /directions stream files and enforce their
    own caps (NADA_MAX_UPLOAD_MB, NADA_MAX_PHOTO_MB, a direction's 4 MiB)."""
    return method == "POST" and path.rstrip("/") in _STREAMED


_frozen = False


def _freeze_startup_heap() -> None:
    """Move what start-up made (modules, the app, ~160k objects) out of the collector's
    reach, once per process: a full collection otherwise walks all of it, a pause of
    0.2-1 s on this 2-core machine that every request in flight waits out (the API's p99;
    docs/performance.md). Later objects are collected as usual."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


def create_app(settings: Settings | None = None, *, queue: JobQueue | None = None) -> FastAPI:
    """The API (under /api/v1), its docs (/docs) and the page (/, if frontend/ exists)."""
    settings = settings or get_settings()
    queue = queue or JobQueue(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            await run_in_threadpool(migrate, settings.db_url)
        settings.jobs_dir.mkdir(parents=True, exist_ok=True)
        # Fewer request threads than anyio's 40: the routes are short and hold the GIL, and
        # forty threads contending for it cost more in switches than they add in overlap.
        anyio.to_thread.current_default_thread_limiter().total_tokens = REQUEST_THREADS
        reaper = Reaper(settings, queue)
        reaper.start()
        # One follower of job_events for all of this process's event streams (backend/sse.py).
        app.state.event_hub = EventHub(settings.db_url, poll_seconds=settings.sse_poll_seconds)
        # Webhook deliveries (backend/webhook_dispatcher.py): sent from here, never a worker.
        app.state.webhooks = WebhookDispatcher(settings)
        _freeze_startup_heap()
        try:
            async with app.state.event_hub.running(), app.state.webhooks.running():
                yield
        finally:
            reaper.stop()
            queue.close()

    app = FastAPI(
        title="StyleGAN-NADA",
        version=__version__,
        description="Text-driven domain adaptation of StyleGAN2 generators, as a job queue.",
        lifespan=lifespan,
        docs_url=None,  # served by install_api_docs, from this process: no CDN
        redoc_url=None,
    )
    install_api_docs(app, title=app.title)
    app.state.settings = settings
    app.state.queue = queue
    app.state.submission_limiter = SubmissionLimiter(settings.submissions_per_minute)
    app.state.upload_limiter = SubmissionLimiter(settings.uploads_per_minute)
    app.state.queue_stats = QueueStatsCache(ttl=1.0)  # polls share the queue's ETA inputs
    if settings.cors_origin_list:  # off unless NADA_CORS_ORIGINS names the origins
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
            expose_headers=["Location", "Retry-After"],
        )

    install_db_error_handlers(app)  # 503 + Retry-After while the database is unreachable
    install_validation_error_handler(app)  # 422 bodies that encode whatever came in
    # Outermost last: HEAD is turned into GET before the body limit looks at the request.
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=MAX_JSON_BYTES, exempt=_streamed_upload
    )  # fmt: skip
    app.add_middleware(HeadMiddleware)
    # Outermost of all: polls the view cache holds are answered before any of the above.
    app.add_middleware(CachedReads)

    @app.exception_handler(JobNotFound)
    async def _not_found(_: Request, exc: JobNotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(JobConflict)
    async def _conflict(_: Request, exc: JobConflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(QuotaExceeded)
    async def _over_quota(_: Request, exc: QuotaExceeded) -> JSONResponse:
        body = {"detail": str(exc), "code": exc.code, "used_bytes": exc.used}
        return JSONResponse({**body, "quota_bytes": exc.quota}, status_code=403)

    @app.exception_handler(FilesExpired)  # retention removed them: gone, not unknown
    async def _gone(_: Request, exc: FilesExpired) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "code": exc.code}, status_code=410)

    # Every /api/v1 route needs a token when NADA_API_TOKENS is set; /healthz stays open.
    for module in (
        jobs,
        continuations,
        snapshots,
        sweeps,
        inversions,
        renders,
        images,
        generators,
        domains,
        directions,
        clip_models,
        weights,
        params,
        webhooks,
    ):
        app.include_router(module.router, prefix=API_PREFIX, dependencies=[Depends(get_owner)])
    app.include_router(health.router, prefix=API_PREFIX)
    app.include_router(session.router, prefix=API_PREFIX)  # checks its token itself
    if settings.frontend_dir and settings.frontend_dir.is_dir():
        app.mount("/", StaticFiles(directory=settings.frontend_dir, html=True), name="frontend")
    return app
