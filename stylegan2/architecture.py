"""What a StyleGAN2 generator's architecture is, and what its state dict says about it.

`GeneratorConfig` is the constructor arguments that decide the shapes and the function of
our Generator (rosinality's four, and NVIDIA's channel table, conv_clamp and z_dim);
`infer_config` reads it off a state dict in rosinality's layout, so that a file needs no
description of itself to be loaded; `check_shapes` names the key at fault when a file's
weights do not fit. stylegan2/checkpoint.py (our .pt files) and stylegan2/nvidia_stylegan2.py
(NVIDIA's) share them.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from stylegan2.errors import CheckpointError
from stylegan2.model import Generator, channels_for

_STYLE_WEIGHT = re.compile(r"style\.\d+\.weight")


@dataclass(frozen=True)
class GeneratorConfig:
    """The constructor arguments that decide a generator's state-dict shapes and function.

    The last three are None for rosinality's architecture; NVIDIA's generators set them
    (stylegan2/nvidia_stylegan2.py), and our files record them in metadata['stylegan2']."""

    size: int  # output resolution in pixels
    style_dim: int = 512  # width of w (and of z unless z_dim is set)
    n_mlp: int = 8  # layers in the mapping network
    channel_multiplier: int = 2  # channel widths at 64 px and above
    channels: tuple[int, ...] | None = None  # feature maps at 4, 8, ..., size px; None: the table
    conv_clamp: float | None = None  # activations clamped to +-this; None: not clamped
    z_dim: int | None = None  # width of z; None: style_dim

    def __post_init__(self) -> None:
        if self.channels is not None and len(self.channels) != int(math.log2(self.size)) - 1:
            raise ValueError(
                f"channels must list a width for each of 4..{self.size} px (got {self.channels})"
            )

    def build(self) -> Generator:
        """A freshly initialised Generator on the CPU (the global RNG is left untouched)."""
        table = None
        if self.channels is not None:
            table = {2 ** (i + 2): c for i, c in enumerate(self.channels)}
        with torch.random.fork_rng(devices=[]):
            return Generator(
                self.size, self.style_dim, self.n_mlp, self.channel_multiplier,
                channels=table, conv_clamp=self.conv_clamp, z_dim=self.z_dim,
            )  # fmt: skip

    @classmethod
    def of(cls, generator: Generator) -> GeneratorConfig:
        """The configuration `generator` was built with."""
        table = getattr(generator, "channel_table", None)
        z_dim = getattr(generator, "z_dim", generator.style_dim)
        return cls(
            generator.size, generator.style_dim, generator.n_mlp, generator.channel_multiplier,
            channels=tuple(c for _, c in table) if table else None,
            conv_clamp=getattr(generator, "conv_clamp", None),
            z_dim=None if z_dim == generator.style_dim else z_dim,
        )  # fmt: skip

    def describe(self) -> dict[str, Any]:
        """Plain data for identities and metadata: rosinality's four fields, and the others
        only where they are set (so a rosinality generator's record is unchanged)."""
        fields = asdict(self)
        for key in ("channels", "conv_clamp", "z_dim"):
            if fields[key] is None:
                del fields[key]
        if self.channels is not None:
            fields["channels"] = list(self.channels)
        return fields

    @classmethod
    def hints(cls, recorded: Any) -> dict[str, Any]:
        """The architecture fields a file's metadata['stylegan2'] records beyond the shapes
        (what infer_config cannot read off the weights), as infer_config's keywords."""
        if not isinstance(recorded, dict):
            return {}
        found: dict[str, Any] = {}
        channels = recorded.get("channels")
        if isinstance(channels, list | tuple) and all(
            isinstance(c, int) and not isinstance(c, bool) for c in channels
        ):
            found["channels"] = tuple(channels)
        clamp = recorded.get("conv_clamp")
        if isinstance(clamp, int | float) and not isinstance(clamp, bool):
            found["conv_clamp"] = float(clamp)
        z_dim = recorded.get("z_dim")
        if isinstance(z_dim, int) and not isinstance(z_dim, bool) and z_dim > 0:
            found["z_dim"] = z_dim
        return found


def infer_config(
    state: dict[str, Tensor],
    *,
    channel_multiplier: int | None = None,
    channels: tuple[int, ...] | None = None,  # a recorded channel table (metadata)
    conv_clamp: float | None = None,  # recorded in metadata: not visible in the weights
    z_dim: int | None = None,  # recorded in metadata (None: style_dim)
    where: str = "checkpoint",
) -> GeneratorConfig:
    """Read size, style_dim, n_mlp and channel_multiplier off a generator state dict.

    size and n_mlp come from how many to_rgbs / style layers there are. style_dim and
    channel_multiplier are each read off every tensor that shows them and the majority wins,
    so a single tensor of the wrong shape is blamed on its own key (by the shape check that
    follows) rather than on the many keys that then disagree with it. Below 64 px every
    channel multiplier gives the same shapes; `channel_multiplier` (from the file's
    metadata or training args) is used there, else rosinality's default 2. A `channels`
    table (a converted NVIDIA generator's, from our metadata) replaces the multiplier's.
    """
    for key in ("style.1.weight", "input.input", "conv1.conv.weight", "to_rgb1.conv.weight"):
        if key not in state:
            raise CheckpointError(
                f"{where}: not a StyleGAN2 generator in rosinality's layout (missing {key!r})"
            )
    # The mapping layers are [style_dim, style_dim], every modulation [channels, style_dim].
    style_dim = _majority(
        [
            v.shape[1]
            for k, v in state.items()
            if v.ndim == 2 and (_STYLE_WEIGHT.fullmatch(k) or k.endswith(".modulation.weight"))
        ]
    )
    if not style_dim:
        style = state["style.1.weight"]
        raise CheckpointError(
            f"{where}: wrong shape for 'style.1.weight': {list(style.shape)} (expected a square "
            "[style_dim, style_dim] matrix)"
        )
    n_mlp = _count_indexed(state, "style.{}.weight", start=1, where=where)
    n_rgb = _count_indexed(state, "to_rgbs.{}.conv.weight", start=0, where=where)
    size = 2 ** (n_rgb + 2)
    if not 8 <= size <= 1024:
        raise CheckpointError(f"{where}: {n_rgb} to_rgbs layers means {size} px; 8..1024 supported")
    extra: dict[str, Any] = {"conv_clamp": conv_clamp, "z_dim": z_dim}
    if channels is not None:
        if len(channels) != n_rgb + 1:
            raise CheckpointError(
                f"{where}: the recorded channel table {list(channels)} does not fit a {size} px "
                "generator"
            )
        return GeneratorConfig(
            size, style_dim, n_mlp, int(channel_multiplier or 2), channels=channels, **extra
        )
    if size >= 64:  # feature maps at r >= 64 px are channels_for(1)[r] * channel_multiplier
        channel_multiplier = _majority(_channel_multipliers(state, n_rgb))
        if not channel_multiplier:
            last = state[f"to_rgbs.{n_rgb - 1}.conv.weight"]
            raise CheckpointError(
                f"{where}: wrong shape for 'to_rgbs.{n_rgb - 1}.conv.weight': "
                f"{list(last.shape)} (expected [1, 3, {channels_for(1)[size]} * "
                "channel_multiplier, 1, 1])"
            )
    return GeneratorConfig(size, style_dim, n_mlp, int(channel_multiplier or 2), **extra)


def _channel_multipliers(state: dict[str, Tensor], n_rgb: int) -> list[int]:
    """The channel multiplier each layer at 64 px and above implies (those that imply one)."""
    base = channels_for(1)
    found = []
    for i in range(n_rgb):  # to_rgbs.i and convs.2i, convs.2i+1 work at 2**(i+3) px
        res = 2 ** (i + 3)
        if res < 64:
            continue
        for key, dim in (
            (f"to_rgbs.{i}.conv.weight", 2),  # [1, 3, in_channels, 1, 1]
            (f"convs.{2 * i}.conv.weight", 1),  # [1, out_channels, in_channels, 3, 3]
            (f"convs.{2 * i + 1}.conv.weight", 1),
        ):
            weight = state.get(key)
            if weight is not None and weight.ndim == 5 and weight.shape[dim] % base[res] == 0:
                found.append(weight.shape[dim] // base[res])
    return found


def _majority(votes: list[int]) -> int | None:
    """The most common value (the first seen among equally common ones); None if no votes."""
    return Counter(votes).most_common(1)[0][0] if votes else None


def _count_indexed(state: dict[str, Tensor], template: str, *, start: int, where: str) -> int:
    """How many keys `template.format(i)` exist for i = start, start+1, ... (no gaps)."""
    pattern = re.escape(template).replace(r"\{\}", r"(\d+)")
    found = sorted(int(m.group(1)) for k in state if (m := re.fullmatch(pattern, k)))
    if not found or found != list(range(start, start + len(found))):
        numbers = ", ".join(map(str, found[:10])) or "none"
        raise CheckpointError(
            f"{where}: the {template.format('N')} keys must be numbered from {start} without "
            f"gaps (found {numbers})"
        )
    return len(found)


def check_shapes(
    expected: dict[str, Tensor], state: dict[str, Tensor], config: GeneratorConfig, where: str
) -> None:
    arch = (
        f"channels {list(config.channels)}"
        if config.channels is not None
        else f"channel_multiplier {config.channel_multiplier}"
    )
    what = (
        f"a {config.size} px generator (style_dim {config.style_dim}, n_mlp {config.n_mlp}, {arch})"
    )
    for key, want in expected.items():
        if key in state and state[key].shape != want.shape:
            raise CheckpointError(
                f"{where}: wrong shape for {key!r}: the file has {list(state[key].shape)}, "
                f"{what} needs {list(want.shape)}"
            )
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    for keys, problem in ((missing, "is missing"), (unexpected, "has unexpected")):
        if keys:
            shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
            raise CheckpointError(f"{where}: {problem} keys for {what}: {shown}")
