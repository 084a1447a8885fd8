"""Domain strength and blends: a generator made from a base and adapted generators' weights.

An adaptation moves some of the base generator's weights; the difference is the domain.
Scaling it dials the domain's strength, adding several is a blend (the original's demo moves
between styles this way):

    W = base + sum_i strength_i * share(layer) * (W_i - base)

per tensor of the generator's state (and its mean w), where share(layer) is the render's
`strength_coarse` / `strength_medium` / `strength_fine` for the synthesis layers whose W+
entry is 0-3 / 4-7 / 8 and up (StyleGAN's coarse, middle and fine styles, the W+ index a
style-mixing crossover counts too), and 1 for every other tensor (the mapping network, the
constant input, the noise buffers; an adaptation leaves them as they were).

Exact at the ends: a tensor whose every strength is 0 is the base's own tensor, one with a
single strength of exactly 1 is that generator's own tensor (no float lerp that rounds), so
strength 0 draws the base generator's pictures and strength 1 the adapted one's, bit for bit.
Pure functions over tensors; worker/renders.py loads the generators and caches the result
(worker/model_cache.py).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from nada.errors import InputError
from stylegan2 import LoadedGenerator

__all__ = ["LATENT_AVG", "Mix", "between", "blended_generator", "combine", "layer_group_of"]

COARSE_END, MEDIUM_END = 4, 8  # W+ entries below 4: coarse; below 8: medium; the rest: fine
LATENT_AVG = "latent_avg"  # the mean w's key beside the module's state (no module has it)


@dataclass(frozen=True)
class Mix:
    """What one render's adapted side is: each domain's strength, and the layer groups'
    shares of all of them."""

    strengths: tuple[float, ...]  # per domain, in the order the generators are given
    coarse: float = 1.0  # the share of W+ entries 0-3 (pose, shape)
    medium: float = 1.0  # 4-7 (features)
    fine: float = 1.0  # 8 and up (colours, texture)

    def share(self, group: str | None) -> float:
        shares = {"coarse": self.coarse, "medium": self.medium, "fine": self.fine}
        return shares.get(group or "", 1.0)

    @property
    def key(self) -> tuple[float, ...]:
        """Hashable and complete: a cache key's part (worker/model_cache.py)."""
        return (*self.strengths, self.coarse, self.medium, self.fine)


def layer_group_of(loaded: LoadedGenerator) -> Callable[[str], str | None]:
    """A state-dict name -> 'coarse', 'medium', 'fine' (the W+ entry of its synthesis layer,
    stylegan2/family.py's layer groups), or None outside every layer group."""
    prefixes = []
    for group in loaded.contract.layer_groups(loaded.generator):
        index = group.wplus_index
        name = "coarse" if index < COARSE_END else "medium" if index < MEDIUM_END else "fine"
        prefixes.append((f"{group.name}.", name))

    def group_of(key: str) -> str | None:
        return next((name for prefix, name in prefixes if key.startswith(prefix)), None)

    return group_of


def share_of(mix: Mix, group_of: Callable[[str], str | None]) -> Callable[[str], float]:
    """A state-dict name -> its layer group's share under `mix`."""
    return lambda key: mix.share(group_of(key))


def combine(
    base: Mapping[str, Tensor],
    domains: Sequence[Mapping[str, Tensor]],
    strength: Callable[[int, str], float],
) -> dict[str, Tensor]:
    """base + sum_i strength(i, name) * (domains[i] - base), per tensor: the base's own tensor
    where every strength is 0, domain i's own where it alone has one, of exactly 1; otherwise
    summed in float64 and rounded once to the tensor's dtype. Tensors that are not floats
    (counters) are the base's.

    Raises:
        InputError: a domain lacks a tensor of the base or holds one of another shape.
    """
    out: dict[str, Tensor] = {}
    for name, b in base.items():
        live: list[tuple[Tensor, float]] = []
        for i, domain in enumerate(domains):
            w = domain.get(name)
            if w is None or w.shape != b.shape:
                raise InputError(
                    f"a blended generator's {name} is {None if w is None else list(w.shape)}, "
                    f"the base's {list(b.shape)}: they are not the same model"
                )
            alpha = float(strength(i, name))
            if alpha != 0:
                live.append((w, alpha))
        if not live or not b.is_floating_point():
            out[name] = b
        elif len(live) == 1 and live[0][1] == 1:
            out[name] = live[0][0]
        else:
            b64 = b.double()
            acc = b64.clone()
            for w, alpha in live:
                acc += alpha * (w.double() - b64)
            out[name] = acc.to(b.dtype)
    return out


def state_of(loaded: LoadedGenerator) -> dict[str, Tensor]:
    """The module's state and its mean w (LATENT_AVG): everything a blend combines."""
    return {**loaded.generator.state_dict(), LATENT_AVG: loaded.latent_avg}


def blended_generator(
    base: LoadedGenerator,
    domains: Sequence[LoadedGenerator],
    mix: Mix,
    *,
    into: LoadedGenerator | None = None,
) -> LoadedGenerator:
    """The generator of `mix` over `base` (see the module docstring): a new module (a copy of
    the first domain's), or `into`'s module overwritten in place (a video's frames reuse one).
    Frozen, eval mode, on the base's device.

    Raises:
        InputError: a domain is not the base's model (another family, size or layout).
    """
    if len(domains) != len(mix.strengths) or not domains:
        raise ValueError(f"{len(mix.strengths)} strengths for {len(domains)} generators")
    for domain in domains:
        if domain.family != base.family or domain.resolution != base.resolution:
            raise InputError(
                f"a blended generator is a {domain.family} of {domain.resolution} px and the "
                f"base a {base.family} of {base.resolution} px: they are not the same model"
            )
    share = share_of(mix, layer_group_of(base))
    state = combine(
        state_of(base),
        [state_of(d) for d in domains],
        lambda i, name: mix.strengths[i] * (1.0 if name == LATENT_AVG else share(name)),
    )
    latent_avg = state.pop(LATENT_AVG)
    if into is None:
        module = copy.deepcopy(domains[0].generator)
    else:
        module = into.generator
    with torch.no_grad():
        module.load_state_dict(state)
    module.eval().requires_grad_(False)
    identity = {**domains[0].identity, "blend": list(mix.key)}
    return LoadedGenerator(module, latent_avg.clone(), identity, dict(domains[0].metadata))


def between(a: Sequence[float], b: Sequence[float], t: float) -> tuple[float, ...]:
    """The strengths a fraction `t` of the way from `a` to `b` (t 0: `a` itself, 1: `b`)."""
    if t == 0:
        return tuple(a)
    if t == 1:
        return tuple(b)
    return tuple((1 - t) * x + t * y for x, y in zip(a, b, strict=True))
