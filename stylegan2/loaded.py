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

from stylegan2.family import Family, family_of

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
    def content_box(self) -> tuple[int, int, int, int] | None:
        """(left, top, right, bottom) in pixels of the part of the image that holds the
        picture (LSUN car: 512x384 letterboxed in 512x512), None: all of it. From the
        registry entry (in the identity), else an adapted checkpoint's `base`, else the
        file's metadata (a converted pickle's)."""
        base = self.metadata.get("base")
        for box in (
            self.identity.get("content_box"),
            base.get("content_box") if isinstance(base, dict) else None,
            self.metadata.get("content_box"),
        ):
            if (
                isinstance(box, list | tuple)
                and len(box) == 4
                and all(isinstance(v, int) and not isinstance(v, bool) for v in box)
            ):
                return (box[0], box[1], box[2], box[3])
        return None

    @property
    def module(self) -> nn.Module:
        """The generator itself (the same object as `generator`)."""
        module: nn.Module = self.generator
        return module

    @property
    def contract(self) -> Family:
        """The family contract of the module (stylegan2/family.py): mapping, synthesis,
        trainable groups, noise shapes."""
        return family_of(self.generator)

    @property
    def resolution(self) -> int:
        """Output height and width in pixels."""
        return self.contract.resolution(self.generator)

    @property
    def num_ws(self) -> int:
        """W+ entries the synthesis reads (StyleGAN2: n_latent; StyleGAN3: layers + 2)."""
        return self.contract.num_ws(self.generator)

    @property
    def w_dim(self) -> int:
        """Width of each W+ entry."""
        return self.contract.w_dim(self.generator)

    @property
    def z_dim(self) -> int:
        """Width of z, the mapping network's input."""
        return self.contract.z_dim(self.generator)

    def to_wplus(self, z: Tensor, truncation: float = 1.0) -> Tensor:
        """z [N, z_dim] -> W+ [N, num_ws, w_dim] on the generator's device: the mapping's w
        for every entry, moved `1 - truncation` of the way towards latent_avg (1: none)."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be [N, {self.z_dim}] (got {list(z.shape)})")
        z = z.to(self.latent_avg.device, self.latent_avg.dtype)
        ws = self.contract.map(self.generator, z)  # [N, num_ws, w_dim]
        if truncation != 1:
            ws = self.latent_avg.lerp(ws, float(truncation))
        return ws

    def render_wplus(self, ws: Tensor) -> Tensor:
        """W+ [N, num_ws, w_dim] -> images [N, 3, H, W] (about [-1, 1]) with the file's
        fixed noise (StyleGAN2's stored noise buffers; StyleGAN3 has no noise)."""
        if ws.ndim != 3 or tuple(ws.shape[1:]) != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}] (got {list(ws.shape)})")
        return self.contract.synthesize(self.generator, ws.to(self.latent_avg.device))
