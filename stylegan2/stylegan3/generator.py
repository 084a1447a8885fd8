"""The StyleGAN3 generator (configs T and R): mapping + synthesis, built from NVIDIA's
`init_kwargs`.

    >>> g = build(init_kwargs)                  # random weights, NVIDIA's state-dict layout
    >>> ws = g.mapping(z, truncation=0.7)       # [N, num_ws, w_dim], towards w_avg
    >>> img = g.synthesis(ws)                   # [N, 3, H, W], about [-1, 1]
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from stylegan2.family import LayerGroup
from stylegan2.stylegan3.layout import GeneratorConfig, synthesis_layout
from stylegan2.stylegan3.mapping import MappingNetwork
from stylegan2.stylegan3.synthesis import SynthesisLayer, SynthesisNetwork


class StyleGAN3Generator(nn.Module):
    """z -> W+ -> image. Module layout and state-dict keys are those of NVIDIA's
    `training.networks_stylegan3.Generator` (synthesis registered first, as theirs)."""

    def __init__(self, config: GeneratorConfig, init_kwargs: dict[str, Any] | None = None):
        super().__init__()
        self.config = config
        # The constructor arguments as given (NVIDIA's init_kwargs, plain data): what our
        # checkpoints record so that a file describes its own architecture.
        self.init_kwargs: dict[str, Any] = init_kwargs or config.to_init_kwargs()
        input_spec, layers = synthesis_layout(config)
        self.synthesis = SynthesisNetwork(
            config.w_dim, config.img_resolution, config.img_channels, input_spec, layers,
            conv_clamp=config.conv_clamp, output_scale=config.output_scale,
        )  # fmt: skip
        self.mapping = MappingNetwork(
            config.z_dim, config.c_dim, config.w_dim, self.synthesis.num_ws,
            num_layers=config.mapping_layers, lr_multiplier=config.mapping_lr_multiplier,
        )  # fmt: skip

    @property
    def resolution(self) -> int:
        return self.config.img_resolution

    @property
    def num_ws(self) -> int:
        return self.synthesis.num_ws

    @property
    def w_dim(self) -> int:
        return self.config.w_dim

    @property
    def z_dim(self) -> int:
        return self.config.z_dim

    @property
    def w_avg(self) -> Tensor:
        """[w_dim] the truncation centre (the mapping's tracked mean w)."""
        return self.mapping.w_avg

    def forward(self, z: Tensor, truncation: float = 1.0, c: Tensor | None = None) -> Tensor:
        """z [N, z_dim] -> image [N, img_channels, res, res]."""
        return self.synthesis(self.mapping(z, truncation=truncation, c=c))

    def layer_groups(self) -> tuple[LayerGroup, ...]:
        """The synthesis network's trainable groups in forward order with their W+ index:
        the input (ws[:, 0]), then L0 .. L{num_layers} (ws[:, 1] .. ws[:, num_ws - 1]), the
        last one being ToRGB. The mapping network is not a group (it is frozen in
        adaptation, as in the StyleGAN2 engine)."""
        groups = [LayerGroup("synthesis.input", 0, is_rgb=False, is_input=True)]
        for i, name in enumerate(self.synthesis.layer_names):
            layer = getattr(self.synthesis, name)
            groups.append(LayerGroup(f"synthesis.{name}", i + 1, is_rgb=layer.is_torgb))
        return tuple(groups)

    def set_reference_ops(self, enabled: bool = True) -> StyleGAN3Generator:
        """Compute with the reference ops (NVIDIA's operations one by one: per-sample
        weights and a grouped conv, zero-insertion FIR filters, autograd through all of it):
        the baseline the tests check the fast path against."""
        for module in self.modules():
            if isinstance(module, SynthesisLayer):
                module.reference_ops = enabled
        return self


def build(init_kwargs: dict[str, Any], seed: int | None = None) -> StyleGAN3Generator:
    """A StyleGAN3 generator with random weights from NVIDIA's `init_kwargs`: the same
    state-dict names and shapes as their `Generator(**init_kwargs)`, the same designed
    filters. `seed` draws the weights from its own generator (the global RNG is left alone).

    Raises ValueError naming an init argument that is not supported.
    """
    config = GeneratorConfig.from_init_kwargs(init_kwargs)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        return StyleGAN3Generator(config, init_kwargs=plain_init_kwargs(init_kwargs))


def plain_init_kwargs(value: Any) -> Any:
    """init_kwargs as JSON-able data: numpy scalars as numbers, tuples as lists; anything
    else that is not plain data is refused (TypeError names it)."""
    if isinstance(value, dict):
        return {str(k): plain_init_kwargs(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_init_kwargs(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy / torch scalar
        return plain_init_kwargs(value.item())
    raise TypeError(f"init_kwargs hold a {type(value).__name__}, not plain data")
