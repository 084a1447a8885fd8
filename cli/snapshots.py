"""`nada adapt`'s snapshots: the table printed after a run with --snapshot-every, the
recommended step's thresholds (--min-content / --min-diversity: the rule is
nada/recommend.py's) and `--from-step` (continue from a snapshot, cli/continue_run.py).

The engine writes OUT/snapshots/step_*.pt beside OUT/adapted.pt; the scores come from
OUT/metrics.jsonl (each sampled step's line carries them). The table goes to stderr: stdout
stays the run's JSON summary, which gets `snapshots` and `recommended` too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nada import recommend as R
from nada import rundir


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--min-content", type=float, default=R.MIN_CONTENT, metavar="X",
        help="the recommended step keeps content at least X (%(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--min-diversity", type=float, default=R.MIN_DIVERSITY, metavar="X",
        help="the recommended step keeps diversity at least X (%(default)s)",
    )  # fmt: skip


def _scores(out: Path) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    try:
        lines = rundir.metrics_path(out).read_text(encoding="utf-8").splitlines()
    except OSError:
        return found
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("scores"), dict):
            found[str(entry["step"])] = entry["scores"]
    return found


def report(out: Path, final_step: int, args: argparse.Namespace) -> dict[str, Any]:
    """Print the snapshot table and the recommended step (stderr); their JSON for the
    summary. {} when the run kept no snapshots."""
    steps = [s for s in rundir.snapshot_steps(out) if s != final_step]
    if not steps:
        return {}
    scores = _scores(out)
    rec = R.recommend(
        scores, [*steps, final_step], min_content=args.min_content, min_diversity=args.min_diversity
    )
    rows = [(s, str(rundir.snapshot_path(out, s))) for s in steps]
    rows.append((final_step, str(rundir.adapted_path(out))))

    def cell(step: int, name: str) -> str:
        value = scores.get(str(step), {}).get(name)
        return "-" if value is None else f"{value:.3f}"

    print(f"{'step':>6} {'direction':>9} {'content':>8} {'diversity':>9}  file", file=sys.stderr)
    for step, path in rows:
        mark = "  <- recommended" if step == rec.step else ""
        print(
            f"{step:>6} {cell(step, 'direction'):>9} {cell(step, 'content'):>8} "
            f"{cell(step, 'diversity'):>9}  {path}{mark}",
            file=sys.stderr,
        )
    print(f"recommended step: {rec.step if rec.step is not None else 'none'} ({rec.reason})",
          file=sys.stderr)  # fmt: skip
    return {
        "snapshots": [{"step": s, "file": p} for s, p in rows],
        "recommended": {"step": rec.step, "reason": rec.reason},
    }
