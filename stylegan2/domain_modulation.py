"""Domain modulation (HyperDomainNet, Alanov et al., NeurIPS 2022): a domain as one vector
per modulated layer that multiplies the layer's style, the base generator's weights as
they are.

A StyleGAN2 layer's modulated convolution reads its style s = A(w) (the layer's
`conv.modulation` affine: an EqualLinear, [N, in_channels]); domain modulation replaces it
by s * d_l, with d_l [in_channels] initialised to ones (d = 1 is the base generator).
HyperDomainNet modulates the convolutions (6,048 numbers at 1024 px); the to_rgb layers'
styles may be modulated too (a domain may carry a vector for any of them).

Three views of the same domain, all computed here:

    >>> view = modulated_view(base, vectors)   # shares the base's tensors, scales styles
    >>> full = bake(base, vectors)             # a full Generator: the affines scaled
    >>> mixed = combine_domains([(d1, 1.0), (d2, 0.5)])   # 1 + sum alpha_i (d_i - 1)

`modulated_view` costs no copy of the weights (the memory win of training a domain: the
trainable generator is the frozen one plus the vectors) and computes exactly what training
computed; `bake` folds d into each affine's weight and bias (A(w) * d = (W * d) w + b * d),
the layout every StyleGAN2 tool reads, equal to the view up to float rounding.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from stylegan2.family import family_of
from stylegan2.model import EqualLinear, Generator

Vectors = Mapping[str, Tensor]  # layer name ('conv1', 'convs.3', 'to_rgbs.2') -> d [C]


def modulated_layers(generator: nn.Module) -> dict[str, int]:
    """Every layer whose style a domain may scale, in forward order, with its style width
    (the modulated convolution's input channels). StyleGAN2 only: StyleGAN3's layers read
    their styles differently (an affine into a modulated conv with its own magnitude
    normalisation), which domain modulation is not defined for here."""
    if not isinstance(generator, Generator):
        raise TypeError(
            f"domain modulation is for StyleGAN2 generators (got {type(generator).__name__})"
        )
    return {
        group.name: int(_affine(generator, group.name).weight.shape[0])
        for group in family_of(generator).layer_groups(generator)
    }


def _affine(generator: nn.Module, layer: str) -> EqualLinear:
    """The affine A of a layer: w -> its style."""
    module = generator.get_submodule(f"{layer}.conv.modulation")
    assert isinstance(module, EqualLinear) and module.activation is None, layer
    return module


def check_vectors(generator: nn.Module, vectors: Vectors) -> None:
    """Each vector names a modulated layer of `generator` and has its style width."""
    widths = modulated_layers(generator)
    for name, d in vectors.items():
        if name not in widths:
            raise ValueError(f"no modulated layer {name!r} in this generator")
        if tuple(d.shape) != (widths[name],):
            raise ValueError(
                f"the vector of {name} is {list(d.shape)}; the layer's style is [{widths[name]}]"
            )


def shared_copy(generator: nn.Module) -> nn.Module:
    """A second module tree over the same parameter and buffer tensors: hooks put on it
    leave the original's forward alone, and no weight is copied."""
    memo = {id(t): t for t in itertools.chain(generator.parameters(), generator.buffers())}
    return copy.deepcopy(generator, memo)


def modulated_view(generator: nn.Module, vectors: Vectors) -> nn.Module:
    """`generator` with each named layer's style multiplied by its vector, sharing every
    weight with `generator` (which itself is unchanged). The vectors are used as they are,
    not copied: a trainable nn.Parameter gets its gradient through the view."""
    check_vectors(generator, vectors)
    view = shared_copy(generator)
    for name, d in vectors.items():
        _affine(view, name).register_forward_hook(_scale_style(d))
    return view


def _scale_style(d: Tensor):  # noqa: ANN202  (a forward hook)
    def hook(module: nn.Module, args: tuple[Tensor, ...], style: Tensor) -> Tensor:
        return style * d.to(style.dtype)  # [N, C] * [C]

    return hook


@torch.no_grad()
def bake(generator: nn.Module, vectors: Vectors) -> Generator:
    """A full copy of `generator` whose affines produce the modulated styles: each named
    layer's affine weight rows and bias multiplied by its vector."""
    check_vectors(generator, vectors)
    baked = copy.deepcopy(generator)
    assert isinstance(baked, Generator)
    for name, d in vectors.items():
        affine = _affine(baked, name)
        d = d.detach().to(affine.weight.device, affine.weight.dtype)
        affine.weight.mul_(d[:, None])  # [C, w_dim]: row c makes style channel c
        if affine.bias is not None:
            affine.bias.mul_(d)
    return baked


def combine_domains(domains: Iterable[tuple[Vectors, float]]) -> dict[str, Tensor]:
    """Domains on one base combined by their offsets from the base: d = 1 + sum_i alpha_i
    (d_i - 1), per layer (a layer a domain has no vector for is the base's there). One
    domain with alpha 0 is the base, with 1 itself, above 1 an exaggeration of it."""
    offsets: dict[str, Tensor] = {}
    for vectors, alpha in domains:
        for name, d in vectors.items():
            term = (d.detach().float() - 1) * float(alpha)
            offsets[name] = offsets[name] + term if name in offsets else term
    return {name: 1 + offset for name, offset in offsets.items()}


def ones_like_layers(generator: nn.Module, names: Sequence[str]) -> dict[str, Tensor]:
    """The base's vectors (all ones) for the named layers, on the generator's device."""
    widths = modulated_layers(generator)
    device = next(generator.parameters()).device
    return {name: torch.ones(widths[name], device=device) for name in names}
