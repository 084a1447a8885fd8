"""`nada worker`: a Celery worker process that runs adaptation jobs, one at a time.

`nada serve` starts the same worker as `python -m cli.worker` (a child process, so the API
never imports torch).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import sys
import threading
import time

from nada.errors import CLIError

_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
_COLD_SHUTDOWN_S = 10.0  # after which an orphaned worker exits outright


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default=None,
        help="torch device for this worker: auto (default; NADA_DEVICE), cpu, cuda, cuda:N",
    )
    parser.add_argument(
        "--hostname", default=None, help="Celery node name (default: nada-<device>@<host>)"
    )
    parser.add_argument("--loglevel", default="INFO", help="Celery log level (default INFO)")
    parser.add_argument(
        "--lanes",
        default="train,fast",
        help="which queues to take jobs from: train (adaptations), fast (photos, edits), or "
        "both (default %(default)s). A worker that takes only `fast` beside one that "
        "trains keeps short jobs from waiting behind long ones (docs/deploy.md)",
    )
    # `nada serve` starts its local worker with its own pid: the worker must not outlive it.
    parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run a GPU worker that takes jobs from the queue",
        description=(
            "Take jobs from the queues (NADA_BROKER_URL; default: the embedded SQLite queue "
            "in NADA_DATA_DIR) and run them one at a time on one device. Needs the same "
            "NADA_DATABASE_URL and data directory as the API. Start one per GPU, and "
            "optionally one more with --lanes fast so photos and edits never wait behind "
            "a training job."
        ),
    )
    add_worker_arguments(parser)
    parser.set_defaults(func=run_worker)


def celery_argv(*, queues: list[str], hostname: str, loglevel: str) -> list[str]:
    return [
        "worker",
        "--pool=solo",  # the task runs in this process: models stay cached between jobs
        "--concurrency=1",
        f"--queues={','.join(queues)}",
        f"--hostname={hostname}",
        f"--loglevel={loglevel}",
        "--without-gossip",
        "--without-mingle",
    ]


def _exit_with_parent(parent: int) -> None:
    """Cold-shut this worker down once process `parent` is no longer its parent (it died,
    even by SIGKILL): Celery puts the unacknowledged message back, and the job's lease
    hands the job on."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGQUIT)  # Celery's cold shutdown
        time.sleep(_COLD_SHUTDOWN_S)  # SIGQUIT may be ignored (started with `&` by a shell)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def run_worker(args: argparse.Namespace) -> int:
    if args.device is not None:
        if not _DEVICE.fullmatch(args.device):
            raise CLIError(f"--device must be auto, cpu, mps, cuda or cuda:N (got {args.device!r})")
        os.environ["NADA_DEVICE"] = args.device
    from jobs.kinds import LANES
    from jobs.settings import SettingsError, get_settings

    lanes = [lane.strip() for lane in args.lanes.split(",") if lane.strip()]
    if not lanes or any(lane not in LANES for lane in lanes):
        raise CLIError(f"--lanes must name train, fast or both (got {args.lanes!r})")
    get_settings.cache_clear()  # NADA_DEVICE may have just changed
    try:
        settings = get_settings()
    except SettingsError as exc:
        raise CLIError(str(exc)) from None
    device = settings.device.replace(":", "")
    hostname = args.hostname or f"nada-{device}@{socket.gethostname()}"

    from worker.celery_app import app

    if getattr(args, "parent_pid", None):
        _exit_with_parent(args.parent_pid)
    queues = [settings.queue_of(lane) for lane in lanes]
    app.worker_main(celery_argv(queues=queues, hostname=hostname, loglevel=args.loglevel))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.worker")
    add_worker_arguments(parser)
    try:
        return run_worker(parser.parse_args(argv))
    except CLIError as exc:
        parser.exit(2, f"nada worker: error: {exc}\n")


if __name__ == "__main__":
    sys.exit(main())
