"""`nada serve`: the API, the page and (unless --no-worker) a local worker process.

With no NADA_BROKER_URL the queue is embedded (a SQLite-backed Celery transport in the
data directory), so `nada serve` alone is a complete, server-less installation. The worker
is a child process (`python -m worker.worker_cli`) running the same task code as `nada
worker`; this process never imports torch.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from nada.errors import CLIError

if TYPE_CHECKING:
    from jobs.settings import Settings

log = logging.getLogger(__name__)

_RESTART_DELAY_S = 3.0  # between restarts of a local worker that died
_GRACEFUL_SHUTDOWN_S = 5  # then open event streams are cut (clients reconnect with Last-Event-ID)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the web app (API + page) and a local worker",
        description=(
            "Serve the REST API (/api/v1, docs at /docs) and the page (/). Without "
            "NADA_BROKER_URL jobs go through an embedded SQLite queue in the data directory "
            "and a local worker runs them; with NADA_BROKER_URL=redis://... and "
            "NADA_DATABASE_URL=postgresql://..., use --no-worker and start `nada worker` "
            "on the GPU machines."
        ),
    )
    parser.add_argument("--host", default=None, help="address to bind (NADA_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (NADA_PORT, 8000)")
    parser.add_argument("--data-dir", type=Path, default=None, help="NADA_DATA_DIR (./nada-data)")
    parser.add_argument("--no-worker", action="store_true", help="run the API only")
    parser.add_argument(
        "--insecure-bind",
        action="store_true",
        help="allow a non-loopback --host without NADA_API_TOKENS (NADA_ALLOW_INSECURE_BIND=1)",
    )
    parser.add_argument("--device", default=None, help="the local worker's device (auto)")
    parser.set_defaults(func=serve)


def _check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise CLIError(f"cannot listen on {host}:{port} ({exc.strerror}); try --port") from None


def check_bind(settings: Settings, *, insecure_bind: bool = False) -> None:
    """Refuse to serve an open API (no NADA_API_TOKENS) on anything but a loopback address,
    unless asked to explicitly (--insecure-bind, NADA_ALLOW_INSECURE_BIND=1)."""
    from backend.security import is_loopback

    if settings.tokens or is_loopback(settings.host):
        return
    if insecure_bind or settings.allow_insecure_bind:
        log.warning("serving on %s without API tokens: anyone who can reach it can use it",
                    settings.host)  # fmt: skip
        return
    raise CLIError(
        f"refusing to serve on {settings.host} without API tokens: anyone who can reach it "
        "could run jobs. Set NADA_API_TOKENS (see docs/security.md), bind to 127.0.0.1, or "
        "pass --insecure-bind (NADA_ALLOW_INSECURE_BIND=1) if something else guards it"
    )


class LocalWorker:
    """A `python -m worker.worker_cli` child, restarted if it dies while we serve."""

    def __init__(self, device: str | None):
        self.argv = [
            sys.executable,
            "-m",
            "worker.worker_cli",
            "--hostname",
            "nada-local@%h",
            "--parent-pid",
            str(os.getpid()),
        ]
        if device:
            self.argv += ["--device", device]
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="local-worker", daemon=True)

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def _spawn(self) -> None:
        self.process = subprocess.Popen(self.argv, env=os.environ.copy())
        log.info("local worker started (pid %d)", self.process.pid)

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            assert self.process is not None
            code = self.process.wait()
            if self._stopping.is_set():
                return
            log.warning("local worker exited with %s; restarting in %.0f s", code, _RESTART_DELAY_S)
            if self._stopping.wait(_RESTART_DELAY_S):
                return
            self._spawn()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()  # warm shutdown; a running job is re-queued by its lease
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def serve(args: argparse.Namespace) -> int:
    # Flags become environment variables so the worker child sees the same settings.
    for flag, env in (
        (args.host, "NADA_HOST"),
        (args.port, "NADA_PORT"),
        (args.data_dir, "NADA_DATA_DIR"),
    ):
        if flag is not None:
            os.environ[env] = str(flag)
    from pydantic import ValidationError

    from jobs.settings import get_settings

    get_settings.cache_clear()
    try:
        settings = get_settings()
    except ValidationError as exc:
        raise CLIError(str(exc)) from None
    os.environ["NADA_DATA_DIR"] = str(settings.data_dir)  # absolute, for the child
    check_bind(settings, insecure_bind=args.insecure_bind)

    import uvicorn

    from backend.main import create_app
    from jobs.db.session import migrate

    _check_port(settings.host, settings.port)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.db_url)
    worker = None
    if not args.no_worker:
        worker = LocalWorker(args.device)
        worker.start()
    elif settings.embedded_broker:
        log.info(
            "no local worker: jobs wait for `nada worker` with NADA_DATA_DIR=%s", settings.data_dir
        )
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"http://{shown}:{settings.port}/"
    print(f"nada: serving on {url}  (API docs: {url}docs, data: {settings.data_dir})", flush=True)
    # uvicorn re-raises the SIGTERM it shut down for; make that an exit that runs `finally`
    # (stopping the local worker) instead of the default handler's instant death.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    started = time.monotonic()
    try:
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level="info",
            timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
            timeout_keep_alive=30,  # > clients' idle expiry (httpx: 5 s), so no reuse race
        )
    finally:
        if worker is not None:
            worker.stop()
        log.debug("served for %.0f s", time.monotonic() - started)
    return 0
