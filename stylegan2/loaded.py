"""One contract for every generator family: what `stylegan2.load_generator` returns.

A LoadedGenerator holds the module (our StyleGAN2 `Generator`, or the StyleGAN3 generator),
its truncation centre and where it came from, and speaks W+ for every family:

    >>> g = load_generator("afhqdog.pkl")            # or a .pt, or a registry name
    >>> ws = g.to_wplus(z, truncation=0.7)           # [N, num_ws, w_dim], towards w_avg
    >>> img = g.render_wplus(ws)                     # [N, 3, H, W], the file's fixed noise

The StyleGAN2 fields (`generator`, `latent_avg`, `identity`, `metadata`) are those the engine,
the inverter and the renders have always used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

FAMILIES = ("stylegan2", "stylegan3")


@dataclass(frozen=True)
class LoadedGenerator:
    """What `load_generator` returns."""

    # eval mode, on the requested device: a stylegan2.model.Generator (family 'stylegan2',
    # rosinality's API) or a stylegan2.stylegan3 StyleGAN3Generator (family 'stylegan3')
    generator: Any
    latent_avg: Tensor  # [w_dim] mean w (the truncation centre), same device
    identity: dict[str, Any]  # plain data: name, path, sha256, family, size, ...
    metadata: dict[str, Any] = field(default_factory=dict)  # the file's own 'metadata', or {}

    @property
    def family(self) -> str:
        """'stylegan2' or 'stylegan3'."""
        return str(self.identity.get("family") or "stylegan2")

    @property
    def module(self) -> nn.Module:
        """The generator itself (the same object as `generator`)."""
        module: nn.Module = self.generator
        return module

    @property
    def resolution(self) -> int:
        """Output height and width in pixels."""
        if self.family == "stylegan2":
            return int(self.generator.size)
        return int(self.generator.resolution)

    @property
    def num_ws(self) -> int:
        """W+ entries the synthesis reads (StyleGAN2: n_latent; StyleGAN3: layers + 2)."""
        if self.family == "stylegan2":
            return int(self.generator.n_latent)
        return int(self.generator.num_ws)

    @property
    def w_dim(self) -> int:
        """Width of each W+ entry."""
        if self.family == "stylegan2":
            return int(self.generator.style_dim)
        return int(self.generator.w_dim)

    @property
    def z_dim(self) -> int:
        """Width of z, the mapping network's input."""
        if self.family == "stylegan2":
            return int(getattr(self.generator, "z_dim", self.generator.style_dim))
        return int(self.generator.z_dim)

    def to_wplus(self, z: Tensor, truncation: float = 1.0) -> Tensor:
        """z [N, z_dim] -> W+ [N, num_ws, w_dim] on the generator's device: the mapping's w
        for every entry, moved `1 - truncation` of the way towards latent_avg (1: none)."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be [N, {self.z_dim}] (got {list(z.shape)})")
        z = z.to(self.latent_avg.device, self.latent_avg.dtype)
        if self.family == "stylegan2":
            w = self.generator.style(z)  # [N, w_dim]
            ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        else:
            ws = self.generator.mapping(z)  # [N, num_ws, w_dim]
        if truncation != 1:
            ws = self.latent_avg.lerp(ws, float(truncation))
        return ws

    def render_wplus(self, ws: Tensor) -> Tensor:
        """W+ [N, num_ws, w_dim] -> images [N, 3, H, W] (about [-1, 1]) with the file's
        fixed noise (StyleGAN2's stored noise buffers; StyleGAN3 has no noise)."""
        if ws.ndim != 3 or tuple(ws.shape[1:]) != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}] (got {list(ws.shape)})")
        ws = ws.to(self.latent_avg.device)
        if self.family == "stylegan2":
            image: Tensor = self.generator([ws], input_is_latent=True, randomize_noise=False)[0]
            return image
        image = self.generator.synthesis(ws)
        return image
