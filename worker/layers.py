"""Which synthesis layers StyleGAN-NADA trains, and how it picks them (Gal et al., 2021, sec. 3.3).

Training every layer of a generator towards a CLIP direction tends to collapse or drift; the
paper freezes the mapping network and, each step, trains only the k layers most relevant to
the edit. Two ways of finding them live here:

- latent (the paper's): optimise a batch of W+ codes for a few steps of the global CLIP loss;
  the W+ entries that moved most feed the layers to train.
- gradient: one backward pass of the global loss through all candidate layers; the layers
  with the largest weight gradients are trained.

Layers are named by their module path in the generator ('conv1', 'convs.3', 'to_rgb1',
'to_rgbs.2'; StyleGAN3 'synthesis.L3_36_64'), which is also the prefix of their parameters
in the state dict. What a family's layers are, which W+ entry each reads and which of their
parameters train is the family contract's (stylegan2/family.py, which also says how
StyleGAN3 is adapted); this module only probes and picks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn

from stylegan2.family import LayerGroup, family_of

LossFn = Callable[[Tensor], Tensor]  # images [N, 3, H, W] -> scalar (a batch mean)


def synthesis_layers(generator: nn.Module) -> tuple[LayerGroup, ...]:
    """Every trainable synthesis layer in forward order, with the W+ index it consumes."""
    return family_of(generator).layer_groups(generator)


def candidate_layers(generator: nn.Module, include_torgb: bool = False) -> tuple[str, ...]:
    """The layers selection may pick: every conv, plus the to_rgb layers if asked (the paper
    trains convolutions only; its code lists to_rgb as 'currently not optimized'). The
    mapping network and the constant (StyleGAN3: Fourier) input are never candidates."""
    return family_of(generator).candidates(generator, include_torgb)


def layer_parameters(generator: nn.Module, names: Iterable[str]) -> list[nn.Parameter]:
    """The trained parameters of the named layers, in the generator's registration order
    (StyleGAN3: without their affines)."""
    return family_of(generator).group_parameters(generator, names)


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
    return family_of(generator).synthesize(generator, wplus[part], chunk_noise)


def latent_probe_scores(
    generator: nn.Module,
    wplus: Tensor,  # [N, num_ws, w_dim] starting codes (the paper: w of random z)
    loss_fn: LossFn,
    steps: int = 1,  # SGD steps on the codes (the paper's auto_layer_iters)
    lr: float = 0.01,  # the paper's SGD learning rate
    noise: Sequence[Tensor] | None = None,  # per-layer noise [N, 1, h, w]; None: the file's
    chunk: int | None = None,  # latents per forward/backward; bounds memory, same gradients
) -> Tensor:
    """Mean absolute change of each W+ entry after `steps` SGD steps of `loss_fn`: [num_ws].

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
    return (codes.detach() - start).abs().mean(dim=-1).mean(dim=0)  # [num_ws]


def gradient_probe_scores(
    generator: nn.Module,
    wplus: Tensor,  # [N, num_ws, w_dim]
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
    index_scores: Tensor, generator: nn.Module, candidates: Sequence[str]
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
    generator: nn.Module,  # the trainable generator, probed in its current state
    candidates: Sequence[str],
    k: int,  # layers to keep; 0 keeps all candidates (and skips the probe)
    wplus: Tensor,  # probe codes [N, num_ws, w_dim]
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
