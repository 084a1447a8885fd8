"""`nada serve`: the API, the page and (unless --no-worker) a local worker process.

With no NADA_BROKER_URL the queue is embedded (a SQLite-backed Celery transport in the
data directory), so `nada serve` alone is a complete, server-less installation. The worker
is a child process (`python -m cli.worker`) running the same task code as `nada
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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="API processes sharing the port (NADA_API_WORKERS, 1); see docs/deploy.md",
    )
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


def local_worker_env(
    settings: Settings, environ: dict[str, str], *, euid: int | None = None
) -> dict[str, str]:
    """The local worker's environment: unless told otherwise, it leaves one core to the
    API (NADA_WORKER_THREADS = cores - 1, at least 1), and its OpenMP threads sleep at a
    barrier instead of spinning (OMP_WAIT_POLICY=PASSIVE: on cores shared with the API the
    generator's many small ops cost 25% less CPU for the same wall time, docs/performance.md).
    Run as root (`euid`, this process's by default), it leaves out Celery's superuser
    warning, which `nada serve` replaces with one notice (run_as_root_notice)."""
    env = dict(environ)
    if settings.worker_threads is None and "NADA_WORKER_THREADS" not in env:
        env["NADA_WORKER_THREADS"] = str(max(1, (os.cpu_count() or 2) - 1))
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if (os.geteuid() if euid is None else euid) == 0 and _json_only(settings):
        # Celery warns of a root worker in every child (twice with the fast lane's): the
        # risk it names is a pickled message running code as root, and this queue accepts
        # JSON only. `nada serve` says once that it runs as root (run_as_root_notice); the
        # children leave out Celery's warning (C_FORCE_ROOT only allows pickle, it
        # silences nothing). Accepting pickle would bring the warning back.
        filters = [f for f in env.get("PYTHONWARNINGS", "").split(",") if f]
        env["PYTHONWARNINGS"] = ",".join([*filters, ROOT_WARNING_FILTER])
    return env


# Celery's SecurityWarning of a worker run as root (celery/platforms.py ROOT_DISCOURAGED).
ROOT_WARNING_FILTER = "ignore:You're running the worker with superuser privileges"


def _json_only(settings: Settings) -> bool:
    from jobs.queue import celery_config

    accepted = celery_config(settings)["accept_content"]
    return all(kind == "json" for kind in accepted)


def run_as_root_notice(euid: int | None = None) -> str | None:
    """What `nada serve` says once when run as root, or None."""
    if (os.geteuid() if euid is None else euid) != 0:
        return None
    return (
        "running as root: the local workers run as root too. Their queue accepts JSON "
        "messages only, so Celery's superuser warning (about pickled messages) does not "
        "apply; run `nada serve` as an ordinary user not to give jobs root at all "
        "(docs/deploy.md)"
    )


def _lower_priority(nice: int) -> Callable[[], None]:
    def apply() -> None:  # in the child, between fork and exec
        if nice:
            os.nice(nice)

    return apply


class LocalWorker:
    """A `python -m cli.worker` child, restarted if it dies while we serve. It runs
    at a lower CPU priority (NADA_LOCAL_WORKER_NICE) with one core fewer than the machine
    (NADA_WORKER_THREADS), so pages and polls stay quick while a job trains."""

    def __init__(
        self,
        device: str | None,
        *,
        nice: int = 10,
        env: dict[str, str] | None = None,
        argv: list[str] | None = None,  # tests: another command than the worker
        lanes: str = "train,fast",  # the queues it takes jobs from (cli/worker.py --lanes)
        name: str = "local",
    ):
        self.name = name
        self.argv = argv or [
            sys.executable,
            "-m",
            "cli.worker",
            "--hostname",
            f"nada-{name}@%h",
            "--lanes",
            lanes,
            "--parent-pid",
            str(os.getpid()),
        ]
        if device and argv is None:
            self.argv += ["--device", device]
        self.nice = nice
        self.env = env if env is not None else os.environ.copy()
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name=f"{name}-worker", daemon=True)

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def _spawn(self) -> None:
        self.process = subprocess.Popen(
            self.argv, env=self.env, preexec_fn=_lower_priority(self.nice)
        )
        log.info("%s worker started (pid %d)", self.name, self.process.pid)

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            assert self.process is not None
            code = self.process.wait()
            if self._stopping.is_set():
                return
            log.warning(
                "%s worker exited with %s; restarting in %.0f s", self.name, code, _RESTART_DELAY_S
            )
            if self._stopping.wait(_RESTART_DELAY_S):
                return
            self._spawn()

    def terminate(self) -> None:
        """Ask the child for a warm shutdown (a running job is re-queued by its lease)."""
        self._stopping.set()
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()

    def wait(self, timeout: float = 10.0) -> None:
        """Wait for the child to exit after terminate(); kill it after `timeout` seconds."""
        process = self.process
        if process is None:
            return
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        self.terminate()
        self.wait(timeout)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def serve(args: argparse.Namespace) -> int:
    # Flags become environment variables so the worker child sees the same settings.
    for flag, env in (
        (args.host, "NADA_HOST"),
        (args.port, "NADA_PORT"),
        (args.data_dir, "NADA_DATA_DIR"),
        (getattr(args, "workers", None), "NADA_API_WORKERS"),
    ):
        if flag is not None:
            os.environ[env] = str(flag)
    from jobs.settings import SettingsError, get_settings

    get_settings.cache_clear()
    try:
        settings = get_settings()
    except SettingsError as exc:
        raise CLIError(str(exc)) from None
    os.environ["NADA_DATA_DIR"] = str(settings.data_dir)  # absolute, for the child
    check_bind(settings, insecure_bind=args.insecure_bind)

    import uvicorn

    from backend.main import create_app
    from jobs.db.session import migrate

    _check_port(settings.host, settings.port)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.db_url)
    workers: list[LocalWorker] = []
    if not args.no_worker:
        worker_env = local_worker_env(settings, dict(os.environ))
        if (notice := run_as_root_notice()) is not None:
            log.warning(notice)
        workers.append(LocalWorker(args.device, nice=settings.local_worker_nice, env=worker_env))
        if settings.local_fast_worker:
            # Photos and edits take seconds: a second worker takes only them, so they never
            # wait for a training job to end (NADA_LOCAL_FAST_WORKER=false: one worker).
            workers.append(
                LocalWorker(
                    args.device, nice=settings.local_worker_nice, env=worker_env, lanes="fast",
                    name="local-fast",
                )
            )  # fmt: skip
        for worker in workers:
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
        options: dict[str, Any] = dict(
            host=settings.host,
            port=settings.port,
            log_level="info",
            timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
            timeout_keep_alive=30,  # > clients' idle expiry (httpx: 5 s), so no reuse race
        )
        if settings.api_workers > 1:
            # Several processes share the port; each builds its app from the environment
            # (the flags were exported above). What is per process: docs/deploy.md.
            uvicorn.run(
                "backend.main:create_app", factory=True, workers=settings.api_workers, **options
            )
        else:
            uvicorn.run(create_app(settings), **options)
    finally:
        for worker in workers:  # all at once: their warm shutdowns overlap
            worker.terminate()
        for worker in workers:
            worker.wait()
        log.debug("served for %.0f s", time.monotonic() - started)
    return 0
