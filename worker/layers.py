"""Which synthesis layers StyleGAN-NADA trains, and how it picks them (Gal et al., 2021, sec. 3.3).

Training every layer of a generator towards a CLIP direction tends to collapse or drift; the
paper freezes the mapping network and, each step, trains only the k layers most relevant to
the edit. Two ways of finding them live here:

- latent (the paper's): optimise a batch of W+ codes for a few steps of the global CLIP loss;
  the W+ entries that moved most feed the layers to train.
- gradient: one backward pass of the global loss through all candidate layers; the layers
  with the largest weight gradients are trained.

Layers are named by their module path in the generator ('conv1', 'convs.3', 'to_rgb1',
'to_rgbs.2'), which is also the prefix of their parameters in the state dict.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from stylegan2.model import Generator

LossFn = Callable[[Tensor], Tensor]  # images [N, 3, H, W] -> scalar (a batch mean)


@dataclass(frozen=True)
class SynthesisLayer:
    """A layer of the synthesis network and the W+ entry it reads.

    In the forward pass (rosinality's layout): conv1 <- w[0]; to_rgb1 <- w[1];
    convs[2j] <- w[1 + 2j]; convs[2j + 1] <- w[2 + 2j]; to_rgbs[j] <- w[3 + 2j]. So entry
    i >= 1 feeds convs[i - 1], and odd entries also a to_rgb. (The authors' code maps entry i
    to convs[i - 2] and entry 1 to to_rgb1 alone, one layer off.)
    """

    name: str  # module path: 'conv1', 'convs.3', 'to_rgb1', 'to_rgbs.2'
    wplus_index: int
    is_rgb: bool


def synthesis_layers(generator: Generator) -> tuple[SynthesisLayer, ...]:
    """Every conv and to_rgb layer in forward order, with the W+ index it consumes."""
    layers = [SynthesisLayer("conv1", 0, False), SynthesisLayer("to_rgb1", 1, True)]
    for j in range(len(generator.to_rgbs)):
        layers.append(SynthesisLayer(f"convs.{2 * j}", 1 + 2 * j, False))
        layers.append(SynthesisLayer(f"convs.{2 * j + 1}", 2 + 2 * j, False))
        layers.append(SynthesisLayer(f"to_rgbs.{j}", 3 + 2 * j, True))
    return tuple(layers)


def candidate_layers(generator: Generator, include_torgb: bool = False) -> tuple[str, ...]:
    """The layers selection may pick: conv1 and every conv, plus the to_rgb layers if asked
    (the paper trains convolutions only; its code lists to_rgb as 'currently not optimized').
    The mapping network and the constant input are never candidates."""
    return tuple(
        layer.name for layer in synthesis_layers(generator) if include_torgb or not layer.is_rgb
    )


def layer_parameters(generator: nn.Module, names: Iterable[str]) -> list[nn.Parameter]:
    """The parameters of the named layers, in the generator's registration order."""
    prefixes = tuple(f"{name}." for name in names)
    return [p for n, p in generator.named_parameters() if n.startswith(prefixes)]


def set_trainable(generator: nn.Module, names: Iterable[str]) -> None:
    """requires_grad True for the named layers' parameters only; everything else (mapping
    network, constant input, unselected layers) gets no gradient and so no update."""
    generator.requires_grad_(False)
    for p in layer_parameters(generator, names):
        p.requires_grad_(True)


@contextlib.contextmanager
def _restored_requires_grad(generator: nn.Module) -> Iterator[None]:
    saved = [(p, p.requires_grad) for p in generator.parameters()]
    try:
        yield
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _render(
    generator: nn.Module, wplus: Tensor, noise: Sequence[Tensor] | None, part: slice
) -> Tensor:
    chunk_noise = None if noise is None else [n[part] for n in noise]
    image, _ = generator([wplus[part]], input_is_latent=True, noise=chunk_noise)
    return image


def latent_probe_scores(
    generator: nn.Module,
    wplus: Tensor,  # [N, n_latent, style_dim] starting codes (the paper: w of random z)
    loss_fn: LossFn,
    steps: int = 1,  # SGD steps on the codes (the paper's auto_layer_iters)
    lr: float = 0.01,  # the paper's SGD learning rate
    noise: Sequence[Tensor] | None = None,  # per-layer noise [N, 1, h, w], or None for random
    chunk: int | None = None,  # latents per forward/backward; bounds memory, same gradients
) -> Tensor:
    """Mean absolute change of each W+ entry after `steps` SGD steps of `loss_fn`: [n_latent].

    Only the codes require grad; the generator's weights are frozen during the probe, so the
    backward pass computes no weight gradients (and the generator is not changed).
    """
    n = wplus.shape[0]
    start = wplus.detach()
    codes = start.clone().requires_grad_(True)
    optimizer = torch.optim.SGD([codes], lr=lr)
    with _restored_requires_grad(generator):
        generator.requires_grad_(False)
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            for part in _chunks(n, chunk or n):
                images = _render(generator, codes, noise, part)
                # loss_fn is a batch mean: weight each chunk by its share of the batch.
                (loss_fn(images) * ((part.stop - part.start) / n)).backward()
            optimizer.step()
    return (codes.detach() - start).abs().mean(dim=-1).mean(dim=0)  # [n_latent]


def gradient_probe_scores(
    generator: nn.Module,
    wplus: Tensor,  # [N, n_latent, style_dim]
    loss_fn: LossFn,
    candidates: Sequence[str],
    noise: Sequence[Tensor] | None = None,
    chunk: int | None = None,
) -> dict[str, float]:
    """L2 norm of each candidate layer's parameter gradients after one backward pass of
    `loss_fn` with all candidates trainable. Gradients are discarded afterwards, so they never
    reach the optimizer."""
    n = wplus.shape[0]
    with _restored_requires_grad(generator):
        set_trainable(generator, candidates)
        generator.zero_grad(set_to_none=True)
        for part in _chunks(n, chunk or n):
            images = _render(generator, wplus.detach(), noise, part)
            (loss_fn(images) * ((part.stop - part.start) / n)).backward()
        scores = {}
        for name in candidates:
            grads = [p.grad for p in layer_parameters(generator, [name]) if p.grad is not None]
            scores[name] = (
                float(torch.sqrt(cast(Tensor, sum(g.float().square().sum() for g in grads))))
                if grads
                else 0.0
            )
        generator.zero_grad(set_to_none=True)
    return scores


def layer_scores_from_wplus(
    index_scores: Tensor, generator: Generator, candidates: Sequence[str]
) -> dict[str, float]:
    """Give each candidate layer the score of the W+ entry it reads."""
    index_of = {layer.name: layer.wplus_index for layer in synthesis_layers(generator)}
    return {name: float(index_scores[index_of[name]]) for name in candidates}


def top_k_layers(scores: dict[str, float], k: int, order: Sequence[str]) -> tuple[str, ...]:
    """The k best-scoring layers (ties to the earlier layer), listed in `order` (forward order).
    k = 0 or k >= len(scores) keeps them all."""
    if k <= 0 or k >= len(scores):
        return tuple(name for name in order if name in scores)
    rank = {name: i for i, name in enumerate(order)}
    best = sorted(scores, key=lambda name: (-scores[name], rank[name]))[:k]
    return tuple(sorted(best, key=rank.__getitem__))


@dataclass(frozen=True)
class Selection:
    layers: tuple[str, ...]  # trained this step, in forward order
    scores: dict[str, float]  # per candidate ({} when no probe ran)


def select_layers(
    method: str,  # 'latent' or 'gradient'
    generator: Generator,  # the trainable generator, probed in its current state
    candidates: Sequence[str],
    k: int,  # layers to keep; 0 keeps all candidates (and skips the probe)
    wplus: Tensor,  # probe codes [N, n_latent, style_dim]
    loss_fn: LossFn,  # the global CLIP loss
    probe_steps: int = 1,
    noise: Sequence[Tensor] | None = None,
    chunk: int | None = None,
) -> Selection:
    """Pick the layers to train (sec. 3.3 of the paper for 'latent')."""
    if k <= 0 or k >= len(candidates):
        return Selection(tuple(candidates), {})
    if method == "latent":
        index_scores = latent_probe_scores(
            generator, wplus, loss_fn, steps=probe_steps, noise=noise, chunk=chunk
        )
        scores = layer_scores_from_wplus(index_scores, generator, candidates)
    elif method == "gradient":
        scores = gradient_probe_scores(
            generator, wplus, loss_fn, candidates, noise=noise, chunk=chunk
        )
    else:
        raise ValueError(f"selection must be 'latent' or 'gradient' (got {method!r})")
    return Selection(top_k_layers(scores, k, candidates), scores)
