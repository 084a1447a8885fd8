"""What the adaptation engine reports: the shared progress contract (nada/events.py) and the
result of a finished adaptation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nada.events import CancelCheck, Canceled, Progress, ProgressCallback

__all__ = ["AdaptResult", "CancelCheck", "Canceled", "Progress", "ProgressCallback"]


@dataclass(frozen=True)
class AdaptResult:
    """What a finished adaptation produced (all paths inside the run's output directory)."""

    checkpoint: Path  # adapted.pt: g_ema, latent_avg, metadata
    samples: tuple[Path, ...]  # samples/step_XXXXXX.png, in step order
    metrics: Path  # metrics.jsonl, one JSON object per step
    checkpoint_sha256: str
    steps: int
    seconds: float
