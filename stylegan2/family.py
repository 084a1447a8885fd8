"""What differs between generator families, in one place: the contract every caller that
maps, renders or trains a generator module uses, so that a trainable copy of a module works
exactly as the frozen original.

    >>> family = family_of(module)                  # StyleGAN2 (rosinality) or StyleGAN3
    >>> ws = family.map(module, z)                  # [N, num_ws, w_dim], no truncation
    >>> img = family.synthesize(module, ws, noise)  # [N, 3, H, W]; noise: StyleGAN2 only
    >>> family.layer_groups(module)                 # what adaptation may train, by W+ index

`stylegan2.LoadedGenerator.to_wplus/render_wplus`, the adaptation engine (worker/), the
renders and the samples all go through here; nothing else branches on the family.

Adapting StyleGAN3. StyleGAN-NADA's own StyleGAN3 code trains the synthesis children
`[:11] + [12:13] + [14:]` with every `affine` frozen, and selects nothing; we select (the
paper's sec. 3.3, as for StyleGAN2). A group is one synthesis layer reading one W+ entry:
the input ws[:, 0], L{i} ws[:, i + 1], ToRGB the last. Its `affine` (w -> the layer's
styles) is not trained, as in the original: it is how W enters the layer, and keeping it
the base generator's keeps the W+ codes (seeds, style mixing, a crossover) meaning the same
in the adapted generator; the convolution weights and biases carry the new domain. The
Fourier input (`synthesis.input`) is no candidate: its W+ entry acts only through its
affine, the picture's rotation and translation, so the latent probe scoring ws[:, 0] would
say "move the picture", which its trainable channel-mixing matrix cannot do.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from stylegan2.model import Generator


@dataclass(frozen=True)
class LayerGroup:
    """A trainable part of the synthesis network and the W+ entry it reads (group k of a
    StyleGAN3's `layer_groups()` reads ws[:, k]: the input, then L0, L1, ...)."""

    name: str  # module path, the prefix of its parameters: 'convs.3', 'synthesis.L3_36_64'
    wplus_index: int  # the W+ entry whose change moves this group's input
    is_rgb: bool  # a to_rgb / ToRGB layer (trained only with include_torgb)
    is_input: bool = False  # StyleGAN3's Fourier features (never a candidate)


def crop_to_content(images: Tensor, box: tuple[int, int, int, int] | None) -> Tensor:
    """images [N, C, H, W] cut to `box` (left, top, right, bottom in pixels), or as they are
    for None: a letterboxed generator's content (LSUN car: 512x384 in 512x512; the original
    does `img[:, :, 64:448, :]`) is what CLIP should see, not the bars."""
    if box is None:
        return images
    left, top, right, bottom = box
    return images[:, :, top:bottom, left:right]


class Family:
    """The family contract: stateless, every method takes the module it works on."""

    name = ""

    def z_dim(self, module: Any) -> int:
        raise NotImplementedError

    def num_ws(self, module: Any) -> int:
        raise NotImplementedError

    def w_dim(self, module: Any) -> int:
        raise NotImplementedError

    def resolution(self, module: Any) -> int:
        raise NotImplementedError

    def map(self, module: Any, z: Tensor) -> Tensor:
        """z [N, z_dim] (on the module's device) -> W+ [N, num_ws, w_dim], every entry the
        mapping's w (no truncation)."""
        raise NotImplementedError

    def synthesize(self, module: Any, ws: Tensor, noise: Sequence[Tensor] | None = None) -> Tensor:
        """W+ [N, num_ws, w_dim] -> images [N, 3, H, W] in about [-1, 1], with a graph.
        `noise`: per-layer noise [N, 1, h, w] (noise_shapes), None for the file's fixed
        noise; a family without noise ignores it."""
        raise NotImplementedError

    def noise_shapes(self, module: Any) -> list[tuple[int, int]]:
        """(height, width) of each per-layer noise input, in the order synthesize takes
        them; [] for a family without noise."""
        raise NotImplementedError

    def layer_groups(self, module: Any) -> tuple[LayerGroup, ...]:
        """Every trainable synthesis group in forward order with its W+ index."""
        raise NotImplementedError

    def candidates(self, module: Any, include_torgb: bool = False) -> tuple[str, ...]:
        """The groups layer selection may pick (the paper trains convolutions only; its
        code lists to_rgb as 'currently not optimized'): never the mapping network, the
        constant or Fourier input; the to_rgb layers if asked."""
        return tuple(
            g.name
            for g in self.layer_groups(module)
            if not g.is_input and (include_torgb or not g.is_rgb)
        )

    def group_parameters(self, module: nn.Module, names: Iterable[str]) -> list[nn.Parameter]:
        """The trained parameters of the named groups, in registration order."""
        prefixes = tuple(f"{name}." for name in names)
        return [p for n, p in module.named_parameters() if n.startswith(prefixes)]

    def checkpoint_payload(
        self, module: Any, latent_avg: Tensor, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        """The family's checkpoint file as a dict ('g_ema', 'latent_avg', 'metadata': CPU
        tensors and plain data), which `load_generator` reads; a caller may add keys (an
        adaptation's intermediate checkpoint adds 'resume')."""
        raise NotImplementedError


class StyleGAN2Family(Family):
    """Our rosinality-layout Generator (NVIDIA's ADA and TensorFlow files load into it).

    Forward order and W+ use: conv1 <- w[0]; to_rgb1 <- w[1]; convs[2j] <- w[1 + 2j];
    convs[2j + 1] <- w[2 + 2j]; to_rgbs[j] <- w[3 + 2j]. So entry i >= 1 feeds
    convs[i - 1], and odd entries also a to_rgb. (The authors' code maps entry i to
    convs[i - 2] and entry 1 to to_rgb1 alone, one layer off.) A layer's parameters are
    all of it, its modulation included (as NADA trains them).
    """

    name = "stylegan2"

    def z_dim(self, module: Any) -> int:
        return int(getattr(module, "z_dim", module.style_dim))

    def num_ws(self, module: Any) -> int:
        return int(module.n_latent)

    def w_dim(self, module: Any) -> int:
        return int(module.style_dim)

    def resolution(self, module: Any) -> int:
        return int(module.size)

    def map(self, module: Any, z: Tensor) -> Tensor:
        w: Tensor = module.style(z)  # [N, w_dim]
        return w.unsqueeze(1).repeat(1, self.num_ws(module), 1)

    def synthesize(self, module: Any, ws: Tensor, noise: Sequence[Tensor] | None = None) -> Tensor:
        if noise is None:
            image: Tensor = module([ws], input_is_latent=True, randomize_noise=False)[0]
        else:
            image = module([ws], input_is_latent=True, noise=list(noise))[0]
        return image

    def noise_shapes(self, module: Any) -> list[tuple[int, int]]:
        return [
            (int(b.shape[-2]), int(b.shape[-1]))
            for b in (getattr(module.noises, f"noise_{i}") for i in range(module.num_layers))
        ]

    def checkpoint_payload(
        self, module: Any, latent_avg: Tensor, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        from stylegan2.checkpoint import FORMAT_VERSION, GeneratorConfig  # imports this module

        state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
        metadata = json.loads(json.dumps(metadata))  # plain data, as weights_only wants
        # describe(): the architecture, with a converted NVIDIA generator's channel table and
        # conv_clamp (which the weights alone do not show)
        metadata["stylegan2"] = {
            **GeneratorConfig.of(module).describe(),
            "format_version": FORMAT_VERSION,
        }
        return {
            "g_ema": state,
            "latent_avg": latent_avg.detach().cpu().reshape(-1).clone(),
            "metadata": metadata,
        }

    def layer_groups(self, module: Any) -> tuple[LayerGroup, ...]:
        groups = [LayerGroup("conv1", 0, False), LayerGroup("to_rgb1", 1, True)]
        for j in range(len(module.to_rgbs)):
            groups.append(LayerGroup(f"convs.{2 * j}", 1 + 2 * j, False))
            groups.append(LayerGroup(f"convs.{2 * j + 1}", 2 + 2 * j, False))
            groups.append(LayerGroup(f"to_rgbs.{j}", 3 + 2 * j, True))
        return tuple(groups)


class StyleGAN3Family(Family):
    """stylegan2.stylegan3.StyleGAN3Generator: mapping -> W+ -> synthesis, no noise.

    Groups are `layer_groups()` (group k reads ws[:, k]); a group's trained parameters are
    its own but its `affine` (see the module docstring for why), and the Fourier input is
    no candidate.
    """

    name = "stylegan3"

    def z_dim(self, module: Any) -> int:
        return int(module.z_dim)

    def num_ws(self, module: Any) -> int:
        return int(module.num_ws)

    def w_dim(self, module: Any) -> int:
        return int(module.w_dim)

    def resolution(self, module: Any) -> int:
        return int(module.resolution)

    def map(self, module: Any, z: Tensor) -> Tensor:
        ws: Tensor = module.mapping(z)
        return ws

    def synthesize(self, module: Any, ws: Tensor, noise: Sequence[Tensor] | None = None) -> Tensor:
        image: Tensor = module.synthesis(ws)
        return image

    def noise_shapes(self, module: Any) -> list[tuple[int, int]]:
        return []

    def checkpoint_payload(
        self, module: Any, latent_avg: Tensor, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        from stylegan2.stylegan3.checkpoint import checkpoint_payload

        return checkpoint_payload(module, metadata, latent_avg)

    def layer_groups(self, module: Any) -> tuple[LayerGroup, ...]:
        groups: tuple[LayerGroup, ...] = module.layer_groups()
        return groups

    def group_parameters(self, module: nn.Module, names: Iterable[str]) -> list[nn.Parameter]:
        prefixes = tuple(f"{name}." for name in names)
        return [
            p
            for n, p in module.named_parameters()
            if n.startswith(prefixes) and ".affine." not in n
        ]


STYLEGAN2 = StyleGAN2Family()
STYLEGAN3 = StyleGAN3Family()


def family_of(module: Any) -> Family:
    """The contract of a generator module (by its class, so a deepcopy gets the same)."""
    if isinstance(module, Generator):
        return STYLEGAN2
    from stylegan2.stylegan3.generator import StyleGAN3Generator

    if isinstance(module, StyleGAN3Generator):
        return STYLEGAN3
    raise TypeError(f"not a generator of a known family: {type(module).__name__}")
