"""What an engine tells its caller while it runs: the contract between every kind's engine
(`worker.engine.run_adaptation`, `invert.pipeline.run_inversion`, ...) and its callers (the
CLI's progress lines, the worker task that records progress for the API).

Plain dataclasses, no torch: images arrive as PNG files already written by the engine.
Stdlib only, so that engines below the worker (invert/) can speak it too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Progress:
    """One event from a running engine.

    kind: 'stage' (a new stage began: for an adaptation loading, selecting, training,
        saving, in that order), 'step' (a training/refinement step finished),
        'sample' (a progress image was written), 'checkpoint' (an intermediate .pt was written),
        'snapshot' (snapshots/step_N.pt was written: snapshot_every),
        'scores' (the objective scores at this step were measured: worker/scores.py).
    step: training steps completed so far (0 before the first).
    losses: loss terms of the last step, by name ('total', 'direction', 'global',
        and per CLIP model 'direction/ViT-B-32', ...).
    selected_layers: names of the layers trained in the last step ('convs.3', 'to_rgbs.1').
    seconds_per_step: moving average of the wall time per step, selection included.
    path: the file written, for 'sample' (PNG: source row over adapted row) and 'checkpoint'.
    scores: for 'scores', by name ('direction', 'content/ViT-B-32:openai', 'loss', ...).
    """

    kind: str
    stage: str
    step: int
    total_steps: int
    losses: dict[str, float] = field(default_factory=dict)
    selected_layers: tuple[str, ...] = ()
    seconds_per_step: float | None = None
    path: Path | None = None
    scores: dict[str, float] = field(default_factory=dict)


ProgressCallback = Callable[[Progress], None]
CancelCheck = Callable[[], bool]


class Canceled(Exception):
    """Raised by the engine when its cancel check returned True; nothing final was written."""
