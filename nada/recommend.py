"""The recommended step of an adaptation: which of its downloadable steps to use.

The rule (docs/api.md, "Snapshots and the recommended step"): among the candidate steps
(the snapshot steps and the final step: a recommendation one cannot download is useless)
that have scores, keep those whose `content` >= min_content and `diversity` >=
min_diversity, and recommend the one with the highest `direction` (the earliest on a tie:
fewer steps drifted less). The scores are the means over the job's CLIP models
(worker/scores.py: 'direction', 'content', 'diversity'), so an extra judge model does not
move the choice.

Why these defaults:
- MIN_CONTENT = 0.7: content is the cosine between an adapted image and its source image
  in CLIP space; unrelated photos of the same class already sit around 0.5-0.6 and a
  faithful stylisation stays well above 0.8, so below 0.7 the images no longer show what
  they showed.
- MIN_DIVERSITY = 0.5: diversity is the adapted images' spread over the source's (1 = as
  varied as before); NADA's known failure is mode collapse, and below half the source's
  variety the images visibly converge toward one.
Direction agreement grows as training pushes along the text direction while content and
diversity fall, so "best direction that still keeps both" is the step before the trade-off
goes bad. Stdlib only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MIN_CONTENT = 0.7
MIN_DIVERSITY = 0.5


@dataclass(frozen=True)
class Recommendation:
    """The recommended step (None: no step passes, or no scores) and why."""

    step: int | None
    reason: str
    min_content: float
    min_diversity: float


def recommend(
    scores: Mapping[str, Mapping[str, float]],
    steps: Iterable[int],
    *,
    min_content: float = MIN_CONTENT,
    min_diversity: float = MIN_DIVERSITY,
) -> Recommendation:
    """The step of `steps` with the best direction among those that keep content and
    diversity at or above the thresholds; `scores` is a job's history by step (str keys)."""

    def result(step: int | None, reason: str) -> Recommendation:
        return Recommendation(step, reason, min_content, min_diversity)

    scored = [
        (step, scores[str(step)])
        for step in sorted(set(steps))
        if all(k in scores.get(str(step), {}) for k in ("direction", "content", "diversity"))
    ]
    if not scored:
        return result(None, "no scores at the snapshot steps (score_latents = 0?)")
    content_ok = [(s, v) for s, v in scored if v["content"] >= min_content]
    if not content_ok:
        best = max(v["content"] for _, v in scored)
        return result(
            None,
            f"no step keeps content >= {min_content:g} (best {best:.3f}); "
            "lower min_content or train fewer steps",
        )
    passing = [(s, v) for s, v in content_ok if v["diversity"] >= min_diversity]
    if not passing:
        best = max(v["diversity"] for _, v in content_ok)
        return result(
            None,
            f"no step with content >= {min_content:g} keeps diversity >= {min_diversity:g} "
            f"(best {best:.3f}); lower min_diversity",
        )
    step, values = max(passing, key=lambda sv: (sv[1]["direction"], -sv[0]))
    return result(
        step,
        f"best direction ({values['direction']:.3f}) among the {len(passing)} of "
        f"{len(scored)} scored steps with content >= {min_content:g} and "
        f"diversity >= {min_diversity:g}",
    )
