"""What `nada adapt` shows while it trains and prints when it is done: a tqdm bar on stderr
moved by the engine's progress events, and the run's JSON summary on stdout. Shared by a
new run and a continued one (`--resume-from-result`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any


def training_bar(
    total: int, *, done: int = 0, disabled: bool = False
) -> tuple[Any, Callable[[Any], None]]:
    """A bar over a run's `total` steps starting at `done`, and the engine callback that
    moves it (stage names, then step, loss and seconds per step)."""
    from tqdm import tqdm  # only when a command runs

    bar = tqdm(total=total, initial=done, file=sys.stderr, unit="step", disable=disabled or None)

    def on_progress(event: Any) -> None:
        if event.kind == "stage" and event.stage != "training":
            bar.set_description(event.stage)
        elif event.kind == "step":
            bar.set_description("training")
            bar.n = event.step
            postfix = {"loss": f"{event.losses.get('total', float('nan')):.4f}"}
            if event.seconds_per_step is not None:
                postfix["s/step"] = f"{event.seconds_per_step:.2f}"
            bar.set_postfix(postfix, refresh=False)
            bar.refresh()

    return bar, on_progress


def print_summary(result: Any, **extra: Any) -> None:
    """The finished run as JSON: checkpoint and its sha256, samples, metrics, steps, time."""
    from nada import rundir

    summary = {
        "checkpoint": str(result.checkpoint),
        "sha256": result.checkpoint_sha256,
        # a modulation run's domain.pt (--parametrization modulation)
        **({"domain": str(result.domain)} if getattr(result, "domain", None) else {}),
        **extra,
        "samples": str(rundir.samples_dir(result.checkpoint.parent)),
        "metrics": str(result.metrics),
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
    }
    print(json.dumps(summary, indent=2))
