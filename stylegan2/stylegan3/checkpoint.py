"""Our checkpoint layout for StyleGAN3 generators (what we write; NVIDIA's pickles are read by
stylegan2/nvidia_pickle.py).

A file is a `torch.save`d dict of tensors and plain data only, so `torch.load(...,
weights_only=True)` reads it without running anything:

    {
      "g_ema": {NVIDIA's G.state_dict() keys -> tensors},
      "latent_avg": [w_dim] the truncation centre (the mapping's w_avg unless told otherwise),
      "metadata": {
        ...the caller's plain data (base model, parameters, ...),
        "family": "stylegan3",
        "stylegan3": {"format_version": 1, "init_kwargs": {...}, "torch": "2.x"},
      },
    }

`init_kwargs` are NVIDIA's constructor arguments, so the file describes its own architecture
and `build(init_kwargs)` recreates the module the weights belong to.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from nada.rundir import atomic_open
from stylegan2.download import remember_digest, sha256_file
from stylegan2.errors import CheckpointError
from stylegan2.metadata import plain_metadata
from stylegan2.stylegan3.generator import StyleGAN3Generator, plain_init_kwargs
from stylegan2.stylegan3.layout import GeneratorConfig
from stylegan2.stylegan3.nvidia import load_weights

FAMILY = "stylegan3"
FORMAT_VERSION = 1  # of the metadata['stylegan3'] block


@dataclass(frozen=True)
class StyleGAN3Checkpoint:
    """What `read_stylegan3` returns."""

    generator: StyleGAN3Generator  # eval mode, CPU
    latent_avg: Tensor  # [w_dim]
    metadata: dict[str, Any] = field(default_factory=dict)


def is_stylegan3_checkpoint(ckpt: Any) -> bool:
    """Whether a loaded checkpoint dict is in this layout (its metadata names the family)."""
    metadata = ckpt.get("metadata") if isinstance(ckpt, dict) else None
    return isinstance(metadata, dict) and metadata.get("family") == FAMILY


def save_stylegan3(
    path: str | os.PathLike[str],
    generator: StyleGAN3Generator,
    metadata: dict[str, Any] | None = None,  # plain data; 'family' and 'stylegan3' are ours
    latent_avg: Tensor | None = None,  # [w_dim]; None: the generator's w_avg
) -> str:
    """Write the generator atomically in our layout; return the file's hex sha256."""
    payload = checkpoint_payload(generator, metadata, latent_avg)
    path = Path(path)
    with atomic_open(path, "wb") as f:
        torch.save(payload, f)
    digest = sha256_file(path)
    remember_digest(path, digest)
    return digest


def checkpoint_payload(
    generator: StyleGAN3Generator,
    metadata: dict[str, Any] | None = None,
    latent_avg: Tensor | None = None,
) -> dict[str, Any]:
    """What `save_stylegan3` writes (CPU tensors and plain data): for a caller that adds
    its own keys (an adaptation's intermediate checkpoint adds 'resume')."""
    metadata = plain_metadata(dict(metadata or {}))
    metadata["family"] = FAMILY
    metadata[FAMILY] = {
        "format_version": FORMAT_VERSION,
        "init_kwargs": plain_init_kwargs(generator.init_kwargs),
        "torch": str(torch.__version__),  # TorchVersion is a str subclass weights_only refuses
    }
    state = {k: v.detach().to("cpu").clone() for k, v in generator.state_dict().items()}
    avg = generator.w_avg if latent_avg is None else latent_avg
    avg = avg.detach().to("cpu", torch.float32).reshape(-1).clone()
    if avg.numel() != generator.w_dim:
        raise ValueError(f"latent_avg must have {generator.w_dim} values (got {avg.numel()})")
    return {"g_ema": state, "latent_avg": avg, "metadata": metadata}


def read_stylegan3(ckpt: Any, where: str = "the checkpoint") -> StyleGAN3Checkpoint:
    """Build the generator a loaded checkpoint dict (`torch.load(weights_only=True)`)
    describes. Raises CheckpointError naming what is missing or wrong."""
    if not is_stylegan3_checkpoint(ckpt):
        raise CheckpointError(f"{where}: not a StyleGAN3 checkpoint (metadata.family)")
    metadata = ckpt["metadata"]
    block = metadata.get(FAMILY)
    if not isinstance(block, dict) or not isinstance(block.get("init_kwargs"), dict):
        raise CheckpointError(f"{where}: metadata['{FAMILY}'] has no init_kwargs")
    version = block.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{where}: StyleGAN3 checkpoint format {version!r} is newer than this version "
            f"reads ({FORMAT_VERSION}); update the package"
        )
    state = ckpt.get("g_ema")
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{where}: 'g_ema' is not a state dict of tensors")
    try:
        config = GeneratorConfig.from_init_kwargs(block["init_kwargs"])
    except ValueError as exc:
        raise CheckpointError(f"{where}: {exc}") from None
    with torch.random.fork_rng(devices=[]):
        generator = StyleGAN3Generator(config, init_kwargs=block["init_kwargs"])
    load_weights(generator, state, where)
    latent_avg = ckpt.get("latent_avg")
    if latent_avg is None:
        latent_avg = generator.w_avg.detach().clone()
    elif not isinstance(latent_avg, Tensor) or latent_avg.numel() != generator.w_dim:
        raise CheckpointError(f"{where}: latent_avg must be a tensor of {generator.w_dim} values")
    return StyleGAN3Checkpoint(
        generator.eval(), latent_avg.detach().float().reshape(-1).clone(), metadata
    )


def load_stylegan3(path: str | os.PathLike[str]) -> StyleGAN3Checkpoint:
    """Read a file `save_stylegan3` wrote (weights_only: no code runs)."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no such checkpoint file: {path}") from None
    except Exception as exc:  # torch.load reports damage and refused globals in many ways
        raise CheckpointError(
            f"{path} is not a readable StyleGAN3 checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:160] if str(exc) else ''})"
        ) from None
    return read_stylegan3(ckpt, str(path))
