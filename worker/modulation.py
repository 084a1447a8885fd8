"""Training a domain instead of weights: `--parametrization modulation` (HyperDomainNet's
domain modulation, Alanov et al., 2022; the math is stylegan2/domain_modulation.py).

The run's trainable generator is the frozen base seen through `modulated_view`: the same
weight tensors (no second copy of 30 M numbers), each candidate layer's style multiplied
by its own vector d_l, an nn.Parameter initialised to ones. Only the vectors reach the
optimizer; the losses, samples and scores are the weights run's, computed on that view.

Layer selection keeps its meaning, one level down: the k layers it picks (the same
candidates: every conv, the to_rgb layers with include_torgb) are the layers whose vectors
train this step; the others' vectors keep their values (Adam skips a parameter without a
gradient). The latent probe is unchanged (it moves W+ entries and ranks the layers that
read them, through the current modulated view); the gradient probe ranks layers by the
norm of their vector's gradient instead of their weights'.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from nada.errors import ParamError
from stylegan2.domain_file import Domain
from stylegan2.domain_modulation import bake, modulated_layers, modulated_view
from stylegan2.family import STYLEGAN2, family_of
from stylegan2.model import Generator
from worker.layers import LossFn, select_layers, top_k_layers


class StyleModulation:
    """One run's trainable domain over a frozen StyleGAN2: a vector per candidate layer and
    the view of the generator that applies them."""

    def __init__(self, frozen: nn.Module, candidates: Sequence[str]):
        if family_of(frozen) is not STYLEGAN2:
            raise ParamError(
                "parametrization",
                f"'modulation' is for StyleGAN2 generators; this one is "
                f"{family_of(frozen).name} (use 'weights')",
            )
        widths = modulated_layers(frozen)
        device = next(frozen.parameters()).device
        self.frozen = frozen
        self.names = tuple(candidates)
        self.vectors: dict[str, nn.Parameter] = {
            name: nn.Parameter(torch.ones(widths[name], device=device)) for name in self.names
        }
        self.view = modulated_view(frozen, self.vectors)  # the run's "trainable" generator

    def parameters(self) -> list[nn.Parameter]:
        """What the optimizer holds, in candidate order (its state dict is by position)."""
        return [self.vectors[name] for name in self.names]

    def set_trainable(self, names: Sequence[str]) -> None:
        """requires_grad for the named layers' vectors only (the weights never get one)."""
        chosen = set(names)
        for name, d in self.vectors.items():
            d.requires_grad_(name in chosen)

    @contextlib.contextmanager
    def frozen_vectors(self) -> Iterator[None]:
        flags = {name: d.requires_grad for name, d in self.vectors.items()}
        try:
            for d in self.vectors.values():
                d.requires_grad_(False)
            yield
        finally:
            for name, d in self.vectors.items():
                d.requires_grad_(flags[name])

    def state(self) -> dict[str, Tensor]:
        """The vectors now, detached CPU copies."""
        return {name: d.detach().cpu().clone() for name, d in self.vectors.items()}

    @torch.no_grad()
    def load_state(self, vectors: Mapping[str, Tensor]) -> None:
        """Set the vectors (a checkpoint's), every candidate's and no other."""
        if set(vectors) != set(self.vectors):
            missing = sorted(set(self.vectors) ^ set(vectors))
            raise ValueError(f"the saved vectors do not match this run's layers: {missing}")
        for name, d in self.vectors.items():
            d.copy_(vectors[name])

    def baked(self) -> Generator:
        """The adapted generator as full weights (checkpoints, adapted.pt)."""
        return bake(self.frozen, self.vectors)

    def domain(self, identity: dict[str, Any], metadata: dict[str, Any]) -> Domain:
        return Domain(vectors=self.state(), base=identity, metadata=metadata)


def select_modulated_layers(
    method: str,  # 'latent' or 'gradient'
    modulation: StyleModulation,
    k: int,
    wplus: Tensor,  # probe codes [N, num_ws, w_dim]
    loss_fn: LossFn,
    probe_steps: int = 1,
    noise: Sequence[Tensor] | None = None,
    chunk: int | None = None,
) -> tuple[str, ...]:
    """The k layers whose vectors train this step (see the module docstring)."""
    if method == "gradient" and 0 < k < len(modulation.names):
        scores = vector_gradient_scores(modulation, wplus, loss_fn, noise=noise, chunk=chunk)
        return top_k_layers(scores, k, modulation.names)
    with modulation.frozen_vectors():  # the probe moves W+ codes only
        selection = select_layers(
            method, modulation.view, modulation.names, k, wplus, loss_fn,
            probe_steps=probe_steps, noise=noise, chunk=chunk,
        )  # fmt: skip
    return selection.layers


def vector_gradient_scores(
    modulation: StyleModulation,
    wplus: Tensor,  # [N, num_ws, w_dim]
    loss_fn: LossFn,
    noise: Sequence[Tensor] | None = None,
    chunk: int | None = None,  # latents per forward/backward; bounds memory, same gradients
) -> dict[str, float]:
    """L2 norm of each vector's gradient after one backward pass of `loss_fn` with every
    vector trainable; the gradients are dropped afterwards (they never reach Adam)."""
    n = wplus.shape[0]
    family = family_of(modulation.view)
    grads = {name: torch.zeros_like(d) for name, d in modulation.vectors.items()}
    with modulation.frozen_vectors():
        modulation.set_trainable(modulation.names)
        for start in range(0, n, chunk or n):
            part = slice(start, min(start + (chunk or n), n))
            chunk_noise = None if noise is None else [x[part] for x in noise]
            images = family.synthesize(modulation.view, wplus[part].detach(), chunk_noise)
            loss = loss_fn(images) * ((part.stop - part.start) / n)
            found = torch.autograd.grad(loss, modulation.parameters(), allow_unused=True)
            for name, g in zip(modulation.names, found, strict=True):
                if g is not None:
                    grads[name] += g
    return {name: float(g.norm()) for name, g in grads.items()}
