"""Refinement by optimisation: move a W+ code (and optionally the noise maps) until the
generator's render of it matches a target image.

The encoder (e4e) gives a code that is editable but loose; a few hundred Adam steps on the
code itself close most of the remaining gap. The loss of each step:

    pixel_weight * MSE(G(w), target)                       (pixels in [-1, 1])
  + perceptual_weight * LPIPS(G(w), target)                (at <= 256 px, invert/perceptual.py)
  + latent_weight * mean((w - w_init)^2)                   (stay near the encoder's code:
                                                            edits work best where it put w)
  + NOISE_REGULARIZE * noise autocorrelation               (only with optimize_noise)

as in rosinality/stylegan2-pytorch's projector.py (its noise regulariser and renormalisation,
its cosine learning-rate ramp-down), without its latent noise ramp: the start here is an
encoder's code, not the mean latent. The generator is frozen: gradients reach only the code
and the noise maps. Pure math: no files, no progress reporting beyond a per-step callback.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from nada.events import Canceled

if TYPE_CHECKING:
    from stylegan2.model import Generator

NOISE_REGULARIZE = 1e5  # rosinality's projector: weight of the noise-map autocorrelation
LR_RAMPDOWN = 0.25  # share of the steps at the end over which the learning rate decays to 0


class Perceptual(Protocol):
    """A perceptual distance: images [N, 3, H, W] in [-1, 1] -> [N] (invert.perceptual)."""

    def __call__(self, x: Tensor, y: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class RefineResult:
    """A refined code. In `on_step` callbacks the tensors are live views of the optimiser's
    variables, valid during the call only (clone what you keep)."""

    w_plus: Tensor  # [1, n_latent, style_dim], detached, on the generator's device
    noise: list[Tensor] | None  # per layer [1, 1, h, w] when optimised; None: fixed buffers
    losses: dict[str, float]  # the last step's terms: total, pixel, perceptual, latent(, noise)


StepCallback = Callable[[int, dict[str, float], RefineResult], None]


def generator_noise(generator: Generator) -> list[Tensor]:
    """The generator's own noise buffers (what `randomize_noise=False` renders with)."""
    return [getattr(generator.noises, f"noise_{i}") for i in range(generator.num_layers)]


def synthesize(generator: Generator, w_plus: Tensor, noise: Sequence[Tensor] | None) -> Tensor:
    """G(w_plus) [N, 3, S, S] with the given noise maps, else the generator's fixed buffers."""
    image, _ = generator(
        [w_plus],
        input_is_latent=True,
        noise=list(noise) if noise is not None else generator_noise(generator),
    )
    return image


def lr_at(step: int, steps: int, lr: float) -> float:
    """Constant, then a cosine ramp-down over the last LR_RAMPDOWN of the steps (projector.py)."""
    t = step / steps
    ramp = min(1.0, (1.0 - t) / LR_RAMPDOWN)
    return lr * (0.5 - 0.5 * math.cos(ramp * math.pi))


def noise_regularization(noises: Sequence[Tensor]) -> Tensor:
    """Squared autocorrelation of each noise map with its one-pixel shifts, at every scale
    down to 8 px: keeps the maps noise-like, so they do not learn the image's content."""
    loss = noises[0].new_zeros(())
    for noise in noises:
        size = noise.shape[2]
        while True:
            loss = (
                loss
                + (noise * torch.roll(noise, shifts=1, dims=3)).mean().pow(2)
                + (noise * torch.roll(noise, shifts=1, dims=2)).mean().pow(2)
            )
            if size <= 8:
                break
            noise = noise.reshape(-1, 1, size // 2, 2, size // 2, 2).mean([3, 5])
            size //= 2
    return loss


@torch.no_grad()
def normalize_noise_(noises: Sequence[Tensor]) -> None:
    """Each map back to zero mean and unit variance (after every optimiser step)."""
    for noise in noises:
        noise.sub_(noise.mean()).div_(noise.std())


@dataclass(frozen=True)
class _Objective:
    """The weighted loss of one render (see the module docstring)."""

    target: Tensor  # [1, 3, S, S] in [-1, 1], float32, on the code's device
    w_init: Tensor  # [1, n_latent, style_dim]: the latent term's anchor
    perceptual: Perceptual | None
    pixel_weight: float
    perceptual_weight: float
    latent_weight: float

    def terms(self, image: Tensor, w: Tensor, noises: list[Tensor] | None) -> dict[str, Tensor]:
        zero = image.new_zeros(())
        terms = {
            "pixel": F.mse_loss(image, self.target),
            "perceptual": (
                self.perceptual(image, self.target).mean() if self.perceptual is not None else zero
            ),
            "latent": (w - self.w_init).square().mean(),
        }
        if noises is not None:
            terms["noise"] = noise_regularization(noises)
        return terms

    def total(self, terms: dict[str, Tensor]) -> Tensor:
        total = (
            self.pixel_weight * terms["pixel"]
            + self.perceptual_weight * terms["perceptual"]
            + self.latent_weight * terms["latent"]
        )
        if "noise" in terms:
            total = total + NOISE_REGULARIZE * terms["noise"]
        return total


@dataclass(frozen=True)
class _Variables:
    """What the optimiser moves: the code, and the noise maps when they are optimised."""

    w: Tensor  # [1, n_latent, style_dim], requires grad
    noises: list[Tensor] | None  # optimised maps (require grad); None: `fixed_noise` renders
    fixed_noise: list[Tensor] | None  # None too: the generator's own buffers

    def state(self, losses: dict[str, float], clone: bool = False) -> RefineResult:
        w = self.w.detach()
        return RefineResult(w.clone() if clone else w, _detached(self.noises, clone), losses)


def _check_shapes(generator: Generator, target: Tensor, w_init: Tensor) -> None:
    n, n_latent, style_dim = w_init.shape
    if n != 1 or n_latent != generator.n_latent or style_dim != generator.style_dim:
        raise ValueError(
            f"w_init must be [1, {generator.n_latent}, {generator.style_dim}] for this "
            f"generator (got {list(w_init.shape)})"
        )
    size = generator.size
    if tuple(target.shape) != (1, 3, size, size):
        raise ValueError(f"target must be [1, 3, {size}, {size}] (got {list(target.shape)})")


def _variables(generator: Generator, w_init: Tensor, noise: Sequence[Tensor] | None,
               optimize_noise: bool, seed: int) -> _Variables:  # fmt: skip
    """A trainable copy of w_init and the starting noise maps (see refine_w_plus)."""
    device = w_init.device
    w = w_init.clone().requires_grad_(True)
    if not optimize_noise:
        return _Variables(w, None, [t.to(device) for t in noise] if noise is not None else None)
    if noise is None:
        rng = torch.Generator().manual_seed(seed)
        shapes = [t.shape for t in generator_noise(generator)]
        noises = [torch.randn(tuple(s), generator=rng).to(device) for s in shapes]
    else:
        noises = [t.detach().to(device).float().clone() for t in noise]
    for t in noises:
        t.requires_grad_(True)
    return _Variables(w, noises, None)


def _step(generator: Generator, variables: _Variables, objective: _Objective,
          optimizer: torch.optim.Optimizer, lr: float) -> dict[str, float]:  # fmt: skip
    """One Adam step at learning rate `lr`; the step's loss terms and their total."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    v = variables
    image = synthesize(generator, v.w, v.noises if v.noises is not None else v.fixed_noise)
    terms = objective.terms(image, v.w, v.noises)
    total = objective.total(terms)
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()
    if v.noises is not None:
        normalize_noise_(v.noises)
    losses = {"total": float(total.detach())}
    losses.update({name: float(value.detach()) for name, value in terms.items()})
    return losses


@contextmanager
def _frozen(generator: Generator) -> Iterator[None]:
    """requires_grad False on the generator's parameters, their own flags back after."""
    flags = [(p, p.requires_grad) for p in generator.parameters()]
    generator.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def refine_w_plus(
    generator: Generator,
    target: Tensor,  # [1, 3, S, S] in [-1, 1], S = generator.size
    w_init: Tensor,  # [1, n_latent, style_dim]: the encoder's code (or the mean latent)
    *,
    steps: int,  # optimiser steps; 0 returns w_init unchanged
    lr: float,  # Adam's peak learning rate
    pixel_weight: float = 1.0,  # MSE term
    perceptual: Perceptual | None = None,  # None: no perceptual term (weights unavailable)
    perceptual_weight: float = 1.0,
    latent_weight: float = 0.0,  # pull toward w_init
    optimize_noise: bool = False,  # also optimise the per-layer noise maps
    noise: Sequence[Tensor] | None = None,  # starting noise maps; None: see below
    seed: int = 0,  # draws the starting noise maps when optimised and `noise` is None
    on_step: StepCallback | None = None,  # after every step: (steps done, losses, state)
    should_cancel: Callable[[], bool] | None = None,  # polled before every step
) -> RefineResult:
    """Optimise a copy of `w_init` (and, with `optimize_noise`, of the noise maps) so that
    the frozen generator renders `target`.

    Noise: fixed maps are `noise` if given, else the generator's buffers (as
    `randomize_noise=False`). Optimised maps start from `noise` if given, else from N(0, 1)
    drawn from `seed` (as the projector does), and are renormalised after every step.

    Deterministic on a CPU for the same inputs. The generator's parameters get
    requires_grad False for the duration and their previous flags back afterwards.

    Raises:
        Canceled: should_cancel returned True before a step.
        ValueError: shapes that do not fit the generator.
    """
    _check_shapes(generator, target, w_init)
    w_init = w_init.detach().float()
    if steps == 0:  # nothing optimised: the start as it is (and no fresh noise maps)
        kept = [t.detach().clone() for t in noise] if optimize_noise and noise else None
        return RefineResult(w_init.clone(), kept, {})
    target = target.to(device=w_init.device, dtype=torch.float32)
    objective = _Objective(target, w_init, perceptual, pixel_weight, perceptual_weight,
                           latent_weight)  # fmt: skip
    variables = _variables(generator, w_init, noise, optimize_noise, seed)
    optimizer = torch.optim.Adam([variables.w, *(variables.noises or [])], lr=lr)
    losses: dict[str, float] = {}
    with _frozen(generator):
        for step in range(steps):
            if should_cancel is not None and should_cancel():
                raise Canceled(f"canceled before refinement step {step + 1} of {steps}")
            losses = _step(generator, variables, objective, optimizer, lr_at(step, steps, lr))
            if on_step is not None:
                on_step(step + 1, losses, variables.state(losses))
    return variables.state(losses, clone=True)


def _detached(noises: list[Tensor] | None, clone: bool = False) -> list[Tensor] | None:
    if noises is None:
        return None
    return [t.detach().clone() if clone else t.detach() for t in noises]
