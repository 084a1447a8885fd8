"""Objective scores of an adaptation: numbers to compare runs by, not only pictures.

Measured on a fixed set of held-out evaluation latents (seeded, not the training ones),
rendered by the frozen source generator and the adapted one, in each CLIP model's space
(embeddings normalised; ΔT and T_tgt are the text direction and the target's class
embedding over the 80 prompt templates, exactly as the loss computes them; for an
image-guided job, the same mixed direction and target its loss uses, from
worker/domain_embeddings.py):

- direction: mean_i cos(I_ad_i - I_src_i, ΔT), what the directional loss
  optimises, on latents it never trained on (1 = every image moved along the text's
  direction);
- target: mean_i cos(I_ad_i, T_tgt) - mean_i cos(I_src_i, T_tgt): how much closer to the
  target text the images moved (> 0: closer);
- content: mean_i cos(I_ad_i, I_src_i): how much of each image's identity and structure is
  kept (1 = unchanged);
- diversity: mean pairwise (1 - cos) among the adapted images divided by the same among
  the source images (< 1: the generator collapses toward one image, NADA's known failure
  mode; ~1: as varied as before).

Each is reported per CLIP model ('direction/ViT-B-32:openai') and as the mean over the
job's models ('direction'). An extra scoring model (`score_clip_model`, a "judge") is
reported per model only: the loss never saw its space, so its scores cannot be gamed by
the training, and keeping it out of the mean keeps 'direction' comparable across jobs with
and without one. docs/engine.md says how to read them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from nada.prompts import template_prompts
from nada.scores import CLIP_SCORE_NAMES as SCORE_NAMES  # the names, declared once
from worker.clip_loss import class_embedding, safe_normalize, text_direction
from worker.clip_models import ClipModel


def mean_pairwise_distance(embeddings: Tensor) -> Tensor:
    """[N, D] unit vectors -> the mean of (1 - cos) over the N(N-1)/2 distinct pairs."""
    n = embeddings.shape[0]
    if n < 2:
        return embeddings.new_tensor(float("nan"))
    cos = embeddings @ embeddings.T  # [N, N]
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool, device=cos.device), diagonal=1)
    return (1 - cos[upper]).mean()


def clip_scores(
    source: Tensor,  # [N, D] source images' embeddings (any norm)
    adapted: Tensor,  # [N, D] adapted images' embeddings, same latents, same order
    text_direction: Tensor,  # [D] ΔT, source text -> target text
    text_target: Tensor,  # [D] the target text's class embedding
) -> dict[str, float]:
    """The four scores in one CLIP model's space (see the module docstring)."""
    src, ad = safe_normalize(source.float()), safe_normalize(adapted.float())
    delta_text = safe_normalize(text_direction.float())
    t_tgt = safe_normalize(text_target.float())
    delta_images = safe_normalize(ad - src)
    source_spread = mean_pairwise_distance(src)
    return {
        "direction": float((delta_images @ delta_text).mean()),
        "target": float((ad @ t_tgt).mean() - (src @ t_tgt).mean()),
        "content": float((ad * src).sum(-1).mean()),
        "diversity": float(mean_pairwise_distance(ad) / source_spread),
    }


def average_over_models(
    per_model: dict[str, dict[str, float]], judges: Sequence[str] = ()
) -> dict[str, float]:
    """{'ViT-B-32:openai': {...}, ...} -> flat scores: per model ('direction/<name>') and
    their mean over the models that are not `judges` ('direction')."""
    flat: dict[str, float] = {}
    for name, scores in per_model.items():
        for key, value in scores.items():
            flat[f"{key}/{name}"] = value
    averaged = [scores for name, scores in per_model.items() if name not in judges]
    for key in SCORE_NAMES:
        values = [scores[key] for scores in averaged if key in scores]
        if values:
            flat[key] = sum(values) / len(values)
    return flat


@dataclass(frozen=True)
class _ModelTexts:
    clip: ClipModel
    direction: Tensor  # ΔT [D]
    target: Tensor  # T(target) [D]


class ScoreEvaluator:
    """Scores of an adaptation at any step, on fixed evaluation latents.

    The source images and their embeddings are computed once; each `evaluate` renders the
    adapted generator on the same latents (same noise) and scores it against them.
    """

    def __init__(
        self,
        clips: Sequence[ClipModel],
        source_text: str,
        target_text: str,
        source_images: Tensor,  # [N, 3, H, W] in [-1, 1]: the frozen generator's renders
        batch_size: int = 8,  # images per CLIP pass
        guidance: Mapping[str, tuple[Tensor, Tensor]] | None = None,  # name -> (ΔT, T)
        judges: Sequence[ClipModel] = (),  # extra models that only score (score_clip_model)
    ):
        """`guidance`: an image-guided job's (ΔT, T) per model, which its losses use in
        place of the texts' (worker/domain_embeddings.py), so its scores mean the same."""
        self.batch_size = batch_size
        self.models: list[_ModelTexts] = []
        self._source: dict[str, Tensor] = {}
        self.judges = tuple(clip.name for clip in judges if clip.name not in
                            {c.name for c in clips})  # fmt: skip
        for clip in [*clips, *(j for j in judges if j.name in self.judges)]:
            if guidance is not None:
                direction, target_embedding = (t.float().cpu() for t in guidance[clip.name])
                self.models.append(_ModelTexts(clip, direction, target_embedding))
                self._source[clip.name] = self._encode(clip, source_images)
                continue
            source = clip.encode_texts(template_prompts(source_text))  # [T, D]
            target = clip.encode_texts(template_prompts(target_text))
            direction = text_direction(source, target).cpu()
            self.models.append(_ModelTexts(clip, direction, class_embedding(target).cpu()))
            self._source[clip.name] = self._encode(clip, source_images)

    @torch.no_grad()
    def _encode(self, clip: ClipModel, images: Tensor) -> Tensor:
        parts = [
            clip.encode_images(images[i : i + self.batch_size].to(clip.device))
            for i in range(0, images.shape[0], self.batch_size)
        ]
        return torch.cat(parts).float().cpu()

    @torch.no_grad()
    def evaluate(self, adapted_images: Tensor) -> dict[str, float]:
        """adapted_images: [N, 3, H, W], the same latents as the source images."""
        per_model = {}
        for m in self.models:
            adapted = self._encode(m.clip, adapted_images)
            per_model[m.clip.name] = clip_scores(
                self._source[m.clip.name], adapted, m.direction, m.target
            )
        return average_over_models(per_model, self.judges)


class LossAverage:
    """An exponential moving average of the training loss (the 'loss' score): the
    per-step loss is noisy with batch 2."""

    def __init__(self, decay: float = 0.9):
        self.decay = decay
        self.value: float | None = None

    def update(self, loss: float) -> float:
        self.value = (
            loss if self.value is None else self.decay * self.value + (1 - self.decay) * loss
        )
        return self.value
