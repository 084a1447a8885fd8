"""The models of the photo engine calls (invert.pipeline): `PhotoModels`, what a caller that
keeps models between jobs provides (worker.model_cache.ModelCache is one), `UncachedModels`
for a caller that keeps none, and `load_encoder`, the encoder an inversion's params name.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import torch

import stylegan2
from invert import weights
from invert.latent import size_for
from nada.errors import ParamError
from nada.photo_params import InvertParams, encoder_source

if TYPE_CHECKING:
    from invert.e4e import E4E
    from invert.landmarks import LandmarkDetector
    from invert.refine import Perceptual
    from stylegan2 import LoadedGenerator
    from stylegan2.model import Generator

__all__ = ["PhotoModels", "UncachedModels", "load_encoder"]


class PhotoModels(Protocol):
    """The models of the photo engine calls, frozen, kept between jobs by the caller
    (worker.model_cache.ModelCache is one)."""

    def generator(self, name_or_path: str, device: torch.device | str) -> LoadedGenerator: ...

    def encoder(self, source: str | Path, device: torch.device | str) -> E4E: ...

    def detector(self, device: torch.device | str) -> LandmarkDetector: ...

    def perceptual(self, device: torch.device | str) -> Perceptual | None: ...


class UncachedModels:
    """PhotoModels for a caller without a cache: every model loaded for this call."""

    def generator(self, name_or_path: str, device: torch.device | str) -> LoadedGenerator:
        loaded = stylegan2.load_generator(name_or_path, device=device)
        loaded.generator.eval().requires_grad_(False)
        return loaded

    def encoder(self, source: str | Path, device: torch.device | str) -> E4E:
        from invert.e4e_weights import load_e4e  # a large module: only when an encoder is used

        return load_e4e(source, device=device)

    def detector(self, device: torch.device | str) -> LandmarkDetector:
        from invert.landmarks import FanDetector  # face-alignment: only when aligning

        return FanDetector(device)

    def perceptual(self, device: torch.device | str) -> Perceptual | None:
        from invert.perceptual import load_perceptual

        return load_perceptual(torch.device(device))


def load_encoder(
    params: InvertParams,
    encoder_path: Path | None,
    generator: Generator,
    device: torch.device,
    models: PhotoModels,
) -> E4E | None:
    """The encoder `params.encoder` names (auto, none, a weights name, a path), checked to
    make codes of the generator's length."""
    source: str | Path | None
    if encoder_path is not None:
        source = encoder_path
    else:  # the encoder rule: nada/photo_params.py
        source = encoder_source(params.encoder, weights.encoder_for(params.generator))
    if source is None:
        return None
    e4e = models.encoder(source, device)
    if e4e.n_styles != generator.n_latent:
        raise ParamError(
            "encoder",
            f"{e4e.source!r} makes codes of {e4e.n_styles} W+ entries (for a "
            f"{size_for(e4e.n_styles)} px generator), but generator {params.generator!r} "
            f"({generator.size} px) takes {generator.n_latent}",
        )
    return e4e
