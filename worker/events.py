"""What the adaptation engine reports: the shared progress contract (nada/events.py) and the
result of a finished adaptation."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nada.events import CancelCheck, Canceled, Progress, ProgressCallback

__all__ = [
    "AdaptResult",
    "CancelCheck",
    "Canceled",
    "Progress",
    "ProgressCallback",
    "SamplePassTimer",
]


@dataclass(frozen=True)
class AdaptResult:
    """What a finished adaptation produced (all paths inside the run's output directory)."""

    checkpoint: Path  # adapted.pt: g_ema, latent_avg, metadata
    samples: tuple[Path, ...]  # samples/step_XXXXXX.png, in step order
    metrics: Path  # metrics.jsonl, one JSON object per step
    checkpoint_sha256: str
    steps: int
    seconds: float
    domain: Path | None = None  # domain.pt of a modulation run (parametrization), else None


@dataclass
class SamplePassTimer:
    """The wall time of one sample pass (the progress image and, with score_latents, the
    scores) beyond its training step, measured from the progress events as they arrive:
    the engine's seconds_per_step leaves them out, and they are most of a short job.

    A sampled step's scores are measured before its 'step' event, its image after it, so a
    pass spans two step intervals; with every sample step, the sum over step intervals of
    (interval - seconds_per_step) is the time of the passes whose image is done (those
    before the latest step). Before any such pass, the first one's scoring (the 'sample' to
    'scores' events before the first step) is the estimate. `observe` returns the estimate,
    None while there is none.
    """

    clock: Callable[[], float] = time.monotonic
    _last_step_at: float | None = None
    _extra: float = 0.0  # sum of (step interval - seconds_per_step) since the first step
    _sampled: list[int] = field(default_factory=list)  # training steps that sampled
    _first_sample_at: float | None = None
    estimate: float | None = None

    def observe(self, event: Progress) -> float | None:
        now = self.clock()
        if event.kind == "sample" and event.stage != "training":
            self._first_sample_at = now
        elif event.kind == "scores" and event.stage != "training":
            if self._first_sample_at is not None and self.estimate is None:
                self.estimate = now - self._first_sample_at
        elif event.kind == "sample":
            self._sampled.append(event.step)
        elif event.kind == "step":
            if self._last_step_at is not None and event.seconds_per_step is not None:
                self._extra += (now - self._last_step_at) - event.seconds_per_step
                done = sum(1 for s in self._sampled if s < event.step)
                if done:
                    self.estimate = max(self._extra / done, 0.0)
            self._last_step_at = now
        return self.estimate
