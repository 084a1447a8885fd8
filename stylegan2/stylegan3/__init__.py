"""StyleGAN3 (Karras et al., 2021, "Alias-Free Generative Adversarial Networks"), configs T
and R, in plain PyTorch: a sibling family of the StyleGAN2 generator inside `stylegan2`.

Public API:
    StyleGAN3Generator, LayerGroup   -- the model (NVIDIA's state-dict layout) and its
                                        trainable groups with their W+ index.
    GeneratorConfig                  -- NVIDIA's init_kwargs, parsed and checked.
    build(init_kwargs, seed=None)    -- a generator with random weights.
    from_nvidia(record)              -- one from an NVIDIA pickle read as data
                                        (stylegan2.nvidia_pickle.NetworkRecord).
    save_stylegan3, load_stylegan3, read_stylegan3, is_stylegan3_checkpoint
                                     -- our own checkpoint layout (checkpoint.py).

    >>> g = from_nvidia(read_nvidia_pickle("stylegan3-t-afhqv2-512x512.pkl").networks["G_ema"])
    >>> img = g.synthesis(g.mapping(z, truncation=0.7))      # [N, 3, 512, 512]

Attributes are resolved lazily (PEP 562), so `stylegan2.stylegan3.layout` (plain NumPy)
can be imported without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "StyleGAN3Generator": "stylegan2.stylegan3.generator",
    "LayerGroup": "stylegan2.stylegan3.generator",
    "build": "stylegan2.stylegan3.generator",
    "GeneratorConfig": "stylegan2.stylegan3.layout",
    "from_nvidia": "stylegan2.stylegan3.nvidia",
    "save_stylegan3": "stylegan2.stylegan3.checkpoint",
    "load_stylegan3": "stylegan2.stylegan3.checkpoint",
    "read_stylegan3": "stylegan2.stylegan3.checkpoint",
    "is_stylegan3_checkpoint": "stylegan2.stylegan3.checkpoint",
    "StyleGAN3Checkpoint": "stylegan2.stylegan3.checkpoint",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from stylegan2.stylegan3.checkpoint import (  # noqa: F401
        StyleGAN3Checkpoint,
        is_stylegan3_checkpoint,
        load_stylegan3,
        read_stylegan3,
        save_stylegan3,
    )
    from stylegan2.stylegan3.generator import LayerGroup, StyleGAN3Generator, build  # noqa: F401
    from stylegan2.stylegan3.layout import GeneratorConfig  # noqa: F401
    from stylegan2.stylegan3.nvidia import from_nvidia  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'stylegan2.stylegan3' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
