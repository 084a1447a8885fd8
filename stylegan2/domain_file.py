"""Domain files (`domain.pt`): a modulation run's result, a few tens of KB, that holds a
domain apart from the 30 M weights of its base generator (stylegan2/domain_modulation.py).

A file is a `torch.save`d dict of tensors and plain data:

    format          'nada-domain'
    format_version  1
    family          'stylegan2' (the only family domain modulation is defined for)
    vectors         {layer name: float32 [style width]}: d_l of each modulated layer
    base            the base generator's identity (name, sha256 of its file, seed of a
                    random-<size> one, size, style_dim, ...): what the domain loads onto
    metadata        the run's: prompts, parameters, steps, scores (plain data)

    >>> domain = read_domain("runs/sketch/domain.pt")
    >>> adapted = load_onto(domain, load_generator("ffhq-1024"))   # hash checked
    >>> full = export_generator(domain, load_generator("ffhq-1024"))  # rosinality layout
    >>> full = load_generator("runs/sketch/domain.pt")   # the same, onto the recorded base

`stylegan2.load_generator` reads a domain file as the full generator baked onto the base it
records (`load_baked`), so every command that takes a generator file takes a domain.pt;
an upload check (`load_untrusted`) refuses one (a domain is not a generator of its own).

Reading is the rule of every file a user hands us: a size cap before anything is parsed,
`torch.load(weights_only=True)` (stylegan2.checkpoint.read_checkpoint: nothing in the file
runs), then every key, type, shape and value checked, the first bad one named.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from nada.rundir import atomic_open
from stylegan2.checkpoint import read_checkpoint
from stylegan2.domain_modulation import bake, check_vectors, modulated_view
from stylegan2.download import sha256_file
from stylegan2.errors import CheckpointError
from stylegan2.loaded import LoadedGenerator
from stylegan2.metadata import plain_metadata

FORMAT = "nada-domain"
FORMAT_VERSION = 1
MAX_DOMAIN_BYTES = 4 * 2**20  # a 1024 px domain with every to_rgb is ~40 KB + metadata
MAX_LAYERS = 64  # a 1024 px StyleGAN2 has 26 modulated layers
MAX_WIDTH = 4096  # style channels of one layer
IDENTITY_KEYS = ("name", "sha256", "seed", "family", "size", "style_dim")


class DomainError(CheckpointError):
    """A domain file that is unreadable, malformed, or not for the generator given."""


@dataclass(frozen=True)
class Domain:
    """A domain file's contents."""

    vectors: dict[str, Tensor]  # layer -> d [C], float32 on the CPU
    base: dict[str, Any]  # the base generator's identity (plain data)
    metadata: dict[str, Any] = field(default_factory=dict)  # the run's (plain data)
    family: str = "stylegan2"

    @property
    def numbers(self) -> int:
        """How many numbers the domain is (HyperDomainNet: 6,048 at 1024 px, convs only)."""
        return sum(int(d.numel()) for d in self.vectors.values())


def save_domain(path: str | os.PathLike[str], domain: Domain) -> str:
    """Write `domain` atomically; return the file's hex sha256."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "family": domain.family,
        "vectors": {
            k: v.detach().to("cpu", torch.float32).clone() for k, v in domain.vectors.items()
        },
        "base": plain_metadata(
            {k: domain.base.get(k) for k in _identity_keys(domain.base)}, "base"
        ),
        "metadata": plain_metadata(domain.metadata, "metadata"),
    }
    path = Path(path)
    with atomic_open(path, "wb") as f:
        torch.save(payload, f)
    return sha256_file(path)


def _identity_keys(identity: dict[str, Any]) -> list[str]:
    """The base identity a domain records: what verification compares and what a reader
    needs to find the base again (its path too, where it was a file)."""
    return [k for k in (*IDENTITY_KEYS, "path", "channel_multiplier", "n_mlp") if k in identity]


def is_domain_file(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a small torch file that says it is a domain (cheap: size first)."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size > MAX_DOMAIN_BYTES:
        return False
    try:
        data = read_checkpoint(path)
    except CheckpointError:
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def read_domain(path: str | os.PathLike[str]) -> Domain:
    """Read and check a domain file (any file a user hands us: capped, data only).

    Raises:
        DomainError: too large, not a torch file, code in it, or a key, type, shape or
            value that is not a domain's (named).
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise DomainError(f"no such domain file: {path}")
    size = path.stat().st_size
    if size > MAX_DOMAIN_BYTES:
        raise DomainError(
            f"{where} is {size / 2**20:.1f} MiB; a domain file is at most "
            f"{MAX_DOMAIN_BYTES // 2**20} MiB (is it a generator? load it as one)"
        )
    try:
        data = read_checkpoint(path)
    except CheckpointError as exc:
        raise DomainError(str(exc)) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DomainError(f"{where} is not a domain file (no format {FORMAT!r})")
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise DomainError(
            f"{where}: format_version {version!r}; this version reads up to {FORMAT_VERSION}"
        )
    family = data.get("family")
    if family != "stylegan2":
        raise DomainError(f"{where}: family {family!r}; domains are for stylegan2 generators")
    vectors = data.get("vectors")
    if not isinstance(vectors, dict) or not vectors or len(vectors) > MAX_LAYERS:
        raise DomainError(f"{where}: 'vectors' must map 1..{MAX_LAYERS} layer names to tensors")
    for name, d in vectors.items():
        if not isinstance(name, str) or not isinstance(d, Tensor):
            raise DomainError(f"{where}: vector {name!r} is not a named tensor")
        if d.layout != torch.strided or d.dtype != torch.float32:
            raise DomainError(f"{where}: vector {name!r} must be a dense float32 tensor")
        if d.ndim != 1 or not 0 < d.shape[0] <= MAX_WIDTH:
            raise DomainError(f"{where}: vector {name!r} has shape {list(d.shape)}; want [C]")
        if not bool(torch.isfinite(d).all()):
            raise DomainError(f"{where}: vector {name!r} holds NaN or infinite values")
    base, metadata = data.get("base"), data.get("metadata", {})
    if not isinstance(base, dict) or not isinstance(metadata, dict):
        raise DomainError(f"{where}: 'base' and 'metadata' must be dicts")
    return Domain(vectors=dict(vectors), base=base, metadata=metadata, family=family)


def check_base(domain: Domain, base: LoadedGenerator) -> None:
    """Refuse a base generator the domain was not trained on: the same file (sha256), or
    for a file-less random-<size> base the same name and seed; the same architecture."""
    want, got = domain.base, base.identity
    if want.get("sha256") is not None:
        same = want.get("sha256") == got.get("sha256")
    else:
        same = all(want.get(k) == got.get(k) for k in ("name", "seed"))
    if not same or base.family != domain.family:
        raise DomainError(
            f"this domain was trained on generator {want.get('name')!r} (sha256 "
            f"{str(want.get('sha256'))[:12]}…, seed {want.get('seed')}); the generator given "
            f"is {got.get('name') or got.get('path')!r} (sha256 {str(got.get('sha256'))[:12]}…, "
            f"seed {got.get('seed')})"
        )
    try:
        check_vectors(base.generator, domain.vectors)
    except (TypeError, ValueError) as exc:
        raise DomainError(f"the domain does not fit the generator given: {exc}") from None


def recorded_base(domain: Domain) -> tuple[str, dict[str, Any]]:
    """The base generator a domain records, as `load_generator`'s arguments, if this
    machine has it: a registry or random-<size> name (with its seed), else the file it was
    loaded from. Raises DomainError naming it when it is not here."""
    from stylegan2 import registry

    name, where, seed = (domain.base.get(k) for k in ("name", "path", "seed"))
    if isinstance(name, str) and registry.parse_random_name(name) is not None:
        return name, {"seed": seed} if isinstance(seed, int) else {}
    if isinstance(name, str) and name in registry.generator_names():
        return name, {}
    if isinstance(where, str) and Path(where).is_file():
        return where, {}
    raise DomainError(
        f"the domain's base generator {name or where!r} is not here: name it (nada export "
        "--base), or put the file back where it was"
    )


def load_baked(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> LoadedGenerator:
    """A domain file as a generator of its own: baked onto the base it records. Its
    identity is the domain file's (path, sha256), its metadata the run's with the base."""
    from stylegan2.checkpoint import load_generator

    domain = read_domain(path)
    source, kwargs = recorded_base(domain)
    full = export_generator(domain, load_generator(source, device, **kwargs))
    identity = {
        **full.identity,
        "name": None,
        "path": str(Path(path).resolve()),
        "sha256": sha256_file(path),
        "seed": None,
    }
    return LoadedGenerator(full.generator, full.latent_avg, identity, full.metadata)


def load_onto(domain: Domain, base: LoadedGenerator) -> LoadedGenerator:
    """The adapted generator: `base` with the domain's styles, sharing its weights (what
    training rendered, bit for bit). Raises DomainError on another base."""
    check_base(domain, base)
    device = base.latent_avg.device
    vectors = {k: v.to(device) for k, v in domain.vectors.items()}
    return LoadedGenerator(
        generator=modulated_view(base.generator, vectors).eval(),
        latent_avg=base.latent_avg,
        identity=dict(base.identity),
        metadata={**domain.metadata, "base": dict(domain.base)},
    )


def export_generator(domain: Domain, base: LoadedGenerator) -> LoadedGenerator:
    """The adapted generator as a full StyleGAN2 (the domain baked into the affines): what
    `save_generator` writes as a rosinality-layout .pt. Raises DomainError on another base."""
    check_base(domain, base)
    return LoadedGenerator(
        generator=bake(base.generator, domain.vectors).eval(),
        latent_avg=base.latent_avg,
        identity=dict(base.identity),
        metadata={**domain.metadata, "base": dict(domain.base), "exported_from": "domain"},
    )
