"""The CLIP losses of StyleGAN-NADA (Gal et al., 2021, sec. 3.1-3.2) as pure functions, and
`ClipGuide`, which holds one job's text embeddings and sums the losses over CLIP models.

Directional loss (sec. 3.2):
    ΔT = normalize(mean_t(normalize(E_T(t(target))) - normalize(E_T(t(source)))))
    ΔI = normalize(normalize(E_I(G_train(w))) - normalize(E_I(G_frozen(w))))
    L_direction = 1 - cos(ΔI, ΔT)
with t running over OpenAI's 80 ImageNet prompt templates ("a photo of a {}." ...), as in the
authors' code. Global loss (sec. 3.1): L_global = 1 - cos(E_I(G_train(w)), T(target)), with
T(target) the normalised mean of the normalised template embeddings of the target: the
zero-shot class embedding of the CLIP paper, rather than one raw prompt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from nada.errors import ParamError
from nada.prompts import template_prompts
from worker.clip_models import ClipModel

# Below this length ΔI (the image-embedding difference) has no direction. The trainable and
# the frozen generator render the same images before the first update (same latents, same
# noise), so ΔI is ~0 at step 0. Dividing by max(|ΔI|, eps) keeps the loss and its gradient
# finite there, and eps also caps the gradient's size (it grows like 1/|ΔI|): with a tiny eps
# the first gradient is ~1/eps (5e5 against 0.1 for the steps after it, measured on a small
# random model) and fills Adam's second-moment estimate (beta2 = 0.99) with a value that
# throttles the next hundreds of steps. |ΔI| = 1e-2 means cos 0.99995 between the two images'
# embeddings, far below an edit worth training for, so wherever training happens the loss is
# exactly 1 - cos(ΔI, ΔT). (The original code never sees ΔI = 0: it renders the two
# generators with different noise.)
DIRECTION_EPS = 1e-2
_NORM_EPS = 1e-8


def safe_normalize(x: Tensor, eps: float = _NORM_EPS, dim: int = -1) -> Tensor:
    """x / max(|x|, eps) along `dim`, with a finite gradient everywhere (also at x = 0, where
    torch.linalg.norm's backward divides 0 by 0)."""
    return x * torch.rsqrt(x.square().sum(dim=dim, keepdim=True).clamp_min(eps * eps))


def class_embedding(template_embeddings: Tensor) -> Tensor:
    """[T, D] embeddings of one text in T templates -> its unit class embedding [D]."""
    return safe_normalize(safe_normalize(template_embeddings).mean(dim=0))


def text_direction(source_embeddings: Tensor, target_embeddings: Tensor) -> Tensor:
    """ΔT [D] from [T, D] template embeddings of the source and target texts (same templates,
    same order): the normalised mean of the differences of the normalised embeddings."""
    if source_embeddings.shape != target_embeddings.shape:
        raise ValueError(
            f"source and target embeddings differ in shape: {tuple(source_embeddings.shape)} "
            f"vs {tuple(target_embeddings.shape)}"
        )
    diff = safe_normalize(target_embeddings) - safe_normalize(source_embeddings)  # [T, D]
    return safe_normalize(diff.mean(dim=0))


def directional_loss(
    adapted: Tensor, frozen: Tensor, direction: Tensor, eps: float = DIRECTION_EPS
) -> Tensor:
    """Mean over the batch of 1 - cos(ΔI, ΔT).

    adapted, frozen: image embeddings [N, D] of the trainable and frozen generator's images of
        the same latents (any scale; normalised here).
    direction: ΔT [D], unit length (from `text_direction`).
    """
    delta = safe_normalize(adapted) - safe_normalize(frozen)  # [N, D]
    delta = safe_normalize(delta, eps=eps)
    return (1 - delta @ direction).mean()


def global_loss(images: Tensor, target: Tensor) -> Tensor:
    """Mean over the batch of 1 - cos(I, T): images [N, D] (any scale), target [D] unit."""
    return (1 - safe_normalize(images) @ target).mean()


def check_prompt_tokens(clip: ClipModel, field: str, text: str) -> None:
    """Refuse a prompt that CLIP would truncate in its longest template: CLIP reads at most
    `context_length` tokens (77), and a cut prompt silently guides towards something else."""
    counts = [clip.count_tokens(prompt) for prompt in template_prompts(text)]
    lengths = [n for n in counts if n is not None]
    if len(lengths) < len(counts):
        return
    longest = max(lengths)
    if longest > clip.context_length:
        overhead = longest - (clip.count_tokens(text) or 0)  # counts whenever the templates did
        raise ParamError(
            field,
            f"is too long for CLIP: {longest} tokens in the longest prompt template, "
            f"{clip.context_length} fit (shorten it to at most "
            f"{clip.context_length - overhead - 2} tokens, about "
            f"{3 * (clip.context_length - overhead - 2)} characters)",
        )


@dataclass(frozen=True)
class GuideTerm:
    """One CLIP model's part of the loss, with its text embeddings for this job."""

    clip: ClipModel
    weight: float  # the model's share of the loss (ClipSpec.weight)
    direction: Tensor  # ΔT [D]
    target: Tensor  # T(target) [D]


class ClipGuide:
    """The CLIP loss of one job: text embeddings computed once, losses summed over models as
    sum_m weight_m * (lambda_direction * L_direction_m + lambda_global * L_global_m).

    `guidance` replaces the texts with precomputed (ΔT, T) per model name: an image-guided
    job's (worker/domain_embeddings.py); the losses are the same functions of them."""

    def __init__(
        self,
        models: Sequence[tuple[ClipModel, float]],  # (model, weight); weight 0 is skipped
        source_text: str,
        target_text: str,
        lambda_direction: float = 1.0,
        lambda_global: float = 0.0,
        guidance: Mapping[str, tuple[Tensor, Tensor]] | None = None,  # name -> (ΔT, T)
    ):
        terms = []
        for clip, weight in models:
            if weight == 0:
                continue
            if guidance is not None:
                direction, target = guidance[clip.name]
                terms.append(
                    GuideTerm(
                        clip, float(weight), direction.to(clip.device), target.to(clip.device)
                    )
                )
                continue
            check_prompt_tokens(clip, "source_text", source_text)
            check_prompt_tokens(clip, "target_text", target_text)
            source = clip.encode_texts(template_prompts(source_text))  # [T, D]
            target = clip.encode_texts(template_prompts(target_text))
            terms.append(
                GuideTerm(
                    clip, float(weight), text_direction(source, target), class_embedding(target)
                )
            )
        if not terms:
            raise ParamError("clip_models", "need at least one model with weight > 0")
        self.terms: tuple[GuideTerm, ...] = tuple(terms)
        self.lambda_direction = float(lambda_direction)
        self.lambda_global = float(lambda_global)

    def losses(self, adapted_images: Tensor, frozen_images: Tensor) -> dict[str, Tensor]:
        """Loss terms for a training step. adapted_images carries the graph to the trainable
        generator; frozen_images [N, 3, H, W] is encoded without one (it needs no gradient).

        Returns 'total' (to minimise) and, detached, 'direction', 'global' (weighted means
        over models) and per model 'direction/<name>', 'global/<name>'.
        """
        total = adapted_images.new_zeros(())
        report: dict[str, Tensor] = {}
        weight_sum = sum(term.weight for term in self.terms)
        sums: dict[str, Any] = {"direction": 0.0, "global": 0.0}  # 0.0 until a term adds a Tensor
        for term in self.terms:
            adapted = term.clip.encode_images(adapted_images)
            loss = adapted.new_zeros(())
            if self.lambda_direction > 0:
                with torch.no_grad():
                    frozen = term.clip.encode_images(frozen_images)
                direction = directional_loss(adapted, frozen, term.direction)
                loss = loss + self.lambda_direction * direction
                report[f"direction/{term.clip.name}"] = direction.detach()
                sums["direction"] = sums["direction"] + term.weight * direction.detach()
            if self.lambda_global > 0:
                glob = global_loss(adapted, term.target)
                loss = loss + self.lambda_global * glob
                report[f"global/{term.clip.name}"] = glob.detach()
                sums["global"] = sums["global"] + term.weight * glob.detach()
            total = total + term.weight * loss
        if self.lambda_direction > 0:
            report["direction"] = sums["direction"] / weight_sum
        if self.lambda_global > 0:
            report["global"] = sums["global"] / weight_sum
        report["total"] = total
        return report

    def global_loss(self, images: Tensor) -> Tensor:
        """sum_m weight_m * L_global_m: what the layer-selection probes minimise (sec. 3.3)."""
        total = images.new_zeros(())
        for term in self.terms:
            total = total + term.weight * global_loss(term.clip.encode_images(images), term.target)
        return total
