"""StyleGAN generators: our StyleGAN2 (checkpoints interchangeable with
rosinality/stylegan2-pytorch), and NVIDIA's pickles read as data.

Public API:
    Generator                 -- the model (rosinality's state-dict layout and forward()).
    load_generator            -- a .pt, an NVIDIA .pkl (StyleGAN2-ADA, StyleGAN3, TensorFlow)
                                 or a registry name -> LoadedGenerator, the one contract:
                                 to_wplus(z, truncation), render_wplus(ws), family, ...
    save_generator, CheckpointError -- checkpoint I/O.
    read_nvidia_pickle, NvidiaPickle, NetworkRecord -- the safe NVIDIA pickle reader.
    list_generators, get_generator_info, GeneratorInfo -- the registry of base generators.

Attributes are resolved lazily (PEP 562) so that `import stylegan2.registry` -- which the
API process does to list generators -- never imports torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Generator": "stylegan2.model",
    "load_generator": "stylegan2.checkpoint",
    "save_generator": "stylegan2.checkpoint",
    "LoadedGenerator": "stylegan2.loaded",
    "CheckpointError": "stylegan2.errors",
    "read_nvidia_pickle": "stylegan2.nvidia_pickle",
    "NvidiaPickle": "stylegan2.nvidia_pickle",
    "NetworkRecord": "stylegan2.nvidia_pickle",
    "random_generator": "stylegan2.checkpoint",
    "UnknownGeneratorError": "stylegan2.registry",
    "list_generators": "stylegan2.registry",
    "get_generator_info": "stylegan2.registry",
    "GeneratorInfo": "stylegan2.registry",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from stylegan2.checkpoint import (  # noqa: F401
        load_generator,
        random_generator,
        save_generator,
    )
    from stylegan2.errors import CheckpointError  # noqa: F401
    from stylegan2.loaded import LoadedGenerator  # noqa: F401
    from stylegan2.model import Generator  # noqa: F401
    from stylegan2.nvidia_pickle import NetworkRecord, NvidiaPickle, read_nvidia_pickle  # noqa: F401
    from stylegan2.registry import (  # noqa: F401
        GeneratorInfo,
        UnknownGeneratorError,
        get_generator_info,
        list_generators,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'stylegan2' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
