"""The objective scores an adaptation reports: their names, and which way is better.

worker/scores.py measures them (the definitions are there and in docs/engine.md); the API
serves these declarations (`GET /api/v1/params` → `scores`), and the page's Scores card and
comparison table read them from there: their titles, their hints, and which end of a column
sorts first. One list, so a score added here is charted and compared without a second one.
Stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Score:
    """One score a job's `scores` history carries by name."""

    name: str  # the key in a job's scores ('direction'; per model 'direction/<clip>')
    label: str  # how the page titles it
    help: str  # one sentence: how to read it
    higher_is_better: bool  # which end a comparison ranks first
    per_model: bool  # measured in each CLIP model's space and averaged (worker/scores.py)


SCORES: tuple[Score, ...] = (
    Score("direction", "Direction agreement",
          "how far the images moved along the text's direction", True, True),
    Score("target", "Target similarity",
          "closer to the target text than the source was (above 0: closer)", True, True),
    Score("content", "Content kept",
          "each image still shows what it showed (1 = unchanged)", True, True),
    Score("diversity", "Diversity",
          "variety kept; well below 1 means collapse toward one image", True, True),
    Score("loss", "Loss (moving average)", "the training loss, smoothed", False, False),
)  # fmt: skip

# The scores measured per CLIP model (and as their mean): what worker/scores.py computes.
CLIP_SCORE_NAMES: tuple[str, ...] = tuple(s.name for s in SCORES if s.per_model)


def describe() -> list[dict[str, Any]]:
    """Every score as plain data, in the order a comparison reads them: name, label, help,
    higher_is_better."""
    return [
        {"name": s.name, "label": s.label, "help": s.help, "higher_is_better": s.higher_is_better}
        for s in SCORES
    ]
