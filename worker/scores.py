"""Objective scores of an adaptation: numbers to compare runs by, not only pictures.

Measured on a fixed set of held-out evaluation latents (seeded, not the training ones),
rendered by the frozen source generator and the adapted one, in each CLIP model's space
(embeddings normalised; ΔT and T_tgt are the text direction and the target's class
embedding over the 80 prompt templates, exactly as the loss computes them):

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

Each is reported per CLIP model ('direction/ViT-B-32:openai') and as the mean over models
('direction'). docs/engine.md says how to read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from nada.prompts import template_prompts
from worker.clip_loss import class_embedding, safe_normalize, text_direction
from worker.clip_models import ClipModel

SCORE_NAMES = ("direction", "target", "content", "diversity")


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


def average_over_models(per_model: dict[str, dict[str, float]]) -> dict[str, float]:
    """{'ViT-B-32:openai': {...}, ...} -> flat scores: per model ('direction/<name>') and
    their mean over models ('direction')."""
    flat: dict[str, float] = {}
    for name, scores in per_model.items():
        for key, value in scores.items():
            flat[f"{key}/{name}"] = value
    for key in SCORE_NAMES:
        values = [scores[key] for scores in per_model.values() if key in scores]
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
    ):
        self.batch_size = batch_size
        self.models: list[_ModelTexts] = []
        self._source: dict[str, Tensor] = {}
        for clip in clips:
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
        return average_over_models(per_model)


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
