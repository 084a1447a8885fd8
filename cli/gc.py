"""`nada gc [--dry-run] [--now ISO]`: one retention pass now, by hand (jobs/gc.py does it;
the reaper runs the same pass every NADA_GC_INTERVAL_SECONDS). Read the same settings as the
service (NADA_DATABASE_URL, NADA_DATA_DIR, NADA_RETAIN_*_HOURS): run it where the API runs.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from nada.errors import CLIError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gc",
        help="remove finished jobs' files past the service's retention",
        description=(
            "Remove what NADA_RETAIN_RESUMABLE_HOURS and NADA_RETAIN_RESULTS_HOURS let go "
            "(unset: everything is kept and nothing happens). A queued or running job, and "
            "the files a queued continuation, render or edit reads, are never touched; an "
            "expired job keeps its record. Prints one line per job: id, what, bytes."
        ),
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would go and remove nothing"
    )
    parser.add_argument(
        "--now",
        type=_instant,
        default=None,
        metavar="ISO",
        help="plan as if it were this UTC time (e.g. 2026-01-31T12:00; default: now)",
    )
    parser.set_defaults(func=run_gc)


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--now must be an ISO date and time, e.g. 2026-01-31T12:00 (got {text!r})"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


def run_gc(args: argparse.Namespace) -> int:
    from jobs import gc
    from jobs.db.session import migrate
    from jobs.settings import SettingsError, get_settings

    get_settings.cache_clear()
    try:
        settings = get_settings()
    except SettingsError as exc:
        raise CLIError(str(exc)) from None
    policy = settings.retention
    if policy.keeps_everything:
        print(
            "retention: none set (NADA_RETAIN_RESUMABLE_HOURS, NADA_RETAIN_RESULTS_HOURS); "
            "nothing to do"
        )
        return 0
    migrate(settings.db_url)
    report = gc.collect(
        settings.db_url, settings.jobs_dir, policy, now=args.now, dry_run=args.dry_run
    )
    verb = "would free" if report.dry_run else "freed"
    for removal in report.removals:
        print(f"{removal.job_id}  {removal.what:<9}  {_megabytes(removal.bytes)}")
    for job_id in report.kept:
        print(f"{job_id}  kept: a queued or running job reads it")
    print(f"{len(report.removals)} job(s), {verb} {_megabytes(report.freed)}")
    return 0
